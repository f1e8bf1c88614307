"""The EC2 emulation's AMI events against the EC2 User Guide, "Monitor AMI events using Amazon EventBridge":
an `EC2 AMI State Change` event (source aws.ec2) when an AMI enters available, failed, deregistered or
disabled, shaped as the guide's examples: the image ARN in resources, detail RequestId, ImageId, State and
ErrorMessage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest

from opsflow_local.emulation.aws_events import AwsEvents
from opsflow_local.emulation.ec2 import Ec2Emulation

from .bus import Rule, rule

AMI_EVENTS = {"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"]}


@pytest.fixture
def events(ec2_emulation: Ec2Emulation) -> Iterator[AwsEvents]:
    """What the embedded runtime adds: the clock that completes images at their deadline."""
    recorder = AwsEvents()
    with ExitStack() as stack:
        recorder.install(stack)
        yield recorder


@pytest.fixture
def ami_rule(events: AwsEvents) -> Rule:
    return rule("ami-events", AMI_EVENTS)


def ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def launch() -> str:
    client = ec2()
    image_id = client.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}]
    )["Images"][0]["ImageId"]
    return str(client.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"])


def test_an_image_that_becomes_available_sends_the_documented_event_unasked(
    ami_rule: Rule, events: AwsEvents
) -> None:
    """The "available" example: version 0, source aws.ec2, resources [arn:aws:ec2:<region>::image/<id>]
    (no account in an image ARN), detail with exactly RequestId, ImageId, State "available" and ErrorMessage
    "". The event comes when the image is available, though nothing describes it meanwhile."""
    image_id = ec2().create_image(InstanceId=launch(), Name="baked")["ImageId"]

    [event] = ami_rule.received(1)

    assert (event["version"], event["source"], event["detail-type"]) == (
        "0",
        "aws.ec2",
        "EC2 AMI State Change",
    )
    assert event["region"] == "us-east-1"
    # moto's SQS target leaves `account` out of the event; the default bus it went to is the account's.
    assert [(e.account, e.region) for e in events.sent] == [("123456789012", "us-east-1")]
    assert event["resources"] == [f"arn:aws:ec2:us-east-1::image/{image_id}"]
    assert set(event["detail"]) == {"RequestId", "ImageId", "State", "ErrorMessage"}
    assert event["detail"]["RequestId"]
    assert (event["detail"]["ImageId"], event["detail"]["State"], event["detail"]["ErrorMessage"]) == (
        image_id,
        "available",
        "",
    )
    assert ec2().describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"


def test_an_image_that_fails_sends_failed_with_the_reason(
    ec2_emulation: Ec2Emulation, ami_rule: Rule
) -> None:
    """The "failed" example: State "failed", ErrorMessage "Provides the reason for the failed operation"."""
    ec2_emulation.fail_next_image("Snapshot creation failed: internal error")
    image_id = ec2().create_image(InstanceId=launch(), Name="doomed")["ImageId"]

    [event] = ami_rule.received(1)

    assert event["detail"]["ImageId"] == image_id
    assert event["detail"]["State"] == "failed"
    assert event["detail"]["ErrorMessage"] == "Snapshot creation failed: internal error"


def test_a_pending_image_sends_nothing_until_it_is_done(ec2_emulation: Ec2Emulation, ami_rule: Rule) -> None:
    """Events are sent for available, failed, deregistered and disabled, none for pending."""
    ec2_emulation.image_pending_seconds = 3000  # 3 s: a busy machine can stall a thread for a second
    image_id = ec2().create_image(InstanceId=launch(), Name="slow")["ImageId"]
    assert ec2().describe_images(ImageIds=[image_id])["Images"][0]["State"] == "pending"
    assert ami_rule.nothing_more()
    assert [e["detail"]["State"] for e in ami_rule.received(1)] == ["available"]


def test_deregister_disable_and_enable_send_their_states(ami_rule: Rule) -> None:
    """The table of operations: DisableImage -> disabled, EnableImage -> available, DeregisterImage ->
    deregistered (synchronous operations: the event follows the call)."""
    image_id = ec2().create_image(InstanceId=launch(), Name="short-lived")["ImageId"]
    ami_rule.received(1)

    ec2().disable_image(ImageId=image_id)
    ec2().enable_image(ImageId=image_id)
    ec2().deregister_image(ImageId=image_id)

    events = ami_rule.received(3)
    assert [(e["detail"]["ImageId"], e["detail"]["State"]) for e in events] == [
        (image_id, "disabled"),
        (image_id, "available"),
        (image_id, "deregistered"),
    ]
    assert all(e["detail"]["ErrorMessage"] == "" for e in events)


def test_an_image_deregistered_while_pending_never_becomes_available(
    ec2_emulation: Ec2Emulation, ami_rule: Rule, events: AwsEvents
) -> None:
    ec2_emulation.image_pending_seconds = 50  # 50 ms
    image_id = ec2().create_image(InstanceId=launch(), Name="abandoned")["ImageId"]
    ec2().deregister_image(ImageId=image_id)

    assert [e["detail"]["State"] for e in ami_rule.received(1)] == ["deregistered"]
    time.sleep(0.1)  # past its deadline
    ec2().describe_images(Owners=["self"])
    assert [e.detail["State"] for e in events.sent if e.detail["ImageId"] == image_id] == ["deregistered"]


def test_copy_image_sends_available_when_the_copy_ends_in_its_own_region(ami_rule: Rule) -> None:
    """A copy is pending first (test_ami_copy.py): its event comes when it is available, not at CopyImage."""
    source_id = ec2().create_image(InstanceId=launch(), Name="source")["ImageId"]
    ami_rule.received(1)
    copy_id = ec2().copy_image(SourceImageId=source_id, SourceRegion="us-east-1", Name="copy")["ImageId"]
    assert ec2().describe_images(ImageIds=[copy_id])["Images"][0]["State"] == "pending"
    [event] = ami_rule.received(1)
    assert (event["detail"]["ImageId"], event["detail"]["State"]) == (copy_id, "available")
    assert event["resources"] == [f"arn:aws:ec2:us-east-1::image/{copy_id}"]
