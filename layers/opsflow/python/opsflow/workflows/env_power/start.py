"""Start: restore exactly the last stop's save in the reverse order, waiting until the databases are
available before anything that connects to them. What no longer exists is reported, not failed: there
is nothing left to restore."""

from __future__ import annotations

import time
from collections.abc import Callable

from opsflow.aws.batches import ResourceFailure, act_in_batches, act_on_each
from opsflow.aws.target import Target
from opsflow.errors import LockLost
from opsflow.store.capacity import ResourceKind, ResourceRef, SavedCapacity
from opsflow.workflows.env_power.inventory import DATABASE_READY, PowerAws, describe_counts
from opsflow.workflows.env_power.state import (
    DatabaseProgress,
    EnvPowerState,
    FailedResource,
    KindOutcome,
    LoadResult,
)
from opsflow.workflows.env_power.stop import INSTANCE_BATCH

NO_LONGER_TAGGED = "no longer exists or no longer carries the tags"


def load_save(state: EnvPowerState, aws: PowerAws) -> LoadResult:
    saved = aws.capacity.unrestored(state.save_key)
    if saved is None:
        latest = aws.capacity.latest(state.save_key)
        when = (
            f" (the last save, by run {latest.run_id}, was restored at {latest.restored_at})"
            if latest
            else ""
        )
        note = f"nothing to restore{when}"
        return LoadResult(nothing_to_restore=True, note=note, summary=note)
    return LoadResult(
        nothing_to_restore=False,
        saved_by=saved.run_id,
        saved_at=saved.saved_at,
        saved=saved.counts(),
        summary=f"restoring {describe_counts(saved.counts())} saved at {saved.saved_at} by run {saved.run_id}",
    )


def saved_for_start(state: EnvPowerState, aws: PowerAws) -> SavedCapacity:
    """The save this start-up restores. Read as the latest save, so a retried step (after the save was
    marked restored) still sees it; it must be the one the start-up loaded."""
    saved = aws.capacity.latest(state.save_key)
    if saved is None or state.load is None or saved.run_id != state.load.saved_by:
        raise LockLost(
            f"the save of environment {state.environment}{state.where_label} changed during this start-up; stopping"
        )
    return saved


def start_databases(
    state: EnvPowerState, aws: PowerAws, clock: Callable[[], float] = time.time
) -> DatabaseProgress:
    databases = list(saved_for_start(state, aws).databases)
    max_wait = state.settings.get("database_max_wait_seconds", 3600)
    return advance_databases(DatabaseProgress(waiting_for=databases, deadline=clock() + max_wait), aws, clock)


def databases_ready(
    state: EnvPowerState, aws: PowerAws, clock: Callable[[], float] = time.time
) -> DatabaseProgress:
    if not isinstance(state.databases, DatabaseProgress):
        raise ValueError("databases_ready follows start_databases, whose progress is not in the state")
    return advance_databases(state.databases, aws, clock)


def database_targets(state: EnvPowerState) -> list[Target]:
    """What a start-up waiting on its databases awaits: each one's RDS stopped or started event."""
    progress = state.databases
    keys = progress.waiting_for if isinstance(progress, DatabaseProgress) else []
    where = Target.from_key(state.target)
    return [
        where.beside(f"db-{kind}", identifier) for kind, identifier in (key.split(":", 1) for key in keys)
    ]


def databases_moved(state: EnvPowerState, aws: PowerAws) -> bool:
    """Whether there is something to do: a database stopped (it can be started now), or all available."""
    progress = state.databases
    if not isinstance(progress, DatabaseProgress):
        return True
    statuses = aws.rds.statuses(progress.waiting_for)
    return all(statuses.get(key) == DATABASE_READY for key in progress.waiting_for) or any(
        statuses.get(key) in ("stopped", None) for key in progress.waiting_for
    )


def advance_databases(
    progress: DatabaseProgress, aws: PowerAws, clock: Callable[[], float]
) -> DatabaseProgress:
    """Start every saved database that is stopped, and wait for all of them to be available. A database
    still stopping (a start-up soon after a shutdown) is started once it has stopped: AWS refuses
    StartDBInstance and StartDBCluster until then."""
    statuses = aws.rds.statuses(progress.waiting_for)
    missing = [key for key in progress.waiting_for if key not in statuses]
    stopped = [key for key in progress.waiting_for if statuses.get(key) == "stopped"]
    failures = act_on_each(stopped, lambda key: key, aws.rds.start)
    refused = {f.resource for f in failures}
    failed = [*progress.failed, *(_failed("database", f) for f in failures if not f.gone)]
    gone = [
        *progress.gone,
        *(ResourceRef("database", key) for key in missing),
        *(ResourceRef("database", f.resource) for f in failures if f.gone),
    ]
    waiting = [
        key
        for key in progress.waiting_for
        if key in statuses and key not in refused and statuses[key] != DATABASE_READY
    ]
    if waiting and clock() > progress.deadline:
        failed += [
            FailedResource(
                ref=ResourceRef("database", key), error=f"not available in time (still {statuses.get(key)})"
            )
            for key in waiting
        ]
        waiting = []
    started = progress.started + sum(1 for key in stopped if key not in refused)
    return DatabaseProgress(
        waiting_for=waiting,
        started=started,
        failed=failed,
        failed_count=len(failed),
        gone=gone,
        deadline=progress.deadline,
        ready=not waiting,
        waiting=bool(waiting),
        summary=f"started {started:,} databases; waiting for {len(waiting)} to be available"
        if waiting
        else f"started {started:,} databases; all available",
    )


def start_instances(state: EnvPowerState, aws: PowerAws, tags: dict[str, str]) -> KindOutcome:
    saved = list(saved_for_start(state, aws).instances)
    present = {i.instance_id: i.state for i in aws.ec2.find_instances(tags)}
    # Terminated, or no longer tagged for this environment and opted in: not Opsflow's to start.
    gone = [ResourceRef("instance", i) for i in saved if i not in present]
    stopping = [
        FailedResource(
            ref=ResourceRef("instance", i),
            error="still stopping; start the environment again once it has stopped",
        )
        for i in saved
        if present.get(i) == "stopping"
    ]
    to_start = [i for i in saved if present.get(i) == "stopped"]
    failures = act_in_batches(to_start, INSTANCE_BATCH, aws.ec2.start_instances)
    failed = [*stopping, *(_failed("instance", f) for f in failures if not f.gone)]
    gone += [ResourceRef("instance", f.resource) for f in failures if f.gone]
    return KindOutcome.counted(len(saved), failed, gone, "started", "instances")


def restore_groups(state: EnvPowerState, aws: PowerAws, tags: dict[str, str]) -> KindOutcome:
    saved = saved_for_start(state, aws).groups
    present = {g.name for g in aws.autoscaling.find_groups(tags)}
    failures = [ResourceFailure(g.name, NO_LONGER_TAGGED, gone=True) for g in saved if g.name not in present]
    failures += act_on_each(
        [g for g in saved if g.name in present],
        lambda g: g.name,
        lambda g: aws.autoscaling.set_capacity(
            g.name, min_size=g.min_size, desired=g.desired, max_size=g.max_size
        ),
    )
    return KindOutcome.of("group", len(saved), failures, "restored", "Auto Scaling groups")


def restore_services(state: EnvPowerState, aws: PowerAws) -> KindOutcome:
    services = saved_for_start(state, aws).services
    failures = act_on_each(
        services,
        lambda s: s.name,
        lambda s: aws.ecs.set_desired_count(s.cluster_arn, s.name, s.desired_count),
    )
    return KindOutcome.of("service", len(services), failures, "restored", "ECS services")


def _failed(kind: ResourceKind, failure: ResourceFailure) -> FailedResource:
    return FailedResource(ref=ResourceRef(kind, failure.resource), error=failure.error)
