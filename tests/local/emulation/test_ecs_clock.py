"""An ECS deployment nobody reads still runs on its own clock and sends its `ECS Deployment State Change`
events when ECS would ("Amazon ECS service deployment state change events"): no DescribeServices,
ListTasks, DescribeTasks or DescribeTargetHealth is called until every event has been seen; each is sent by
the clock's thread at the moment the emulation's schedule makes it due: tasks RUNNING after
task_start_seconds, healthy once their targets passed HealthyThresholdCount checks HealthCheckIntervalSeconds
apart, failing to start after task_start_seconds (AWS seconds x time_scale)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import pytest
from moto import mock_aws

from opsflow_local.emulation.aws_events import ServiceEvent
from opsflow_local.emulation.ecs import EcsEmulation
from opsflow_local.emulation.elbv2 import Elbv2Emulation

from .bus import Recorder, Window, called
from .conftest import Alb
from .test_ecs import CIRCUIT_BREAKER_WITH_ROLLBACK, CLUSTER, create, ecs, register_web, service

SCALE = 0.01  # one AWS second lasts 10 ms
START = 30.0  # task_start_seconds
HEALTHY = 10.0 * 3  # the `alb` fixture's groups: checks every 10 s, healthy after 3
# How late an event may come after it is due, in real seconds: the clock's thread and moto's calls on a
# loaded 2-core machine. Every phase below lasts longer, so an event a phase late fails the test.
LATE = 0.25
EARLY = 0.01  # wall-clock jitter between the test's reading of the time and the emulation's


@pytest.fixture
def elbv2_emulation() -> Iterator[Elbv2Emulation]:
    """The conftest's, on this module's time scale (the `alb` and `ecs_emulation` fixtures take it)."""
    emulation = Elbv2Emulation(time_scale=SCALE)
    with ExitStack() as stack:
        emulation.install(stack)
        stack.enter_context(mock_aws())
        yield emulation


@pytest.fixture
def recorder(ecs_emulation: EcsEmulation) -> Iterator[Recorder]:
    events = Recorder()
    with ExitStack() as stack:
        events.install(stack)  # its clock stops before the emulations and moto go
        yield events


@pytest.fixture(autouse=True)
def cluster(recorder: Recorder) -> None:
    ecs().create_cluster(clusterName=CLUSTER)
    register_web()


def deployment_events(recorder: Recorder, count: int, timeout: float = 10.0) -> list[ServiceEvent]:
    """The first `count` deployment events sent, waiting for them without calling AWS."""
    deadline = time.monotonic() + timeout
    while len(found := [e for e in recorder.sent if e.detail_type == "ECS Deployment State Change"]) < count:
        assert time.monotonic() < deadline, [e.detail["eventName"] for e in found]
        time.sleep(0.002)
    return found[:count]


def names(events: list[ServiceEvent]) -> list[tuple[str, str]]:
    return [(e.detail["eventName"], e.detail["deploymentId"]) for e in events]


def assert_on_time(
    recorder: Recorder, event: ServiceEvent, since: Window | datetime, aws_seconds: float
) -> None:
    """`event` was sent by the clock's thread `aws_seconds` (x SCALE) after `since` (a call, whose schedule
    starts while it runs, or an instant), give or take LATE."""
    assert recorder.threads[id(event)] == "emulated-aws-clock", event.detail
    window = since if isinstance(since, Window) else Window(since, since)
    due = aws_seconds * SCALE
    earliest = (event.at - window.end).total_seconds()
    latest = (event.at - window.begin).total_seconds()
    seen = (event.detail["eventName"], earliest, latest, due)
    assert latest >= due - EARLY, seen
    assert earliest <= due + LATE, seen


def steady_events(recorder: Recorder, alb: Alb, **extra: Any) -> str:
    """A service created and left alone until its first deployment completed: the deployment's id."""
    with called() as creating:
        create(alb, **extra)
    in_progress, completed = deployment_events(recorder, 2)
    assert names([in_progress, completed]) == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", in_progress.detail["deploymentId"]),
        ("SERVICE_DEPLOYMENT_COMPLETED", in_progress.detail["deploymentId"]),
    ]
    assert_on_time(recorder, completed, creating, START + HEALTHY)
    return str(completed.detail["deploymentId"])


def test_a_new_service_left_alone_completes_when_its_targets_are_healthy(
    recorder: Recorder, alb: Alb
) -> None:
    """CreateService: IN_PROGRESS at once; the tasks RUNNING after 30 s register their targets, healthy 30 s
    later, and then, not at the next read, the deployment is COMPLETED and the service steady."""
    deployment_id = steady_events(recorder, alb)
    [in_progress, _] = deployment_events(recorder, 2)
    assert in_progress.detail["reason"] == f"ECS deployment {deployment_id} in progress."
    # Only now does anyone look.
    done = service()
    assert (done["runningCount"], done["deployments"][0]["rolloutState"]) == (2, "COMPLETED")
    assert any("has reached a steady state" in e["message"] for e in done["events"])


def test_a_rolling_update_left_alone_completes_on_time(recorder: Recorder, alb: Alb) -> None:
    """UpdateService with a new task definition: the new tasks start and turn healthy (30 s + 30 s), the old
    ones are stopped, and the new deployment is COMPLETED then."""
    first = steady_events(recorder, alb)
    register_web(image="web:2.0")
    with called() as updated_at:
        second = ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")["service"][
            "deployments"
        ][0]["id"]

    events = deployment_events(recorder, 4)[2:]

    assert names(events) == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", second),
        ("SERVICE_DEPLOYMENT_COMPLETED", second),
    ]
    assert second != first
    assert_on_time(recorder, events[1], updated_at, START + HEALTHY)


def test_the_circuit_breaker_fails_a_deployment_left_alone_and_rolls_back_on_time(
    recorder: Recorder, alb: Alb, ecs_emulation: EcsEmulation
) -> None:
    """Two tasks fail to start after 30 s, their replacements 30 s later: the third failure trips the
    circuit breaker (threshold 3) at 60 s, FAILED and the rollback IN_PROGRESS together; the rollback's tasks
    are healthy 30 s + 30 s later, and it is COMPLETED."""
    first = steady_events(recorder, alb, configuration=CIRCUIT_BREAKER_WITH_ROLLBACK)
    register_web(image="web:broken")
    ecs_emulation.fail_tasks(CLUSTER, "web-blue", task_definition="web:2")
    with called() as updated_at:
        broken = ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")["service"][
            "deployments"
        ][0]["id"]

    events = deployment_events(recorder, 6)[2:]

    rollback = events[2].detail["deploymentId"]
    assert names(events) == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", broken),
        ("SERVICE_DEPLOYMENT_FAILED", broken),
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", rollback),
        ("SERVICE_DEPLOYMENT_COMPLETED", rollback),
    ]
    assert events[2].detail["reason"] == (
        f"ECS deployment circuit breaker: rolling back to deploymentId {first}."
    )
    assert_on_time(recorder, events[1], updated_at, 2 * START)
    assert_on_time(recorder, events[2], updated_at, 2 * START)
    assert_on_time(recorder, events[3], updated_at, 2 * START + START + HEALTHY)
