"""ECS blue/green: run the new version (green) beside the live service (blue), each behind its own target
group of one ALB listener, and shift the listener's weighted forward action to green step by step.

Every step is gated: green must be steady, pass an optional smoke test through the test listener, and keep
the alarms quiet while each share of traffic is held; a failed gate puts the listener back to 100 % blue
within its step (the traffic engine's rule), and the rollback scales green to zero. Blue is scaled to zero
only after green has held all traffic for the bake time. Whatever ends a run - success, a failed gate, an
abort, a timeout - the listener forwards 100 % to one side: `rollback` and `put_back` (for runs that end
without their rollback, see functions/run_ended) both restore it, and a step that changed the listener
re-reads the run afterwards, so a run aborted while the step was in flight is put back by the step itself.

The two sides alternate: after a deploy, green is the live service, and the next deploy starts the other
one (blue, scaled to zero) again on the idle target group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from opsflow.aws.ecs import ServiceDetail
from opsflow.aws.elbv2 import display_name as short
from opsflow.aws.target import Target
from opsflow.errors import OpsflowError, Refused
from opsflow.runs.config import StepsConfig
from opsflow.runs.steps import Step, StepRunner, StepTable, acted_on, steps_runner
from opsflow.store.runs import RUNNING
from opsflow.traffic.engine import RunEnded, TrafficEngine
from opsflow.traffic.gates import AlarmsQuiet, Gate, GreenHealthy
from opsflow.traffic.hold import alarm_hold
from opsflow.traffic.position import TrafficPosition
from opsflow.waits.awaiting import Await, reconcile_seconds
from opsflow.workflows.ecs_blue_green.deps import DeployAws, Deps
from opsflow.workflows.ecs_blue_green.errors import GreenNotSteady
from opsflow.workflows.ecs_blue_green.preflight import check_deploy
from opsflow.workflows.ecs_blue_green.request import EcsBlueGreenRequest
from opsflow.workflows.ecs_blue_green.results import run_error, run_result
from opsflow.workflows.ecs_blue_green.rollback import RETIRING_BLUE, green_service, put_back
from opsflow.workflows.ecs_blue_green.smoke import smoke_test_gate
from opsflow.workflows.ecs_blue_green.state import (
    DeployState,
    GreenState,
    GuardResult,
    PutBack,
    RetireResult,
    SmokeResult,
)

# Which side takes production traffic, kept on both services for people and the next deploy to read.
ROLE_TAG = "opsflow:blue-green"


def traffic_engine(deps: Deps, state: DeployState) -> TrafficEngine:
    return TrafficEngine(
        deps.aws.production_traffic(state.spec),
        still_running=lambda: deps.still_running(state.run_id),
        # A hold is one wait that an alarm's state change ends early; green's health is checked at its end.
        poll_seconds=None,
    )


def publish(deps: Deps, state: DeployState, kind: str, message: str, **detail: Any) -> list[str]:
    # Progress events feed notifications; losing one must never fail or roll back the deploy.
    try:
        deps.aws.events.progress(state.run_id, state.workflow, state.target, kind, message, **detail)
    except Exception as error:  # noqa: BLE001
        return [f"(progress event not sent: {error})"]
    return []


def guard(deps: Deps, state: DeployState) -> GuardResult:
    request = EcsBlueGreenRequest.model_validate(state.request, strict=False)
    spec = check_deploy(request, deps.aws, deps.opt_in)
    return GuardResult(
        spec=spec,
        summary=f"{spec.blue.service} is live on {short(spec.blue.target_group)}; green will be "
        f"{spec.green.service} on {short(spec.green.target_group)}",
    )


def start_green(deps: Deps, state: DeployState) -> GreenState:
    """Create green on the idle target group, or scale up the idle service, with the new version."""
    aws, spec = deps.aws, state.spec
    blue, green = spec.blue, spec.green
    if spec.test_listener_arn:
        aws.elbv2.set_weights(spec.test_listener_arn, {green.target_group: 1})
    current = green_service(aws, spec)
    if current is not None and current.desired_count > 0:
        # The pre-flight found the idle side at zero: this is a retry of this step whose first answer was
        # lost. Adopt what it started rather than start a second deployment.
        started = _adopted(current)
    else:
        task_definition = green.task_definition or aws.ecs.register_task_definition_with_image(
            blue.task_definition, green.container, green.image or ""
        )
        if current is not None:
            aws.ecs.update_service(
                spec.cluster, green.service, desired_count=blue.desired, task_definition=task_definition
            )
            service_arn, created = current.service_arn, False
        else:
            source = aws.ecs.describe_service(spec.cluster, blue.service)
            tags = {k: v for k, v in source.tags.items() if not k.startswith("aws:")}
            made = aws.ecs.create_service_like(
                source, green.service, task_definition, green.target_group, blue.desired, tags
            )
            service_arn, created = made.service_arn, True
        if not deps.still_running(state.run_id):
            aws.ecs.update_service(spec.cluster, green.service, desired_count=0)
            raise RunEnded("the run ended while green was starting; green was scaled back to 0")
        started = GreenState.started(green.service, service_arn, created, task_definition, blue.desired)
    verb = "created" if started.created else "scaled up"
    summary = (
        f"{verb} green service {started.service}: {started.desired} task(s) of "
        f"{started.task_definition.split('/')[-1]}"
    )
    return started.model_copy(update={"summary": summary})


def _adopted(service: ServiceDetail) -> GreenState:
    primary = next((d for d in service.deployments if d.status == "PRIMARY"), None)
    task_definition = primary.task_definition if primary else service.task_definition
    return GreenState.started(
        service.name, service.service_arn, False, task_definition, service.desired_count
    )


def check_green(deps: Deps, state: DeployState) -> GreenState:
    """Steady: one deployment, every task running and every target healthy. Called after each wait for the
    green service's deployment event; time is counted in the waits that no event ended (each one reconcile
    interval), not read from a clock, so that a deadline means the same in AWS and in a faster embedded run."""
    spec, green = state.spec, state.started_green
    waited = green.waited + (reconcile_seconds(state.settings) if state.woken_by_timeout else 0)
    service = deps.aws.ecs.describe_service(spec.cluster, green.service)
    primary = next((d for d in service.deployments if d.status == "PRIMARY"), None)
    latest = f" Latest service event: {service.events[0]}" if service.events else ""
    if primary is None:
        raise GreenNotSteady(f"green service {green.service} has no deployment.{latest}")
    if primary.rollout_state == "FAILED":
        raise GreenNotSteady(f"green service {green.service}'s deployment failed.{latest}")
    if primary.task_definition != green.task_definition:
        # The service's own deployment circuit breaker rolled the new version back.
        raise GreenNotSteady(
            f"ECS rolled green service {green.service} back to {primary.task_definition.split('/')[-1]}: "
            f"{green.task_definition.split('/')[-1]} did not deploy.{latest}"
        )
    # The failure count at which ECS's deployment circuit breaker gives up, whether the service has one.
    threshold = max(3, min(200, math.ceil(green.desired / 2)))
    if primary.failed_tasks >= threshold:
        raise GreenNotSteady(
            f"{primary.failed_tasks} task(s) of green service {green.service} failed to start.{latest}"
        )
    health = deps.aws.elbv2.target_health(spec.green.target_group)
    healthy = sum(1 for target in health.values() if target == "healthy")
    steady = (
        len(service.deployments) == 1 and primary.running_count >= green.desired and healthy >= green.desired
    )
    if not steady and waited >= state.green_max_wait_seconds:
        raise GreenNotSteady(
            f"green service {green.service} was not steady after {state.green_max_wait_seconds} s: "
            f"{primary.running_count} of {green.desired} task(s) running, {healthy} healthy target(s) in "
            f"{short(spec.green.target_group)}.{latest}"
        )
    return green.model_copy(
        update={
            "running": primary.running_count,
            "healthy": healthy,
            "steady": steady,
            "waited": waited,
            "waiting": not steady,
            "summary": f"green: {primary.running_count} of {green.desired} running, {healthy} healthy "
            "target(s)" + ("; steady" if steady else ""),
        }
    )


def smoke_test(deps: Deps, state: DeployState) -> SmokeResult:
    smoke = state.spec.smoke_test
    if smoke is None:
        return SmokeResult(passed=True, skipped=True, summary="no smoke test")
    gate = smoke_test_gate(
        smoke, state.spec, state.started_green, state.run_id, deps.aws.functions, deps.aws.http_get
    )
    (detail,) = traffic_engine(deps, state).check([gate])
    return SmokeResult(passed=True, detail=detail, summary=f"passed: {detail}")


def shift(deps: Deps, state: DeployState) -> TrafficPosition:
    """Move to the plan's next step (the last is the bake, at 100 % green)."""
    spec = state.spec
    position = traffic_engine(deps, state).advance(
        state.traffic or TrafficPosition.before(spec.traffic, spec.bake_seconds)
    )
    message = (
        f"all traffic on green; baking {spec.bake_seconds} s before blue is retired"
        if position.baking
        else f"{position.weight}% of traffic on green (step {position.index + 1} of {position.steps})"
    )
    milestones = [message, *publish(deps, state, "traffic", message, percent=position.weight)]
    return position.model_copy(update={"summary": message, "milestones": milestones})


def watch_gates(deps: Deps, state: DeployState) -> list[Gate]:
    """Each step's gates: the alarms quiet (now, and at every moment since the last check), and green with
    a healthy target to serve its share."""
    spec = state.spec
    checked = state.traffic.checked_at if state.traffic else None
    since = datetime.fromisoformat(checked) if checked else None
    alarms: list[Gate] = [AlarmsQuiet(deps.aws.cloudwatch, spec.alarms, since)] if spec.alarms else []
    return [*alarms, GreenHealthy(deps.aws.elbv2, spec.green.target_group)]


def green_settled(deps: Deps, state: DeployState) -> bool:
    """Whether green's deployment has ended, one way or the other, so that the check can tell which."""
    service = deps.aws.ecs.describe_service(state.spec.cluster, state.started_green.service)
    primary = next((d for d in service.deployments if d.status == "PRIMARY"), None)
    return primary is None or primary.rollout_state != "IN_PROGRESS"


def await_green(deps: Deps) -> Await:
    """Green's deployment is awaited by its ECS Deployment State Change event (completed or failed)."""
    return Await(
        awaited=lambda state: [
            Target.from_key(state.target).beside(
                "service", f"{state.spec.cluster}/{state.started_green.service}"
            )
        ],
        ready=partial(green_settled, deps),
    )


def hold(deps: Deps) -> Await:
    """A traffic step's hold, which any of the deploy's alarms going to ALARM fails at once."""
    return alarm_hold(deps.aws.cloudwatch, lambda state: state.spec.alarms)


def watch(deps: Deps, state: DeployState) -> TrafficPosition:
    if state.traffic is None:
        raise ValueError("the shift step has not run: there is no traffic to watch")
    position = traffic_engine(deps, state).watch(state.traffic, watch_gates(deps, state))
    left = position.remaining
    return position.model_copy(
        update={
            "waiting": position.holding,
            "summary": f"{position.weight}% on green, gates passed" + (f"; {left} s to hold" if left else ""),
        }
    )


def retire_blue(deps: Deps, state: DeployState) -> RetireResult:
    """Green held all traffic through the bake: scale blue to zero and label the sides."""
    aws, spec = deps.aws, state.spec
    blue, green = spec.blue, spec.green
    weights = aws.production_traffic(spec).weights()
    if not weights.all_on("green"):
        raise Refused(
            f"listener {short(spec.listener_arn)} does not send all traffic to green "
            f"({short(blue.target_group)} {weights.blue}, {short(green.target_group)} {weights.green}): "
            "someone changed it; blue stays"
        )
    problems = []
    for service, role in ((green.service, "live"), (blue.service, "idle")):
        try:
            arn = aws.ecs.describe_service(spec.cluster, service).service_arn
            aws.ecs.tag(arn, {ROLE_TAG: role})
        except OpsflowError as error:  # a label; not worth undoing a deploy that succeeded
            problems.append(f"tagging {service} {role}: {error}")
    # Claimed only while the run runs: an abort settled before this leaves blue as it is (and puts traffic
    # back on it); one settled after finds the mark and keeps green live.
    if not deps.claim(state.run_id, RETIRING_BLUE):
        raise RunEnded("the run ended before blue was retired; blue keeps its tasks")
    aws.ecs.update_service(spec.cluster, blue.service, desired_count=0)
    return RetireResult(
        retired=blue.service,
        problems=problems,
        summary=f"blue service {blue.service} scaled to 0; green is live",
    )


def rollback(deps: Deps, state: DeployState) -> PutBack:
    if state.guard is None:
        return PutBack(summary="nothing had changed")
    done = put_back(deps.aws, state.spec)
    # `summary` goes to the step's record; `put_back` stays in the state for the run's error.
    return done.model_copy(update={"put_back": done.summary})


def step_table(deps: Deps) -> dict[str, Step | Await]:
    steps = (guard, start_green, check_green, smoke_test, shift, watch, retire_blue, rollback)
    return {
        **{step.__name__: partial(step, deps) for step in steps},
        "await_green": await_green(deps),
        "hold": hold(deps),
    }


def build_runner(config: StepsConfig) -> StepRunner:
    runs = config.run_store()

    def still_running(run_id: str) -> bool:
        run = runs.get(run_id)
        return run is not None and run.status == RUNNING

    def table(state: Mapping[str, Any]) -> StepTable:
        aws = DeployAws.at(acted_on(state), config.event_bus)
        return step_table(Deps(aws, config.opt_in, still_running, runs.claim))

    return steps_runner(config, table, run_result, run_error, state_model=DeployState)
