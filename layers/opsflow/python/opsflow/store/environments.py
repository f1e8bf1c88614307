"""The environments table: each environment's schedule and keep-alive, keyed by the environment's name."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from opsflow.aws.errors import aws_call
from opsflow.store.runs import now_iso
from opsflow.workflows.env_power.calendar import EnvironmentSchedule

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class KeepAlive:
    until: datetime  # aware
    by: str
    reason: str


@dataclass(frozen=True)
class Environment:
    name: str
    schedule: EnvironmentSchedule | None = None
    keep_alive: KeepAlive | None = None
    updated_at: str | None = None
    updated_by: str | None = None


class EnvironmentStore(Protocol):
    def get(self, name: str) -> Environment | None: ...

    def put_schedule(self, name: str, schedule: EnvironmentSchedule, by: str) -> Environment: ...

    def set_keep_alive(self, name: str, keep_alive: KeepAlive | None) -> Environment: ...


class InMemoryEnvironmentStore:
    def __init__(self) -> None:
        self._environments: dict[str, Environment] = {}
        self._mutex = threading.Lock()

    def get(self, name: str) -> Environment | None:
        return self._environments.get(name)

    def put_schedule(self, name: str, schedule: EnvironmentSchedule, by: str) -> Environment:
        with self._mutex:
            current = self._environments.get(name) or Environment(name)
            updated = replace(current, schedule=schedule, updated_at=now_iso(), updated_by=by)
            self._environments[name] = updated
            return updated

    def set_keep_alive(self, name: str, keep_alive: KeepAlive | None) -> Environment:
        with self._mutex:
            current = self._environments.get(name) or Environment(name)
            updated = replace(current, keep_alive=keep_alive)
            self._environments[name] = updated
            return updated


class DynamoEnvironmentStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def get(self, name: str) -> Environment | None:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table, Key={"environment": {"S": name}}, ConsistentRead=True
            ).get("Item")
        return _from_item(item) if item else None

    def put_schedule(self, name: str, schedule: EnvironmentSchedule, by: str) -> Environment:
        with aws_call("UpdateItem"):
            item = self._ddb.update_item(
                TableName=self._table,
                Key={"environment": {"S": name}},
                UpdateExpression="SET schedule = :schedule, updated_at = :now, updated_by = :by",
                ExpressionAttributeValues={
                    ":schedule": {"S": schedule.model_dump_json()},
                    ":now": {"S": now_iso()},
                    ":by": {"S": by},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        return _from_item(item)

    def set_keep_alive(self, name: str, keep_alive: KeepAlive | None) -> Environment:
        with aws_call("UpdateItem"):
            if keep_alive is None:
                item = self._ddb.update_item(
                    TableName=self._table,
                    Key={"environment": {"S": name}},
                    UpdateExpression="REMOVE keep_alive_until, keep_alive_by, keep_alive_reason",
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            else:
                item = self._ddb.update_item(
                    TableName=self._table,
                    Key={"environment": {"S": name}},
                    UpdateExpression="SET keep_alive_until = :until, keep_alive_by = :by, keep_alive_reason = :why",
                    ExpressionAttributeValues={
                        ":until": {"S": keep_alive.until.isoformat()},
                        ":by": {"S": keep_alive.by},
                        ":why": {"S": keep_alive.reason},
                    },
                    ReturnValues="ALL_NEW",
                )["Attributes"]
        return _from_item(item)


def _from_item(item: Any) -> Environment:
    def text(key: str) -> str | None:
        return item[key]["S"] if key in item else None

    schedule = text("schedule")
    until = text("keep_alive_until")
    return Environment(
        name=item["environment"]["S"],
        schedule=EnvironmentSchedule.model_validate_json(schedule) if schedule else None,
        keep_alive=KeepAlive(
            datetime.fromisoformat(until), text("keep_alive_by") or "", text("keep_alive_reason") or ""
        )
        if until
        else None,
        updated_at=text("updated_at"),
        updated_by=text("updated_by"),
    )
