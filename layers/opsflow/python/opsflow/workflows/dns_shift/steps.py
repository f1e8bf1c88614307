"""Weighted DNS cutover: shift a name's Route 53 weighted record sets to one set step by step.

Each step changes every set's weight in one batch, waits until Route 53 reports the change INSYNC (it sends
no event: the state machine reads it every few seconds), then holds the share for at least the record's TTL,
so that resolvers holding the old answers have let go of them before the share counts. Every step is gated
by the health checks (read every half minute while the share is held) and the alarms (whose state change
fails the hold at once); any failed gate puts the weights back as they were within the step (the traffic
engine's rule). An abort or a timeout puts them back too (`put_back`, from functions/run_ended)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from opsflow.runs.config import StepsConfig
from opsflow.runs.steps import Step, StepRunner, StepTable, acted_on, steps_runner
from opsflow.store.runs import RUNNING
from opsflow.traffic.engine import TrafficEngine
from opsflow.traffic.gates import AlarmsQuiet, Gate, HealthChecksPass
from opsflow.traffic.hold import alarm_hold
from opsflow.traffic.position import TrafficPosition
from opsflow.traffic.smoke import UrlSmokeTest
from opsflow.waits.awaiting import Await
from opsflow.workflows.dns_shift.deps import CutoverAws, Deps
from opsflow.workflows.dns_shift.errors import ChangeNotInSync
from opsflow.workflows.dns_shift.preflight import check_cutover
from opsflow.workflows.dns_shift.request import DnsShiftRequest
from opsflow.workflows.dns_shift.results import put_back, run_error, run_result
from opsflow.workflows.dns_shift.state import (
    HEALTH_POLL_SECONDS,
    SYNC_POLL_SECONDS,
    CutoverState,
    GuardResult,
    PutBack,
    SyncResult,
)


def traffic_engine(deps: Deps, state: CutoverState) -> TrafficEngine:
    spec = state.spec
    return TrafficEngine(
        deps.aws.shifter(spec),
        still_running=lambda: deps.still_running(state.run_id),
        # No event says a health check or a smoke URL fails: a hold is broken up to check them again.
        poll_seconds=HEALTH_POLL_SECONDS if spec.health_checks or spec.smoke_url else None,
    )


def publish(deps: Deps, state: CutoverState, kind: str, message: str, **detail: Any) -> list[str]:
    # Progress events feed notifications; losing one must never fail or roll back the cutover.
    try:
        deps.aws.events.progress(state.run_id, state.workflow, state.target, kind, message, **detail)
    except Exception as error:  # noqa: BLE001
        return [f"(progress event not sent: {error})"]
    return []


def guard(deps: Deps, state: CutoverState) -> GuardResult:
    request = DnsShiftRequest.model_validate(state.request, strict=False)
    spec = check_cutover(request, deps.aws, deps.opt_in)
    return GuardResult(
        spec=spec,
        summary=f"{spec.name.rstrip('.')} {spec.type}: {spec.describe_start()}; moving to {spec.green}",
    )


def shift(deps: Deps, state: CutoverState) -> TrafficPosition:
    """Move to the plan's next share (the last is the bake, at 100 %)."""
    spec = state.spec
    position = traffic_engine(deps, state).advance(
        state.traffic or TrafficPosition.before(spec.traffic, spec.bake_seconds)
    )
    name = spec.name.rstrip(".")
    message = (
        f"all of {name} on {spec.green}; holding {spec.bake_seconds} s"
        if position.baking
        else f"{position.weight}% of {name} on {spec.green} (step {position.index + 1} of {position.steps})"
    )
    milestones = [message, *publish(deps, state, "traffic", message, percent=position.weight)]
    return position.model_copy(update={"summary": message, "milestones": milestones})


def check_sync(deps: Deps, state: CutoverState) -> SyncResult:
    """Whether the last shift's change is INSYNC. Time is counted in the state machine's waits between
    calls, not read from a clock, so a deadline means the same in AWS and in a faster embedded run."""
    history = state.traffic.history if state.traffic else []
    change = history[-1].change if history else None
    if change is None:
        return SyncResult(in_sync=True, summary="no change to await")
    previous = state.sync if state.sync and state.sync.change == change else None
    waited = previous.waited + SYNC_POLL_SECONDS if previous else 0
    if deps.aws.route53.change_in_sync(change):
        return SyncResult(change=change, in_sync=True, waited=waited, summary=f"change {change} is INSYNC")
    if waited >= state.sync_max_wait_seconds:
        raise ChangeNotInSync(
            f"Route 53 change {change} was still PENDING after {waited} s; the weights are put back"
        )
    return SyncResult(change=change, waited=waited, waiting=True, summary=f"change {change} is PENDING")


def watch_gates(deps: Deps, state: CutoverState) -> list[Gate]:
    spec = state.spec
    checked = state.traffic.checked_at if state.traffic else None
    since = datetime.fromisoformat(checked) if checked else None
    gates: list[Gate] = []
    if spec.health_checks:
        gates.append(HealthChecksPass(deps.aws.route53, spec.health_checks))
    if spec.alarms:
        gates.append(AlarmsQuiet(deps.aws.cloudwatch, spec.alarms, since))
    if spec.smoke_url:
        gates.append(UrlSmokeTest(spec.smoke_url, float(spec.smoke_timeout_seconds), deps.aws.http_get))
    return gates


def watch(deps: Deps, state: CutoverState) -> TrafficPosition:
    if state.traffic is None:
        raise ValueError("the shift step has not run: there is no traffic to watch")
    position = traffic_engine(deps, state).watch(state.traffic, watch_gates(deps, state))
    left = position.remaining
    return position.model_copy(
        update={
            "waiting": position.holding,
            "summary": f"{position.weight}% on {state.spec.green}, gates passed"
            + (f"; {left} s to hold" if left else ""),
        }
    )


def rollback(deps: Deps, state: CutoverState) -> PutBack:
    if state.guard is None:
        return PutBack(summary="nothing had changed")
    done = put_back(deps.aws, state.spec)
    return done.model_copy(update={"put_back": done.summary})


def step_table(deps: Deps) -> dict[str, Step | Await]:
    steps = (guard, shift, check_sync, watch, rollback)
    return {
        **{step.__name__: partial(step, deps) for step in steps},
        "hold": alarm_hold(deps.aws.cloudwatch, lambda state: state.spec.alarms),
    }


def build_runner(config: StepsConfig) -> StepRunner:
    runs = config.run_store()

    def still_running(run_id: str) -> bool:
        run = runs.get(run_id)
        return run is not None and run.status == RUNNING

    def table(state: Mapping[str, Any]) -> StepTable:
        aws = CutoverAws.at(acted_on(state), config.event_bus)
        return step_table(Deps(aws, config.opt_in, still_running))

    return steps_runner(config, table, run_result, run_error, state_model=CutoverState)
