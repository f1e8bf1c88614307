"""The ECS emulation's service action events (ECS Developer Guide, "Amazon ECS service action events"):
detail-type `ECS Service Action`, source aws.ecs, the service ARN in resources, detail eventType, eventName,
clusterArn and createdAt. SERVICE_TASK_START_IMPAIRED (WARN), whose moment AWS does not document, is the
emulation's choice: sent once when the service's tasks have failed to start 3 times in a row, and again only
after one of its tasks started and 3 more failures in a row followed. SERVICE_STEADY_STATE (INFO) comes with
each completed deployment. Read as a rule's SQS target gets them; no AwsEvents clock is installed, so the
service moves on only when read, and a read returns after the events of what it saw were sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from opsflow_local.emulation.ecs import EcsEmulation

from .bus import Rule, rule
from .conftest import Alb
from .test_ecs import (
    CIRCUIT_BREAKER_WITH_ROLLBACK,
    CLUSTER,
    create,
    ecs,
    register_web,
    service,
    steady,
    ticker,
    wait_until,
)

REGION = "us-east-1"
DEPLOYMENT = "ECS Deployment State Change"
ACTION = "ECS Service Action"


@pytest.fixture(autouse=True)
def cluster(ecs_emulation: EcsEmulation) -> None:
    """test_ecs's cluster (its autouse fixture is not imported): the cluster and revision 1 of `web`."""
    ecs().create_cluster(clusterName=CLUSTER)
    register_web()


@pytest.fixture
def actions(ecs_emulation: EcsEmulation) -> Rule:
    return rule("ecs-service-actions", {"source": ["aws.ecs"], "detail-type": [ACTION]})


@pytest.fixture
def everything(ecs_emulation: EcsEmulation) -> Rule:
    """ECS's deployment and service action events together, in the order they were sent."""
    return rule("ecs-all", {"source": ["aws.ecs"], "detail-type": [DEPLOYMENT, ACTION]})


def cluster_arn() -> str:
    return str(ecs().describe_clusters(clusters=[CLUSTER])["clusters"][0]["clusterArn"])


def failed_tasks(name: str = "web-blue") -> int:
    return int(service(name)["deployments"][0]["failedTasks"])


def sequence(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(eventName, deploymentId, or "-" for a service action event) of each event."""
    return [(e["detail"]["eventName"], e["detail"].get("deploymentId", "-")) for e in events]


def created_at(event: dict[str, Any]) -> datetime:
    """The detail's createdAt, checked to be ISO 8601 in UTC to the millisecond (2019-11-19T19:55:38.725Z)."""
    text = str(event["detail"]["createdAt"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def test_three_failures_to_start_in_a_row_send_one_task_start_impaired_event(
    alb: Alb, ecs_emulation: EcsEmulation, actions: Rule
) -> None:
    """A service whose tasks never start, one at a time (desired 1, no circuit breaker): no warning after 1
    or 2 failures, one at the third, and none for the failures after it."""
    ecs_emulation.fail_tasks(CLUSTER, "web-blue")
    began = datetime.now(UTC)
    service_arn = create(alb, desired=1)["serviceArn"]
    tick = ticker()
    while (seen := failed_tasks()) < 3:
        # The read that saw `seen` failures returned after their events were sent.
        assert actions.nothing_more(), seen
        tick()
    [event] = actions.received(1)
    # moto's SQS target leaves out `account`.
    assert {k: v for k, v in event.items() if k not in ("id", "time", "detail")} == {
        "version": "0",
        "detail-type": "ECS Service Action",
        "source": "aws.ecs",
        "region": REGION,
        "resources": [service_arn],
    }
    assert set(event["detail"]) == {"eventType", "eventName", "clusterArn", "createdAt"}
    assert (event["detail"]["eventType"], event["detail"]["eventName"]) == (
        "WARN",
        "SERVICE_TASK_START_IMPAIRED",
    )
    assert event["detail"]["clusterArn"] == cluster_arn()
    assert began <= created_at(event) <= datetime.now(UTC)

    wait_until(lambda: failed_tasks() >= 8)
    assert actions.nothing_more()
    current = service()
    assert (current["runningCount"], current["deployments"][0]["rolloutState"]) == (0, "IN_PROGRESS")


def test_after_the_failures_stop_the_deployment_completes_and_a_new_run_of_failures_warns_again(
    alb: Alb, ecs_emulation: EcsEmulation, everything: Rule
) -> None:
    """Failing tasks warn once; `stop_failing_tasks`: the replacements start, the deployment is COMPLETED
    and the service steady. A later deployment whose tasks fail 3 times in a row warns again."""
    ecs_emulation.fail_tasks(CLUSTER, "web-blue")
    service_arn = create(alb)["serviceArn"]
    wait_until(lambda: failed_tasks() >= 5)
    ecs_emulation.stop_failing_tasks(CLUSTER, "web-blue")
    first = steady()["deployments"][0]["id"]
    assert sequence(everything.received(4)) == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", first),
        ("SERVICE_TASK_START_IMPAIRED", "-"),
        ("SERVICE_DEPLOYMENT_COMPLETED", first),
        ("SERVICE_STEADY_STATE", "-"),
    ]

    ecs_emulation.fail_tasks(CLUSTER, "web-blue")
    second = ecs().update_service(cluster=CLUSTER, service="web-blue", forceNewDeployment=True)["service"][
        "deployments"
    ][0]["id"]
    wait_until(lambda: failed_tasks() >= 5)
    received = everything.received(2)
    assert sequence(received) == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", second),
        ("SERVICE_TASK_START_IMPAIRED", "-"),
    ]
    assert received[1]["resources"] == [service_arn]
    assert everything.nothing_more()
    # The first deployment's tasks keep serving.
    assert service()["runningCount"] == 2


def test_with_the_circuit_breaker_the_deployment_still_fails_and_rolls_back(
    alb: Alb, ecs_emulation: EcsEmulation, everything: Rule
) -> None:
    """Deployment circuit breaker with rollback (threshold 3 for 2 tasks): the third failure sends the
    warning, then SERVICE_DEPLOYMENT_FAILED and the rollback's IN_PROGRESS, as without the warning; the
    rollback's tasks start and it completes."""
    create(alb, configuration=CIRCUIT_BREAKER_WITH_ROLLBACK)
    first = steady()["deployments"][0]["id"]
    register_web(image="web:broken")
    ecs_emulation.fail_tasks(CLUSTER, "web-blue", task_definition="web:2")
    broken = ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")["service"][
        "deployments"
    ][0]["id"]
    done = steady()
    rollback = done["deployments"][0]["id"]
    assert done["taskDefinition"].endswith("/web:1")
    received = everything.received(9)
    assert sequence(received) == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", first),
        ("SERVICE_DEPLOYMENT_COMPLETED", first),
        ("SERVICE_STEADY_STATE", "-"),
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", broken),
        ("SERVICE_TASK_START_IMPAIRED", "-"),
        ("SERVICE_DEPLOYMENT_FAILED", broken),
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", rollback),
        ("SERVICE_DEPLOYMENT_COMPLETED", rollback),
        ("SERVICE_STEADY_STATE", "-"),
    ]
    assert received[5]["detail"]["reason"] == "ECS deployment circuit breaker: task failed to start."
    assert everything.nothing_more()


def test_a_service_whose_tasks_start_sends_only_its_steady_state(alb: Alb, actions: Rule) -> None:
    """No SERVICE_TASK_START_IMPAIRED for tasks that start, across a rolling update and a scale-out; one
    SERVICE_STEADY_STATE (INFO) per completed deployment."""
    service_arn = create(alb)["serviceArn"]
    steady()
    register_web(image="web:2.0")
    ecs().update_service(cluster=CLUSTER, service="web-blue", taskDefinition="web:2")
    assert steady()["taskDefinition"].endswith("/web:2")
    ecs().update_service(cluster=CLUSTER, service="web-blue", desiredCount=4)
    wait_until(lambda: service()["runningCount"] == 4)
    received = actions.received(2)
    assert [(e["detail"]["eventType"], e["detail"]["eventName"]) for e in received] == [
        ("INFO", "SERVICE_STEADY_STATE")
    ] * 2
    assert all(e["resources"] == [service_arn] for e in received)
    assert all(e["detail"]["clusterArn"] == cluster_arn() for e in received)
    assert created_at(received[0]) <= created_at(received[1])
    assert actions.nothing_more()
