"""Saved capacity: what an environment's shutdown changed, kept until its start-up has restored it.

One save per environment, in a few large items rather than one per resource: a head item, which
carries the conditions, and the resources as JSON split into chunks of at most 350 KB (DynamoDB
items hold 400 KB). The head and its chunks are written in one transaction whose condition refuses
to overwrite a save that has not been restored, so a second shutdown can never lose the first one.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from botocore.exceptions import ClientError

from opsflow.aws.errors import aws_call, error_code
from opsflow.errors import OpsflowError
from opsflow.store.runs import FAILED, now_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SAVED = "saved"
RESTORED = "restored"
CHUNK_BYTES = 350_000
# A transaction holds at most 100 items and 4 MB; a save is a head and its chunks.
MAX_CHUNKS = 11
# Run statuses of a stop that saved but did not get through its steps; a later stop finishes its work.
UNFINISHED_STOP = frozenset({FAILED, "ABORTED", "TIMED_OUT"})


ResourceKind = Literal["service", "group", "instance", "database"]
RESOURCE_LABELS: dict[ResourceKind, str] = {
    "service": "ecs service",
    "group": "auto scaling group",
    "instance": "instance",
    "database": "database",
}


@dataclass(frozen=True, order=True)
class ResourceRef:
    """One resource of an environment: an ECS service or Auto Scaling group by name, an instance by id, a
    database by its key ("instance:<id>" / "cluster:<id>")."""

    kind: ResourceKind
    id: str

    def describe(self) -> str:
        """For people, as runs and plans list it: `auto scaling group qa-web`."""
        return f"{RESOURCE_LABELS[self.kind]} {self.id}"

    @classmethod
    def from_label(cls, label: str) -> ResourceRef:
        """Saves written before references were stored name what was not restored by its label."""
        for kind, prefix in RESOURCE_LABELS.items():
            if label.startswith(f"{prefix} "):
                return cls(kind, label.removeprefix(f"{prefix} "))
        raise ValueError(f"not a resource label: {label!r}")


@dataclass(frozen=True)
class ServiceCapacity:
    cluster_arn: str
    name: str
    desired_count: int

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef("service", self.name)


@dataclass(frozen=True)
class GroupCapacity:
    name: str
    min_size: int
    desired: int
    max_size: int

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef("group", self.name)


@dataclass(frozen=True)
class SavedCapacity:
    """What was running when the environment was stopped. Only what was running is saved: something
    already stopped is not here, so start-up leaves it stopped."""

    environment: str
    run_id: str
    saved_at: str = field(default_factory=now_iso)
    services: tuple[ServiceCapacity, ...] = ()
    groups: tuple[GroupCapacity, ...] = ()
    instances: tuple[str, ...] = ()
    databases: tuple[str, ...] = ()  # "instance:<id>" / "cluster:<id>"
    status: str = SAVED
    restored_at: str | None = None
    restored_by: str | None = None
    # Resources the start-up could not restore: the next shutdown saves them as they were here, not as
    # they are then, so their capacity is never lost.
    not_restored: tuple[ResourceRef, ...] = ()
    # Databases the shutdown could not stop: the daily check must not try them again and again.
    not_stopped: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        return {
            "services": len(self.services),
            "groups": len(self.groups),
            "instances": len(self.instances),
            "databases": len(self.databases),
        }

    def body(self) -> dict[str, Any]:
        return {
            "services": [[s.cluster_arn, s.name, s.desired_count] for s in self.services],
            "groups": [[g.name, g.min_size, g.desired, g.max_size] for g in self.groups],
            "instances": list(self.instances),
            "databases": list(self.databases),
        }

    def with_body(self, body: dict[str, Any]) -> SavedCapacity:
        return replace(
            self,
            services=tuple(ServiceCapacity(c, n, int(d)) for c, n, d in body.get("services", [])),
            groups=tuple(
                GroupCapacity(n, int(lo), int(d), int(hi)) for n, lo, d, hi in body.get("groups", [])
            ),
            instances=tuple(body.get("instances", [])),
            databases=tuple(body.get("databases", [])),
        )


class AlreadySaved(OpsflowError):
    """The environment has a save that start-up has not restored yet: it is already down."""

    code = "AlreadySaved"

    def __init__(self, existing: SavedCapacity) -> None:
        super().__init__(
            f"environment {existing.environment} is already down: run {existing.run_id} saved its capacity "
            f"at {existing.saved_at} and nothing has restored it since"
        )
        self.existing = existing


class NotSaved(OpsflowError):
    code = "NotSaved"


class CapacityStore(Protocol):
    def save(self, saved: SavedCapacity) -> None:
        """Store a save; raises AlreadySaved (with the existing one) if an unrestored save exists."""

    def unrestored(self, environment: str) -> SavedCapacity | None:
        """The environment's save if start-up has not restored it yet."""

    def latest(self, environment: str) -> SavedCapacity | None:
        """The last save with its resources, restored or not."""

    def mark_restored(
        self, environment: str, saved_by: str, restored_by: str, not_restored: tuple[ResourceRef, ...] = ()
    ) -> None:
        """Mark the save made by run `saved_by` restored; raises NotSaved if it is not the unrestored save.
        Marking it again by the same start-up is a no-op (a retried step)."""

    def note_not_stopped(self, environment: str, saved_by: str, databases: tuple[str, ...]) -> None:
        """Record the databases the shutdown of run `saved_by` could not stop."""

    def down_environments(self) -> list[str]:
        """Every environment with a save that start-up has not restored yet."""


class InMemoryCapacityStore:
    def __init__(self) -> None:
        self._saves: dict[str, SavedCapacity] = {}
        self._mutex = threading.Lock()
        self.writes = 0

    def save(self, saved: SavedCapacity) -> None:
        with self._mutex:
            existing = self._saves.get(saved.environment)
            if existing is not None and existing.status == SAVED:
                raise AlreadySaved(existing)
            self._saves[saved.environment] = saved
            self.writes += 1

    def unrestored(self, environment: str) -> SavedCapacity | None:
        saved = self._saves.get(environment)
        return saved if saved is not None and saved.status == SAVED else None

    def latest(self, environment: str) -> SavedCapacity | None:
        return self._saves.get(environment)

    def mark_restored(
        self, environment: str, saved_by: str, restored_by: str, not_restored: tuple[ResourceRef, ...] = ()
    ) -> None:
        with self._mutex:
            saved = self._saves.get(environment)
            if saved is not None and saved.run_id == saved_by and saved.restored_by == restored_by:
                return
            if saved is None or saved.status != SAVED or saved.run_id != saved_by:
                raise NotSaved(f"environment {environment} has no unrestored save by run {saved_by}")
            self._saves[environment] = replace(
                saved,
                status=RESTORED,
                restored_at=now_iso(),
                restored_by=restored_by,
                not_restored=not_restored,
            )
            self.writes += 1

    def note_not_stopped(self, environment: str, saved_by: str, databases: tuple[str, ...]) -> None:
        with self._mutex:
            saved = self._saves.get(environment)
            if saved is not None and saved.run_id == saved_by:
                self._saves[environment] = replace(saved, not_stopped=databases)

    def down_environments(self) -> list[str]:
        return sorted(name for name, saved in self._saves.items() if saved.status == SAVED)


class DynamoCapacityStore:
    """Table keyed by `environment` (hash) and `part` (range): "head", then "chunk#0000", ..."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def save(self, saved: SavedCapacity) -> None:
        text = json.dumps(saved.body(), separators=(",", ":"))
        pieces = [text[i : i + CHUNK_BYTES] for i in range(0, len(text), CHUNK_BYTES)] or [""]
        if len(pieces) > MAX_CHUNKS:
            raise OpsflowError(
                f"environment {saved.environment} is too large to save in one transaction "
                f"({len(text):,} bytes); split it into several environments"
            )
        head = {
            "environment": {"S": saved.environment},
            "part": {"S": "head"},
            "status": {"S": SAVED},
            "run_id": {"S": saved.run_id},
            "saved_at": {"S": saved.saved_at},
            "chunks": {"N": str(len(pieces))},
            "counts": {"S": json.dumps(saved.counts())},
        }
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": head,
                    "ConditionExpression": "attribute_not_exists(#status) OR #status = :restored",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":restored": {"S": RESTORED}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        ]
        items.extend(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "environment": {"S": saved.environment},
                        "part": {"S": f"chunk#{index:04d}"},
                        "run_id": {"S": saved.run_id},
                        "body": {"S": piece},
                    },
                }
            }
            for index, piece in enumerate(pieces)
        )
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if error_code(error) == "TransactionCanceledException" and any(
                r.get("Code") == "ConditionalCheckFailed" for r in reasons
            ):
                existing = self.unrestored(saved.environment)
                if existing is not None:
                    raise AlreadySaved(existing) from error
            with aws_call("TransactWriteItems"):
                raise

    def _head(self, environment: str) -> dict[str, Any] | None:
        with aws_call("GetItem"):
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"environment": {"S": environment}, "part": {"S": "head"}},
                ConsistentRead=True,
            ).get("Item")
        return dict(item) if item else None

    def latest(self, environment: str) -> SavedCapacity | None:
        # One consistent Query reads the head and its chunks together ("chunk#..." sorts before "head").
        items: dict[str, dict[str, Any]] = {}
        with aws_call("Query"):
            pages = self._ddb.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="environment = :env",
                ExpressionAttributeValues={":env": {"S": environment}},
                ConsistentRead=True,
            )
            for page in pages:
                items.update((item["part"]["S"], item) for item in page["Items"])
        head = items.get("head")
        if head is None:
            return None
        saved = _from_head(environment, head)
        names = [f"chunk#{index:04d}" for index in range(int(head["chunks"]["N"]))]
        # Chunks of another save (a larger earlier one) are not this save's.
        if any(items.get(name, {}).get("run_id", {}).get("S") != saved.run_id for name in names):
            raise OpsflowError(
                f"the save of environment {environment} by run {saved.run_id} changed while it was read; try again"
            )
        text = "".join(items[name]["body"]["S"] for name in names)
        return saved.with_body(json.loads(text)) if text else saved

    def unrestored(self, environment: str) -> SavedCapacity | None:
        saved = self.latest(environment)
        return saved if saved is not None and saved.status == SAVED else None

    def mark_restored(
        self, environment: str, saved_by: str, restored_by: str, not_restored: tuple[ResourceRef, ...] = ()
    ) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"environment": {"S": environment}, "part": {"S": "head"}},
                UpdateExpression="SET #status = :restored, restored_at = :now, restored_by = :by, "
                "not_restored_refs = :not_restored",
                # The same start-up marking it again (its step retried) succeeds.
                ConditionExpression="run_id = :saved_by AND (#status = :saved OR restored_by = :by)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":restored": {"S": RESTORED},
                    ":saved": {"S": SAVED},
                    ":saved_by": {"S": saved_by},
                    ":now": {"S": now_iso()},
                    ":by": {"S": restored_by},
                    ":not_restored": {"S": json.dumps([[r.kind, r.id] for r in not_restored])},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise NotSaved(
                    f"environment {environment} has no unrestored save by run {saved_by}"
                ) from error
            with aws_call("UpdateItem"):
                raise

    def down_environments(self) -> list[str]:
        # One head item per environment: a daily scan of a table this small costs next to nothing.
        names: list[str] = []
        with aws_call("Scan"):
            pages = self._ddb.get_paginator("scan").paginate(
                TableName=self._table,
                FilterExpression="part = :head AND #status = :saved",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":head": {"S": "head"}, ":saved": {"S": SAVED}},
                ProjectionExpression="environment",
                ConsistentRead=True,
            )
            for page in pages:
                names.extend(item["environment"]["S"] for item in page["Items"])
        return sorted(names)

    def note_not_stopped(self, environment: str, saved_by: str, databases: tuple[str, ...]) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"environment": {"S": environment}, "part": {"S": "head"}},
                UpdateExpression="SET not_stopped = :databases",
                ConditionExpression="run_id = :saved_by",
                ExpressionAttributeValues={
                    ":databases": {"S": json.dumps(list(databases))},
                    ":saved_by": {"S": saved_by},
                },
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                with aws_call("UpdateItem"):
                    raise


def _from_head(environment: str, head: dict[str, Any]) -> SavedCapacity:
    return SavedCapacity(
        environment=environment,
        run_id=head["run_id"]["S"],
        saved_at=head["saved_at"]["S"],
        status=head["status"]["S"],
        restored_at=head.get("restored_at", {}).get("S"),
        restored_by=head.get("restored_by", {}).get("S"),
        not_restored=_not_restored(head),
        not_stopped=tuple(json.loads(head.get("not_stopped", {}).get("S", "[]"))),
    )


def _not_restored(head: dict[str, Any]) -> tuple[ResourceRef, ...]:
    # `not_restored_refs` holds [kind, id] pairs. Heads restored before it existed hold labels in
    # `not_restored`; a new attribute rather than a new shape, so code that only knows labels still reads
    # a head written here (as nothing left unrestored) instead of failing on it.
    if "not_restored_refs" in head:
        kinds: dict[str, ResourceKind] = {kind: kind for kind in RESOURCE_LABELS}
        return tuple(
            ResourceRef(kinds[kind], id_) for kind, id_ in json.loads(head["not_restored_refs"]["S"])
        )
    labels = json.loads(head.get("not_restored", {}).get("S", "[]"))
    return tuple(ResourceRef.from_label(label) for label in labels)
