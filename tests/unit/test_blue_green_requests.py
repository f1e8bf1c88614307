"""The ECS blue/green request: traffic plans expand to the steps the workflow shifts through, and what
cannot work is refused with a message naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from opsflow.runs.requests import describe_validation_errors, parse_run_request
from opsflow.workflows.ecs_blue_green.request import EcsBlueGreenRequest

LISTENER = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
)
TEST_LISTENER = LISTENER[:-4] + "aaaa"
BLUE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/73e2d6bc24d8a067"
GREEN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/83e2d6bc24d8a067"


def request(**fields: Any) -> dict[str, Any]:
    return {
        "workflow": "ecs_blue_green",
        "cluster": "prod",
        "service": "web",
        "image": "web:2.0",
        "listener_arn": LISTENER,
        "target_groups": [BLUE, GREEN],
        **fields,
    }


def parsed(**fields: Any) -> EcsBlueGreenRequest:
    result = parse_run_request(request(**fields))
    assert isinstance(result, EcsBlueGreenRequest)
    return result


def problems(**fields: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        parse_run_request(request(**fields))
    return {p["field"]: p["problem"] for p in describe_validation_errors(raised.value.errors())}


def percents_and_holds(**fields: Any) -> list[tuple[int, int]]:
    return [(s.percent, s.hold_seconds) for s in parsed(**fields).traffic_steps()]


def test_the_default_is_a_canary_of_ten_percent_for_five_minutes_and_a_ten_minute_bake() -> None:
    deploy = parsed()
    assert percents_and_holds() == [(10, 300), (100, 0)]
    assert deploy.bake_seconds == 600
    assert deploy.target().key == "ecs:prod/web"
    assert parsed(cluster="arn:aws:ecs:us-east-1:123456789012:cluster/prod").target().key == "ecs:prod/web"


def test_linear_steps_end_at_all_traffic() -> None:
    assert percents_and_holds(traffic={"type": "linear", "step_percent": 30, "interval_seconds": 60}) == [
        (30, 60),
        (60, 60),
        (90, 60),
        (100, 0),
    ]
    assert percents_and_holds(traffic={"type": "linear", "step_percent": 50, "interval_seconds": 5}) == [
        (50, 5),
        (100, 0),
    ]


def test_explicit_steps_are_kept_as_given_and_survive_a_round_trip() -> None:
    steps = [
        {"percent": 5, "hold_seconds": 600},
        {"percent": 50, "hold_seconds": 60},
        {"percent": 100, "hold_seconds": 0},
    ]
    deploy = parsed(traffic={"type": "steps", "steps": steps})
    assert percents_and_holds(traffic={"type": "steps", "steps": steps}) == [(5, 600), (50, 60), (100, 0)]
    again = EcsBlueGreenRequest.model_validate(deploy.model_dump(mode="json"), strict=False)
    assert again == deploy


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([{"percent": 50}, {"percent": 10}, {"percent": 100}], "percents must be distinct and ascending"),
        ([{"percent": 10}, {"percent": 50}], "the last step must send 100 percent to green"),
        ([], "List should have at least 1 item"),
    ],
)
def test_explicit_steps_must_climb_to_all_traffic(steps: list[dict[str, int]], problem: str) -> None:
    assert (
        problem.lower() in problems(traffic={"type": "steps", "steps": steps})["traffic.steps.steps"].lower()
    )


def test_an_unknown_plan_type_names_the_known_ones() -> None:
    found = problems(traffic={"type": "big_bang"})
    assert "canary" in found["traffic.type"]
    assert "linear" in found["traffic.type"]
    assert "steps" in found["traffic.type"]


def test_exactly_one_new_version() -> None:
    assert "exactly one of task_definition" in problems(task_definition="web:7")["(body)"]
    assert "exactly one of task_definition" in problems(image=None)["(body)"]
    assert "give image too" in problems(image=None, task_definition="web:7", container="app")["(body)"]


def test_arns_are_checked_for_shape() -> None:
    assert "listener_arn" in problems(listener_arn="web-listener")
    assert "target_groups.1" in problems(target_groups=[BLUE, LISTENER])
    assert "target_groups" in problems(target_groups=[BLUE])
    assert "two different target groups" in problems(target_groups=[BLUE, BLUE])["(body)"]


def test_a_smoke_test_url_needs_the_test_listener_that_reaches_green() -> None:
    assert (
        "needs test_listener_arn" in problems(smoke_test={"url": "http://web.internal:8080/health"})["(body)"]
    )
    deploy = parsed(smoke_test={"url": "http://web.internal:8080/health"}, test_listener_arn=TEST_LISTENER)
    assert deploy.smoke_test is not None
    assert deploy.smoke_test.timeout_seconds == 10
    assert "exactly one of url or lambda" in problems(smoke_test={})["smoke_test"]
    assert parsed(smoke_test={"lambda": "web-smoke"}).smoke_test.lambda_function == "web-smoke"  # type: ignore[union-attr]
    assert "smoke_test.url" in problems(smoke_test={"url": "ftp://x"}, test_listener_arn=TEST_LISTENER)


def test_total_watching_time_is_bounded() -> None:
    found = problems(traffic={"type": "linear", "step_percent": 10, "interval_seconds": 7200})
    assert "at most 43200 s (12 hours) in all" in found["(body)"]
