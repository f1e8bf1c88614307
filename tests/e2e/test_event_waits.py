"""Waits on events survive lost events: with half of the best-effort events (AMI, Auto Scaling, RDS) lost, a
bake, a bake with an instance refresh and an environment start-up still finish, each looking at what it
waited for within one reconcile interval of it happening."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed
from opsflow_local.emulation.aws_events import ServiceEvent

ALICE = "arn:aws:iam::123456789012:user/alice"
# Loading the machine this much more is slack a slow test machine gets on top of the interval.
SLACK_SECONDS = 2.0


@pytest.fixture
def lossy(aws: EmbeddedAws) -> EmbeddedAws:
    aws.emulation.events.drop_best_effort(0.5)
    return aws


def run(aws: EmbeddedAws, request: dict[str, Any]) -> dict[str, Any]:
    response = aws.api.post("/runs", json=request, principal=ALICE)
    assert response.status_code == 202, response.json()
    finished = aws.wait_for_run(response.json()["run_id"], timeout=120)
    assert finished["status"] == "SUCCEEDED", finished["error"]
    return finished


def reconcile_interval(aws: EmbeddedAws) -> float:
    """ReconcileSeconds (300 by default) on the embedded clock."""
    return 300 * aws.time_scale


def happened(aws: EmbeddedAws, detail_type: str, **detail: str) -> ServiceEvent:
    """The event AWS sent (or lost) when the awaited thing happened: its time is when it happened."""
    events = aws.emulation.events
    matching = [
        e
        for e in [*events.sent, *events.dropped]
        if e.detail_type == detail_type and all(e.detail.get(k) == v for k, v in detail.items())
    ]
    assert matching, f"no {detail_type} {detail}"
    return matching[-1]


def lost(aws: EmbeddedAws, event: ServiceEvent) -> bool:
    return event in aws.emulation.events.dropped


def looked_at(finished: dict[str, Any], step: str) -> datetime:
    """When the step that looks after the wait saw it done."""
    outcome = next(s for s in reversed(finished["steps"]) if s["step"] == step and s["status"] == "succeeded")
    return datetime.fromisoformat(outcome["at"].replace("Z", "+00:00"))


def assert_within_one_interval(aws: EmbeddedAws, event: ServiceEvent, seen: datetime) -> None:
    late = (seen - event.at).total_seconds()
    assert 0 <= late <= reconcile_interval(aws) + SLACK_SECONDS, f"seen {late:.2f} s after it happened"


def bake(aws: EmbeddedAws, net: seed.Network) -> tuple[dict[str, Any], ServiceEvent]:
    seed.launch_template_group(aws, net, "web")
    request = {"workflow": "ami_bake", "instance_id": seed.instance(aws, net, "app-1"), "asg_name": "web"}
    finished = run(aws, request)
    image_id = finished["output"]["image_id"]
    return finished, happened(aws, "EC2 AMI State Change", ImageId=image_id, State="available")


def test_a_bake_finishes_within_an_interval_of_its_image_with_half_the_events_lost(
    lossy: EmbeddedAws, net: seed.Network
) -> None:
    finished, available = bake(lossy, net)
    assert_within_one_interval(lossy, available, looked_at(finished, "check_image"))


def test_a_bake_whose_image_event_is_lost_looks_one_interval_later_at_most(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    aws.emulation.events.drop_best_effort(1.0, sources=["aws.ec2"])
    finished, available = bake(aws, net)
    assert lost(aws, available)
    assert_within_one_interval(aws, available, looked_at(finished, "check_image"))


def test_a_bake_with_a_refresh_finishes_though_its_events_are_lost(
    lossy: EmbeddedAws, net: seed.Network
) -> None:
    aws = lossy
    seed.launch_template_group(aws, net, "web", capacity=4)
    finished = run(
        aws,
        {
            "workflow": "ami_bake",
            "instance_id": seed.instance(aws, net, "app-1"),
            "asg_name": "web",
            "refresh": {
                "instance_warmup": 30,
                "checkpoints": {"percentages": [50, 100], "delay_seconds": 60},
            },
        },
    )

    succeeded = happened(aws, "EC2 Auto Scaling Instance Refresh Succeeded", AutoScalingGroupName="web")
    assert_within_one_interval(aws, succeeded, looked_at(finished, "check_refresh"))
    assert [
        s["summary"] for s in finished["steps"] if s["status"] == "milestone" and "checkpoint" in s["summary"]
    ]


def test_a_start_up_whose_database_events_are_lost_starts_the_rest_within_an_interval(
    lossy: EmbeddedAws, net: seed.Network
) -> None:
    aws = lossy
    environment = seed.environment(aws, net, "qa")
    run(aws, {"workflow": "env_power", "environment": "qa", "action": "stop"})
    finished = run(aws, {"workflow": "env_power", "environment": "qa", "action": "start"})

    started = [
        happened(aws, "RDS DB Instance Event", SourceIdentifier="qa-orders", EventID="RDS-EVENT-0088"),
        happened(aws, "RDS DB Cluster Event", SourceIdentifier="qa-reports", EventID="RDS-EVENT-0151"),
    ]
    last = max(started, key=lambda e: e.at)
    assert_within_one_interval(aws, last, looked_at(finished, "databases_ready"))
    rds = aws.client("rds")
    statuses = [
        rds.describe_db_instances(DBInstanceIdentifier="qa-orders")["DBInstances"][0]["DBInstanceStatus"],
        rds.describe_db_clusters(DBClusterIdentifier="qa-reports")["DBClusters"][0]["Status"],
    ]
    assert statuses == ["available", "available"], environment.databases
