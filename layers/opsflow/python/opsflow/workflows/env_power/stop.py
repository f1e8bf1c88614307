"""Stop: save what runs before anything changes (`opsflow.store.capacity`), then stop in the order that
keeps dependants from failing noisily: ECS services, groups, instances, databases. One resource that
refuses does not stop the others; the save is kept whatever happens, so the next start-up restores
everything that was stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from opsflow.aws.batches import act_in_batches, act_on_each
from opsflow.errors import LockLost
from opsflow.runs.config import OptIn
from opsflow.store.capacity import SAVED, UNFINISHED_STOP, AlreadySaved, ResourceRef, SavedCapacity
from opsflow.workflows.env_power.inventory import (
    Inventory,
    PowerAws,
    databases_up_again,
    describe_counts,
    find_environment,
)
from opsflow.workflows.env_power.state import EnvPowerState, KindOutcome, SaveResult

# EC2 takes a list of instances; a thousand per call keeps each request well inside its limits.
INSTANCE_BATCH = 1000
LISTED = 25


def save_capacity(
    state: EnvPowerState,
    aws: PowerAws,
    opt_in: OptIn,
    environment_key: str,
    run_status: Callable[[str], str | None],
) -> SaveResult:
    inventory = find_environment(state.environment, aws, opt_in, environment_key)
    save = inventory.to_save(state.save_key, state.run_id)
    previous = aws.capacity.latest(state.save_key)
    carried: list[ResourceRef] = []
    if previous is not None and previous.status != SAVED and previous.not_restored:
        save, carried = carry_forward(save, previous, inventory)
    try:
        aws.capacity.save(save)
    except AlreadySaved as exists:
        saved = exists.existing
        if saved.run_id == state.run_id:
            # A retried step: the save went through the first time.
            return SaveResult(
                already_down=False, save_run_id=saved.run_id, saved=saved.counts(), summary="saved"
            )
        if run_status(saved.run_id) in UNFINISHED_STOP:
            # The stop that saved did not finish (aborted, timed out, or it failed): finish its work
            # from its own save, which is what ran before anything was stopped.
            return SaveResult(
                already_down=False,
                save_run_id=saved.run_id,
                resumed=saved.run_id,
                saved=saved.counts(),
                summary=f"resuming the stop of run {saved.run_id}, which did not finish, from its save",
            )
        return SaveResult(
            already_down=True,
            since=saved.saved_at,
            saved_by=saved.run_id,
            summary=f"already down since {saved.saved_at} (run {saved.run_id}): "
            "nothing changed, the first save is kept",
        )
    summary = f"saved {describe_counts(save.counts())} before stopping them"
    if carried:
        summary += f"; {len(carried)} the last start-up could not restore keep their earlier capacity"
    return SaveResult(
        already_down=False,
        save_run_id=save.run_id,
        saved=save.counts(),
        carried_forward=carried[:LISTED],
        summary=summary,
    )


def carry_forward(
    save: SavedCapacity, previous: SavedCapacity, inventory: Inventory
) -> tuple[SavedCapacity, list[ResourceRef]]:
    """Resources the last start-up could not restore are saved as the previous save had them: what they
    are now (scaled to 0, stopped) is what the failure left, not what the team runs."""
    pending = set(previous.not_restored)
    # Carried only if it still exists: a deleted resource has nothing left to restore.
    carried = pending & inventory.refs()
    services = [
        *(s for s in save.services if s.ref not in pending),
        *(s for s in previous.services if s.ref in carried),
    ]
    groups = [
        *(g for g in save.groups if g.ref not in pending),
        *(g for g in previous.groups if g.ref in carried),
    ]
    instances = [
        *save.instances,
        *(i for i in previous.instances if ResourceRef("instance", i) in carried and i not in save.instances),
    ]
    databases = [
        *save.databases,
        *(d for d in previous.databases if ResourceRef("database", d) in carried and d not in save.databases),
    ]
    kept = {
        *(s.ref for s in services),
        *(g.ref for g in groups),
        *(ResourceRef("instance", i) for i in instances),
        *(ResourceRef("database", d) for d in databases),
    }
    updated = replace(
        save,
        services=tuple(services),
        groups=tuple(groups),
        instances=tuple(instances),
        databases=tuple(databases),
    )
    return updated, sorted(pending & kept)


def own_save(state: EnvPowerState, aws: PowerAws) -> SavedCapacity:
    """The save this run wrote (or resumes): a stop acts only on that."""
    saved = aws.capacity.unrestored(state.save_key)
    if saved is None or state.save is None or saved.run_id != state.save.save_run_id:
        raise LockLost(
            f"the save of environment {state.environment}{state.where_label} is no longer this run's; stopping "
            "rather than act on it"
        )
    return saved


def stop_services(state: EnvPowerState, aws: PowerAws) -> KindOutcome:
    services = own_save(state, aws).services
    failures = act_on_each(
        services, lambda s: s.name, lambda s: aws.ecs.set_desired_count(s.cluster_arn, s.name, 0)
    )
    return KindOutcome.of("service", len(services), failures, "scaled to 0", "ECS services")


def stop_groups(state: EnvPowerState, aws: PowerAws) -> KindOutcome:
    groups = own_save(state, aws).groups
    # Max to 0 as well: scaling policies, a warm pool (it keeps max - desired instances) or predictive
    # scaling would otherwise launch instances again during the night.
    failures = act_on_each(
        groups,
        lambda g: g.name,
        lambda g: aws.autoscaling.set_capacity(g.name, min_size=0, desired=0, max_size=0),
    )
    return KindOutcome.of("group", len(groups), failures, "scaled to 0", "Auto Scaling groups")


def stop_instances(state: EnvPowerState, aws: PowerAws) -> KindOutcome:
    instances = list(own_save(state, aws).instances)
    failures = act_in_batches(instances, INSTANCE_BATCH, aws.ec2.stop_instances)
    return KindOutcome.of("instance", len(instances), failures, "stopped", "instances")


def stop_databases(state: EnvPowerState, aws: PowerAws) -> KindOutcome:
    databases = list(own_save(state, aws).databases)
    failures = act_on_each(databases, lambda key: key, aws.rds.stop)
    return KindOutcome.of("database", len(databases), failures, "stopped", "databases")


def restop_databases(state: EnvPowerState, aws: PowerAws) -> KindOutcome:
    saved = aws.capacity.unrestored(state.save_key)
    if saved is None:
        return KindOutcome(summary="the environment is no longer down; nothing to stop")
    up = databases_up_again(saved, aws)
    failures = act_on_each(up, lambda key: key, aws.rds.stop)
    return KindOutcome.of("database", len(up), failures, "stopped again", "databases")
