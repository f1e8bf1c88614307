"""The blue/green steps' decisions, on fakes of ECS, ELBv2, CloudWatch, Lambda and EventBridge: holds
counted in waits, each gate, and putting traffic back on one side whatever happened."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from opsflow.aws.cloudwatch import AlarmStateChange
from opsflow.aws.ecs import Deployment, ServiceDetail, ServiceLoadBalancer
from opsflow.aws.elbv2 import Listener
from opsflow.aws.lambda_functions import Invocation
from opsflow.errors import AwsCallFailed, NotFound, Refused
from opsflow.runs.config import OptIn
from opsflow.store.runs import RUNNING, Requester, Run
from opsflow.traffic.engine import RunEnded
from opsflow.traffic.gates import AlarmFired, GreenUnhealthy, SmokeTestFailed
from opsflow.traffic.smoke import HttpGet, http_status
from opsflow.waits.awaiting import Await
from opsflow.workflows.ecs_blue_green import steps
from opsflow.workflows.ecs_blue_green.deps import Claim, DeployAws, Deps
from opsflow.workflows.ecs_blue_green.errors import GreenNotSteady
from opsflow.workflows.ecs_blue_green.results import put_back_ended_run, run_error
from opsflow.workflows.ecs_blue_green.rollback import put_back
from opsflow.workflows.ecs_blue_green.state import DeploySpec, DeployState, GreenState, SmokeResult

LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1111/2222"
BLUE_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/aaaa"
GREEN_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/bbbb"
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
NEW = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"


def service(
    name: str, target_group: str, desired: int, task_definition: str = NEW, **changes: Any
) -> ServiceDetail:
    detail = ServiceDetail(
        cluster_arn=CLUSTER,
        service_arn=f"arn:aws:ecs:us-east-1:123456789012:service/prod/{name}",
        name=name,
        status="ACTIVE",
        task_definition=task_definition,
        desired_count=desired,
        running_count=desired,
        pending_count=0,
        deployments=[Deployment("ecs-svc/1", "PRIMARY", "COMPLETED", task_definition, desired, desired)],
        load_balancers=[ServiceLoadBalancer(target_group, "app", 8080)],
        tags={"opsflow:managed": "true"},
        launch_type="FARGATE",
        capacity_provider_strategy=[],
        network_configuration=None,
        health_check_grace_period_seconds=None,
    )
    return replace(detail, **changes)


@dataclass
class FakeElbv2:
    weights: dict[str, int] = field(default_factory=lambda: {BLUE_TG: 100, GREEN_TG: 0})
    health: dict[str, dict[str, str]] = field(default_factory=lambda: {GREEN_TG: {"10.0.0.1": "healthy"}})
    refuse: bool = False
    writes: list[dict[str, int]] = field(default_factory=list)

    def listener(self, arn: str) -> Listener:
        return Listener(arn, "arn:lb", "HTTP", 80, dict(self.weights))

    def set_weights(self, arn: str, weights: dict[str, int]) -> None:
        if self.refuse:
            raise AwsCallFailed("ModifyListener", "Throttling", "Rate exceeded")
        self.weights = dict(weights)
        self.writes.append(dict(weights))

    def target_health(self, arn: str) -> dict[str, str]:
        return self.health.get(arn, {})


@dataclass
class FakeEcs:
    services: dict[str, ServiceDetail]
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def describe_service(self, cluster: str, name: str) -> ServiceDetail:
        if name not in self.services:
            raise NotFound(f"ECS service {name} does not exist in cluster {cluster}")
        return self.services[name]

    def update_service(self, cluster: str, name: str, **changes: Any) -> None:
        self.updates.append((name, changes))
        if changes.get("desired_count") is not None:
            self.services[name] = replace(self.services[name], desired_count=changes["desired_count"])

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        pass


@dataclass
class FakeCloudWatch:
    states: dict[str, str] = field(default_factory=lambda: {"web-5xx": "OK"})

    # Each alarm's changes into ALARM, as DescribeAlarmHistory lists them.
    flips: list[AlarmStateChange] = field(default_factory=list)

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        return {n: self.states[n] for n in names if n in self.states}

    def firing(self, names: list[str]) -> dict[str, str]:
        return {n: "5xx above 10" for n in names if self.states.get(n) == "ALARM"}

    def went_to_alarm(self, names: list[str], since: datetime, until: datetime) -> list[AlarmStateChange]:
        return [f for f in self.flips if f.alarm in names and since <= f.at <= until]


@dataclass
class FakeEvents:
    sent: list[str] = field(default_factory=list)

    def progress(
        self, run_id: str, workflow: str, target: str, kind: str, message: str, **detail: Any
    ) -> None:
        self.sent.append(message)


@dataclass
class FakeFunctions:
    answer: Any = None
    function_error: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def invoke(self, function: str, payload: dict[str, Any]) -> Invocation:
        self.calls.append((function, payload))
        return Invocation(self.answer, self.function_error)


def _always(run_id: str, mark: str) -> bool:
    return True


@dataclass
class World:
    elbv2: FakeElbv2 = field(default_factory=FakeElbv2)
    ecs: FakeEcs = field(
        default_factory=lambda: FakeEcs(
            {"web": service("web", BLUE_TG, 2, "web:1"), "web-green": service("web-green", GREEN_TG, 2)}
        )
    )
    cloudwatch: FakeCloudWatch = field(default_factory=FakeCloudWatch)
    events: FakeEvents = field(default_factory=FakeEvents)
    functions: FakeFunctions = field(default_factory=FakeFunctions)
    http_get: HttpGet = http_status
    running: bool = True
    claim: Claim = _always

    @property
    def aws(self) -> DeployAws:
        return DeployAws(
            ecs=self.ecs,  # type: ignore[arg-type]
            elbv2=self.elbv2,  # type: ignore[arg-type]
            cloudwatch=self.cloudwatch,  # type: ignore[arg-type]
            events=self.events,  # type: ignore[arg-type]
            functions=self.functions,  # type: ignore[arg-type]
            http_get=self.http_get,
        )

    @property
    def deps(self) -> Deps:
        return Deps(self.aws, OptIn(), lambda _: self.running, self.claim)


SPEC = DeploySpec.model_validate(
    {
        "cluster": CLUSTER,
        "listener_arn": LISTENER,
        "test_listener_arn": None,
        "blue": {"service": "web", "target_group": BLUE_TG, "task_definition": "web:1", "desired": 2},
        "green": {"service": "web-green", "target_group": GREEN_TG, "exists": True},
        "traffic": [{"percent": 10, "hold_seconds": 70}, {"percent": 100, "hold_seconds": 0}],
        "bake_seconds": 60,
        "alarms": ["web-5xx"],
        "smoke_test": None,
    }
)
GREEN = GreenState.started("web-green", "arn:green", False, NEW, 2)


def at(
    spec: DeploySpec = SPEC,
    reconcile_seconds: int = 30,
    green_max_wait_seconds: int = 120,
    timed_out: bool = False,
    **results: Any,
) -> DeployState:
    """The execution's state after the guard (and the given steps' results)."""
    return DeployState.model_validate(
        {
            "run_id": "run-1",
            "workflow": "ecs_blue_green",
            "target": "ecs:prod/web",
            "settings": {
                "reconcile_seconds": reconcile_seconds,
                "green_max_wait_seconds": green_max_wait_seconds,
            },
            # How the wait before this step ended: its timeout, or an event.
            "wake": {"Error": "States.Timeout", "Cause": ""}
            if timed_out
            else {"by": "ECS Deployment State Change"},
            "guard": {"spec": spec.model_dump(mode="json")},
            **{
                key: value.model_dump(mode="json") if isinstance(value, BaseModel) else value
                for key, value in results.items()
            },
        }
    )


def test_a_hold_is_one_wait_checked_at_its_start_and_its_end() -> None:
    deps = World().deps
    traffic = steps.shift(deps, at())
    assert (traffic.weight, traffic.remaining) == (10, 70)

    seen = []
    traffic = steps.watch(deps, at(traffic=traffic))  # right after the shift: nothing waited yet
    while traffic.holding:
        seen.append((traffic.remaining, traffic.wait_seconds))
        traffic = steps.watch(deps, at(traffic=traffic))  # after the hold's wait timed out

    assert seen == [(70, 70)], "an alarm's state change, not a poll, ends a hold early"
    assert traffic.done is False
    traffic = steps.shift(deps, at(traffic=traffic))
    bake = steps.shift(deps, at(traffic=steps.watch(deps, at(traffic=traffic))))
    assert (bake.weight, bake.baking, bake.remaining) == (100, True, 60)
    assert bake.weights == [10, 100], "the bake does not touch the listener"


def test_an_alarm_that_went_to_alarm_and_back_during_the_hold_fails_its_watch() -> None:
    world = World()
    traffic = steps.watch(world.deps, at(traffic=steps.shift(world.deps, at())))
    # The alarm is OK again when the hold ends, but its history shows the flip.
    world.cloudwatch.flips.append(
        AlarmStateChange("web-5xx", datetime.now(UTC), "Alarm updated from OK to ALARM")
    )
    with pytest.raises(AlarmFired, match=r"alarm web-5xx went to ALARM at .* UTC and back within the hold"):
        steps.watch(world.deps, at(traffic=traffic))
    assert world.elbv2.weights == {BLUE_TG: 100, GREEN_TG: 0}


def test_a_flip_before_the_hold_began_is_not_held_against_it() -> None:
    world = World()
    world.cloudwatch.flips.append(
        AlarmStateChange("web-5xx", datetime.now(UTC) - timedelta(hours=1), "Alarm updated from OK to ALARM")
    )
    traffic = steps.watch(world.deps, at(traffic=steps.shift(world.deps, at())))
    assert steps.watch(world.deps, at(traffic=traffic)).holding is False


def test_a_hold_fails_at_once_when_an_alarm_is_in_alarm_as_it_begins_and_never_ends_early_otherwise() -> None:
    world = World()
    hold = steps.step_table(world.deps)["hold"]
    assert isinstance(hold, Await)
    state = at(traffic=steps.shift(world.deps, at()))
    assert [t.key for t in hold.awaited(state)] == ["alarm:web-5xx"]
    assert hold.fails is not None
    assert hold.fails(state) is None
    assert hold.ready(state) is False, "a hold ends by its time or by an alarm, nothing else"
    world.cloudwatch.states["web-5xx"] = "ALARM"
    assert hold.fails(state) == ("AlarmFired", "alarm web-5xx went to ALARM: 5xx above 10")


def test_each_shift_is_a_milestone_and_a_progress_event() -> None:
    world = World()

    traffic = steps.shift(world.deps, at())

    assert traffic.milestones == ["10% of traffic on green (step 1 of 2)"]
    assert world.events.sent == ["10% of traffic on green (step 1 of 2)"]


def test_an_alarm_in_alarm_fails_the_watch_naming_it_and_puts_all_traffic_back_on_blue() -> None:
    world = World()
    traffic = steps.shift(world.deps, at())
    world.cloudwatch.states["web-5xx"] = "ALARM"

    with pytest.raises(AlarmFired, match="alarm web-5xx went to ALARM; listener web/2222 back to 100% blue"):
        steps.watch(world.deps, at(traffic=traffic))

    assert world.elbv2.weights == {BLUE_TG: 100, GREEN_TG: 0}


def test_a_deleted_alarm_fails_the_watch_rather_than_going_on_blind() -> None:
    world = World()
    traffic = steps.shift(world.deps, at())
    del world.cloudwatch.states["web-5xx"]

    with pytest.raises(AlarmFired, match="was deleted"):
        steps.watch(world.deps, at(traffic=traffic))


def test_green_without_a_healthy_target_fails_the_watch() -> None:
    world = World()
    traffic = steps.shift(world.deps, at())
    world.elbv2.health[GREEN_TG] = {"10.0.0.1": "unhealthy", "10.0.0.2": "draining"}

    with pytest.raises(GreenUnhealthy, match=r"no healthy target in web-green \(draining, unhealthy\)"):
        steps.watch(world.deps, at(traffic=traffic))
    assert world.elbv2.weights == {BLUE_TG: 100, GREEN_TG: 0}


def test_a_shift_landing_after_the_run_ended_is_put_back_by_the_step_itself() -> None:
    world = World()
    world.running = False  # aborted while this step was on its way

    with pytest.raises(RunEnded, match="back to 100% blue"):
        steps.shift(world.deps, at())

    assert world.elbv2.writes == [{BLUE_TG: 90, GREEN_TG: 10}, {BLUE_TG: 100, GREEN_TG: 0}]


def test_put_back_sends_everything_to_blue_and_scales_green_down() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 70, GREEN_TG: 30}

    done = put_back(world.aws, SPEC)

    assert world.elbv2.weights == {BLUE_TG: 100, GREEN_TG: 0}
    assert world.ecs.services["web-green"].desired_count == 0
    assert done.live == "blue"
    assert done.undone == [
        "listener web/2222 back to 100% blue (web-blue) from 30% green",
        "green service web-green scaled to 0",
    ]


def test_put_back_after_blue_was_retired_keeps_green_live() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 0, GREEN_TG: 100}
    world.ecs.services["web"] = replace(world.ecs.services["web"], desired_count=0)

    done = put_back(world.aws, SPEC)

    assert world.elbv2.weights == {BLUE_TG: 0, GREEN_TG: 100}
    assert world.ecs.services["web-green"].desired_count == 2
    assert done.live == "green"


def test_put_back_that_cannot_set_the_listener_keeps_green_serving_its_share_and_raises_to_be_retried() -> (
    None
):
    world = World()
    world.elbv2.weights = {BLUE_TG: 50, GREEN_TG: 50}
    world.elbv2.refuse = True

    with pytest.raises(AwsCallFailed, match="Throttling"):
        put_back(world.aws, SPEC)

    assert world.ecs.services["web-green"].desired_count == 2


def test_the_rollback_step_keeps_what_it_put_back_for_the_run_error() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 70, GREEN_TG: 30}

    done = steps.rollback(world.deps, at())

    assert done.put_back == done.summary
    assert "back to 100% blue" in done.put_back
    assert "summary" not in done.model_dump(mode="json")


def test_a_rollback_before_the_guard_settled_a_spec_changes_nothing() -> None:
    state = DeployState(run_id="run-1", workflow="ecs_blue_green", target="ecs:prod/web")

    done = steps.rollback(World().deps, state)

    assert (done.live, done.summary) == (None, "nothing had changed")


def test_blue_is_not_retired_unless_the_listener_sends_everything_to_green() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 10, GREEN_TG: 90}

    with pytest.raises(Refused, match="does not send all traffic to green"):
        steps.retire_blue(world.deps, at())

    assert world.ecs.updates == []


def test_blue_is_not_retired_by_a_run_that_ended_meanwhile_and_an_abort_after_the_claim_keeps_green() -> None:
    claims: list[tuple[str, str]] = []

    def refuse(run_id: str, mark: str) -> bool:
        claims.append((run_id, mark))
        return False

    world = World(claim=refuse)
    world.elbv2.weights = {BLUE_TG: 0, GREEN_TG: 100}

    with pytest.raises(RunEnded, match="blue keeps its tasks"):
        steps.retire_blue(world.deps, at())

    assert claims == [("run-1", "retiring_blue")]
    assert world.ecs.services["web"].desired_count == 2
    # Claimed, then aborted while blue was being scaled down: the abort keeps green live.
    done = put_back(world.aws, SPEC, retiring=True)
    assert done.live == "green"
    assert world.elbv2.weights == {BLUE_TG: 0, GREEN_TG: 100}
    assert world.ecs.services["web-green"].desired_count == 2


def test_green_tasks_failing_to_start_fail_at_the_circuit_breaker_threshold() -> None:
    world = World()
    failing = service(
        "web-green",
        GREEN_TG,
        2,
        deployments=[Deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", NEW, 2, 0, failed_tasks=3)],
        running_count=0,
        events=("(service web-green) has stopped 1 running tasks: CannotPullContainerError",),
    )
    world.ecs.services["web-green"] = failing

    with pytest.raises(
        GreenNotSteady, match=r"3 task\(s\) of green service web-green failed to start.*CannotPull"
    ):
        steps.check_green(world.deps, at(green=GREEN))


def test_green_not_steady_in_time_fails_after_the_waits_add_up() -> None:
    world = World()
    world.elbv2.health[GREEN_TG] = {"10.0.0.1": "initial"}
    deps = world.deps

    def check(green: GreenState, timed_out: bool = True) -> GreenState:
        return steps.check_green(
            deps, at(green=green, reconcile_seconds=30, green_max_wait_seconds=90, timed_out=timed_out)
        )

    green = check(check(GREEN))
    assert (green.steady, green.waited, green.waiting) == (False, 60, True)
    # A check after an event (the deployment completed, say) adds no waiting: only intervals no event ended.
    assert check(green, timed_out=False).waited == 60
    with pytest.raises(GreenNotSteady, match=r"not steady after 90 s: 2 of 2 task\(s\) running, 0 healthy"):
        check(green)


def test_green_is_steady_once_every_task_runs_behind_a_healthy_target() -> None:
    world = World()
    waiting = steps.check_green(world.deps, at(green=GREEN))
    world.elbv2.health[GREEN_TG] = {"10.0.0.1": "healthy", "10.0.0.2": "healthy"}

    steady = steps.check_green(world.deps, at(green=waiting))

    assert (waiting.steady, waiting.healthy, waiting.waiting) == (False, 1, True)
    assert (steady.steady, steady.running, steady.healthy, steady.waiting) == (True, 2, 2, False)
    assert steady.model_dump(mode="json")["steady"] is True, "the state machine reads $.green.steady"


def failed(**state: Any) -> DeployState:
    return DeployState.model_validate(
        {"run_id": "run-1", "workflow": "ecs_blue_green", "target": "ecs:prod/web", **state}
    )


def test_the_run_error_names_the_gate_and_the_weight_once() -> None:
    plan = [{"percent": 10}, {"percent": 50}, {"percent": 100}, {"percent": 100, "bake": True}]
    state = failed(
        failed_step="watch",
        error={"Error": "AlarmFired", "Cause": '{"errorMessage": "alarm web-5xx went to ALARM"}'},
        traffic={
            "weight": 50,
            "index": 1,
            "plan": plan,
            "history": [{"percent": 10, "at": "t1"}, {"percent": 50, "at": "t2"}],
        },
        rollback={
            "undone": ["x"],
            "problems": [],
            "live": "blue",
            "put_back": "listener back to 100% blue",
        },
    )

    error = run_error(state)

    assert (error["gate"], error["weight"], error["weights"], error["live"]) == (
        "alarm",
        50,
        [10, 50],
        "blue",
    )
    assert error["message"] == (
        "The alarm gate failed at 50% green (step 2 of 3): alarm web-5xx went to ALARM. "
        "Then: listener back to 100% blue."
    )


def test_an_error_outside_a_gate_names_the_step() -> None:
    state = failed(
        failed_step="start_green",
        error={"Error": "AwsCallFailed", "Cause": '{"errorMessage": "CreateService: AccessDenied"}'},
        rollback={"undone": [], "problems": [], "live": "blue", "put_back": "nothing to put back"},
    )

    error = run_error(state)

    assert error["message"].startswith(
        "The starting green step failed before any production traffic reached green: AwsCallFailed: CreateService"
    )


def smoke(world: World) -> SmokeResult:
    spec = DeploySpec.model_validate({**SPEC.model_dump(), "smoke_test": {"lambda_function": "web-smoke"}})
    return steps.smoke_test(world.deps, at(spec, green=GREEN))


def test_a_lambda_smoke_test_gets_green_and_passes_on_its_word() -> None:
    world = World(functions=FakeFunctions({"passed": True, "reason": "checkout flow OK"}))

    result = smoke(world)

    assert (result.passed, result.detail) == (True, "Lambda web-smoke: checkout flow OK")
    ((name, payload),) = world.functions.calls
    assert name == "web-smoke"
    assert (payload["service"], payload["target_group_arn"], payload["run_id"]) == (
        "web-green",
        GREEN_TG,
        "run-1",
    )


@pytest.mark.parametrize(
    ("functions", "message"),
    [
        (FakeFunctions({"passed": False, "reason": "login 500"}), "says green failed: login 500"),
        (FakeFunctions({"errorMessage": "Task timed out"}, "Unhandled"), "web-smoke failed: Task timed out"),
        (FakeFunctions("ok"), 'must return {"passed": true|false'),
        (FakeFunctions({"passed": "yes"}), 'must return {"passed": true|false'),
    ],
    ids=["says-failed", "raised", "not-an-object", "passed-not-a-bool"],
)
def test_a_lambda_smoke_test_fails_unless_it_clearly_passes(functions: FakeFunctions, message: str) -> None:
    with pytest.raises(SmokeTestFailed) as failure:
        smoke(World(functions=functions))
    assert message in str(failure.value)


def test_a_url_smoke_test_that_gets_no_answer_fails() -> None:
    def unreachable(url: str, timeout: float) -> int:
        raise OSError("timed out")

    spec = DeploySpec.model_validate(
        {**SPEC.model_dump(), "smoke_test": {"url": "http://internal:8080/health", "timeout_seconds": 3}}
    )

    with pytest.raises(SmokeTestFailed, match="GET http://internal:8080/health got no answer: timed out"):
        steps.smoke_test(World(http_get=unreachable).deps, at(spec, green=GREEN))


def test_no_smoke_test_passes_without_a_call() -> None:
    result = steps.smoke_test(World().deps, at(green=GREEN))

    assert (result.passed, result.skipped) == (True, True)


def test_green_rolled_back_by_its_own_circuit_breaker_fails_at_once() -> None:
    world = World()
    # The reused green service's breaker put its previous version back: PRIMARY is web:1 again.
    world.ecs.services["web-green"] = service(
        "web-green",
        GREEN_TG,
        2,
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
        events=("(service web-green) deployment ecs-svc/3 deployment failed: tasks failed to start.",),
    )

    with pytest.raises(
        GreenNotSteady, match="ECS rolled green service web-green back to web:1: web:2 did not deploy"
    ):
        steps.check_green(world.deps, at(green=GREEN))


def test_a_retried_start_adopts_the_green_it_started_instead_of_deploying_again() -> None:
    world = World()  # web-green already runs 2 tasks of web:2: the first attempt's answer was lost
    spec = DeploySpec.model_validate(
        {**SPEC.model_dump(), "green": {**SPEC.green.model_dump(), "task_definition": NEW}}
    )

    green = steps.start_green(world.deps, at(spec))

    assert (green.service, green.task_definition, green.desired) == ("web-green", NEW, 2)
    assert world.ecs.updates == []


def test_a_failed_shift_reports_the_share_it_was_moving_to() -> None:
    error = {"Error": "AwsCallFailed", "Cause": '{"errorMessage": "ModifyListener failed: Throttling"}'}
    rolled_back = {"undone": [], "problems": [], "live": "blue", "put_back": "listener back to 100% blue"}
    state = at(failed_step="shift", error=error, rollback=rolled_back)

    first = run_error(state)
    assert first["weight"] == 10
    assert "failed while shifting to 10% green (step 1 of 2)" in first["message"]

    deps = World().deps
    traffic = steps.watch(deps, at(traffic=steps.shift(deps, at())))
    second = run_error(at(failed_step="shift", error=error, rollback=rolled_back, traffic=traffic))
    assert second["weight"] == 100
    assert "while shifting to 100% green (step 2 of 2)" in second["message"]


def test_the_step_table_names_every_step_of_the_state_machine() -> None:
    definition = Path(__file__).resolve().parents[3] / "statemachines" / "ecs_blue_green.asl.json"
    named = {
        state["Parameters"]["Payload"]["step"]
        for state in json.loads(definition.read_text())["States"].values()
        if state["Type"] == "Task"
    }
    assert named - {"finish", "finish_failed"} == set(steps.step_table(World().deps))


# A plan as an older version stored it: the smoke test without its unset kind, no container.
STORED_PLAN: dict[str, Any] = {
    "spec": {
        "cluster": CLUSTER,
        "listener_arn": LISTENER,
        "test_listener_arn": None,
        "blue": {
            "service": "web",
            "service_arn": "arn:web",
            "target_group": BLUE_TG,
            "task_definition": "web:1",
            "desired": 2,
        },
        "green": {
            "service": "web-green",
            "exists": True,
            "service_arn": None,
            "target_group": GREEN_TG,
            "task_definition": None,
            "image": "web:2.0",
            "container": "app",
        },
        "traffic": [{"percent": 10, "hold_seconds": 300}, {"percent": 100, "hold_seconds": 0}],
        "bake_seconds": 600,
        "alarms": [],
        "smoke_test": {"url": "http://internal/health", "timeout_seconds": 10},
    },
    "actions": ["..."],
}


def ended(mark: str | None = None, plan: dict[str, Any] | None = STORED_PLAN) -> Run:
    return Run(
        run_id="run-1",
        workflow="ecs_blue_green",
        target="ecs:prod/web",
        status=RUNNING,
        requester=Requester("iam", "alice"),
        request={},
        request_hash="h",
        created_at="t0",
        updated_at="t0",
        plan=plan,
        mark=mark,
    )


def test_an_aborted_run_stored_by_an_older_version_is_put_back_on_blue() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 90, GREEN_TG: 10}

    done = put_back_ended_run(ended(), world.aws)

    assert done is not None
    assert (done["live"], done["summary"]) == (
        "blue",
        "listener web/2222 back to 100% blue (web-blue) from 10% green; green service web-green scaled to 0",
    )
    assert world.elbv2.weights == {BLUE_TG: 100, GREEN_TG: 0}


def test_an_abort_of_a_run_retiring_blue_keeps_green_and_one_without_a_plan_puts_back_nothing() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 0, GREEN_TG: 100}

    retiring = put_back_ended_run(ended(mark="retiring_blue"), world.aws)

    assert retiring is not None
    assert retiring["live"] == "green"
    assert put_back_ended_run(ended(plan=None), world.aws) is None
