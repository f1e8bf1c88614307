"""An ASG refresh's run result and error, as the run record and notifications read them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from opsflow.errors import OpsflowError
from opsflow.runs.rollback import RollbackAccount, RunFailure
from opsflow.runs.steps import describe_failure
from opsflow.workflows.asg_refresh.refresh import RefreshAws, RefreshResult, group_now
from opsflow.workflows.asg_refresh.state import RefreshState


class RunResult(BaseModel):
    summary: str
    refresh: RefreshResult
    group_now: str


class RunError(RunFailure):
    group_now: str | None
    refresh: RefreshResult


def run_result(state: RefreshState, aws: RefreshAws) -> dict[str, Any]:
    group = state.request.asg_name
    try:
        now = group_now(group, aws)
    except OpsflowError as error:  # a report, not a reason to fail a refresh that succeeded
        now = f"unknown ({error})"
    refresh = RefreshResult.of(state.refresh)
    return RunResult(
        summary=f"Every instance of {group} was replaced (launch template version "
        f"{refresh.previous_version} -> {refresh.version}); it now runs {now}.",
        refresh=refresh,
        group_now=now,
    ).model_dump(mode="json")


def run_error(state: RefreshState) -> dict[str, Any]:
    rollback = RollbackAccount.of(state.rollback, state.rollback_error)
    now = state.rollback.group_now if state.rollback and not state.rollback_error else None
    return RunError(
        step=state.failed_step or "unknown",
        error=state.error.error if state.error else "Error",
        message=describe_failure(state.error.model_dump(by_alias=True) if state.error else None),
        rollback=rollback,
        group_now=now,
        refresh=RefreshResult.of(state.refresh),
    ).model_dump(mode="json")
