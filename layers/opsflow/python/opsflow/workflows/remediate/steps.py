"""Remediate: check the resource still needs it, act, and watch until the action helped or its time ran
out; the rule's guard record learns the outcome on every ending, so its cooldown and breaker see it.

The actions: a reboot; a stop and a start (or a recover, which is one), watched until the instance is
stopped, when it is started, then until it runs and passes its checks; an ECS service's new deployment,
watched until it completed or failed; a runbook's Automation execution, watched until it ended. `watch` is
the look after each wake: between looks the state machine waits on the change under way (the instance's
state-change event, the service's deployment event, the execution's status-change event), or on the alarm
going back to OK, each bounded by the reconcile interval."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from opsflow.aws import clients
from opsflow.aws.ecs import ServiceDetail
from opsflow.aws.target import Target
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
from opsflow.workflows.remediate.request import RemediateRequest, RunbookCall

Phase = Literal["rebooted", "stopping", "starting", "redeploying", "runbook"]
Verdict = Literal["watching", "helped", "did not help"]
Awaits = Literal["change", "outcome"]


class Checked(StepResult):
    needed: bool
    found: str


class Acted(StepResult):
    phase: Phase
    at: str
    deployment_id: str = ""
    execution_id: str = ""


class Watched(StepResult):
    phase: Phase
    verdict: Verdict
    found: str
    # What the next wait is on, while watching: the change under way (a stop, a start, a deployment, a
    # runbook), or the outcome (the alarm back to OK).
    awaits: Awaits = "outcome"
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


def service_health(detail: ServiceDetail) -> tuple[bool, str]:
    """Steady: one deployment, completed, with every desired task running."""
    primary = next((d for d in detail.deployments if d.status == "PRIMARY"), None)
    rollout = primary.rollout_state if primary else "none"
    found = f"{detail.running_count} of {detail.desired_count} tasks running, deployment {rollout}"
    if primary and primary.failed_tasks:
        found += f", {primary.failed_tasks} failed to start"
    steady = (
        len(detail.deployments) == 1
        and rollout == "COMPLETED"
        and detail.running_count == detail.desired_count
        and detail.pending_count == 0
    )
    return steady, found


def _alarm(aws: RemediateAws, name: str) -> str:
    return aws.cloudwatch.alarm_states([name]).get(name, "missing")


def check(state: RemediateState, aws: RemediateAws) -> Checked:
    """Still needed: the resource is still there, and the alarm is still in ALARM (or, without one, the
    instance still fails a check, the service is not steady). Events arrive late and twice; acting on a
    resource that recovered helps nobody."""
    request = request_of(state)
    try:
        healthy, found = _resource_health(request, aws)
    except NotFound as gone:
        return Checked(needed=False, found=gone.message, summary=f"{request.resource} is gone: nothing to do")
    if request.resource_kind == "instance":
        status = aws.ec2.instance_status(request.resource)
        if status.state not in ("running", "stopped") or (
            status.state == "stopped" and request.action == "reboot"
        ):
            return Checked(
                needed=False, found=found, summary=f"{request.resource} is {status.state}: left alone"
            )
        if status.state == "stopped":
            return Checked(needed=True, found=found, summary=f"still needed: {request.resource} is stopped")
    if request.alarm_name:
        alarm = _alarm(aws, request.alarm_name)
        if alarm != "ALARM":
            return Checked(
                needed=False,
                found=f"alarm {request.alarm_name} is {alarm}",
                summary=f"alarm {request.alarm_name} is {alarm} again: {request.resource} no longer needs it",
            )
        return Checked(
            needed=True, found=f"alarm {request.alarm_name} in ALARM; {found}", summary="still needed"
        )
    if healthy:
        return Checked(needed=False, found=found, summary=f"{request.resource} is healthy again: {found}")
    return Checked(needed=True, found=found, summary=f"still needed: {found}")


def _resource_health(request: RemediateRequest, aws: RemediateAws) -> tuple[bool, str]:
    if request.resource_kind == "ecs":
        cluster, service = request.cluster_and_service
        detail = aws.ecs.describe_service(cluster, service)
        if detail.status != "ACTIVE":
            raise NotFound(f"service {request.resource} is {detail.status}")
        return service_health(detail)
    status = aws.ec2.instance_status(request.resource)
    return status.healthy, status.describe()


def act(state: RemediateState, aws: RemediateAws, now: datetime) -> Acted:
    request = request_of(state)
    at = now.isoformat()
    if request.action == "reboot":
        aws.ec2.reboot_instances([request.resource])
        acted = Acted(phase="rebooted", at=at, summary=f"rebooted {request.resource}")
    elif request.action in ("stop_start", "recover"):
        if aws.ec2.instance_status(request.resource).state == "stopped":
            aws.ec2.start_instances([request.resource])
            acted = Acted(phase="starting", at=at, summary=f"starting {request.resource}, which had stopped")
        else:
            aws.ec2.stop_instances([request.resource])
            acted = Acted(
                phase="stopping", at=at, summary=f"stopping {request.resource} to start it on other hardware"
            )
    elif request.action == "ecs_redeploy":
        cluster, service = request.cluster_and_service
        aws.ecs.force_new_deployment(cluster, service)
        detail = aws.ecs.describe_service(cluster, service)
        primary = next((d for d in detail.deployments if d.status == "PRIMARY"), None)
        acted = Acted(
            phase="redeploying",
            at=at,
            deployment_id=primary.deployment_id if primary else "",
            summary=f"started a new deployment of {request.resource}"
            + (f" ({primary.deployment_id})" if primary else ""),
        )
    elif request.action == "runbook" and request.runbook is not None:
        runbook = request.runbook
        # One execution per run however often this step is retried: the token is the run's.
        token = str(uuid.uuid5(uuid.NAMESPACE_URL, f"opsflow:{state.run_id}"))
        execution_id = aws.ssm.start_automation(
            runbook.document, runbook.document_version, _with_role(runbook, aws), token
        )
        acted = Acted(
            phase="runbook",
            at=at,
            execution_id=execution_id,
            summary=f"started runbook {runbook.document} on {request.resource} (execution {execution_id})",
        )
    else:
        raise ValueError(f"remediate cannot {request.action} a {request.resource_kind} resource")
    if aws.events is not None:
        aws.events.progress(
            state.run_id,
            state.workflow,
            state.target,
            "acting",
            f"{acted.summary} (rule {request.rule}): {request.cause}",
        )
    return acted


def _with_role(runbook: RunbookCall, aws: RemediateAws) -> dict[str, list[str]]:
    """The runbook's parameters, and the stack's runbook role as its AutomationAssumeRole if it takes one:
    without it a runbook runs with the caller's permissions, which are not the runbook's to use."""
    role = os.environ.get("RUNBOOK_ROLE_ARN")
    document = aws.ssm.document(runbook.document, runbook.document_version) if role else None
    if role and document is not None and "AutomationAssumeRole" in document.parameters:
        return {**runbook.parameters, "AutomationAssumeRole": [role]}
    return dict(runbook.parameters)


@dataclass(frozen=True)
class Progress:
    """Where the action is: still changing the resource, failed outright, or done; and the resource's health."""

    moving: bool
    healthy: bool
    found: str
    failed: str | None = None


def progress(state: RemediateState, phase: Phase, aws: RemediateAws) -> Progress:
    request = request_of(state)
    acted = state.act
    assert acted is not None
    if phase == "redeploying":
        cluster, service = request.cluster_and_service
        detail = aws.ecs.describe_service(cluster, service)
        healthy, found = service_health(detail)
        ours = next((d for d in detail.deployments if d.deployment_id == acted.deployment_id), None)
        if ours is None:
            return Progress(False, False, found, f"deployment {acted.deployment_id} was replaced by another")
        if ours.rollout_state == "FAILED":
            why = f": {detail.events[0]}" if detail.events else ""
            return Progress(False, False, found, f"deployment {acted.deployment_id} failed{why}")
        return Progress(ours.rollout_state == "IN_PROGRESS", healthy, found)
    if phase == "runbook":
        execution = aws.ssm.automation(acted.execution_id)
        document = request.runbook.document if request.runbook else "?"
        if not execution.ended:
            return Progress(True, False, f"runbook {document} {execution.status}")
        if not execution.succeeded:
            why = f": {execution.failure}" if execution.failure else ""
            return Progress(False, False, "", f"runbook {document} ended {execution.status}{why}")
        healthy, found = _resource_health(request, aws)
        return Progress(False, healthy, f"runbook {document} succeeded; {found}")
    status = aws.ec2.instance_status(request.resource)
    moving = phase == "stopping" or (phase == "starting" and status.state != "running")
    return Progress(moving, status.healthy, status.describe())


def watch(state: RemediateState, aws: RemediateAws, now: datetime) -> Watched:
    """The look after the action and after each wake (an event, or the wait's bound): start a stopped
    instance, then judge whether it helped, or ran out of time."""
    request = request_of(state)
    acted = state.act
    assert acted is not None
    phase: Phase = state.watch.phase if state.watch else acted.phase
    waited = _waited(state, now)
    budget = request.outcome_timeout_minutes * 60
    reconcile = reconcile_seconds(state.settings)

    def watching(next_phase: Phase, found: str, awaits: Awaits, summary: str) -> Watched:
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

    if phase == "stopping" and aws.ec2.instance_status(request.resource).state == "stopped":
        aws.ec2.start_instances([request.resource])
        return watching("starting", "stopped", "change", f"stopped; starting {request.resource}")
    where = progress(state, phase, aws)
    if where.failed:
        return Watched(
            phase=phase,
            verdict="did not help",
            found=where.failed,
            waited_seconds=waited,
            summary=f"did not help: {where.failed}",
        )
    found = where.found
    helped = where.healthy and not where.moving
    if helped and request.helped_when == "alarm_ok" and request.alarm_name:
        alarm = _alarm(aws, request.alarm_name)
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
    return watching(phase, found, "change" if where.moving else "outcome", found)


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


def _phase(state: RemediateState) -> Phase:
    return state.watch.phase if state.watch else (state.act.phase if state.act else "rebooted")


def changing(state: RemediateState, here: Target) -> list[Target]:
    """What ends a wait on the change under way: the instance's, the service's or the execution's event."""
    request = request_of(state)
    phase = _phase(state)
    if phase == "redeploying":
        return [here.beside("service", request.resource)]
    if phase == "runbook" and state.act is not None:
        return [here.beside("automation", state.act.execution_id)]
    return [here.beside("instance", request.resource)]


def change_settled(state: RemediateState, aws: RemediateAws) -> bool:
    """A wait on the change ends once it is no longer under way (a stopped instance is to be started)."""
    if state.act is None:
        return True
    where = progress(state, _phase(state), aws)
    return (
        bool(where.failed)
        or not where.moving
        or (
            _phase(state) == "stopping"
            and aws.ec2.instance_status(request_of(state).resource).state == "stopped"
        )
    )


def outcome_known(state: RemediateState, aws: RemediateAws) -> bool:
    """A wait on the outcome ends at once if the action has helped already (the wait's bound is the time
    left), or failed, or the resource is changing again: `watch` judges. A `ready` only looks."""
    if state.act is None:
        return True
    where = progress(state, _phase(state), aws)
    if where.failed or where.moving:
        return True
    if not where.healthy:
        return False
    request = request_of(state)
    if request.helped_when == "alarm_ok" and request.alarm_name:
        return _alarm(aws, request.alarm_name) == "OK"
    return True


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
            # Ended by the instance's EC2 Instance State-change Notification (best effort), the service's ECS
            # Deployment State Change (durable), the runbook's EC2 Automation Execution Status-change
            # Notification, or a look after the reconcile interval.
            "await_change": Await(
                awaited=lambda s: changing(s, here),
                ready=lambda s: change_settled(s, aws),
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
