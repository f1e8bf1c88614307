"""What passes between an ASG refresh's steps: the execution state, each step's result in its place."""

from __future__ import annotations

from opsflow.runs.rollback import RolledBack
from opsflow.runs.steps import CaughtError, RunState, StepResult
from opsflow.workflows.asg_refresh.refresh import InstanceRefreshProgress, RefreshSpec
from opsflow.workflows.asg_refresh.request import AsgRefreshRequest


class RefreshGuarded(StepResult):
    spec: RefreshSpec


class RefreshRollback(RolledBack):
    group_now: str | None = None


class RefreshState(RunState):
    request: AsgRefreshRequest  # type: ignore[assignment]  # the base holds any workflow's request
    guard: RefreshGuarded | None = None
    refresh: InstanceRefreshProgress | None = None
    rollback: RefreshRollback | None = None
    rollback_error: CaughtError | None = None

    @property
    def spec(self) -> RefreshSpec:
        if self.guard is None:
            raise ValueError(f"run {self.run_id} has no guarded refresh spec; the guard step comes first")
        return self.guard.spec
