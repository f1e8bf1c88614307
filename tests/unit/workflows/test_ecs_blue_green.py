"""The blue/green steps' decisions, on fakes of ECS, ELBv2 and CloudWatch: holds counted in waits, each
gate, and putting traffic back on one side whatever happened."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from opsflow.aws.ecs import Deployment, ServiceDetail, ServiceLoadBalancer
from opsflow.aws.elbv2 import Listener
from opsflow.aws.lambda_functions import Invocation
from opsflow.errors import AwsCallFailed, NotFound, Refused
from opsflow.workflows.ecs_blue_green import steps as ecs_blue_green
from opsflow.workflows.ecs_blue_green.steps import (
    AlarmFired,
    Deploy,
    GreenNotSteady,
    GreenUnhealthy,
    RunEnded,
    SmokeTestFailed,
)

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

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        return {n: self.states[n] for n in names if n in self.states}


@dataclass
class World:
    elbv2: FakeElbv2 = field(default_factory=FakeElbv2)
    ecs: FakeEcs = field(
        default_factory=lambda: FakeEcs(
            {"web": service("web", BLUE_TG, 2, "web:1"), "web-green": service("web-green", GREEN_TG, 2)}
        )
    )
    cloudwatch: FakeCloudWatch = field(default_factory=FakeCloudWatch)
    running: bool = True

    def deploy(self, poll_seconds: int = 30, green_max_wait_seconds: int = 120) -> Deploy:
        aws: Any = ecs_blue_green.DeployAws(
            ecs=self.ecs,  # type: ignore[arg-type]
            elbv2=self.elbv2,  # type: ignore[arg-type]
            cloudwatch=self.cloudwatch,  # type: ignore[arg-type]
            events=None,  # type: ignore[arg-type]
            functions=None,  # type: ignore[arg-type]
        )
        return Deploy(aws, lambda _: self.running, poll_seconds, green_max_wait_seconds)


SPEC: dict[str, Any] = {
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


def test_a_hold_is_counted_in_waits_and_checked_once_more_at_its_end() -> None:
    deploy = World().deploy(poll_seconds=30)
    traffic = deploy.shift(SPEC, None, "run-1")
    assert (traffic["weight"], traffic["remaining"]) == (10, 70)

    seen = []
    traffic = deploy.watch(SPEC, traffic)  # right after the shift: nothing waited yet
    while traffic["holding"]:
        seen.append((traffic["remaining"], traffic["wait_seconds"]))
        traffic = deploy.watch(SPEC, traffic)  # after a Wait of wait_seconds

    assert seen == [(70, 30), (40, 30), (10, 10)]
    assert traffic["done"] is False
    traffic = deploy.shift(SPEC, traffic, "run-1")
    bake = deploy.shift(SPEC, deploy.watch(SPEC, traffic), "run-1")
    assert (bake["weight"], bake["baking"], bake["remaining"]) == (100, True, 60)
    assert [h["percent"] for h in bake["history"]] == [10, 100], "the bake does not touch the listener"


def test_an_alarm_in_alarm_fails_the_watch_naming_it() -> None:
    world = World()
    deploy = world.deploy()
    traffic = deploy.shift(SPEC, None, "run-1")
    world.cloudwatch.states["web-5xx"] = "ALARM"

    with pytest.raises(AlarmFired, match="alarm web-5xx went to ALARM"):
        deploy.watch(SPEC, traffic)


def test_a_deleted_alarm_fails_the_watch_rather_than_going_on_blind() -> None:
    world = World()
    deploy = world.deploy()
    traffic = deploy.shift(SPEC, None, "run-1")
    del world.cloudwatch.states["web-5xx"]

    with pytest.raises(AlarmFired, match="was deleted"):
        deploy.watch(SPEC, traffic)


def test_green_without_a_healthy_target_fails_the_watch() -> None:
    world = World()
    deploy = world.deploy()
    traffic = deploy.shift(SPEC, None, "run-1")
    world.elbv2.health[GREEN_TG] = {"10.0.0.1": "unhealthy", "10.0.0.2": "draining"}

    with pytest.raises(GreenUnhealthy, match=r"no healthy target in web-green \(draining, unhealthy\)"):
        deploy.watch(SPEC, traffic)


def test_a_shift_landing_after_the_run_ended_is_put_back_by_the_step_itself() -> None:
    world = World()
    world.running = False  # aborted while this step was on its way

    with pytest.raises(RunEnded, match="back to 100% blue"):
        world.deploy().shift(SPEC, None, "run-1")

    assert world.elbv2.writes == [{BLUE_TG: 90, GREEN_TG: 10}, {BLUE_TG: 100, GREEN_TG: 0}]


def test_put_back_sends_everything_to_blue_and_scales_green_down() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 70, GREEN_TG: 30}

    done = world.deploy().put_back(SPEC)

    assert world.elbv2.weights == {BLUE_TG: 100, GREEN_TG: 0}
    assert world.ecs.services["web-green"].desired_count == 0
    assert done["live"] == "blue"
    assert done["undone"] == [
        "listener web/2222 back to 100% blue (web-blue) from 30% green",
        "green service web-green scaled to 0",
    ]


def test_put_back_after_blue_was_retired_keeps_green_live() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 0, GREEN_TG: 100}
    world.ecs.services["web"] = replace(world.ecs.services["web"], desired_count=0)

    done = world.deploy().put_back(SPEC)

    assert world.elbv2.weights == {BLUE_TG: 0, GREEN_TG: 100}
    assert world.ecs.services["web-green"].desired_count == 2
    assert done["live"] == "green"


def test_put_back_that_cannot_set_the_listener_keeps_green_serving_its_share_and_raises_to_be_retried() -> (
    None
):
    world = World()
    world.elbv2.weights = {BLUE_TG: 50, GREEN_TG: 50}
    world.elbv2.refuse = True

    with pytest.raises(AwsCallFailed, match="Throttling"):
        world.deploy().put_back(SPEC)

    assert world.ecs.services["web-green"].desired_count == 2


def test_blue_is_not_retired_unless_the_listener_sends_everything_to_green() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 10, GREEN_TG: 90}

    with pytest.raises(Refused, match="does not send all traffic to green"):
        world.deploy().retire_blue(SPEC, "run-1")

    assert world.ecs.updates == []


def test_blue_is_not_retired_by_a_run_that_ended_meanwhile_and_an_abort_after_the_claim_keeps_green() -> None:
    world = World()
    world.elbv2.weights = {BLUE_TG: 0, GREEN_TG: 100}
    claims: list[tuple[str, str]] = []
    refused = replace(world.deploy(), claim=lambda run_id, mark: claims.append((run_id, mark)) or False)

    with pytest.raises(RunEnded, match="blue keeps its tasks"):
        refused.retire_blue(SPEC, "run-1")

    assert claims == [("run-1", "retiring_blue")]
    assert world.ecs.services["web"].desired_count == 2
    # Claimed, then aborted while blue was being scaled down: the abort keeps green live.
    done = world.deploy().put_back(SPEC, retiring=True)
    assert done["live"] == "green"
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
    green = {"service": "web-green", "task_definition": NEW, "desired": 2, "waited": 0}

    with pytest.raises(
        GreenNotSteady, match=r"3 task\(s\) of green service web-green failed to start.*CannotPull"
    ):
        world.deploy().check_green(SPEC, green)


def test_green_not_steady_in_time_fails_after_the_waits_add_up() -> None:
    world = World()
    world.elbv2.health[GREEN_TG] = {"10.0.0.1": "initial"}
    deploy = world.deploy(poll_seconds=30, green_max_wait_seconds=90)
    green = {"service": "web-green", "task_definition": NEW, "desired": 2, "waited": 0}

    green = deploy.check_green(SPEC, green)
    green = deploy.check_green(SPEC, green)
    assert (green["steady"], green["waited"]) == (False, 60)
    with pytest.raises(GreenNotSteady, match=r"not steady after 90 s: 2 of 2 task\(s\) running, 0 healthy"):
        deploy.check_green(SPEC, green)


def test_the_run_error_names_the_gate_and_the_weight_once() -> None:
    state = {
        "failed_step": "watch",
        "error": {"Error": "AlarmFired", "Cause": '{"errorMessage": "alarm web-5xx went to ALARM"}'},
        "traffic": {
            "weight": 50,
            "index": 1,
            "plan": [{}, {}, {}, {}],
            "history": [{"percent": 10}, {"percent": 50}],
        },
        "rollback": {
            "undone": ["x"],
            "problems": [],
            "live": "blue",
            "put_back": "listener back to 100% blue",
        },
    }

    error = ecs_blue_green.run_error(state)

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
    state = {
        "failed_step": "start_green",
        "error": {"Error": "AwsCallFailed", "Cause": '{"errorMessage": "CreateService: AccessDenied"}'},
        "rollback": {"undone": [], "problems": [], "live": "blue", "put_back": "nothing to put back"},
    }

    error = ecs_blue_green.run_error(state)

    assert error["message"].startswith(
        "The starting green step failed before any production traffic reached green: AwsCallFailed: CreateService"
    )


@dataclass
class FakeFunctions:
    answer: Any
    function_error: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def invoke(self, function: str, payload: dict[str, Any]) -> Invocation:
        self.calls.append((function, payload))
        return Invocation(self.answer, self.function_error)


def smoke(world: World, functions: FakeFunctions) -> dict[str, Any]:
    deploy = world.deploy()
    deploy = replace(deploy, aws=replace(deploy.aws, functions=functions))
    spec = {**SPEC, "smoke_test": {"lambda_function": "web-smoke", "timeout_seconds": 10}}
    green = {"service": "web-green", "task_definition": NEW}
    return deploy.smoke_test(spec, green, "run-1")


def test_a_lambda_smoke_test_gets_green_and_passes_on_its_word() -> None:
    functions = FakeFunctions({"passed": True, "reason": "checkout flow OK"})

    result = smoke(World(), functions)

    assert result == {"passed": True, "detail": "Lambda web-smoke: checkout flow OK"}
    ((name, payload),) = functions.calls
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
    with pytest.raises(SmokeTestFailed) as failed:
        smoke(World(), functions)
    assert message in str(failed.value)


def test_a_url_smoke_test_that_gets_no_answer_fails() -> None:
    def unreachable(url: str, timeout: float) -> int:
        raise OSError("timed out")

    deploy = World().deploy()
    deploy = replace(deploy, aws=replace(deploy.aws, http_get=unreachable))
    spec = {**SPEC, "smoke_test": {"url": "http://internal:8080/health", "timeout_seconds": 3}}

    with pytest.raises(SmokeTestFailed, match="GET http://internal:8080/health got no answer: timed out"):
        deploy.smoke_test(spec, {"service": "web-green"}, "run-1")


def test_long_holds_are_polled_less_often_so_the_execution_history_stays_bounded() -> None:
    deploy = World().deploy(poll_seconds=5)
    spec = {
        **SPEC,
        "traffic": [{"percent": 10, "hold_seconds": 6 * 3600}, {"percent": 100, "hold_seconds": 0}],
    }
    spec["bake_seconds"] = 6 * 3600

    traffic = deploy.watch(spec, deploy.shift(spec, None, "run-1"))
    watches = 1
    while traffic["holding"]:
        traffic = deploy.watch(spec, traffic)
        watches += 1

    assert traffic["wait_seconds"] == 0
    assert watches <= 1001, "one hold of the two: at most half of the 2,000 watches"
    assert (
        World()
        .deploy(poll_seconds=5)
        .watch(SPEC, World().deploy(poll_seconds=5).shift(SPEC, None, "r"))["wait_seconds"]
        == 5
    ), "short holds keep the configured poll"


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
    green = {"service": "web-green", "task_definition": NEW, "desired": 2, "waited": 0}

    with pytest.raises(
        GreenNotSteady, match="ECS rolled green service web-green back to web:1: web:2 did not deploy"
    ):
        world.deploy().check_green(SPEC, green)


def test_a_retried_start_adopts_the_green_it_started_instead_of_deploying_again() -> None:
    world = World()  # web-green already runs 2 tasks of web:2: the first attempt's answer was lost

    green = world.deploy().start_green({**SPEC, "green": {**SPEC["green"], "task_definition": NEW}}, "run-1")

    assert (green["service"], green["task_definition"], green["desired"]) == ("web-green", NEW, 2)
    assert world.ecs.updates == []


def test_a_failed_shift_reports_the_share_it_was_moving_to() -> None:
    state = {
        "failed_step": "shift",
        "error": {"Error": "AwsCallFailed", "Cause": '{"errorMessage": "ModifyListener failed: Throttling"}'},
        "guard": {"spec": SPEC},
        "rollback": {"undone": [], "problems": [], "live": "blue", "put_back": "listener back to 100% blue"},
    }

    first = ecs_blue_green.run_error(state)
    assert first["weight"] == 10
    assert "failed while shifting to 10% green (step 1 of 2)" in first["message"]

    deploy = World().deploy()
    traffic = deploy.watch(SPEC, deploy.shift(SPEC, None, "run-1"))
    second = ecs_blue_green.run_error({**state, "traffic": traffic})
    assert second["weight"] == 100
    assert "while shifting to 100% green (step 2 of 2)" in second["message"]
