"""One run per target: a lock item taken with a conditional put, released on every terminal path."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code, from_client_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Lock:
    target: str
    run_id: str
    expires_at: int


class LockStore(Protocol):
    def acquire(self, target: str, run_id: str, ttl_seconds: int) -> Lock | None:
        """Take the lock for `run_id`, or return the lock another run holds. Re-entrant for the same run."""

    def release(self, target: str, run_id: str) -> None:
        """Release only if `run_id` holds it."""

    def holder(self, target: str) -> Lock | None: ...


class InMemoryLockStore:
    def __init__(self) -> None:
        self._locks: dict[str, Lock] = {}
        self._mutex = threading.Lock()

    def acquire(self, target: str, run_id: str, ttl_seconds: int) -> Lock | None:
        now = int(time.time())
        with self._mutex:
            held = self._locks.get(target)
            if held and held.run_id != run_id and held.expires_at > now:
                return held
            self._locks[target] = Lock(target, run_id, now + ttl_seconds)
            return None

    def release(self, target: str, run_id: str) -> None:
        with self._mutex:
            held = self._locks.get(target)
            if held is not None and held.run_id == run_id:
                del self._locks[target]

    def holder(self, target: str) -> Lock | None:
        held = self._locks.get(target)
        return held if held and held.expires_at > int(time.time()) else None


class DynamoLockStore:
    """`expires_at` is also the table's TTL attribute, so a crashed run's lock disappears by itself;
    the condition checks it too, because DynamoDB's TTL deletion can lag by hours."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def acquire(self, target: str, run_id: str, ttl_seconds: int) -> Lock | None:
        now = int(time.time())
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "target": {"S": target},
                    "run_id": {"S": run_id},
                    "expires_at": {"N": str(now + ttl_seconds)},
                },
                ConditionExpression="attribute_not_exists(#t) OR run_id = :run OR expires_at <= :now",
                ExpressionAttributeNames={"#t": "target"},
                ExpressionAttributeValues={":run": {"S": run_id}, ":now": {"N": str(now)}},
            )
            return None
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise from_client_error("PutItem", error) from error
        held = self.holder(target)
        return held or Lock(target, "unknown", now)

    def release(self, target: str, run_id: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={"target": {"S": target}},
                ConditionExpression="run_id = :run",
                ExpressionAttributeValues={":run": {"S": run_id}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def holder(self, target: str) -> Lock | None:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table, Key={"target": {"S": target}}, ConsistentRead=True
            ).get("Item")
        if not item or int(item["expires_at"]["N"]) <= int(time.time()):
            return None
        return Lock(target, item["run_id"]["S"], int(item["expires_at"]["N"]))
