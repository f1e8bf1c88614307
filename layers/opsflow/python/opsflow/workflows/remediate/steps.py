"""Remediate: check the resource still needs it, act, and watch until the action helped or its time ran
out; the rule's guard record learns the outcome on every ending, so its cooldown and breaker see it.

A stop-and-start (or a recover, which is one) is watched twice: until the instance is stopped, when it is
started, then until it runs and passes its checks. `watch` is the look after each wake: the state machine
that deploys this workflow waits on the instance's state-change and the alarm's events between looks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
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
    finish_failed,
    finish_succeeded,
    steps_runner,
)
from opsflow.store.locks import LockStore
from opsflow.store.remediations import DynamoRemediationStore, RemediationStore
from opsflow.store.runs import Run, RunStore
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
    deadline: str


class Watched(StepResult):
    phase: Phase
    verdict: Verdict
    found: str


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
    deadline = (now + timedelta(minutes=request.outcome_timeout_minutes)).isoformat()
    if request.action == "reboot":
        aws.ec2.reboot_instances([request.resource])
        acted = Acted(
            phase="rebooted", at=now.isoformat(), deadline=deadline, summary=f"rebooted {request.resource}"
        )
    elif request.action in ("stop_start", "recover"):
        aws.ec2.stop_instances([request.resource])
        acted = Acted(
            phase="stopping",
            at=now.isoformat(),
            deadline=deadline,
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
    request = request_of(state)
    acted = state.act
    assert acted is not None
    phase: Phase = state.watch.phase if state.watch else acted.phase
    status = aws.ec2.instance_status(request.resource)
    if phase == "stopping" and status.state == "stopped":
        aws.ec2.start_instances([request.resource])
        return Watched(
            phase="starting",
            verdict="watching",
            found="stopped",
            summary=f"stopped; starting {request.resource}",
            waiting=True,
        )
    helped = status.healthy and phase != "stopping"
    found = status.describe()
    if helped and request.helped_when == "alarm_ok" and request.alarm_name:
        alarm = aws.cloudwatch.alarm_states([request.alarm_name]).get(request.alarm_name, "missing")
        helped = alarm == "OK"
        found = f"{found}; alarm {request.alarm_name} {alarm}"
    if helped:
        return Watched(phase=phase, verdict="helped", found=found, summary=f"helped: {found}")
    if now >= datetime.fromisoformat(acted.deadline):
        return Watched(
            phase=phase,
            verdict="did not help",
            found=found,
            summary=f"did not help within {request.outcome_timeout_minutes} min: {found}",
        )
    return Watched(phase=phase, verdict="watching", found=found, summary=found, waiting=True)


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
    store = DynamoRemediationStore(clients.client("dynamodb"), required_env("REMEDIATIONS_TABLE"))
    _finish_action(store, str(run.request.get("rule", "")), run.run_id, "ended without an outcome")
    return None


def finisher(store: RemediationStore) -> Callable[[Any, RunStore, LockStore], dict[str, Any]]:
    def finish(state: Any, runs: RunStore, locks: LockStore) -> dict[str, Any]:
        typed = RemediateState.model_validate(state)
        outcome = outcome_of(typed)
        report(typed, store, outcome)
        if outcome == "did not help":
            return finish_failed(state, run_error(typed), runs, locks)
        return finish_succeeded(state, run_result(typed), runs, locks)

    return finish


def build_runner(config: StepsConfig) -> StepRunner:
    store = DynamoRemediationStore(clients.client("dynamodb"), required_env("REMEDIATIONS_TABLE"))

    def failed(state: RemediateState) -> dict[str, Any]:
        error = run_error(state)
        report(state, store, f"failed: {error['message'][:200]}")
        return error

    def table(state: Mapping[str, Any]) -> StepTable:
        aws = RemediateAws.at(acted_on(state), config.event_bus)
        return {
            "check": lambda s: check(s, aws),
            "act": lambda s: act(s, aws, datetime.now(UTC)),
            "watch": lambda s: watch(s, aws, datetime.now(UTC)),
        }

    return steps_runner(config, table, run_result, failed, finish=finisher(store), state_model=RemediateState)
