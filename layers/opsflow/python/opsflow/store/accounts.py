"""The accounts table: each spoke account Opsflow may act in, its regions, and when its role was last assumed."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# How much of a refusal's message an account keeps.
REFUSAL_KEPT = 1000


@dataclass(frozen=True)
class Account:
    account: str
    regions: tuple[str, ...]
    name: str = ""
    registered_by: str = ""
    registered_at: str = ""
    # The last time the spoke role was assumed, and the last refusal since then (None once it worked again).
    last_assumed_at: str | None = None
    last_refusal: str | None = None
    last_refused_at: str | None = None


class AccountStore(Protocol):
    def get(self, account: str) -> Account | None: ...

    def put(self, account: Account) -> Account:
        """Register or re-register: regions and name replace the old ones; the assumption record stays."""

    def all(self) -> list[Account]: ...

    def record_assumed(self, account: str, at: str) -> None: ...

    def record_refused(self, account: str, at: str, message: str) -> None: ...


class InMemoryAccountStore:
    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._mutex = threading.Lock()

    def get(self, account: str) -> Account | None:
        return self._accounts.get(account)

    def put(self, account: Account) -> Account:
        with self._mutex:
            current = self._accounts.get(account.account)
            kept = (
                replace(
                    account,
                    last_assumed_at=current.last_assumed_at,
                    last_refusal=current.last_refusal,
                    last_refused_at=current.last_refused_at,
                )
                if current
                else account
            )
            self._accounts[account.account] = kept
            return kept

    def all(self) -> list[Account]:
        return sorted(self._accounts.values(), key=lambda a: a.account)

    def record_assumed(self, account: str, at: str) -> None:
        with self._mutex:
            if account in self._accounts:
                self._accounts[account] = replace(
                    self._accounts[account], last_assumed_at=at, last_refusal=None, last_refused_at=None
                )

    def record_refused(self, account: str, at: str, message: str) -> None:
        with self._mutex:
            if account in self._accounts:
                self._accounts[account] = replace(
                    self._accounts[account], last_refusal=message[:REFUSAL_KEPT], last_refused_at=at
                )


class DynamoAccountStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def get(self, account: str) -> Account | None:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table, Key={"account": {"S": account}}, ConsistentRead=True
            ).get("Item")
        return _from_item(item) if item else None

    def put(self, account: Account) -> Account:
        with aws_call("UpdateItem"):
            item = self._ddb.update_item(
                TableName=self._table,
                Key={"account": {"S": account.account}},
                UpdateExpression=(
                    "SET regions = :regions, #name = :name, registered_by = :by, registered_at = :at"
                ),
                ExpressionAttributeNames={"#name": "name"},
                ExpressionAttributeValues={
                    ":regions": {"L": [{"S": region} for region in account.regions]},
                    ":name": {"S": account.name},
                    ":by": {"S": account.registered_by},
                    ":at": {"S": account.registered_at},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        return _from_item(item)

    def all(self) -> list[Account]:
        accounts: list[Account] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            with aws_call("Scan"):
                page = self._ddb.scan(**kwargs)
            accounts += [_from_item(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return sorted(accounts, key=lambda a: a.account)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record_assumed(self, account: str, at: str) -> None:
        self._update_if_registered(
            account, "SET last_assumed_at = :at REMOVE last_refusal, last_refused_at", {":at": {"S": at}}
        )

    def record_refused(self, account: str, at: str, message: str) -> None:
        self._update_if_registered(
            account,
            "SET last_refusal = :message, last_refused_at = :at",
            {":at": {"S": at}, ":message": {"S": message[:REFUSAL_KEPT]}},
        )

    def _update_if_registered(self, account: str, expression: str, values: dict[str, Any]) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"account": {"S": account}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(account)",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                with aws_call("UpdateItem"):
                    raise
            # Not registered (the hub's own account): nothing to record.


def _from_item(item: Any) -> Account:
    def text(key: str) -> str | None:
        return item[key]["S"] if key in item else None

    return Account(
        account=item["account"]["S"],
        regions=tuple(value["S"] for value in item.get("regions", {}).get("L", [])),
        name=text("name") or "",
        registered_by=text("registered_by") or "",
        registered_at=text("registered_at") or "",
        last_assumed_at=text("last_assumed_at"),
        last_refusal=text("last_refusal"),
        last_refused_at=text("last_refused_at"),
    )
