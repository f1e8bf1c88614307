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
from dataclasses import dataclass, replace
from typing import Any

from opsflow.aws import clients
from opsflow.aws.autoscaling import AutoScaling, Group
from opsflow.aws.batches import ResourceFailure, act_in_batches, act_on_each
from opsflow.aws.ec2 import Ec2, Instance
from opsflow.aws.ecs import Ecs, Service
from opsflow.aws.rds import Database, Rds
from opsflow.errors import LockLost, Refused
from opsflow.runs.config import OptIn, StepsConfig
from opsflow.runs.steps import StepRunner, describe_failure, finish_failed, finish_succeeded, steps_runner
from opsflow.store.capacity import (
    SAVED,
    UNFINISHED_STOP,
    AlreadySaved,
    CapacityStore,
    DynamoCapacityStore,
    GroupCapacity,
    SavedCapacity,
    ServiceCapacity,
)
from opsflow.store.locks import LockStore
from opsflow.store.runs import FAILED, SUCCEEDED, RunStore
from opsflow.workflows.env_power.request import EnvPowerRequest

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
MAX_LISTED_FAILURES = 50
PLAN_LISTED = 200


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
                if g.min_size or g.desired_capacity or g.max_size
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
    # A database the shutdown could not stop was never down: stopping it "again" would fail every day.
    candidates = [key for key in saved.databases if key not in saved.not_stopped]
    statuses = aws.rds.statuses(candidates)
    return [key for key in candidates if statuses.get(key) == DATABASE_READY]


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
                "after": "min 0 / desired 0 / max 0",
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
        **_listed("changes", changes),
        **_listed("left_alone", left),
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
        **_listed("changes", changes),
        "summary": f"Start {environment}: restore {_describe_counts(saved.counts())} as saved at {saved.saved_at}.",
    }


def _listed(name: str, items: list[Any]) -> dict[str, Any]:
    """A plan is stored in the run record (a DynamoDB item holds 400 KB) and read by people: an
    environment of thousands of instances lists the first changes and counts the rest."""
    listed: dict[str, Any] = {name: items[:PLAN_LISTED]}
    if len(items) > PLAN_LISTED:
        listed[f"{name}_not_listed"] = len(items) - PLAN_LISTED
    return listed


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
    """The save this run wrote (or resumes): a stop acts only on that."""
    saved = aws.capacity.unrestored(_environment(state))
    if saved is None or saved.run_id != state["save"]["save_run_id"]:
        raise LockLost(
            f"the save of environment {_environment(state)} is no longer this run's; stopping rather than act on it"
        )
    return saved


def _outcome(
    changed: int, failures: list[ResourceFailure], gone: list[ResourceFailure], verb: str, kind: str
) -> dict[str, Any]:
    failed = len(failures)
    done = changed - failed - len(gone)
    summary = f"{done:,} of {changed:,} {kind} {verb}"
    if failures:
        summary += f"; {failed} failed: " + "; ".join(f"{f.resource}: {f.error}" for f in failures[:3])
    if gone:
        summary += f"; {len(gone)} no longer exist"
    return {
        "changed": done,
        # The state and the run record have size limits; a mass failure is counted, its first ones listed.
        "failed": [f.as_dict() for f in failures[:MAX_LISTED_FAILURES]],
        "failed_count": failed,
        "gone": [f.resource for f in gone[:MAX_LISTED_FAILURES]],
        "summary": summary,
    }


def _split_gone(failures: list[ResourceFailure]) -> tuple[list[ResourceFailure], list[ResourceFailure]]:
    """Failures because the resource no longer exists (deleted while the environment was down) are not
    failures of the start-up: there is nothing left to restore."""
    gone = [f for f in failures if f.gone]
    return [f for f in failures if not f.gone], gone


def save_capacity(
    state: Mapping[str, Any],
    aws: PowerAws,
    opt_in: OptIn,
    environment_key: str,
    run_status: Callable[[str], str | None],
) -> dict[str, Any]:
    environment = _environment(state)
    inventory = find_environment(environment, aws, opt_in, environment_key)
    save = inventory.to_save(environment, state["run_id"])
    previous = aws.capacity.latest(environment)
    carried: list[str] = []
    if previous is not None and previous.status != SAVED and previous.not_restored:
        save, carried = carry_forward(save, previous, inventory)
    try:
        aws.capacity.save(save)
    except AlreadySaved as exists:
        saved = exists.existing
        if saved.run_id == state["run_id"]:
            # A retried step: the save went through the first time.
            return {
                "already_down": False,
                "save_run_id": saved.run_id,
                "saved": saved.counts(),
                "summary": "saved",
            }
        if run_status(saved.run_id) in UNFINISHED_STOP:
            # The stop that saved did not finish (aborted, timed out, or it failed): finish its work
            # from its own save, which is what ran before anything was stopped.
            return {
                "already_down": False,
                "save_run_id": saved.run_id,
                "resumed": saved.run_id,
                "saved": saved.counts(),
                "summary": f"resuming the stop of run {saved.run_id}, which did not finish, from its save",
            }
        return {
            "already_down": True,
            "since": saved.saved_at,
            "saved_by": saved.run_id,
            "summary": f"already down since {saved.saved_at} (run {saved.run_id}): "
            "nothing changed, the first save is kept",
        }
    summary = f"saved {_describe_counts(save.counts())} before stopping them"
    if carried:
        summary += f"; {len(carried)} the last start-up could not restore keep their earlier capacity"
    return {
        "already_down": False,
        "save_run_id": save.run_id,
        "saved": save.counts(),
        "carried_forward": carried[:LISTED],
        "summary": summary,
    }


def carry_forward(
    save: SavedCapacity, previous: SavedCapacity, inventory: Inventory
) -> tuple[SavedCapacity, list[str]]:
    """Resources the last start-up could not restore are saved as the previous save had them: what they
    are now (scaled to 0, stopped) is what the failure left, not what the team runs."""
    pending = set(previous.not_restored)
    present_services = {s.name for s in inventory.services}
    present_groups = {g.name for g in inventory.groups}
    present_instances = {i.instance_id for i in inventory.instances}
    present_databases = {d.key for d in inventory.databases}
    services = [
        *(s for s in save.services if service_label(s) not in pending),
        *(s for s in previous.services if service_label(s) in pending and s.name in present_services),
    ]
    groups = [
        *(g for g in save.groups if group_label(g) not in pending),
        *(g for g in previous.groups if group_label(g) in pending and g.name in present_groups),
    ]
    instances = [
        *save.instances,
        *(
            i
            for i in previous.instances
            if f"instance {i}" in pending and i in present_instances and i not in save.instances
        ),
    ]
    databases = [
        *save.databases,
        *(
            d
            for d in previous.databases
            if f"database {d}" in pending and d in present_databases and d not in save.databases
        ),
    ]
    carried = sorted(
        pending
        & {
            *(service_label(s) for s in services),
            *(group_label(g) for g in groups),
            *(f"instance {i}" for i in instances),
            *(f"database {d}" for d in databases),
        }
    )
    updated = replace(
        save,
        services=tuple(services),
        groups=tuple(groups),
        instances=tuple(instances),
        databases=tuple(databases),
    )
    return updated, carried


def service_label(service: ServiceCapacity) -> str:
    return f"ecs service {service.name}"


def group_label(group: GroupCapacity) -> str:
    return f"auto scaling group {group.name}"


def stop_services(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    services = _own_save(state, aws).services
    failures = act_on_each(
        services, service_label, lambda s: aws.ecs.set_desired_count(s.cluster_arn, s.name, 0)
    )
    return _outcome(len(services), *_split_gone(failures), "scaled to 0", "ECS services")


def stop_groups(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    groups = _own_save(state, aws).groups
    # Max to 0 as well: scaling policies, a warm pool (it keeps max - desired instances) or predictive
    # scaling would otherwise launch instances again during the night.
    failures = act_on_each(
        groups, group_label, lambda g: aws.autoscaling.set_capacity(g.name, min_size=0, desired=0, max_size=0)
    )
    return _outcome(len(groups), *_split_gone(failures), "scaled to 0", "Auto Scaling groups")


def stop_instances(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    instances = list(_own_save(state, aws).instances)
    failures = act_in_batches(instances, INSTANCE_BATCH, aws.ec2.stop_instances)
    return _outcome(len(instances), *_split_gone(_named(failures, "instance")), "stopped", "instances")


def stop_databases(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    databases = list(_own_save(state, aws).databases)
    failures = act_on_each(databases, lambda key: f"database {key}", aws.rds.stop)
    return _outcome(len(databases), *_split_gone(failures), "stopped", "databases")


def restop_databases(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    saved = aws.capacity.unrestored(_environment(state))
    if saved is None:
        return {"changed": 0, "failed": [], "summary": "the environment is no longer down; nothing to stop"}
    up = databases_up_again(saved, aws)
    failures = act_on_each(up, lambda key: f"database {key}", aws.rds.stop)
    return _outcome(len(up), *_split_gone(failures), "stopped again", "databases")


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
    """The save this start-up restores. Read as the latest save, so a retried finish (after the save was
    marked restored) still sees it; it must be the one the start-up loaded."""
    saved = aws.capacity.latest(_environment(state))
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
    progress = {
        "waiting_for": databases,
        "started": 0,
        "failed": [],
        "gone": [],
        "deadline": clock() + max_wait,
    }
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
    missing = [f"database {key}" for key in waiting if key not in statuses]
    stopped = [key for key in waiting if statuses.get(key) == "stopped"]
    failures, gone = _split_gone(act_on_each(stopped, lambda key: f"database {key}", aws.rds.start))
    failed = {f.resource for f in failures + gone}
    waiting = [
        key
        for key in waiting
        if key in statuses and f"database {key}" not in failed and statuses[key] != DATABASE_READY
    ]
    failed_list = list(progress["failed"]) + [f.as_dict() for f in failures]
    gone_list = list(progress.get("gone", [])) + missing + [f.resource for f in gone]
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
        "failed_count": len(failed_list),
        "gone": gone_list,
        "waiting": bool(waiting),
        "summary": f"started {started:,} databases; waiting for {len(waiting)} to be available"
        if waiting
        else f"started {started:,} databases; all available",
    }


def start_instances(state: Mapping[str, Any], aws: PowerAws, tags: dict[str, str]) -> dict[str, Any]:
    saved = list(_saved_for_start(state, aws).instances)
    present = {i.instance_id: i.state for i in aws.ec2.find_instances(tags)}
    # Terminated, or no longer tagged for this environment and opted in: not Opsflow's to start.
    gone = [
        ResourceFailure(f"instance {i}", "no longer exists or no longer carries the tags", True)
        for i in saved
        if i not in present
    ]
    stopping = [
        ResourceFailure(f"instance {i}", "still stopping; start the environment again once it has stopped")
        for i in saved
        if present.get(i) == "stopping"
    ]
    to_start = [i for i in saved if present.get(i) == "stopped"]
    failures = _named(act_in_batches(to_start, INSTANCE_BATCH, aws.ec2.start_instances), "instance")
    not_gone, also_gone = _split_gone(failures)
    return _outcome(len(saved), stopping + not_gone, gone + also_gone, "started", "instances")


def restore_groups(state: Mapping[str, Any], aws: PowerAws, tags: dict[str, str]) -> dict[str, Any]:
    saved = _saved_for_start(state, aws).groups
    present = {g.name for g in aws.autoscaling.find_groups(tags)}
    gone = [
        ResourceFailure(group_label(g), "no longer exists or no longer carries the tags", True)
        for g in saved
        if g.name not in present
    ]
    failures = act_on_each(
        [g for g in saved if g.name in present],
        group_label,
        lambda g: aws.autoscaling.set_capacity(
            g.name, min_size=g.min_size, desired=g.desired, max_size=g.max_size
        ),
    )
    not_gone, also_gone = _split_gone(failures)
    return _outcome(len(saved), not_gone, gone + also_gone, "restored", "Auto Scaling groups")


def restore_services(state: Mapping[str, Any], aws: PowerAws) -> dict[str, Any]:
    services = _saved_for_start(state, aws).services
    failures = act_on_each(
        services, service_label, lambda s: aws.ecs.set_desired_count(s.cluster_arn, s.name, s.desired_count)
    )
    return _outcome(len(services), *_split_gone(failures), "restored", "ECS services")


def _named(failures: list[ResourceFailure], kind: str) -> list[ResourceFailure]:
    return [ResourceFailure(f"{kind} {f.resource}", f.error, f.gone) for f in failures]


# Finish -------------------------------------------------------------------------------------------

STOP_STEPS = ("services", "groups", "instances", "databases")
AFTER_FAILURE = {
    "stop": "The saved capacity is kept, so the next start-up restores everything this stop changed; "
    "stop the failed resources by hand if they must not run tonight.",
    "start": "What failed is kept in the save: the next shutdown keeps its earlier capacity, and the next "
    "start-up restores it. Fix the cause, or restore it by hand now.",
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
            "failed_count": 0,
            "gone": [],
        }
    if action == "start" and state.get("load", {}).get("nothing_to_restore"):
        return {
            "environment": environment,
            "action": action,
            "nothing_to_restore": True,
            "summary": f"{environment}: {state['load']['note']}; nothing changed.",
            "failed": [],
            "failed_count": 0,
            "gone": [],
        }
    kinds = {"stop": STOP_STEPS, "start": START_STEPS, "restop_databases": ("databases",)}[action]
    outcome = {kind: _kind_outcome(kind, state.get(kind)) for kind in kinds}
    failed = [f for kind in kinds for f in outcome[kind].get("failed", [])]
    failed_count = sum(
        int(outcome[kind].get("failed_count", len(outcome[kind].get("failed", [])))) for kind in kinds
    )
    gone = [g for kind in kinds for g in outcome[kind].get("gone", [])]
    changed = {kind: int(outcome[kind].get("changed", outcome[kind].get("started", 0))) for kind in kinds}
    verb = {"stop": "Stopped", "start": "Started", "restop_databases": "Stopped again"}[action]
    summary = f"{verb} {environment}: {_describe_counts(changed)}."
    if gone:
        summary += (
            f" {len(gone)} saved resource(s) no longer exist or no longer carry the tags: "
            + ", ".join(gone[:LISTED])
            + "."
        )
    if failed_count:
        summary += (
            f" {failed_count} resource{'s' if failed_count != 1 else ''} failed: "
            + "; ".join(f"{f['resource']}: {f['error']}" for f in failed[:LISTED])
            + " "
            + AFTER_FAILURE[action]
        )
    result: dict[str, Any] = {
        "environment": environment,
        "action": action,
        "outcome": outcome,
        "failed": failed,
        "failed_count": failed_count,
        "gone": gone,
        "summary": summary,
    }
    if action == "stop":
        result["saved"] = state.get("save", {}).get("saved", {})
        if state.get("save", {}).get("resumed"):
            result["resumed"] = state["save"]["resumed"]
    elif action == "start":
        result["restored_from"] = {"run_id": state["load"]["saved_by"], "saved_at": state["load"]["saved_at"]}
    return result


def _kind_outcome(kind: str, result: Mapping[str, Any] | None) -> dict[str, Any]:
    """A step's outcome; a step that failed as a whole (its Catch put the error here) failed for all."""
    if not result:
        return {"changed": 0, "failed": [], "failed_count": 0, "gone": []}
    if "Error" in result:
        error = {
            "resource": f"every {KIND_NAMES[kind]} (the step failed)",
            "error": describe_failure(dict(result)),
        }
        return {"changed": 0, "failed": [error], "failed_count": 1, "gone": [], "step_failed": True}
    return _without_summary(result)


KIND_NAMES = {
    "services": "ECS service",
    "groups": "Auto Scaling group",
    "instances": "instance",
    "databases": "database",
}


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
    aws: PowerAws, opt_in: OptIn, environment_key: str, run_status: Callable[[str], str | None]
) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    def tags(state: Mapping[str, Any]) -> dict[str, str]:
        return {environment_key: _environment(state), opt_in.key: opt_in.value}

    return {
        "save": lambda state: save_capacity(state, aws, opt_in, environment_key, run_status),
        "stop_services": lambda state: stop_services(state, aws),
        "stop_groups": lambda state: stop_groups(state, aws),
        "stop_instances": lambda state: stop_instances(state, aws),
        "stop_databases": lambda state: stop_databases(state, aws),
        "restop_databases": lambda state: restop_databases(state, aws),
        "load_save": lambda state: load_save(state, aws),
        "start_databases": lambda state: start_databases(state, aws),
        "databases_ready": lambda state: databases_ready(state, aws),
        "start_instances": lambda state: start_instances(state, aws, tags(state)),
        "restore_groups": lambda state: restore_groups(state, aws, tags(state)),
        "restore_services": lambda state: restore_services(state, aws),
    }


def finish_run(state: Mapping[str, Any], aws: PowerAws, runs: RunStore, locks: LockStore) -> dict[str, Any]:
    """Record the outcome. A stop keeps its save whatever happened, noting the databases it could not
    stop. A start-up marks the save restored once it has been through every step, listing what it could
    not restore: the next shutdown saves those as this save had them, so their capacity is never lost,
    and the nightly stops go on (a save left unrestored would make every night look "already down")."""
    result = run_outcome(state)
    action = result["action"]
    environment = _environment(state)
    if action == "stop" and not result.get("already_down"):
        not_stopped = tuple(
            f["resource"].removeprefix("database ") for f in result["outcome"]["databases"].get("failed", [])
        )
        if not_stopped:
            aws.capacity.note_not_stopped(environment, state["save"]["save_run_id"], not_stopped)
    if action == "start" and not result.get("nothing_to_restore"):
        not_restored = _not_restored(result, _saved_for_start(state, aws))
        aws.capacity.mark_restored(environment, state["load"]["saved_by"], state["run_id"], not_restored)
        if not_restored:
            result["not_restored"] = list(not_restored[:MAX_LISTED_FAILURES])
    if result["failed_count"]:
        steps = [
            f"{_STEP_PREFIX[action]}_{kind}"
            for kind, o in result["outcome"].items()
            if o.get("failed_count") or o.get("failed")
        ]
        error = {
            "step": ", ".join(steps),
            "message": result["summary"],
            "next_step": AFTER_FAILURE[action],
            "outcome": result.get("outcome", {}),
            "failed": result["failed"],
            "gone": result["gone"],
            "rollback": {"undone": [], "problems": []},
        }
        finish_failed(state, error, runs, locks)
        return {**result, "status": FAILED}
    finish_succeeded(state, result, runs, locks)
    return {**result, "status": SUCCEEDED}


def _not_restored(result: Mapping[str, Any], saved: SavedCapacity) -> tuple[str, ...]:
    labels = {
        "services": [service_label(s) for s in saved.services],
        "groups": [group_label(g) for g in saved.groups],
        "instances": [f"instance {i}" for i in saved.instances],
        "databases": [f"database {d}" for d in saved.databases],
    }
    pending: list[str] = []
    for kind, outcome in result["outcome"].items():
        listed = [f["resource"] for f in outcome.get("failed", [])]
        if outcome.get("step_failed") or int(outcome.get("failed_count", 0)) > len(listed):
            pending.extend(labels[kind])  # not every failure is listed: count them all as not restored
        else:
            pending.extend(listed)
    return tuple(dict.fromkeys(pending))


def build_runner(config: StepsConfig) -> StepRunner:
    aws = PowerAws.from_default_clients(config.capacity_table)
    runs = config.run_store()

    def run_status(run_id: str) -> str | None:
        run = runs.get(run_id)
        return run.status if run else None

    return steps_runner(
        config,
        step_table(aws, config.opt_in, config.environment_tag_key, run_status),
        run_outcome,
        run_error,
        finish=lambda state, runs, locks: finish_run(state, aws, runs, locks),
    )
