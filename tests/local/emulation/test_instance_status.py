"""Instance status checks, instance state-change events and status check alarms, as the EC2 User Guide
documents them ("Status checks for Amazon EC2 instances", "Amazon EC2 instance state change events") and the
CloudWatch emulation follows them: a system check a reboot cannot fix and a stop and start can, an instance
check a reboot fixes, `initializing` after a start or a reboot, and an alarm on a status check metric going
to ALARM and back to OK with them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest
from moto import mock_aws

from opsflow_local.emulation.aws_events import AwsEvents
from opsflow_local.emulation.cloudwatch import CloudWatchEmulation
from opsflow_local.emulation.ec2 import Ec2Emulation

from .bus import Rule, rule


@pytest.fixture
def emulation() -> Iterator[Ec2Emulation]:
    """EC2 and CloudWatch emulated, with the clock that completes transitions on time; stops, starts and
    initializing checks last 500 AWS seconds = 0.5 s, long enough to observe on a busy machine."""
    ec2_emulation = Ec2Emulation(
        time_scale=0.001,
        instance_stop_seconds=500,
        instance_start_seconds=500,
        status_initializing_seconds=500,
    )
    cloudwatch_emulation = CloudWatchEmulation()
    with ExitStack() as stack:
        ec2_emulation.install(stack)
        cloudwatch_emulation.install(stack)
        ec2_emulation.on_status_change = cloudwatch_emulation.follow_status_checks
        stack.enter_context(mock_aws())
        AwsEvents().install(stack)
        yield ec2_emulation


def ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def launch() -> str:
    return str(
        ec2().run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    )


def checks(instance_id: str) -> tuple[str, str, str]:
    [status] = ec2().describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)[
        "InstanceStatuses"
    ]
    return (
        status["InstanceState"]["Name"],
        status["SystemStatus"]["Status"],
        status["InstanceStatus"]["Status"],
    )


def eventually(instance_id: str, wanted: tuple[str, str, str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while checks(instance_id) != wanted:
        assert time.monotonic() < deadline, f"{instance_id} stayed {checks(instance_id)}, not {wanted}"
        time.sleep(0.01)


def status_alarm(instance_id: str, metric: str = "StatusCheckFailed") -> None:
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_alarm(
        AlarmName=f"{instance_id}-{metric}",
        Namespace="AWS/EC2",
        MetricName=metric,
        Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def alarm_state(instance_id: str, metric: str = "StatusCheckFailed") -> str:
    alarms = boto3.client("cloudwatch", region_name="us-east-1").describe_alarms(
        AlarmNames=[f"{instance_id}-{metric}"]
    )
    return str(alarms["MetricAlarms"][0]["StateValue"])


def test_a_running_instance_passes_both_checks_and_a_stopped_one_has_none(emulation: Ec2Emulation) -> None:
    instance_id = launch()
    assert checks(instance_id) == ("running", "ok", "ok")
    [status] = ec2().describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status["InstanceStatus"]["Details"] == [{"Name": "reachability", "Status": "passed"}]
    ec2().stop_instances(InstanceIds=[instance_id])
    eventually(instance_id, ("stopped", "not-applicable", "not-applicable"))


def test_an_impaired_instance_check_is_fixed_by_a_reboot_after_initializing(emulation: Ec2Emulation) -> None:
    instance_id = launch()
    emulation.impair(instance_id, "instance")
    assert checks(instance_id) == ("running", "ok", "impaired")
    [status] = ec2().describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status["InstanceStatus"]["Details"] == [{"Name": "reachability", "Status": "failed"}]

    ec2().reboot_instances(InstanceIds=[instance_id])
    assert checks(instance_id) == ("running", "initializing", "initializing")
    eventually(instance_id, ("running", "ok", "ok"))


def test_a_reboot_does_not_fix_a_system_check_and_a_stop_and_start_does(emulation: Ec2Emulation) -> None:
    instance_id = launch()
    emulation.impair(instance_id, "system")
    ec2().reboot_instances(InstanceIds=[instance_id])
    assert checks(instance_id) == ("running", "impaired", "initializing")
    eventually(instance_id, ("running", "impaired", "ok"))

    ec2().stop_instances(InstanceIds=[instance_id])
    eventually(instance_id, ("stopped", "not-applicable", "not-applicable"))
    ec2().start_instances(InstanceIds=[instance_id])
    eventually(instance_id, ("running", "initializing", "initializing"))
    eventually(instance_id, ("running", "ok", "ok"))


def test_an_instance_check_a_reboot_cannot_fix_survives_a_stop_and_start(emulation: Ec2Emulation) -> None:
    instance_id = launch()
    emulation.impair(instance_id, "instance", reboot_fixes=False)
    ec2().reboot_instances(InstanceIds=[instance_id])
    eventually(instance_id, ("running", "ok", "impaired"))
    ec2().stop_instances(InstanceIds=[instance_id])
    eventually(instance_id, ("stopped", "not-applicable", "not-applicable"))
    ec2().start_instances(InstanceIds=[instance_id])
    eventually(instance_id, ("running", "ok", "impaired"))


def test_stops_and_starts_send_the_documented_state_change_events(emulation: Ec2Emulation) -> None:
    """User Guide example: source aws.ec2, detail-type "EC2 Instance State-change Notification", the
    instance ARN in resources, detail {"instance-id", "state"}; one event per state entered."""
    watching: Rule = rule(
        "instance-states", {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}
    )
    instance_id = launch()
    ec2().stop_instances(InstanceIds=[instance_id])
    eventually(instance_id, ("stopped", "not-applicable", "not-applicable"))
    ec2().start_instances(InstanceIds=[instance_id])

    events = watching.received(4)
    assert [e["detail"] for e in events] == [
        {"instance-id": instance_id, "state": state}
        for state in ("stopping", "stopped", "pending", "running")
    ]
    assert events[0]["resources"] == [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"]


def test_a_status_check_alarm_follows_the_checks_it_covers(emulation: Ec2Emulation) -> None:
    instance_id = launch()
    status_alarm(instance_id)
    status_alarm(instance_id, "StatusCheckFailed_System")

    emulation.impair(instance_id, "instance")
    assert alarm_state(instance_id) == "ALARM"
    assert alarm_state(instance_id, "StatusCheckFailed_System") != "ALARM"

    ec2().reboot_instances(InstanceIds=[instance_id])
    deadline = time.monotonic() + 10
    while alarm_state(instance_id) != "OK":
        assert time.monotonic() < deadline, "the alarm stayed in ALARM after the checks passed"
        time.sleep(0.01)
    assert checks(instance_id) == ("running", "ok", "ok")
