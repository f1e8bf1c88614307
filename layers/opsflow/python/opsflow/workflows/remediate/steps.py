"""Remediate: check the resource still needs it, act, and watch until the action helped or its time ran
out; the rule's guard record learns the outcome on every ending, so its cooldown and breaker see it.

A stop-and-start (or a recover, which is one) is watched twice: until the instance is stopped, when it is
started, then until it runs and passes its checks. `watch` is the look after each wake: between looks the
state machine waits on the instance's state-change event, or on the alarm going back to OK, each bounded
by the reconcile interval."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from opsflow.aws import clients
from opsflow.errors import NotFound
from opsflow.remediation import guard
from opsflow.runs.config import StepsConfig, required_env
from opsflow.runs.steps import (
    CaughtError,
    RunState,
    StepResult,
    StepRunner,
    StepTable,
    acted_on,
    finish_succeeded,
    steps_runner,
)
from opsflow.store.locks import LockStore
from opsflow.store.remediations import DynamoRemediationStore, RemediationStore
from opsflow.store.runs import Run, RunStore
from opsflow.waits.awaiting import Await, reconcile_seconds
from opsflow.workflows.remediate.aws import RemediateAws
from opsflow.workflows.remediate.request import RemediateRequest

Phase = Literal["rebooted", "stopping", "starting"]
Verdict = Literal["watching", "helped", "did not help"]


class Checked(StepResult):
    needed: bool
    found: str


class Acted(StepResult):
    phase: Phase
    at: str


class Watched(StepResult):
    phase: Phase
    verdict: Verdict
    found: str
    # What the next wait is on, while watching: the instance's state (a stop or a start under way), or the
    # outcome (the alarm back to OK).
    awaits: Literal["instance", "outcome"] = "outcome"
    # The time the action has had, in AWS seconds: each wait's length when it timed out, else the time until
    # its event came (a wall clock would not do: the embedded runtime shortens waits, not clocks).
    waited_seconds: int = 0
    # The next wait's bound: the reconcile interval, or the time left if that is shorter.
    wait_seconds: int = 1
    looked_at: str = ""


class RemediateState(RunState):
    check: Checked | None = None
    act: Acted | None = None
    watch: Watched | None = None


def request_of(state: RemediateState) -> RemediateRequest:
    return RemediateRequest.model_validate(state.request, strict=False)


def check(state: RemediateState, aws: RemediateAws) -> Checked:
    """Still needed: the instance still runs, and the alarm is still in ALARM (or, without one, a status
    check still fails). Events arrive late and twice; acting on a resource that recovered helps nobody."""
    request = request_of(state)
    try:
        status = aws.ec2.instance_status(request.resource)
    except NotFound:
        return Checked(
            needed=False, found="the instance is gone", summary=f"{request.resource} is gone: nothing to do"
        )
    if status.state not in ("running", "stopped") or (
        status.state == "stopped" and request.action == "reboot"
    ):
        return Checked(
            needed=False, found=status.describe(), summary=f"{request.resource} is {status.state}: left alone"
        )
    if request.alarm_name:
        alarm = aws.cloudwatch.alarm_states([request.alarm_name]).get(request.alarm_name, "missing")
        if alarm != "ALARM":
            return Checked(
                needed=False,
                found=f"alarm {request.alarm_name} is {alarm}",
                summary=f"alarm {request.alarm_name} is {alarm} again: {request.resource} no longer needs it",
            )
        return Checked(
            needed=True,
            found=f"alarm {request.alarm_name} in ALARM; {status.describe()}",
            summary="still needed",
        )
    if status.healthy:
        return Checked(
            needed=False, found=status.describe(), summary=f"{request.resource} passes its checks again"
        )
    return Checked(needed=True, found=status.describe(), summary=f"still needed: {status.describe()}")


def act(state: RemediateState, aws: RemediateAws, now: datetime) -> Acted:
    request = request_of(state)
    if request.action == "reboot":
        aws.ec2.reboot_instances([request.resource])
        acted = Acted(phase="rebooted", at=now.isoformat(), summary=f"rebooted {request.resource}")
    elif request.action in ("stop_start", "recover"):
        aws.ec2.stop_instances([request.resource])
        acted = Acted(
            phase="stopping",
            at=now.isoformat(),
            summary=f"stopping {request.resource} to start it on other hardware",
        )
    else:
        raise NotImplementedError(f"the {request.action} action is not built yet")
    if aws.events is not None:
        aws.events.progress(
            state.run_id,
            state.workflow,
            state.target,
            "acting",
            f"{acted.summary} (rule {request.rule}): {request.cause}",
        )
    return acted


def watch(state: RemediateState, aws: RemediateAws, now: datetime) -> Watched:
    """The look after the action and after each wake (an event, or the wait's bound): start a stopped
    instance, then judge whether it helped, or ran out of time."""
    request = request_of(state)
    acted = state.act
    assert acted is not None
    previous = state.watch
    phase: Phase = previous.phase if previous else acted.phase
    waited = _waited(state, now)
    budget = request.outcome_timeout_minutes * 60
    reconcile = reconcile_seconds(state.settings)

    def watching(
        next_phase: Phase, found: str, awaits: Literal["instance", "outcome"], summary: str
    ) -> Watched:
        return Watched(
            phase=next_phase,
            verdict="watching",
            found=found,
            awaits=awaits,
            waited_seconds=waited,
            wait_seconds=max(1, min(reconcile, budget - waited)),
            looked_at=now.isoformat(),
            summary=summary,
            waiting=True,
        )

    status = aws.ec2.instance_status(request.resource)
    if phase == "stopping" and status.state == "stopped":
        aws.ec2.start_instances([request.resource])
        return watching("starting", "stopped", "instance", f"stopped; starting {request.resource}")
    found = status.describe()
    moving = (phase == "stopping") or (phase == "starting" and status.state != "running")
    helped = status.healthy and not moving
    if helped and request.helped_when == "alarm_ok" and request.alarm_name:
        alarm = aws.cloudwatch.alarm_states([request.alarm_name]).get(request.alarm_name, "missing")
        helped = alarm == "OK"
        found = f"{found}; alarm {request.alarm_name} {alarm}"
    if helped:
        return Watched(
            phase=phase, verdict="helped", found=found, waited_seconds=waited, summary=f"helped: {found}"
        )
    if waited >= budget:
        return Watched(
            phase=phase,
            verdict="did not help",
            found=found,
            waited_seconds=waited,
            summary=f"did not help within {request.outcome_timeout_minutes} min: {found}",
        )
    return watching(phase, found, "instance" if moving else "outcome", found)


def _waited(state: RemediateState, now: datetime) -> int:
    """AWS seconds since the action: a wait that timed out lasted its bound; one an event ended, the time
    until the event (never more than its bound)."""
    previous = state.watch
    if previous is None or not previous.looked_at:
        return 0
    if state.woken_by_timeout:
        return previous.waited_seconds + previous.wait_seconds
    elapsed = int((now - datetime.fromisoformat(previous.looked_at)).total_seconds())
    return previous.waited_seconds + max(0, min(elapsed, previous.wait_seconds))


def instance_settled(state: RemediateState, aws: RemediateAws) -> bool:
    """A wait on the instance ends once it is stopped (while stopping) or running (while starting)."""
    phase = state.watch.phase if state.watch else (state.act.phase if state.act else "rebooted")
    current = aws.ec2.instance_status(request_of(state).resource).state
    return current == ("stopped" if phase == "stopping" else "running")


def outcome_known(state: RemediateState, aws: RemediateAws) -> bool:
    """A wait on the outcome ends at once if the action has helped already (the wait's bound is the time
    left), or if a stopped instance is to be started, which `watch` does: a `ready` only looks."""
    if state.act is None or _would_start(state, aws):
        return True
    request = request_of(state)
    status = aws.ec2.instance_status(request.resource)
    if not status.healthy:
        return False
    if request.helped_when == "alarm_ok" and request.alarm_name:
        return aws.cloudwatch.alarm_states([request.alarm_name]).get(request.alarm_name) == "OK"
    return True


def _would_start(state: RemediateState, aws: RemediateAws) -> bool:
    # `ready` looks only: a look that would start a stopped instance ends the wait for `watch` to do it.
    phase = state.watch.phase if state.watch else (state.act.phase if state.act else "rebooted")
    return phase == "stopping" and aws.ec2.instance_status(request_of(state).resource).state == "stopped"


# Endings ----------------------------------------------------------------------------------------------


def outcome_of(state: RemediateState) -> str:
    if state.check is not None and not state.check.needed:
        return "not needed"
    if state.watch is not None and state.watch.verdict != "watching":
        return state.watch.verdict
    return "unknown"


def run_result(state: RemediateState) -> dict[str, Any]:
    request = request_of(state)
    outcome = outcome_of(state)
    if outcome == "not needed":
        summary = f"{request.resource} no longer needed {request.action}: {state.check.found if state.check else ''}"
    else:
        summary = (
            f"{request.action} of {request.resource} {outcome}: {state.watch.found if state.watch else ''}"
        )
    return {
        "summary": summary,
        "rule": request.rule,
        "resource": request.resource,
        "action": request.action,
        "cause": request.cause,
        "outcome": outcome,
        "found": state.watch.found if state.watch else (state.check.found if state.check else ""),
    }


def run_error(state: RemediateState) -> dict[str, Any]:
    request = request_of(state)
    step = state.failed_step or "unknown"
    if state.watch is not None and state.watch.verdict == "did not help":
        return {
            "step": "watch",
            "error": "DidNotHelp",
            "message": f"{request.action} of {request.resource} did not help within "
            f"{request.outcome_timeout_minutes} min: {state.watch.found}. Rule {request.rule} leaves it alone for "
            "its cooldown; look at it yourself.",
            "rollback": {"undone": [], "problems": []},
        }
    error = state.error or CaughtError()
    return {
        "step": step,
        "error": error.error or "Error",
        "message": f"The {step} step failed: {error.describe() if state.error else 'unknown error'}",
        "rollback": {"undone": [], "problems": []},
    }


def report(state: RemediateState, store: RemediationStore, outcome: str) -> None:
    """Tell the rule's guard how the action ended: it stops counting under the concurrency cap."""
    _finish_action(store, request_of(state).rule, state.run_id, outcome)


def _finish_action(store: RemediationStore, rule: str, run_id: str, outcome: str) -> None:
    # A rule deleted while its remediation ran has no guard left to tell.
    with contextlib.suppress(NotFound):
        store.change_guard(rule, lambda _rule, record: (guard.finish(record, run_id, outcome), None))


def put_back(run: Run) -> dict[str, Any] | None:
    """An execution that ended without its finish step (aborted, timed out): its action no longer holds a
    place under the rule's concurrency cap. Nothing else is undone: a reboot or a start cannot be taken back."""
    _finish_action(_store(), str(run.request.get("rule", "")), run.run_id, "ended without an outcome")
    return None


def finisher(store: Callable[[], RemediationStore]) -> Callable[[Any, RunStore, LockStore], dict[str, Any]]:
    def finish(state: Any, runs: RunStore, locks: LockStore) -> dict[str, Any]:
        typed = RemediateState.model_validate(state)
        outcome = outcome_of(typed)
        report(typed, store(), outcome)
        return finish_succeeded(state, run_result(typed), runs, locks)

    return finish


def _store() -> RemediationStore:
    return DynamoRemediationStore(clients.client("dynamodb"), required_env("REMEDIATIONS_TABLE"))


def build_runner(config: StepsConfig) -> StepRunner:
    def failed(state: RemediateState) -> dict[str, Any]:
        error = run_error(state)
        outcome = "did not help" if error["error"] == "DidNotHelp" else f"failed: {error['message'][:200]}"
        report(state, _store(), outcome)
        return error

    def table(state: Mapping[str, Any]) -> StepTable:
        aws = RemediateAws.at(acted_on(state), config.event_bus)
        here = acted_on(state)
        return {
            "check": lambda s: check(s, aws),
            "act": lambda s: act(s, aws, datetime.now(UTC)),
            # Ended by the instance's EC2 Instance State-change Notification (best effort), or a look after the
            # reconcile interval.
            "await_instance": Await(
                awaited=lambda s: [here.beside("instance", request_of(s).resource)],
                ready=lambda s: instance_settled(s, aws),
            ),
            # Ended by the alarm's change back to OK (durable), or a look after the reconcile interval: EC2 sends
            # no event when a status check passes.
            "await_outcome": Await(
                awaited=lambda s: [
                    here.beside("alarm-ok", request_of(s).alarm_name or request_of(s).resource)
                ],
                ready=lambda s: outcome_known(s, aws),
            ),
            "watch": lambda s: watch(s, aws, datetime.now(UTC)),
        }

    return steps_runner(
        config, table, run_result, failed, finish=finisher(_store), state_model=RemediateState
    )
