"""Task tokens of the executions waiting on something (an image, an instance refresh, a service, a database,
an alarm), keyed by what is awaited, so the event AWS sends about it can resume them."""

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
class Waiter:
    awaited: str  # what is awaited, as a Target key: "image:ami-0abc", "alarm:web-5xx"
    run_id: str
    step: str  # the state machine's waiting step, for the audit record
    token: str
    expires_at: int


class WaiterStore(Protocol):
    def register(self, waiter: Waiter) -> None:
        """Record the waiter, replacing the run's earlier one on the same thing (its wait has ended)."""

    def waiting_on(self, awaited: str) -> list[Waiter]: ...

    def forget(self, waiter: Waiter) -> None:
        """Remove the waiter, unless the run has since registered a newer token."""


class InMemoryWaiterStore:
    def __init__(self) -> None:
        self._waiters: dict[tuple[str, str], Waiter] = {}
        self._mutex = threading.Lock()

    def register(self, waiter: Waiter) -> None:
        with self._mutex:
            self._waiters[(waiter.awaited, waiter.run_id)] = waiter

    def waiting_on(self, awaited: str) -> list[Waiter]:
        now = int(time.time())
        with self._mutex:
            return [w for (key, _), w in self._waiters.items() if key == awaited and w.expires_at > now]

    def forget(self, waiter: Waiter) -> None:
        with self._mutex:
            held = self._waiters.get((waiter.awaited, waiter.run_id))
            if held is not None and held.token == waiter.token:
                del self._waiters[(waiter.awaited, waiter.run_id)]


class DynamoWaiterStore:
    """`expires_at` is the table's TTL attribute: a waiter whose execution ended without being resumed goes by
    itself (and is skipped until then, as TTL deletion can lag)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def register(self, waiter: Waiter) -> None:
        with aws_call("PutItem"):
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "awaited": {"S": waiter.awaited},
                    "run_id": {"S": waiter.run_id},
                    "step": {"S": waiter.step},
                    "token": {"S": waiter.token},
                    "expires_at": {"N": str(waiter.expires_at)},
                },
            )

    def waiting_on(self, awaited: str) -> list[Waiter]:
        now = int(time.time())
        waiters: list[Waiter] = []
        arguments = {
            "TableName": self._table,
            "KeyConditionExpression": "awaited = :awaited",
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {":awaited": {"S": awaited}, ":now": {"N": str(now)}},
            "ConsistentRead": True,
        }
        with aws_call("Query"):
            for page in self._ddb.get_paginator("query").paginate(**arguments):  # type: ignore[arg-type]
                waiters.extend(
                    Waiter(
                        awaited=item["awaited"]["S"],
                        run_id=item["run_id"]["S"],
                        step=item["step"]["S"],
                        token=item["token"]["S"],
                        expires_at=int(item["expires_at"]["N"]),
                    )
                    for item in page.get("Items", [])
                )
        return waiters

    def forget(self, waiter: Waiter) -> None:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={"awaited": {"S": waiter.awaited}, "run_id": {"S": waiter.run_id}},
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": {"S": waiter.token}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise from_client_error("DeleteItem", error) from error
