"""Pre-flight: what a stop, a start or a re-stop of databases would do to each resource, read without
changing anything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opsflow.aws.target import Target
from opsflow.errors import OpsflowError, Refused
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
from opsflow.workflows.env_power.request import EnvPowerRequest, Place

# A plan is stored in the run record (a DynamoDB item holds 400 KB) and read by people: an environment
# of thousands of instances lists the first changes and counts the rest.
PLAN_LISTED = 200


def preflight(
    request: EnvPowerRequest, aws: PowerAws, opt_in: OptIn, environment_key: str, key: str | None = None
) -> dict[str, Any]:
    """The plan in one account and region; `key` is its save's (the environment's name in the hub's own)."""
    if request.action == "stop":
        return plan_stop(request.environment, aws, opt_in, environment_key, key)
    if request.action == "restop_databases":
        return plan_restop(request.environment, aws, key)
    return plan_start(request.environment, aws, key)


def save_key(place: Target) -> str:
    """The save of an environment in one account and region (see EnvPowerState.save_key)."""
    return place.key.removeprefix("env:")


def plan_everywhere(
    request: EnvPowerRequest, aws_at: Callable[[Target], PowerAws], opt_in: OptIn, environment_key: str
) -> dict[str, Any]:
    """The plan in each account and region. Of several, one that cannot be read (its spoke role missing, a
    refusal) is named and does not refuse the run: its stop or start fails on its own while the others go."""
    places = request.places()
    if len(places) == 1:
        return preflight(request, aws_at(places[0]), opt_in, environment_key, save_key(places[0]))
    plans = []
    for place in places:
        where = Place(account=place.account, region=place.region).shown()
        try:
            plans.append(
                {**where, **preflight(request, aws_at(place), opt_in, environment_key, save_key(place))}
            )
        except OpsflowError as error:
            plans.append({**where, "cannot_plan": f"{type(error).__name__}: {error}"})
    blocked = [p for p in plans if "cannot_plan" in p]
    summary = f"{request.action.replace('_', ' ').capitalize()} {request.environment} in {len(places)} account-regions"
    if blocked:
        summary += f"; {len(blocked)} cannot be read now and will be reported: " + "; ".join(
            f"{p['account']}/{p['region']}: {p['cannot_plan']}" for p in blocked
        )
    return {"action": request.action, "places": plans, "summary": summary + "."}


def plan_restop(environment: str, aws: PowerAws, key: str | None = None) -> dict[str, Any]:
    saved = aws.capacity.unrestored(key or environment)
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


def plan_stop(
    environment: str, aws: PowerAws, opt_in: OptIn, environment_key: str, key: str | None = None
) -> dict[str, Any]:
    saved = aws.capacity.unrestored(key or environment)
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


def plan_start(environment: str, aws: PowerAws, key: str | None = None) -> dict[str, Any]:
    saved = aws.capacity.unrestored(key or environment)
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
    return plan_everywhere(
        request,
        lambda place: PowerAws.at(config.capacity_table, place),
        config.opt_in,
        config.environment_tag_key,
    )
