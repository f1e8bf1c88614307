"""Pre-flight: what a stop, a start or a re-stop of databases would do to each resource, read without
changing anything."""

from __future__ import annotations

from typing import Any

from opsflow.errors import Refused
from opsflow.runs.config import OptIn, StarterConfig
from opsflow.store.capacity import ResourceRef, SavedCapacity
from opsflow.workflows.env_power.inventory import (
    DATABASE_NOT_UP,
    INSTANCE_UP,
    Inventory,
    PowerAws,
    databases_up_again,
    describe_counts,
    find_environment,
)
from opsflow.workflows.env_power.request import EnvPowerRequest

# A plan is stored in the run record (a DynamoDB item holds 400 KB) and read by people: an environment
# of thousands of instances lists the first changes and counts the rest.
PLAN_LISTED = 200


def preflight(request: EnvPowerRequest, aws: PowerAws, opt_in: OptIn, environment_key: str) -> dict[str, Any]:
    if request.action == "stop":
        return plan_stop(request.environment, aws, opt_in, environment_key)
    if request.action == "restop_databases":
        return plan_restop(request.environment, aws)
    return plan_start(request.environment, aws)


def plan_restop(environment: str, aws: PowerAws) -> dict[str, Any]:
    saved = aws.capacity.unrestored(environment)
    if saved is None:
        raise Refused(f"environment {environment} is not down, so none of its databases needs stopping again")
    up = databases_up_again(saved, aws)
    return {
        "action": "restop_databases",
        "changes": [_change(ResourceRef("database", key), "stopped", now="available") for key in up],
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
    if inventory.is_empty():
        raise Refused(
            f"no resource carries both {environment_key}={environment} and {opt_in.describe()}; tag the "
            "environment's services, groups, instances and databases with both to let Opsflow stop them"
        )
    save = inventory.to_save(environment, "plan")
    changes = [
        *(_change(s.ref, "desired 0", now=f"desired {s.desired_count}") for s in save.services),
        *(
            _change(
                g.ref,
                "min 0 / desired 0 / max 0",
                now=f"min {g.min_size} / desired {g.desired} / max {g.max_size}",
            )
            for g in save.groups
        ),
        *(_change(ResourceRef("instance", i), "stopped", now="running") for i in save.instances),
        *(_change(ResourceRef("database", d), "stopped", now="available") for d in save.databases),
    ]
    left = _left_alone(inventory, save)
    return {
        "action": "stop",
        "will_save": save.counts(),
        **_listed("changes", changes),
        **_listed("left_alone", left),
        "summary": f"Stop {environment}: {describe_counts(save.counts())}; save their capacity first."
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
        *(_change(ResourceRef("database", d), "available") for d in saved.databases),
        *(_change(ResourceRef("instance", i), "running") for i in saved.instances),
        *(_change(g.ref, f"min {g.min_size} / desired {g.desired} / max {g.max_size}") for g in saved.groups),
        *(_change(s.ref, f"desired {s.desired_count}") for s in saved.services),
    ]
    return {
        "action": "start",
        "saved_by": saved.run_id,
        "saved_at": saved.saved_at,
        **_listed("changes", changes),
        "summary": f"Start {environment}: restore {describe_counts(saved.counts())} as saved at {saved.saved_at}.",
    }


def _change(ref: ResourceRef, after: str, now: str | None = None) -> dict[str, str]:
    change = {"resource": ref.describe()}
    if now is not None:
        change["now"] = now
    return {**change, "after": after}


def _listed(name: str, items: list[Any]) -> dict[str, Any]:
    listed: dict[str, Any] = {name: items[:PLAN_LISTED]}
    if len(items) > PLAN_LISTED:
        listed[f"{name}_not_listed"] = len(items) - PLAN_LISTED
    return listed


def _left_alone(inventory: Inventory, save: SavedCapacity) -> list[str]:
    saved_services = {s.name for s in save.services}
    saved_groups = {g.name for g in save.groups}
    return [
        *(
            f"{ResourceRef('service', s.name).describe()} (desired 0)"
            for s in inventory.services
            if s.name not in saved_services
        ),
        *(
            f"{ResourceRef('group', g.name).describe()} (0 instances)"
            for g in inventory.groups
            if g.name not in saved_groups
        ),
        *(
            f"{ResourceRef('instance', i.instance_id).describe()} ({i.state})"
            for i in inventory.instances
            if i.state not in INSTANCE_UP
        ),
        *(
            f"{ResourceRef('database', d.key).describe()} ({d.status})"
            for d in inventory.databases
            if d.status in DATABASE_NOT_UP
        ),
    ]


def preflight_run(request: EnvPowerRequest, config: StarterConfig) -> dict[str, Any]:
    """The pre-flight the starter runs, with the AWS it reads."""
    aws = PowerAws.at(config.capacity_table, request.target())
    return preflight(request, aws, config.opt_in, config.environment_tag_key)
