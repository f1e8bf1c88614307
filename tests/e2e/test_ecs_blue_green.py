"""ECS blue/green end to end on the embedded runtime, with the ECS and ELBv2 emulations: green's tasks
start and pass health checks, and the listener's weights are read back from ELBv2 itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from opsflow.store.locks import DynamoLockStore
from opsflow_local import EmbeddedAws, seed

ALICE = "arn:aws:iam::123456789012:user/alice"
NEW_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:2.0"
ALARM = "web-5xx"
BLUE_ONLY = {"blue": 100, "green": 0}
GREEN_ONLY = {"blue": 0, "green": 100}


@pytest.fixture
def app(aws: EmbeddedAws) -> seed.BlueGreenApp:
    seed.alarm(aws, ALARM)
    return seed.blue_green_app(aws)


@pytest.fixture
def test_listener_url() -> Iterator[str]:
    with seed.health_endpoint() as url:
        yield url


def start(aws: EmbeddedAws, request: dict[str, Any]) -> str:
    response = aws.api.post("/runs", json=request, principal=ALICE)
    assert response.status_code == 202, response.json()
    return str(response.json()["run_id"])


def weights(aws: EmbeddedAws, app: seed.BlueGreenApp) -> dict[str, int]:
    (action,) = aws.client("elbv2").describe_listeners(ListenerArns=[app.listener_arn])["Listeners"][0][
        "DefaultActions"
    ]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or [
        {"TargetGroupArn": action["TargetGroupArn"], "Weight": 100}
    ]
    named = {app.blue_target_group: "blue", app.green_target_group: "green"}
    found = {named[g["TargetGroupArn"]]: int(g.get("Weight", 1)) for g in groups}
    return {"blue": found.get("blue", 0), "green": found.get("green", 0)}


def desired(aws: EmbeddedAws, app: seed.BlueGreenApp, service: str) -> int:
    found = aws.client("ecs").describe_services(cluster=app.cluster, services=[service])["services"]
    return int(found[0]["desiredCount"]) if found and found[0]["status"] == "ACTIVE" else 0


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


def shifted_to(aws: EmbeddedAws, run_id: str, percent: int) -> bool:
    steps = aws.api.get(f"/runs/{run_id}").json()["steps"]
    return any(s["step"] == "shift" and s["summary"].startswith(f"{percent}% of traffic") for s in steps)


def assert_one_side_live(aws: EmbeddedAws, app: seed.BlueGreenApp) -> str:
    """The invariant: all traffic on one side, and that side's service the one running."""
    now = weights(aws, app)
    assert now in (BLUE_ONLY, GREEN_ONLY), now
    if now == BLUE_ONLY:
        assert desired(aws, app, "web") == 2
        assert desired(aws, app, "web-green") == 0
        return "blue"
    assert desired(aws, app, "web-green") == 2
    assert desired(aws, app, "web") == 0
    return "green"


# Success ----------------------------------------------------------------------------------------


def test_canary_10_then_all_succeeds_and_retires_blue_after_the_bake(
    aws: EmbeddedAws, app: seed.BlueGreenApp, test_listener_url: str
) -> None:
    run_id = start(
        aws,
        app.request(
            image=NEW_IMAGE,
            test_listener_arn=app.test_listener_arn,
            traffic={"type": "canary", "percent": 10, "hold_seconds": 120},
            alarms=[ALARM],
            smoke_test={"url": f"{test_listener_url}/health"},
            bake_seconds=300,
        ),
    )
    run = aws.wait_for_run(run_id, timeout=120)

    assert run["status"] == "SUCCEEDED", run["error"]
    assert run["output"]["weights"] == [10, 100]
    assert weights(aws, app) == GREEN_ONLY
    assert desired(aws, app, "web") == 0
    assert desired(aws, app, "web-green") == 2
    assert run["output"]["live"]["service"] == "web-green"
    green = aws.client("ecs").describe_services(cluster="prod", services=["web-green"], include=["TAGS"])[
        "services"
    ][0]
    assert green["taskDefinition"].endswith("task-definition/web:2")
    assert {"key": "opsflow:blue-green", "value": "live"} in green["tags"]
    (container,) = aws.client("ecs").describe_task_definition(taskDefinition="web:2")["taskDefinition"][
        "containerDefinitions"
    ]
    assert container["image"] == NEW_IMAGE
    (test_action,) = aws.client("elbv2").describe_listeners(ListenerArns=[app.test_listener_arn])[
        "Listeners"
    ][0]["DefaultActions"]
    assert [g["TargetGroupArn"] for g in test_action["ForwardConfig"]["TargetGroups"]] == [
        app.green_target_group
    ]
    steps = [s["step"] for s in run["steps"]]
    # Blue is retired only after the bake: the last watch (the bake's end) comes before retire_blue.
    assert steps.index("retire_blue") > max(i for i, s in enumerate(steps) if s == "watch")
    assert "smoke_test" in steps


def test_the_next_deploy_goes_back_to_the_first_service_and_linear_steps_are_recorded(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    first = start(
        aws, app.request(image=NEW_IMAGE, traffic={"type": "canary", "percent": 50, "hold_seconds": 0})
    )
    assert aws.wait_for_run(first, timeout=120)["status"] == "SUCCEEDED"

    # The pipeline names the same service; web-green is live now, so web takes the new version.
    second = start(
        aws,
        app.request(
            image=NEW_IMAGE.replace("2.0", "3.0"),
            traffic={"type": "linear", "step_percent": 25, "interval_seconds": 30},
            bake_seconds=0,
        ),
    )
    run = aws.wait_for_run(second, timeout=120)

    assert run["status"] == "SUCCEEDED", run["error"]
    assert run["output"]["weights"] == [25, 50, 75, 100]
    assert run["output"]["live"]["service"] == "web"
    assert weights(aws, app) == BLUE_ONLY
    assert desired(aws, app, "web") == 2
    assert desired(aws, app, "web-green") == 0


# Gates --------------------------------------------------------------------------------------------


def test_an_alarm_in_the_second_step_puts_all_traffic_back_on_blue_before_the_next_step(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    run_id = start(
        aws,
        app.request(
            image=NEW_IMAGE,
            traffic={
                "type": "steps",
                "steps": [
                    {"percent": 10, "hold_seconds": 60},
                    {"percent": 50, "hold_seconds": 600},
                    {"percent": 100},
                ],
            },
            alarms=[ALARM],
        ),
    )
    wait_for("the second step", lambda: shifted_to(aws, run_id, 50))
    assert weights(aws, app) == {"blue": 50, "green": 50}

    aws.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx above 10")
    run = aws.wait_for_run(run_id, timeout=60)

    assert run["status"] == "FAILED"
    assert weights(aws, app) == BLUE_ONLY
    assert desired(aws, app, "web-green") == 0
    assert desired(aws, app, "web") == 2
    error = run["error"]
    assert (error["gate"], error["weight"]) == ("alarm", 50)
    assert ALARM in error["message"]
    assert "50% green (step 2 of 3)" in error["message"]
    assert error["weights"] == [10, 50], "the third step never started"
    assert "back to 100% blue" in error["message"]


def flip(aws: EmbeddedAws, alarm: str) -> None:
    """The alarm goes to ALARM and straight back to OK: one read of its state after would see nothing."""
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx above 10 for 1 minute")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="5xx back under 10")


def holding(aws: EmbeddedAws, run_id: str, percent: int) -> bool:
    """The step's first watch passed: its hold has begun."""
    steps = aws.api.get(f"/runs/{run_id}").json()["steps"]
    return any(
        s["step"] == "watch" and s["summary"].startswith(f"{percent}% on green, gates passed") for s in steps
    )


def hold_began(aws: EmbeddedAws, run_id: str, holds: int) -> bool:
    """The `holds`-th hold's step has run: its token is recorded and its one look at the alarms is done
    (Step Functions records TaskSubmitted once the wait's Lambda invocation has returned)."""
    arn = aws.api.get(f"/runs/{run_id}").json()["execution_arn"]
    events = aws.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e for e in events if e["type"] == "TaskStateEntered"]
    holds_entered = sum(1 for e in entered if e["stateEnteredEventDetails"]["name"] == "HoldTraffic")
    return holds_entered >= holds and events[-1]["type"] == "TaskSubmitted"


THREE_STEPS = {
    "type": "steps",
    "steps": [{"percent": 10, "hold_seconds": 60}, {"percent": 50, "hold_seconds": 900}, {"percent": 100}],
}


def test_an_alarm_that_goes_to_alarm_and_back_within_a_hold_rolls_back_before_the_next_step(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    run_id = start(aws, app.request(image=NEW_IMAGE, traffic=THREE_STEPS, alarms=[ALARM]))
    wait_for("the second step's hold", lambda: holding(aws, run_id, 50))
    flip(aws, ALARM)
    run = aws.wait_for_run(run_id, timeout=60)

    assert run["status"] == "FAILED"
    assert weights(aws, app) == BLUE_ONLY
    error = run["error"]
    assert (error["gate"], error["weight"], error["step"]) == ("alarm", 50, "hold")
    assert f"alarm {ALARM} went to ALARM: 5xx above 10 for 1 minute" in error["message"]
    assert error["weights"] == [10, 50], "the third step never started"
    # The state change ended the hold: the 900 s hold (9 s here) had not run out.
    hold = next(s for s in run["steps"] if s["step"] == "hold")
    assert hold["status"] == "failed"


def test_a_flip_whose_event_never_resumed_the_hold_is_found_in_the_alarms_history_at_its_end(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    # The resume function fails on the alarm's event, and on both of Lambda's retries of it.
    resume = aws.resource_name("ResumeFunction")
    for _ in range(3):
        aws.faults.fail_invocation(resume, "lost", when=lambda event: event.get("source") == "aws.cloudwatch")
    run_id = start(
        aws,
        app.request(
            image=NEW_IMAGE,
            traffic={
                **THREE_STEPS,
                "steps": [
                    {"percent": 10, "hold_seconds": 60},
                    {"percent": 50, "hold_seconds": 600},
                    {"percent": 100},
                ],
            },
            alarms=[ALARM],
        ),
    )
    wait_for("the second step's hold", lambda: holding(aws, run_id, 50) and hold_began(aws, run_id, 2))
    flip(aws, ALARM)
    run = aws.wait_for_run(run_id, timeout=60)

    assert run["status"] == "FAILED"
    assert weights(aws, app) == BLUE_ONLY
    error = run["error"]
    assert (error["gate"], error["weight"], error["step"]) == ("alarm", 50, "watch")
    assert f"alarm {ALARM} went to ALARM at" in error["message"]
    assert "and back within the hold" in error["message"]
    assert error["weights"] == [10, 50]


def test_a_failing_smoke_test_stops_the_deploy_before_any_production_traffic(
    aws: EmbeddedAws, app: seed.BlueGreenApp, test_listener_url: str
) -> None:
    run_id = start(
        aws,
        app.request(
            image=NEW_IMAGE,
            test_listener_arn=app.test_listener_arn,
            smoke_test={"url": f"{test_listener_url}/broken"},
        ),
    )
    run = aws.wait_for_run(run_id, timeout=60)

    assert run["status"] == "FAILED"
    assert (run["error"]["gate"], run["error"]["weight"]) == ("smoke test", 0)
    assert "answered 404, not 2xx" in run["error"]["message"]
    assert run["error"]["weights"] == []
    assert assert_one_side_live(aws, app) == "blue"


def test_green_tasks_that_never_start_fail_the_deploy_and_blue_keeps_everything(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    aws.emulation.ecs.fail_tasks("prod", "web-green")
    run_id = start(aws, app.request(image=NEW_IMAGE))
    run = aws.wait_for_run(run_id, timeout=60)

    assert run["status"] == "FAILED"
    assert run["error"]["gate"] == "green stability"
    assert (
        "CannotPullContainerError" in run["error"]["message"] or "failed to start" in run["error"]["message"]
    )
    assert assert_one_side_live(aws, app) == "blue"


# Failure at every step ----------------------------------------------------------------------------

EVERY_STEP = [
    ("guard", 1),
    ("start_green", 1),
    ("check_green", 1),
    ("smoke_test", 1),
    ("shift", 1),
    ("shift", 2),
    ("watch", 1),
    ("watch", 3),
    ("shift", 3),  # the bake's shift: no weight change
    ("retire_blue", 1),
]
# A failure after the step ran matters where the step changed something: green started, traffic moved,
# blue retired. The others only read, so their failure after running is their failure before.
CHANGES = {"start_green", "shift", "retire_blue"}
FAILURES = [
    (step, nth, when)
    for step, nth in EVERY_STEP
    for when in ("before", "after")
    if when == "before" or step in CHANGES
]


def inject(aws: EmbeddedAws, failures: dict[str, tuple[int, str]]) -> None:
    """The steps Lambda's `n`th invocation of each named step fails, before or after the step did its work
    (an error after acting is the harder case: the change is made, the answer lost)."""
    steps_function = aws.resource_name("EcsBlueGreenStepsFunction")
    for step, (nth, when) in failures.items():
        aws.faults.fail_invocation(
            steps_function,
            f"injected failure {when} {step} #{nth}",
            when=lambda event, step=step: event.get("step") == step,
            nth=nth,
            after_running=when == "after",
        )


@pytest.mark.parametrize(("step", "nth", "when"), FAILURES, ids=[f"{s}#{n}-{w}" for s, n, w in FAILURES])
def test_a_failure_at_any_step_leaves_all_traffic_on_one_side(
    aws: EmbeddedAws,
    app: seed.BlueGreenApp,
    test_listener_url: str,
    step: str,
    nth: int,
    when: str,
) -> None:
    inject(aws, {step: (nth, when)})
    run_id = start(
        aws,
        app.request(
            image=NEW_IMAGE,
            test_listener_arn=app.test_listener_arn,
            smoke_test={"url": f"{test_listener_url}/health"},
            traffic={"type": "steps", "steps": [{"percent": 20, "hold_seconds": 60}, {"percent": 100}]},
            alarms=[ALARM],
            bake_seconds=60,
        ),
    )
    run = aws.wait_for_run(run_id, timeout=90)

    assert run["status"] == "FAILED", run["status"]
    assert f"injected failure {when} {step}" in run["error"]["message"]
    live = assert_one_side_live(aws, app)
    # Only a failure after blue was scaled to zero leaves green live; everything else goes back to blue.
    assert live == ("green" if (step, when) == ("retire_blue", "after") else "blue")
    assert run["error"]["live"] in (None, live) if step == "guard" else run["error"]["live"] == live


def test_a_rollback_that_fails_once_is_retried_and_still_puts_traffic_back(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    inject(aws, {"watch": (2, "before"), "rollback": (1, "before")})
    run_id = start(
        aws,
        app.request(
            image=NEW_IMAGE,
            traffic={"type": "steps", "steps": [{"percent": 30, "hold_seconds": 60}, {"percent": 100}]},
        ),
    )
    run = aws.wait_for_run(run_id, timeout=90)

    assert run["status"] == "FAILED"
    assert run["error"]["weight"] == 30
    assert assert_one_side_live(aws, app) == "blue"


# Throttling ---------------------------------------------------------------------------------------


def test_a_deploy_throttled_past_the_sdks_retries_still_goes_live(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    # Each injected answer stands for a call whose SDK retries all failed the same way.
    steps = aws.resource_name("EcsBlueGreenStepsFunction")
    with aws.faults.only_here() as faults:
        shifts = faults.fail_call(
            "elbv2", "ModifyListener", "Throttling", "Rate exceeded", caller=steps, times=3
        )
        health = faults.fail_call(
            "elbv2", "DescribeTargetHealth", "Throttling", "Rate exceeded", caller=steps, times=3
        )
        run_id = start(
            aws,
            app.request(image=NEW_IMAGE, traffic={"type": "canary", "percent": 10, "hold_seconds": 60}),
        )
        run = aws.wait_for_run(run_id, timeout=90)

    assert run["status"] == "SUCCEEDED", run["error"]
    assert (shifts.hits, health.hits) == (3, 3)
    assert weights(aws, app) == GREEN_ONLY
    retried = [s for s in run["steps"] if s["status"] == "retrying"]
    assert len(retried) == 6
    assert {s["summary"].split(" failed:")[0] for s in retried} == {"ModifyListener", "DescribeTargetHealth"}


def test_a_listener_change_refused_outright_fails_at_once_and_rolls_back(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    with aws.faults.only_here() as faults:
        refused = faults.fail_call(
            "elbv2",
            "ModifyListener",
            "ValidationError",
            "A forward action's target group weights must add up to more than zero",
            when=lambda params: params.get("ListenerArn") == app.listener_arn,
        )
        run_id = start(
            aws,
            app.request(image=NEW_IMAGE, traffic={"type": "canary", "percent": 10, "hold_seconds": 60}),
        )
        run = aws.wait_for_run(run_id, timeout=90)

    assert run["status"] == "FAILED"
    assert refused.hits == 1
    assert "ModifyListener failed: ValidationError" in run["error"]["message"]
    assert not [s for s in run["steps"] if s["status"] == "retrying"]
    assert assert_one_side_live(aws, app) == "blue"


def test_a_pre_flight_check_aws_throttles_is_a_503_to_retry_and_starts_nothing(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    request = app.request(image=NEW_IMAGE)
    with aws.faults.only_here() as faults:
        faults.fail_call("elbv2", "DescribeTargetHealth", "Throttling", "Rate exceeded", times=None)
        response = aws.api.post("/runs", json=request, principal=ALICE)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"] == "AwsTransient"
    assert "DescribeTargetHealth failed: Throttling: Rate exceeded" in response.json()["message"]
    assert aws.api.get("/runs?workflow=ecs_blue_green").json()["runs"] == []
    # Once AWS answers again, the same request goes through.
    assert aws.api.post("/runs", json={**request, "dry_run": True}, principal=ALICE).status_code == 200


# Abort --------------------------------------------------------------------------------------------


def wait_until_put_back(aws: EmbeddedAws, run_id: str) -> dict[str, Any]:
    wait_for(
        "the aborted run to be put back",
        lambda: (aws.api.get(f"/runs/{run_id}").json().get("error") or {}).get("live") is not None,
    )
    run: dict[str, Any] = aws.api.get(f"/runs/{run_id}").json()
    return run


def test_abort_mid_shift_restores_all_traffic_to_blue_at_once(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    run_id = start(
        aws,
        app.request(
            image=NEW_IMAGE,
            traffic={
                "type": "steps",
                "steps": [
                    {"percent": 10, "hold_seconds": 30},
                    {"percent": 40, "hold_seconds": 3600},
                    {"percent": 100},
                ],
            },
        ),
    )
    wait_for("the second step", lambda: shifted_to(aws, run_id, 40))

    response = aws.api.post(f"/runs/{run_id}/abort", principal=ALICE)
    assert response.status_code == 202, response.json()
    run = wait_until_put_back(aws, run_id)

    assert run["status"] == "ABORTED"
    assert weights(aws, app) == BLUE_ONLY
    assert desired(aws, app, "web-green") == 0
    assert run["error"]["live"] == "blue"
    assert any(
        "back to 100% blue" in line and "from 40% green" in line
        for line in run["error"]["rollback"]["undone"]
    )
    assert not any(s["step"] == "retire_blue" for s in run["steps"])
    assert aws.api.get("/runs?target=ecs:prod/web").json()["runs"][0]["status"] == "ABORTED"


def test_abort_from_the_chatbot_channel_does_the_same(aws: EmbeddedAws, app: seed.BlueGreenApp) -> None:
    run_id = start(
        aws, app.request(image=NEW_IMAGE, traffic={"type": "canary", "percent": 10, "hold_seconds": 3600})
    )
    wait_for("the canary", lambda: shifted_to(aws, run_id, 10))

    reply = aws.lambdas.invoke(aws.resource_name("CommandFunction"), {"command": "abort", "run_id": run_id})
    assert "is being stopped" in reply
    run = wait_until_put_back(aws, run_id)

    assert run["status"] == "ABORTED"
    assert assert_one_side_live(aws, app) == "blue"


def dead_letters(aws: EmbeddedAws, queue: str) -> int:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=aws.resource_name(queue))["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def recorded_status(aws: EmbeddedAws, run_id: str) -> str:
    """The run record's own status (the API shows an ended execution's status over a RUNNING record)."""
    item = aws.client("dynamodb").get_item(
        TableName=aws.resource_name("RunsTable"), Key={"run_id": {"S": run_id}}
    )["Item"]
    return str(item["status"]["S"])


def lock_holder(aws: EmbeddedAws, target: str) -> str | None:
    lock = DynamoLockStore(aws.client("dynamodb"), aws.resource_name("LocksTable")).holder(target)
    return lock.run_id if lock else None


def test_an_abort_run_ended_could_not_settle_waits_in_its_queue_and_the_redrive_puts_traffic_back(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    run_id = start(
        aws, app.request(image=NEW_IMAGE, traffic={"type": "canary", "percent": 10, "hold_seconds": 3600})
    )
    wait_for("the canary", lambda: shifted_to(aws, run_id, 10))
    run_ended = aws.resource_name("RunEndedFunction")
    with aws.faults.only_here():
        aws.faults.fail_call(
            "dynamodb", "GetItem", "ProvisionedThroughputExceededException", caller=run_ended, times=None
        )
        assert aws.api.post(f"/runs/{run_id}/abort", principal=ALICE).status_code == 202
        wait_for("run_ended's dead letter", lambda: dead_letters(aws, "RunEndedDeadLetterQueue") == 1)
        # Lost, the event would leave the canary's traffic on green and the run holding its target.
        assert recorded_status(aws, run_id) == "RUNNING"
        assert lock_holder(aws, "ecs:prod/web") == run_id
        assert weights(aws, app) == {"blue": 90, "green": 10}

    assert aws.lambdas.invoke(run_ended, {"redrive": True}) == {"redriven": 1, "failed": 0}

    run = aws.api.get(f"/runs/{run_id}").json()
    ended = aws.client("stepfunctions").describe_execution(executionArn=run["execution_arn"])["status"]
    # ABORTED, or FAILED when moto's interpreter trips over the stop: either way, as the execution ended.
    assert recorded_status(aws, run_id) == ended
    assert run["error"]["live"] == "blue"
    assert assert_one_side_live(aws, app) == "blue"
    assert lock_holder(aws, "ecs:prod/web") is None
    assert dead_letters(aws, "RunEndedDeadLetterQueue") == 0


# Bad input ----------------------------------------------------------------------------------------


def snapshot(aws: EmbeddedAws, app: seed.BlueGreenApp) -> tuple[Any, ...]:
    ecs = aws.client("ecs")
    return (
        weights(aws, app),
        sorted(ecs.list_services(cluster="prod")["serviceArns"]),
        sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        aws.api.get("/runs?target=ecs:prod/web").json()["runs"],
    )


def refused(aws: EmbeddedAws, request: dict[str, Any]) -> tuple[int, str]:
    response = aws.api.post("/runs", json=request, principal=ALICE)
    return response.status_code, str(response.json()["message"])


def test_an_unknown_listener_is_refused_and_nothing_changes(aws: EmbeddedAws, app: seed.BlueGreenApp) -> None:
    before = snapshot(aws, app)
    unknown = app.listener_arn[:-4] + "beef"

    status, message = refused(aws, app.request(image=NEW_IMAGE, listener_arn=unknown))

    assert status == 422
    assert message == f"listener {unknown} does not exist: check listener_arn"
    assert snapshot(aws, app) == before


def test_a_target_group_not_attached_to_the_listener_is_refused(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    elbv2 = aws.client("elbv2")
    vpc = elbv2.describe_target_groups(TargetGroupArns=[app.blue_target_group])["TargetGroups"][0]["VpcId"]
    stray = elbv2.create_target_group(
        Name="web-canary", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    before = snapshot(aws, app)

    status, message = refused(aws, app.request(image=NEW_IMAGE, target_groups=[app.blue_target_group, stray]))

    assert status == 422
    assert message.startswith("target group web-canary is not attached to listener web/")
    assert "add it to the listener's forward action with weight 0" in message
    assert snapshot(aws, app) == before


def test_both_target_groups_busy_is_refused(aws: EmbeddedAws, app: seed.BlueGreenApp) -> None:
    aws.client("elbv2").modify_listener(
        ListenerArn=app.listener_arn,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": app.blue_target_group, "Weight": 90},
                        {"TargetGroupArn": app.green_target_group, "Weight": 10},
                    ]
                },
            }
        ],
    )
    before = snapshot(aws, app)

    status, message = refused(aws, app.request(image=NEW_IMAGE))

    assert status == 422
    assert message.startswith("both target groups are busy: listener web/")
    assert "splits traffic (web-blue 90, web-green 10)" in message
    assert snapshot(aws, app) == before


def test_a_green_service_still_running_on_the_idle_group_is_refused(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    first = start(
        aws,
        app.request(
            image=NEW_IMAGE, traffic={"type": "canary", "percent": 50, "hold_seconds": 0}, bake_seconds=0
        ),
    )
    assert aws.wait_for_run(first, timeout=120)["status"] == "SUCCEEDED"
    aws.client("ecs").update_service(cluster="prod", service="web", desiredCount=1)  # blue back up by hand
    before = snapshot(aws, app)

    status, message = refused(aws, app.request(image=NEW_IMAGE))

    assert status == 422
    assert message.startswith("both target groups are busy: ECS service web runs")
    assert "scale it to 0" in message
    assert snapshot(aws, app) == before


def test_a_service_without_the_opt_in_tag_is_refused(aws: EmbeddedAws, app: seed.BlueGreenApp) -> None:
    ecs = aws.client("ecs")
    arn = ecs.describe_services(cluster="prod", services=["web"])["services"][0]["serviceArn"]
    ecs.untag_resource(resourceArn=arn, tagKeys=["opsflow:managed"])

    response = aws.api.post("/runs", json=app.request(image=NEW_IMAGE), principal=ALICE)

    assert response.status_code == 403
    assert "does not carry the tag opsflow:managed=true" in response.json()["message"]


def test_dry_run_lists_the_plan_and_changes_nothing(aws: EmbeddedAws, app: seed.BlueGreenApp) -> None:
    before = snapshot(aws, app)[:3]

    response = aws.api.post(
        "/runs", json=app.request(image=NEW_IMAGE, alarms=[ALARM], dry_run=True), principal=ALICE
    )

    assert response.status_code == 200, response.json()
    actions = response.json()["plan"]["actions"]
    assert actions[0].startswith("Create ECS service web-green with 2 task(s) of a new revision of web:1")
    assert any(a.startswith("Shift listener web/") and "10% for 300 s, 100%" in a for a in actions)
    assert snapshot(aws, app)[:3] == before


def test_a_task_definition_named_by_family_and_revision_deploys(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    ecs = aws.client("ecs")
    source = ecs.describe_task_definition(taskDefinition="web:1")["taskDefinition"]
    registered = ecs.register_task_definition(
        family="web",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{**source["containerDefinitions"][0], "image": NEW_IMAGE}],
    )["taskDefinition"]["taskDefinitionArn"]

    run_id = start(
        aws,
        app.request(task_definition="web:2", traffic={"type": "canary", "percent": 50, "hold_seconds": 0}),
    )
    run = aws.wait_for_run(run_id, timeout=120)

    assert run["status"] == "SUCCEEDED", run["error"]
    assert run["output"]["task_definition"] == registered
    assert assert_one_side_live(aws, app) == "green"


def test_a_second_deploy_of_the_same_pair_is_refused_whichever_service_it_names(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    run_id = start(
        aws, app.request(image=NEW_IMAGE, traffic={"type": "canary", "percent": 10, "hold_seconds": 3600})
    )
    wait_for("the canary", lambda: shifted_to(aws, run_id, 10))

    for service in ("web", "web-green"):
        response = aws.api.post(
            "/runs", json=app.request(image=NEW_IMAGE, service=service, bake_seconds=1), principal=ALICE
        )
        assert response.status_code == 409, response.json()
        assert f"busy with run {run_id}" in response.json()["message"]
    assert weights(aws, app) == {"blue": 90, "green": 10}


def test_a_listener_rule_on_the_pair_is_refused_because_its_traffic_would_not_follow(
    aws: EmbeddedAws, app: seed.BlueGreenApp
) -> None:
    aws.client("elbv2").create_rule(
        ListenerArn=app.listener_arn,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": app.blue_target_group}],
    )
    before = snapshot(aws, app)

    status, message = refused(aws, app.request(image=NEW_IMAGE))

    assert status == 422
    assert "has a rule (priority 10) forwarding to web-blue" in message
    assert snapshot(aws, app) == before
