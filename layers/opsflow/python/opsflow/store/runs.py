"""The runs table: the audit trail of who asked for what, each step's outcome and the result."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code
from opsflow.errors import AwsCallFailed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
DRY_RUN = "DRY_RUN"
SKIPPED = "SKIPPED"  # a scheduled run its calendar or state said not to start
TERMINAL = frozenset({SUCCEEDED, FAILED, DRY_RUN, SKIPPED, "ABORTED", "TIMED_OUT"})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Requester:
    kind: str  # iam | chatbot | schedule | pipeline
    identity: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "identity": self.identity}


@dataclass(frozen=True)
class StepOutcome:
    step: str
    status: str  # succeeded | failed | waiting | retrying | milestone
    at: str
    summary: str = ""
    attempts: int = 1


@dataclass(frozen=True)
class Run:
    run_id: str
    workflow: str
    target: str
    status: str
    requester: Requester
    request: dict[str, Any]
    request_hash: str
    created_at: str
    updated_at: str
    execution_arn: str | None = None
    finished_at: str | None = None
    steps: tuple[StepOutcome, ...] = ()
    plan: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # A step's claim, taken only while the run is RUNNING, that an abort must respect (see `claim`).
    mark: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "target": self.target,
            "status": self.status,
            "requester": self.requester.as_dict(),
            "request": self.request,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "execution_arn": self.execution_arn,
            "steps": [s.__dict__ for s in self.steps],
            "plan": self.plan,
            "result": self.result,
            "error": self.error,
        }


class RunExists(Exception):
    def __init__(self, existing: Run) -> None:
        super().__init__(existing.run_id)
        self.existing = existing


class RunStore(Protocol):
    def create(self, run: Run) -> None:
        """Store a new run; raises RunExists with the stored one if the id is taken."""

    def get(self, run_id: str) -> Run | None: ...

    def set_execution(self, run_id: str, execution_arn: str) -> None: ...

    def record_step(self, run_id: str, outcome: StepOutcome) -> None:
        """Append a step outcome; a repeat of the last step (a polling loop) updates it in place."""

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        if_status: str | None = None,
    ) -> bool:
        """Record how the run ended; with `if_status`, only if it still has that status. Returns whether
        it was recorded."""

    def claim(self, run_id: str, mark: str) -> bool:
        """Mark the run, only while it is RUNNING: a step about to do what an abort could not undo
        claims it first, and whoever settles an abort reads the mark. Returns whether it was marked."""

    def recent(self, *, target: str | None = None, workflow: str | None = None, limit: int = 20) -> list[Run]:
        """The newest runs first, of a target and/or a workflow (or of every workflow)."""


def merge_step(steps: tuple[StepOutcome, ...], outcome: StepOutcome) -> tuple[StepOutcome, ...]:
    if (
        steps
        and steps[-1].step == outcome.step
        and steps[-1].status == "waiting"
        and outcome.status not in ("milestone", "retrying")
    ):
        return (*steps[:-1], replace(outcome, attempts=steps[-1].attempts + 1))
    return (*steps, outcome)


class InMemoryRunStore:
    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def create(self, run: Run) -> None:
        with self._lock:
            if run.run_id in self._runs:
                raise RunExists(self._runs[run.run_id])
            self._runs[run.run_id] = run

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def set_execution(self, run_id: str, execution_arn: str) -> None:
        with self._lock:
            self._runs[run_id] = replace(
                self._runs[run_id], execution_arn=execution_arn, updated_at=now_iso()
            )

    def record_step(self, run_id: str, outcome: StepOutcome) -> None:
        with self._lock:
            run = self._runs[run_id]
            self._runs[run_id] = replace(run, steps=merge_step(run.steps, outcome), updated_at=now_iso())

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        if_status: str | None = None,
    ) -> bool:
        with self._lock:
            if if_status is not None and self._runs[run_id].status != if_status:
                return False
            stamp = now_iso()
            self._runs[run_id] = replace(
                self._runs[run_id],
                status=status,
                result=result,
                error=error,
                finished_at=stamp,
                updated_at=stamp,
            )
            return True

    def claim(self, run_id: str, mark: str) -> bool:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.status != RUNNING:
                return False
            self._runs[run_id] = replace(run, mark=mark, updated_at=now_iso())
            return True

    def recent(self, *, target: str | None = None, workflow: str | None = None, limit: int = 20) -> list[Run]:
        runs = [
            run
            for run in self._runs.values()
            if (target is None or run.target == target) and (workflow is None or run.workflow == workflow)
        ]
        return sorted(runs, key=lambda run: run.created_at, reverse=True)[:limit]


class DynamoRunStore:
    """Items keyed by `run_id`; structured fields are stored as JSON strings (no float/Decimal traps)."""

    _JSON_FIELDS = ("requester", "request", "steps", "plan", "result", "error")

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def create(self, run: Run) -> None:
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=_to_item(run),
                ConditionExpression="attribute_not_exists(run_id)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                existing = self.get(run.run_id)
                if existing is not None:
                    raise RunExists(existing) from error
            raise

    def get(self, run_id: str) -> Run | None:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table, Key={"run_id": {"S": run_id}}, ConsistentRead=True
            ).get("Item")
        return _from_item(item) if item else None

    def set_execution(self, run_id: str, execution_arn: str) -> None:
        self._update(run_id, "SET execution_arn = :arn, updated_at = :now", {":arn": {"S": execution_arn}})

    def record_step(self, run_id: str, outcome: StepOutcome) -> None:
        # One execution runs one step at a time, so read-modify-write is safe here.
        run = self.get(run_id)
        if run is None:
            return
        steps = merge_step(run.steps, outcome)
        self._update(
            run_id,
            "SET steps = :steps, updated_at = :now",
            {":steps": {"S": json.dumps([s.__dict__ for s in steps])}},
        )

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        if_status: str | None = None,
    ) -> bool:
        values = {
            ":status": {"S": status},
            ":result": {"S": json.dumps(result)},
            ":error": {"S": json.dumps(error)},
        }
        condition = None
        if if_status is not None:
            condition = "#status = :if_status"
            values[":if_status"] = {"S": if_status}
        return self._update(
            run_id,
            "SET #status = :status, #result = :result, #error = :error, finished_at = :now, updated_at = :now",
            values,
            names={"#status": "status", "#result": "result", "#error": "error"},
            condition=condition,
        )

    def claim(self, run_id: str, mark: str) -> bool:
        return self._update(
            run_id,
            "SET mark = :mark, updated_at = :now",
            {":mark": {"S": mark}, ":running": {"S": RUNNING}},
            names={"#status": "status"},
            condition="#status = :running",
        )

    def recent(self, *, target: str | None = None, workflow: str | None = None, limit: int = 20) -> list[Run]:
        if target is not None:
            return self._query("by_target", "target", target, limit, workflow)
        if workflow is not None:
            return self._query("by_workflow", "workflow", workflow, limit)
        from opsflow.runs.registry import names

        runs = [run for name in names() for run in self._query("by_workflow", "workflow", name, limit)]
        return sorted(runs, key=lambda run: run.created_at, reverse=True)[:limit]

    def _query(self, index: str, key: str, value: str, limit: int, workflow: str | None = None) -> list[Run]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#key = :value",
            "ExpressionAttributeNames": {"#key": key},
            "ExpressionAttributeValues": {":value": {"S": value}},
            "ScanIndexForward": False,
        }
        if workflow is not None:
            arguments["FilterExpression"] = "workflow = :workflow"
            arguments["ExpressionAttributeValues"][":workflow"] = {"S": workflow}
        runs: list[Run] = []
        with aws_call("Query"):
            for page in self._ddb.get_paginator("query").paginate(**arguments):
                runs.extend(_from_item(item) for item in page["Items"])
                if len(runs) >= limit:
                    break
        return runs[:limit]

    def thread(self, run_id: str, channel: str) -> str | None:
        """The Slack thread of a run in a channel (the ts of its first message there)."""
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"run_id": {"S": run_id}},
                ProjectionExpression="slack_threads",
            ).get("Item")
        threads = json.loads(item["slack_threads"]["S"]) if item and "slack_threads" in item else {}
        return threads.get(channel)

    def set_thread(self, run_id: str, channel: str, ts: str) -> None:
        # Read-modify-write is fine: a run's notifications arrive one at a time per channel, and a lost
        # race only starts a second thread.
        threads = {}
        with aws_call("GetItem"):
            item = self._ddb.get_item(TableName=self._table, Key={"run_id": {"S": run_id}}).get("Item")
        if not item:
            return
        if "slack_threads" in item:
            threads = json.loads(item["slack_threads"]["S"])
        threads[channel] = ts
        self._update(
            run_id,
            "SET slack_threads = :threads, updated_at = :now",
            {":threads": {"S": json.dumps(threads)}},
        )

    def _update(
        self,
        run_id: str,
        expression: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        condition: str | None = None,
    ) -> bool:
        """Returns False when `condition` (beyond the run existing) does not hold."""
        extra: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        try:
            with aws_call("UpdateItem"):
                self._ddb.update_item(
                    TableName=self._table,
                    Key={"run_id": {"S": run_id}},
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(run_id)"
                    + (f" AND {condition}" if condition else ""),
                    ExpressionAttributeValues={**values, ":now": {"S": now_iso()}},
                    **extra,
                )
        except AwsCallFailed as error:
            if condition is not None and error.aws_code == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _to_item(run: Run) -> dict[str, Any]:
    data = run.as_dict()
    item: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        item[key] = {"S": json.dumps(value)} if key in DynamoRunStore._JSON_FIELDS else {"S": str(value)}
    item["request_hash"] = {"S": run.request_hash}
    return item


def _from_item(item: dict[str, Any]) -> Run:
    def text(key: str) -> str | None:
        return item[key]["S"] if key in item else None

    def loaded(key: str) -> Any:
        raw = text(key)
        return json.loads(raw) if raw is not None else None

    requester = loaded("requester") or {"kind": "unknown", "identity": "unknown"}
    return Run(
        run_id=item["run_id"]["S"],
        workflow=text("workflow") or "",
        target=text("target") or "",
        status=text("status") or "",
        requester=Requester(**requester),
        request=loaded("request") or {},
        request_hash=text("request_hash") or "",
        created_at=text("created_at") or "",
        updated_at=text("updated_at") or "",
        execution_arn=text("execution_arn"),
        finished_at=text("finished_at"),
        steps=tuple(StepOutcome(**s) for s in loaded("steps") or []),
        plan=loaded("plan"),
        result=loaded("result"),
        error=loaded("error"),
        mark=text("mark"),
    )
