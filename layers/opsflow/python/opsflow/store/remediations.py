"""The remediations table: each rule, keyed by its name, with its guard record (recent actions, breaker,
latest decisions). The guard changes only by `change_guard`, which writes a new record only if none was
written since it read it, so two events deciding at once cannot both take the last place under a cap."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code
from opsflow.errors import NotFound, OpsflowError
from opsflow.remediation.guard import Action, Breaker, Decision, Guard
from opsflow.remediation.rules import RemediationRule
from opsflow.store.runs import now_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
# Another writer changed the guard between a read and a write this many times in a row: give up.
ATTEMPTS = 8


@dataclass(frozen=True)
class StoredRule:
    name: str
    rule: RemediationRule
    updated_by: str
    updated_at: str
    guard: Guard = field(default_factory=Guard)


GuardChange = Callable[[RemediationRule, Guard], tuple[Guard, T]]


class RemediationStore(Protocol):
    def get(self, name: str) -> StoredRule | None: ...

    def put(self, name: str, rule: RemediationRule, by: str) -> StoredRule:
        """Create or replace the rule; its guard record stays."""

    def delete(self, name: str) -> bool: ...

    def all(self) -> list[StoredRule]: ...

    def change_guard(self, name: str, change: GuardChange[T]) -> T:
        """Apply `change` to the rule's guard record atomically; NotFound if the rule is gone."""


class InMemoryRemediationStore:
    def __init__(self) -> None:
        self._rules: dict[str, StoredRule] = {}
        self._mutex = threading.Lock()

    def get(self, name: str) -> StoredRule | None:
        return self._rules.get(name)

    def put(self, name: str, rule: RemediationRule, by: str) -> StoredRule:
        with self._mutex:
            current = self._rules.get(name)
            stored = StoredRule(name, rule, by, now_iso(), current.guard if current else Guard())
            self._rules[name] = stored
            return stored

    def delete(self, name: str) -> bool:
        with self._mutex:
            return self._rules.pop(name, None) is not None

    def all(self) -> list[StoredRule]:
        return sorted(self._rules.values(), key=lambda r: r.name)

    def change_guard(self, name: str, change: GuardChange[T]) -> T:
        with self._mutex:
            current = self._rules.get(name)
            if current is None:
                raise _no_rule(name)
            guard, result = change(current.rule, current.guard)
            self._rules[name] = replace(current, guard=replace(guard, version=current.guard.version + 1))
            return result


class DynamoRemediationStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def get(self, name: str) -> StoredRule | None:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table, Key={"name": {"S": name}}, ConsistentRead=True
            ).get("Item")
        return _from_item(item) if item else None

    def put(self, name: str, rule: RemediationRule, by: str) -> StoredRule:
        with aws_call("UpdateItem"):
            item = self._ddb.update_item(
                TableName=self._table,
                Key={"name": {"S": name}},
                UpdateExpression="SET #rule = :rule, updated_by = :by, updated_at = :at",
                ExpressionAttributeNames={"#rule": "rule"},
                ExpressionAttributeValues={
                    ":rule": {"S": rule.model_dump_json()},
                    ":by": {"S": by},
                    ":at": {"S": now_iso()},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        return _from_item(item)

    def delete(self, name: str) -> bool:
        with aws_call("DeleteItem"):
            gone = self._ddb.delete_item(
                TableName=self._table, Key={"name": {"S": name}}, ReturnValues="ALL_OLD"
            ).get("Attributes")
        return bool(gone)

    def all(self) -> list[StoredRule]:
        rules: list[StoredRule] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            with aws_call("Scan"):
                page = self._ddb.scan(**kwargs)
            rules += [_from_item(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return sorted(rules, key=lambda r: r.name)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def change_guard(self, name: str, change: GuardChange[T]) -> T:
        for _ in range(ATTEMPTS):
            current = self.get(name)
            if current is None:
                raise _no_rule(name)
            guard, result = change(current.rule, current.guard)
            version = current.guard.version
            # The first write finds no version; every later one, the version it read.
            unchanged = "attribute_not_exists(guard_version)" if version == 0 else "guard_version = :version"
            values = {":guard": {"S": guard_json(guard)}, ":next": {"N": str(version + 1)}}
            if version:
                values[":version"] = {"N": str(version)}
            try:
                self._ddb.update_item(
                    TableName=self._table,
                    Key={"name": {"S": name}},
                    UpdateExpression="SET guard = :guard, guard_version = :next",
                    ConditionExpression=f"attribute_exists(#name) AND {unchanged}",
                    ExpressionAttributeNames={"#name": "name"},
                    ExpressionAttributeValues=values,
                )
                return result
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    with aws_call("UpdateItem"):
                        raise
        raise OpsflowError(
            f"remediation {name}: its guard kept changing under {ATTEMPTS} attempts; try again"
        )


def _no_rule(name: str) -> NotFound:
    return NotFound(f"no remediation {name}; PUT /remediations/{name} with its rule to add it")


# The guard record as JSON -----------------------------------------------------------------------------


def guard_json(guard: Guard) -> str:

    return json.dumps(
        {
            "actions": [
                {
                    "resource": a.resource,
                    "run_id": a.run_id,
                    "at": a.at.isoformat(),
                    "group": a.group,
                    "outcome": a.outcome,
                }
                for a in guard.actions
            ],
            "breaker": {"opened_at": guard.breaker.opened_at.isoformat(), "reason": guard.breaker.reason}
            if guard.breaker
            else None,
            "counted_since": guard.counted_since.isoformat() if guard.counted_since else None,
            "decisions": [
                {
                    "resource": d.resource,
                    "at": d.at.isoformat(),
                    "verdict": d.verdict,
                    "reason": d.reason,
                    "run_id": d.run_id,
                }
                for d in guard.decisions
            ],
        },
        separators=(",", ":"),
    )


def guard_from_json(text: str, version: int) -> Guard:

    data = json.loads(text)
    breaker = data.get("breaker")
    since = data.get("counted_since")
    return Guard(
        actions=tuple(
            Action(
                a["resource"], a["run_id"], datetime.fromisoformat(a["at"]), a.get("group"), a.get("outcome")
            )
            for a in data.get("actions", [])
        ),
        breaker=Breaker(datetime.fromisoformat(breaker["opened_at"]), breaker["reason"]) if breaker else None,
        counted_since=datetime.fromisoformat(since) if since else None,
        decisions=tuple(
            Decision(
                d["resource"], datetime.fromisoformat(d["at"]), d["verdict"], d["reason"], d.get("run_id")
            )
            for d in data.get("decisions", [])
        ),
        version=version,
    )


def _from_item(item: Any) -> StoredRule:
    guard_text = item.get("guard", {}).get("S")
    version = int(item.get("guard_version", {}).get("N", "0"))
    return StoredRule(
        name=item["name"]["S"],
        rule=RemediationRule.model_validate_json(item["rule"]["S"]),
        updated_by=item.get("updated_by", {}).get("S", ""),
        updated_at=item.get("updated_at", {}).get("S", ""),
        guard=guard_from_json(guard_text, version) if guard_text else Guard(version=version),
    )
