"""ASG refresh's steps (`statemachines/asg_refresh.asl.json`): ordering, waiting and the rollback path
belong to the state machine."""

from __future__ import annotations

from typing import Any

from opsflow.errors import OpsflowError
from opsflow.runs.config import OptIn, StepsConfig
from opsflow.runs.steps import Step, StepRunner, acted_on, steps_runner
from opsflow.waits.awaiting import Await
from opsflow.workflows.asg_refresh import refresh
from opsflow.workflows.asg_refresh.preflight import guarded_spec
from opsflow.workflows.asg_refresh.refresh import InstanceRefreshProgress, RefreshAws
from opsflow.workflows.asg_refresh.results import run_error, run_result
from opsflow.workflows.asg_refresh.state import RefreshGuarded, RefreshRollback, RefreshState


def step_table(aws: RefreshAws, opt_in: OptIn) -> dict[str, Step | Await]:
    def guard(state: RefreshState) -> RefreshGuarded:
        _, spec = guarded_spec(state.request, aws, opt_in)
        return RefreshGuarded(
            spec=spec,
            summary=f"group {spec.group} on version {spec.previous_version}; "
            f"refreshing onto version {spec.target_version}",
        )

    def start_refresh(state: RefreshState) -> InstanceRefreshProgress:
        return refresh.start(state.spec, aws)

    def rollback(state: RefreshState) -> RefreshRollback:
        group = state.request.asg_name
        try:
            done = refresh.settle(state.refresh or (state.guard.spec if state.guard else None), aws)
        except OpsflowError as error:
            return RefreshRollback(
                problems=[f"stopping the instance refresh: {error}"],
                summary="could not stop the instance refresh",
            )
        return RefreshRollback(
            undone=[done] if done else [],
            group_now=refresh.group_now(group, aws),
            summary=done or "no instance refresh left running",
        )

    return {"guard": guard, "start_refresh": start_refresh, **refresh.watch_steps(aws), "rollback": rollback}


def build_runner(config: StepsConfig) -> StepRunner:
    def aws(state: Any) -> RefreshAws:
        return RefreshAws.at(acted_on(state), config.event_bus)

    return steps_runner(
        config,
        lambda state: step_table(aws(state), config.opt_in),
        lambda state: run_result(state, aws(state)),
        run_error,
        state_model=RefreshState,
    )
