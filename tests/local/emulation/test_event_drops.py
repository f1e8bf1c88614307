"""Losing best-effort events on purpose, against the EventBridge Events Reference ("Delivery level for AWS
service events" and each service's page): EC2, EC2 Auto Scaling, RDS and Step Functions deliver best effort
("in some rare cases an event might not be delivered"); Amazon ECS and CloudWatch durably ("at least
once"), so their events are never lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest
from moto import mock_aws

from opsflow_local.emulation import aws_events
from opsflow_local.emulation.aws_events import AwsEvents, ServiceEvent
from opsflow_local.emulation.cloudwatch import CloudWatchEmulation
from opsflow_local.emulation.rds import RdsEmulation

from .bus import Rule, rule

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def events() -> Iterator[AwsEvents]:
    recorder = AwsEvents()
    with ExitStack() as stack:
        RdsEmulation(time_scale=0.001, stop_seconds=50, start_seconds=50).install(stack)
        CloudWatchEmulation().install(stack)
        stack.enter_context(mock_aws())
        recorder.install(stack)
        yield recorder


@pytest.fixture
def everything(events: AwsEvents) -> Rule:
    return rule("everything", {"source": [{"prefix": "aws."}]})


def image_event(n: int) -> dict[str, Any]:
    image_id = f"ami-{n:017x}"
    return {
        "account": ACCOUNT,
        "region": REGION,
        "source": "aws.ec2",
        "detail_type": "EC2 AMI State Change",
        "resources": [f"arn:aws:ec2:{REGION}::image/{image_id}"],
        "detail": {"RequestId": str(n), "ImageId": image_id, "State": "available", "ErrorMessage": ""},
    }


def lost_images(recorder: AwsEvents) -> set[str]:
    return {e.detail["ImageId"] for e in recorder.dropped}


def send_images(numbers: list[int]) -> None:
    for n in numbers:
        aws_events.send(**image_event(n))


def test_a_lost_rds_event_never_reaches_the_rule_but_a_durable_alarm_event_does(
    events: AwsEvents, everything: Rule
) -> None:
    """RDS delivers best effort, CloudWatch durably: with every best-effort event lost, the stopped database
    sends nothing the rule sees while the alarm's state change still arrives."""
    events.drop_best_effort(1.0)
    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_instance(
        DBInstanceIdentifier="orders",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin_user",
        MasterUserPassword="a-long-password",
        AllocatedStorage=20,
    )
    rds.stop_db_instance(DBInstanceIdentifier="orders")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName="web-5xx",
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx burst")

    [received] = everything.received(1)
    assert received["source"] == "aws.cloudwatch"
    deadline = time.monotonic() + 10
    while not events.dropped:  # the database stops 50 ms later, on the clock's thread
        assert time.monotonic() < deadline, "the database never stopped"
        time.sleep(0.005)
    [lost] = events.dropped
    assert (lost.source, lost.detail_type, lost.detail["EventID"]) == (
        "aws.rds",
        "RDS DB Instance Event",
        "RDS-EVENT-0087",
    )
    assert rds.describe_db_instances()["DBInstances"][0]["DBInstanceStatus"] == "stopped"
    assert [e.source for e in events.sent] == ["aws.cloudwatch"]
    assert everything.nothing_more()


def test_durable_sources_are_never_dropped(events: AwsEvents, everything: Rule) -> None:
    """ECS ("Delivery type: Durable") and CloudWatch ("CloudWatch guarantees the delivery of alarm state
    change events")."""
    events.drop_best_effort(1.0, seed=3)
    for source, detail_type in (
        ("aws.ecs", "ECS Deployment State Change"),
        ("aws.cloudwatch", "CloudWatch Alarm State Change"),
        ("aws.autoscaling", "EC2 Auto Scaling Instance Refresh Started"),
        ("aws.states", "Step Functions Execution Status Change"),
    ):
        aws_events.send(ACCOUNT, REGION, source, detail_type, ["arn:aws:test"], {"n": 1})

    assert [e.source for e in events.sent] == ["aws.ecs", "aws.cloudwatch"]
    assert all(e.durable for e in events.sent)
    assert [e.source for e in events.dropped] == ["aws.autoscaling", "aws.states"]
    assert sorted(e["source"] for e in everything.received(2)) == ["aws.cloudwatch", "aws.ecs"]


def test_a_seed_loses_the_same_events_whatever_the_order(events: AwsEvents) -> None:
    """A share of about half: the same images lost for the same seed, sent in either order; another seed
    loses others."""
    numbers = list(range(60))
    events.drop_best_effort(0.5, seed=42)
    send_images(numbers)
    first = lost_images(events)

    again = AwsEvents()
    with ExitStack() as stack:
        again.install(stack)
        again.drop_best_effort(0.5, seed=42)
        send_images(list(reversed(numbers)))
    other = AwsEvents()
    with ExitStack() as stack:
        other.install(stack)
        other.drop_best_effort(0.5, seed=43)
        send_images(numbers)

    assert 15 <= len(first) <= 45
    assert lost_images(again) == first
    assert lost_images(other) != first
    assert len(events.sent) + len(events.dropped) == len(numbers)


def test_repeated_events_of_one_resource_are_each_drawn(events: AwsEvents) -> None:
    """The same image's events (available, then deregistered...) are separate deliveries: not all lost or
    all kept together."""
    events.drop_best_effort(0.5, seed=1)
    for _ in range(40):
        aws_events.send(**image_event(7))
    assert 0 < len(events.dropped) < 40


def test_drops_can_be_limited_to_sources_and_turned_off(events: AwsEvents) -> None:
    events.drop_best_effort(1.0, sources=["aws.ec2"])
    send_images([1])
    aws_events.send(ACCOUNT, REGION, "aws.rds", "RDS DB Instance Event", ["arn:aws:rds:x"], {"EventID": "x"})
    assert [e.source for e in events.dropped] == ["aws.ec2"]
    assert [e.source for e in events.sent] == ["aws.rds"]

    events.drop_best_effort(0.0)
    send_images([2])
    assert [e.detail.get("ImageId") for e in events.sent][-1] == "ami-00000000000000002"
    assert len(events.dropped) == 1


def test_nonsense_is_refused(events: AwsEvents) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        events.drop_best_effort(1.5)
    with pytest.raises(ValueError, match="durably"):
        events.drop_best_effort(0.5, sources=["aws.ecs"])


def test_without_a_recorder_events_go_straight_to_the_bus() -> None:
    """An emulation tested on its own: nothing recorded, nothing lost."""
    with mock_aws():
        queue = rule("plain", {"source": ["aws.ec2"]})
        assert aws_events.send(**image_event(9)) is True
        [event] = queue.received(1)
        assert event["detail"]["ImageId"] == "ami-00000000000000009"


def test_a_recorded_event_keeps_what_was_sent(events: AwsEvents) -> None:
    send_images([5])
    [event] = events.sent
    assert event == ServiceEvent(
        ACCOUNT,
        REGION,
        "aws.ec2",
        "EC2 AMI State Change",
        (f"arn:aws:ec2:{REGION}::image/ami-00000000000000005",),
        image_event(5)["detail"],
        at=event.at,
    )
    assert not event.durable
