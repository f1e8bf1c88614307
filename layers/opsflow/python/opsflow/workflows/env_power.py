"""Environment power: stop a non-production environment for the night and start it again, exactly.

An environment is every resource carrying its environment tag *and* the opt-in tag: ECS services,
Auto Scaling groups, EC2 instances outside any group, RDS DB instances and DB clusters (Aurora is
stopped as a cluster, never member by member).

Stop saves what runs before it changes anything (`opsflow.store.capacity`), then stops in the
order that keeps dependants from failing noisily: ECS services, groups, instances, databases.
Start restores exactly that save in the reverse order, waiting until the databases are available
before anything that connects to them. One resource that refuses does not stop the others: each
step records per-resource failures, the run ends FAILED naming them, and the save is kept so the
next start-up still restores everything that was stopped.

The state machine's state stays small (Step Functions caps it at 256 KB): each step reads the save
from DynamoDB rather than carrying thousands of ids from step to step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opsflow.aws import clients
from opsflow.aws.autoscaling import AutoScaling, Group
from opsflow.aws.batches import ResourceFailure, act_in_batches, act_on_each
from opsflow.aws.ec2 import Ec2, Instance
from opsflow.aws.ecs import Ecs, Service
from opsflow.aws.rds import Database, Rds
from opsflow.errors import LockLost, Refused
from opsflow.requests import EnvPowerRequest
from opsflow.settings import OptIn
from opsflow.steps import describe_failure, finish_failed, finish_succeeded
from opsflow.store.capacity import (
    AlreadySaved,
    CapacityStore,
    DynamoCapacityStore,
    GroupCapacity,
    SavedCapacity,
    ServiceCapacity,
)
from opsflow.store.locks import LockStore
from opsflow.store.runs import FAILED, SUCCEEDED, RunStore

# EC2 takes a list of instances; a thousand per call keeps each request well inside its limits.
INSTANCE_BATCH = 1000
# Instances an Auto Scaling group launched carry this tag; the group, not Opsflow, owns their state.
GROUP_MEMBER_TAG = "aws:autoscaling:groupName"
INSTANCE_UP = frozenset({"pending", "running"})
# A database in any of these is not running, or cannot be stopped and need not be saved.
DATABASE_NOT_UP = frozenset({"stopped", "stopping", "creating", "deleting", "failed", "deleted"})
DATABASE_READY = "available"
ALREADY_STARTED = frozenset({"available", "starting", "backing-up", "modifying", "maintenance"})
# How much of a list a run record shows; the rest is counted.
LISTED = 25


@dataclass(frozen=True)
class PowerAws:
    ec2: Ec2
    autoscaling: AutoScaling
    ecs: Ecs
    rds: Rds
    capacity: CapacityStore

    @classmethod
    def from_default_clients(cls, capacity_table: str) -> PowerAws:
        return cls(
            ec2=Ec2(clients.client("ec2")),
            autoscaling=AutoScaling(clients.client("autoscaling")),
            ecs=Ecs(clients.client("ecs")),
            rds=Rds(clients.client("rds")),
            capacity=DynamoCapacityStore(clients.client("dynamodb"), capacity_table),
        )


@dataclass(frozen=True)
class Inventory:
    """An environment's resources as they are now."""

    services: list[Service]
    groups: list[Group]
    instances: list[Instance]
    databases: list[Database]

    def to_save(self, environment: str, run_id: str) -> SavedCapacity:
        """What a stop changes, and so what a start must put back: only what runs now."""
        return SavedCapacity(
            environment=environment,
            run_id=run_id,
            services=tuple(
                ServiceCapacity(s.cluster_arn, s.name, s.desired_count)
                for s in self.services
                if s.desired_count
            ),
            groups=tuple(
                GroupCapacity(g.name, g.min_size, g.desired_capacity, g.max_size)
                for g in self.groups
                if g.min_size or g.desired_capacity
            ),
            instances=tuple(i.instance_id for i in self.instances if i.state in INSTANCE_UP),
            databases=tuple(d.key for d in self.databases if d.status not in DATABASE_NOT_UP),
        )


def find_environment(environment: str, aws: PowerAws, opt_in: OptIn, environment_key: str) -> Inventory:
    tags = {environment_key: environment, opt_in.key: opt_in.value}
    return Inventory(
        services=aws.ecs.find_services(tags),
        groups=aws.autoscaling.find_groups(tags),
        instances=[i for i in aws.ec2.find_instances(tags) if GROUP_MEMBER_TAG not in i.tags],
        databases=aws.rds.find_databases(tags),
    )


# Pre-flight and plan ------------------------------------------------------------------------------


def preflight(request: EnvPowerRequest, aws: PowerAws, opt_in: OptIn, environment_key: str) -> dict[str, Any]:
    """What the run would do to each resource, read without changing anything."""
    if request.action == "stop":
        return plan_stop(request.environment, aws, opt_in, environment_key)
    if request.action == "restop_databases":
        return plan_restop(request.environment, aws)
    return plan_start(request.environment, aws)


def databases_up_again(saved: SavedCapacity, aws: PowerAws) -> list[str]:
    """Saved databases that are running although the environment is down: AWS starts a database that
    has been stopped for seven days, and a stopped environment would otherwise pay for it unnoticed."""
    statuses = aws.rds.statuses(list(saved.databases))
    return [key for key in saved.databases if statuses.get(key) == DATABASE_READY]


def plan_restop(environment: str, aws: PowerAws) -> dict[str, Any]:
    saved = aws.capacity.unrestored(environment)
    if saved is None:
        raise Refused(f"environment {environment} is not down, so none of its databases needs stopping again")
    up = databases_up_again(saved, aws)
    return {
        "action": "restop_databases",
        "changes": [{"resource": f"database {key}", "now": "available", "after": "stopped"} for key in up],
        "summary": f"Stop again {len(up)} database(s) of {environment} that AWS started while it was down."
        if up
        else f"Every saved database of {environment} is still stopped.",
    }


def plan_stop(environment: str, aws: PowerAws, opt_in: OptIn, environment_key: str) -> dict[str, Any]:
    saved = aws.capacity.unrestored(environment)
    if saved is not None:
        return {
            "action": "stop",
            "already_down": {"since": saved.saved_at, "saved_by": saved.run_id},
            "changes": [],
            "summary": f"Nothing to do: {environment} has been down since {saved.saved_at} (run {saved.run_id}).",
        }
    inventory = find_environment(environment, aws, opt_in, environment_key)
    if not (inventory.services or inventory.groups or inventory.instances or inventory.databases):
        raise Refused(
            f"no resource carries both {environment_key}={environment} and {opt_in.describe()}; tag the "
            "environment's services, groups, instances and databases with both to let Opsflow stop them"
        )
    save = inventory.to_save(environment, "plan")
    changes = [
        *(
            {"resource": f"ecs service {s.name}", "now": f"desired {s.desired_count}", "after": "desired 0"}
            for s in save.services
        ),
        *(
            {
                "resource": f"auto scaling group {g.name}",
                "now": f"min {g.min_size} / desired {g.desired} / max {g.max_size}",
                "after": f"min 0 / desired 0 / max {g.max_size}",
            }
            for g in save.groups
        ),
        *({"resource": f"instance {i}", "now": "running", "after": "stopped"} for i in save.instances),
        *({"resource": f"database {d}", "now": "available", "after": "stopped"} for d in save.databases),
    ]
    left = _left_alone(inventory, save)
    return {
        "action": "stop",
        "will_save": save.counts(),
        "changes": changes,
        "left_alone": left,
        "summary": f"Stop {environment}: {_describe_counts(save.counts())}; save their capacity first."
        + (f" {len(left)} already stopped or idle, left as they are." if left else ""),
    }


def plan_start(environment: str, aws: PowerAws) -> dict[str, Any]:
    saved = aws.capacity.unrestored(environment)
    if saved is None:
        return {
            "action": "start",
            "nothing_to_restore": True,
            "changes": [],
            "summary": f"Nothing to restore: {environment} has no save awaiting start-up.",
        }
    changes = [
        *({"resource": f"database {d}", "after": "available"} for d in saved.databases),
        *({"resource": f"instance {i}", "after": "running"} for i in saved.instances),
        *(
            {
                "resource": f"auto scaling group {g.name}",
                "after": f"min {g.min_size} / desired {g.desired} / max {g.max_size}",
            }
            for g in saved.groups
        ),
        *(
            {"resource": f"ecs service {s.name}", "after": f"desired {s.desired_count}"}
            for s in saved.services
        ),
    ]
    return {
        "action": "start",
        "saved_by": saved.run_id,
        "saved_at": saved.saved_at,
        "changes": changes,
        "summary": f"Start {environment}: restore {_describe_counts(saved.counts())} as saved at {saved.saved_at}.",
    }


def _left_alone(inventory: Inventory, save: SavedCapacity) -> list[str]:
    saved_services = {s.name for s in save.services}
    saved_groups = {g.name for g in save.groups}
    return [
        *(f"ecs service {s.name} (desired 0)" for s in inventory.services if s.name not in saved_services),
        *(
            f"auto scaling group {g.name} (0 instances)"
            for g in inventory.groups
            if g.name not in saved_groups
        ),
        *(f"instance {i.instance_id} ({i.state})" for i in inventory.instances if i.state not in INSTANCE_UP),
        *(f"database {d.key} ({d.status})" for d in inventory.databases if d.status in DATABASE_NOT_UP),
    ]


def _describe_counts(counts: Mapping[str, int]) -> str:
    names = {
        "services": ("ECS service", "ECS services"),
        "groups": ("Auto Scaling group", "Auto Scaling groups"),
        "instances": ("instance", "instances"),
        "databases": ("database", "databases"),
    }
    parts = [f"{n:,} {names[k][0] if n == 1 else names[k][1]}" for k, n in counts.items() if n]
    return ", ".join(parts) or "nothing running"


# Steps --------------------------------------------------------------------------------------------


def _environment(state: Mapping[str, Any]) -> str:
    return str(state["request"]["environment"])


def _own_save(state: Mapping[str, Any], aws: PowerAws) -> SavedCapacity:
    """The save this run wrote: a stop acts only on what it saved itself."""
    saved = aws.capacity.unrestored(_environment(state))
    if saved is None or saved.run_id != state["run_id"]:
        raise LockLost(
            f"the save of environment {_environment(state)} is no longer this run's; stopping rather than act on it"
        )
    return saved


def _outcome(changed: int, failures: list[ResourceFailure], verb: str, kind: str) -> dict[str, Any]:
    failed = len(failures)
    summary = f"{changed - failed:,} of {changed:,} {kind} {verb}"
    if failures:
        summary += f"; {failed} failed: " + "; ".join(f"{f.resource}: {f.error}" for f in failures[:3])
    return {"changed": changed - failed, "failed": [f.as_dict() for f in failures], "summary": summary}


def save_capacity(
    state: Mapping[str, Any], aws: PowerAws, opt_in: OptIn, environment_key: str
) -> dict[str, Any]:
    environment = _environment(state)
    inventory = find_environment(environment, aws, opt_in, environment_key)
    save = inventory.to_save(environment, state["run_id"])
    try:
        aws.capacity.save(save)
    except AlreadySaved as exists:
        if exists.existing.run_id == state["run_id"]:
            # A retried step: the save went through the first time.
            return {"already_down": False, "saved": exists.existing.counts(), "summary": "saved (retried)"}
        return {
            "already_down": True,
            "since": exists.existing.saved_at,
            "saved_by": exists.existing.run_id,
            "summary": f"already down since {exists.existing.saved_at} (run {exists.existing.run_id}): "
            "nothing changed, the first save is kept",
        }
    return {
        "already_down": False,
        "saved": save.counts(),
        "summary": f"saved {_describe_counts(save.counts())} before stopping them",
    }


def stop_services(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    services = _own_save(state, aws).services
    failures = act_on_each(
        services,
        lambda s: f"ecs service {s.name}",
        lambda s: aws.ecs.set_desired_count(s.cluster_arn, s.name, 0),
    )
    return _outcome(len(services), failures, "scaled to 0", "ECS services")


def stop_groups(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    groups = _own_save(state, aws).groups
    failures = act_on_each(
        groups,
        lambda g: f"auto scaling group {g.name}",
        lambda g: aws.autoscaling.set_capacity(g.name, min_size=0, desired=0, max_size=g.max_size),
    )
    return _outcome(len(groups), failures, "scaled to 0", "Auto Scaling groups")


def stop_instances(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    instances = list(_own_save(state, aws).instances)
    failures = act_in_batches(instances, INSTANCE_BATCH, aws.ec2.stop_instances)
    return _outcome(len(instances), _named(failures, "instance"), "stopped", "instances")


def stop_databases(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    databases = list(_own_save(state, aws).databases)
    failures = act_on_each(databases, lambda key: f"database {key}", aws.rds.stop)
    return _outcome(len(databases), failures, "stopped", "databases")


def restop_databases(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    saved = aws.capacity.unrestored(_environment(state))
    if saved is None:
        return {"changed": 0, "failed": [], "summary": "the environment is no longer down; nothing to stop"}
    up = databases_up_again(saved, aws)
    failures = act_on_each(up, lambda key: f"database {key}", aws.rds.stop)
    return _outcome(len(up), failures, "stopped again", "databases")


def load_save(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    saved = aws.capacity.unrestored(_environment(state))
    if saved is None:
        latest = aws.capacity.latest(_environment(state))
        when = (
            f" (the last save, by run {latest.run_id}, was restored at {latest.restored_at})"
            if latest
            else ""
        )
        note = f"nothing to restore{when}"
        return {"nothing_to_restore": True, "note": note, "summary": note}
    return {
        "nothing_to_restore": False,
        "saved_by": saved.run_id,
        "saved_at": saved.saved_at,
        "saved": saved.counts(),
        "summary": f"restoring {_describe_counts(saved.counts())} saved at {saved.saved_at} by run {saved.run_id}",
    }


def _saved_for_start(state: Mapping[str, Any], aws: PowerAws) -> SavedCapacity:
    saved = aws.capacity.unrestored(_environment(state))
    if saved is None or saved.run_id != state["load"]["saved_by"]:
        raise LockLost(
            f"the save of environment {_environment(state)} changed during this start-up; stopping"
        )
    return saved


def start_databases(
    state: Mapping[str, Any], aws: PowerAws, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    databases = list(_saved_for_start(state, aws).databases)
    max_wait = int(state.get("settings", {}).get("database_max_wait_seconds", 3600))
    progress = {"waiting_for": databases, "started": 0, "failed": [], "deadline": clock() + max_wait}
    return _advance_databases(progress, aws, clock)


def databases_ready(
    state: Mapping[str, Any], aws: PowerAws, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    return _advance_databases(dict(state["databases"]), aws, clock)


def _advance_databases(progress: dict[str, Any], aws: PowerAws, clock: Callable[[], float]) -> dict[str, Any]:
    """Start every saved database that is stopped, and wait for all of them to be available. A database
    still stopping (a start-up soon after a shutdown) is started once it has stopped: AWS refuses
    StartDBInstance and StartDBCluster until then."""
    waiting: list[str] = list(progress["waiting_for"])
    statuses = aws.rds.statuses(waiting)
    failures = [
        ResourceFailure(f"database {key}", "no longer exists") for key in waiting if key not in statuses
    ]
    stopped = [key for key in waiting if statuses.get(key) == "stopped"]
    failures += act_on_each(stopped, lambda key: f"database {key}", aws.rds.start)
    failed = {f.resource for f in failures}
    waiting = [
        key
        for key in waiting
        if key in statuses and f"database {key}" not in failed and statuses[key] != DATABASE_READY
    ]
    failed_list = list(progress["failed"]) + [f.as_dict() for f in failures]
    if waiting and clock() > float(progress["deadline"]):
        failed_list += [
            {"resource": f"database {key}", "error": f"not available in time (still {statuses.get(key)})"}
            for key in waiting
        ]
        waiting = []
    started = int(progress["started"]) + sum(1 for key in stopped if f"database {key}" not in failed)
    return {
        **progress,
        "ready": not waiting,
        "waiting_for": waiting,
        "started": started,
        "failed": failed_list,
        "waiting": bool(waiting),
        "summary": f"started {started:,} databases; waiting for {len(waiting)} to be available"
        if waiting
        else f"started {started:,} databases; all available",
    }


def start_instances(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    instances = list(_saved_for_start(state, aws).instances)
    failures = act_in_batches(instances, INSTANCE_BATCH, aws.ec2.start_instances)
    return _outcome(len(instances), _named(failures, "instance"), "started", "instances")


def restore_groups(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    groups = _saved_for_start(state, aws).groups
    failures = act_on_each(
        groups,
        lambda g: f"auto scaling group {g.name}",
        lambda g: aws.autoscaling.set_capacity(
            g.name, min_size=g.min_size, desired=g.desired, max_size=g.max_size
        ),
    )
    return _outcome(len(groups), failures, "restored", "Auto Scaling groups")


def restore_services(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    services = _saved_for_start(state, aws).services
    failures = act_on_each(
        services,
        lambda s: f"ecs service {s.name}",
        lambda s: aws.ecs.set_desired_count(s.cluster_arn, s.name, s.desired_count),
    )
    return _outcome(len(services), failures, "restored", "ECS services")


def _named(failures: list[ResourceFailure], kind: str) -> list[ResourceFailure]:
    return [ResourceFailure(f"{kind} {f.resource}", f.error) for f in failures]


# Finish -------------------------------------------------------------------------------------------

STOP_STEPS = ("services", "groups", "instances", "databases")
AFTER_FAILURE = {
    "stop": "The saved capacity is kept, so the next start-up restores everything this stop changed; "
    "stop the failed resources by hand if they must not run tonight.",
    "start": "The save is kept: fix the cause and start the environment again to restore what failed.",
    "restop_databases": "The save is kept; the next daily check tries again.",
}
_STEP_PREFIX = {"stop": "stop", "start": "restore", "restop_databases": "restop"}
START_STEPS = ("databases", "instances", "groups", "services")


def run_outcome(state: Mapping[str, Any]) -> dict[str, Any]:
    """The run's result: per kind of resource what changed and what failed, and a summary."""
    action = state["request"]["action"]
    environment = _environment(state)
    if action == "stop" and state.get("save", {}).get("already_down"):
        save = state["save"]
        return {
            "environment": environment,
            "action": action,
            "already_down": True,
            "summary": f"{environment} was already down (since {save['since']}, run {save['saved_by']}); "
            "nothing changed and the first save is kept.",
            "failed": [],
        }
    if action == "start" and state.get("load", {}).get("nothing_to_restore"):
        return {
            "environment": environment,
            "action": action,
            "nothing_to_restore": True,
            "summary": f"{environment}: {state['load']['note']}; nothing changed.",
            "failed": [],
        }
    kinds = {"stop": STOP_STEPS, "start": START_STEPS, "restop_databases": ("databases",)}[action]
    outcome = {kind: _without_summary(state.get(kind, {})) for kind in kinds}
    failed = [f for kind in kinds for f in outcome[kind].get("failed", [])]
    changed = {kind: int(outcome[kind].get("changed", outcome[kind].get("started", 0))) for kind in kinds}
    verb = {"stop": "Stopped", "start": "Started", "restop_databases": "Stopped again"}[action]
    summary = f"{verb} {environment}: {_describe_counts(changed)}."
    if failed:
        summary += (
            f" {len(failed)} resource{'s' if len(failed) != 1 else ''} failed: "
            + "; ".join(f"{f['resource']}: {f['error']}" for f in failed[:LISTED])
            + " "
            + AFTER_FAILURE[action]
        )
    result: dict[str, Any] = {
        "environment": environment,
        "action": action,
        "outcome": outcome,
        "failed": failed,
        "summary": summary,
    }
    if action == "stop":
        result["saved"] = state.get("save", {}).get("saved", {})
    elif action == "start":
        result["restored_from"] = {"run_id": state["load"]["saved_by"], "saved_at": state["load"]["saved_at"]}
    return result


def mark_restored(state: Mapping[str, Any], aws: PowerAws) -> None:
    aws.capacity.mark_restored(_environment(state), state["load"]["saved_by"], state["run_id"])


def _without_summary(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("summary", "deadline", "waiting_for", "ready")}


def run_error(state: Mapping[str, Any]) -> dict[str, Any]:
    """A step that failed as a whole (not one resource): what is known, and that the save is kept."""
    failed_step = state.get("failed_step", "unknown")
    action = state.get("request", {}).get("action", "stop")
    kept = (
        "Its saved capacity is kept: start-up restores what was stopped."
        if action == "stop"
        else "The save is kept: start the environment again to finish restoring it."
    )
    return {
        "step": failed_step,
        "message": f"{describe_failure(state.get('error'))}. {kept}",
        "rollback": {"undone": [], "problems": []},
    }


def step_table(
    aws: PowerAws, opt_in: OptIn, environment_key: str
) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    return {
        "save": lambda state: save_capacity(state, aws, opt_in, environment_key),
        "stop_services": lambda state: stop_services(state, aws),
        "stop_groups": lambda state: stop_groups(state, aws),
        "stop_instances": lambda state: stop_instances(state, aws),
        "stop_databases": lambda state: stop_databases(state, aws),
        "restop_databases": lambda state: restop_databases(state, aws),
        "load_save": lambda state: load_save(state, aws),
        "start_databases": lambda state: start_databases(state, aws),
        "databases_ready": lambda state: databases_ready(state, aws),
        "start_instances": lambda state: start_instances(state, aws),
        "restore_groups": lambda state: restore_groups(state, aws),
        "restore_services": lambda state: restore_services(state, aws),
    }


def finish_run(state: Mapping[str, Any], aws: PowerAws, runs: RunStore, locks: LockStore) -> dict[str, Any]:
    """Record the outcome. A start-up that restored everything marks the save restored; a run with any
    failed resource ends FAILED and keeps the save, so nothing it stopped is ever forgotten."""
    result = run_outcome(state)
    if result["failed"]:
        steps = [
            f"{_STEP_PREFIX[result['action']]}_{kind}" for kind, o in result["outcome"].items() if o["failed"]
        ]
        error = {
            "step": ", ".join(steps),
            "message": result["summary"],
            "next_step": AFTER_FAILURE[result["action"]],
            "outcome": result.get("outcome", {}),
            "failed": result["failed"],
            "rollback": {"undone": [], "problems": []},
        }
        finish_failed(state, error, runs, locks)
        return {**result, "status": FAILED}
    if result["action"] == "start" and not result.get("nothing_to_restore"):
        mark_restored(state, aws)
    finish_succeeded(state, result, runs, locks)
    return {**result, "status": SUCCEEDED}
