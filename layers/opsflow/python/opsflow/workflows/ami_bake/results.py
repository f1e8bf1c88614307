"""An AMI bake's run result and error, as the run record, notifications and CodePipeline read them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from opsflow.runs.rollback import RollbackAccount, RunFailure
from opsflow.runs.steps import describe_failure
from opsflow.workflows.ami_bake.state import (
    BakeState,
    DeviceSnapshot,
    Distributed,
    Pruned,
    PublishedConfiguration,
    PublishedVersion,
)
from opsflow.workflows.asg_refresh.refresh import RefreshResult


class GroupChange(BaseModel):
    name: str
    before: str
    after: str | None


class BakeResult(BaseModel):
    summary: str
    image_id: str | None
    image_name: str | None
    snapshots: list[DeviceSnapshot]
    published: PublishedVersion | PublishedConfiguration | dict[str, Any]
    group: GroupChange
    pruned: Pruned | None
    refresh: RefreshResult | None
    distribution: Distributed | None = None
    warnings: list[str]


class BakeError(RunFailure):
    group_unchanged: bool


def run_result(state: BakeState) -> dict[str, Any]:
    image = state.image
    group = state.request.asg_name
    after = state.publish.describe() if state.publish else None
    summary = f"Baked {image.image_id if image else None} for {group}" + (
        f"; the group now uses {after}" if after else ""
    )
    if state.refresh:
        summary += ", rolled out to every instance by an instance refresh"
    if state.distribution and state.distribution.copies:
        summary += f"; copied into {', '.join(c.region for c in state.distribution.copies)}"
    warnings = []
    if state.prune_error:
        warnings.append(f"pruning old images failed: {state.prune_error.describe()}")
    return BakeResult(
        summary=summary + ".",
        image_id=image.image_id if image else None,
        image_name=image.name if image else None,
        snapshots=image.snapshots if image else [],
        published=state.publish or {},
        group=GroupChange(
            name=group, before=state.guard.source.describe() if state.guard else "unknown", after=after
        ),
        pruned=state.prune,
        refresh=RefreshResult.of(state.refresh) if state.refresh else None,
        distribution=state.distribution,
        warnings=warnings,
    ).model_dump(mode="json")


def run_error(state: BakeState) -> dict[str, Any]:
    rollback = RollbackAccount.of(state.rollback, state.rollback_error)
    return BakeError(
        step=state.failed_step or "unknown",
        error=state.error.error if state.error else "Error",
        message=describe_failure(state.error.model_dump(by_alias=True) if state.error else None),
        rollback=rollback,
        group_unchanged=not rollback.problems,
    ).model_dump(mode="json")
