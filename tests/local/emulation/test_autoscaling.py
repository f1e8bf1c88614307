"""Instance refresh emulation against the Amazon EC2 Auto Scaling API Reference (StartInstanceRefresh,
DescribeInstanceRefreshes, CancelInstanceRefresh, RollbackInstanceRefresh, RefreshPreferences) and the
User Guide's instance refresh chapters (checkpoints, alarms, auto rollback)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from opsflow_local.emulation.autoscaling import AutoScalingEmulation

pytestmark = pytest.mark.usefixtures("autoscaling_emulation")

FAST = {"InstanceWarmup": 10, "MinHealthyPercentage": 50}


def asg() -> Any:
    return boto3.client("autoscaling", region_name="us-east-1")


def ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def images() -> tuple[str, str]:
    found = ec2().describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}]
    )
    first, second = sorted(i["ImageId"] for i in found["Images"])[:2]
    return first, second


def group_with_template(capacity: int = 4, version: str = "1") -> tuple[str, str, str]:
    """A group of `capacity` on version 1 of a template; version 2 holds another image."""
    old_image, new_image = images()
    subnet = ec2().describe_subnets()["Subnets"][0]["SubnetId"]
    template_id = ec2().create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": old_image, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2().create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion="1", LaunchTemplateData={"ImageId": new_image}
    )
    asg().create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
        MinSize=capacity,
        MaxSize=capacity * 2,
        DesiredCapacity=capacity,
        VPCZoneIdentifier=subnet,
    )
    return template_id, old_image, new_image


def desired(template_id: str, version: str = "2") -> dict[str, Any]:
    return {"LaunchTemplate": {"LaunchTemplateId": template_id, "Version": version}}


def alarm(name: str) -> Any:
    """A metric alarm in state OK; returns the CloudWatch client to steer it with."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    return cloudwatch


def refresh(refresh_id: str) -> dict[str, Any]:
    return dict(
        asg().describe_instance_refreshes(AutoScalingGroupName="web", InstanceRefreshIds=[refresh_id])[
            "InstanceRefreshes"
        ][0]
    )


def wait_for(refresh_id: str, statuses: set[str], timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = refresh(refresh_id)
    while seen["Status"] not in statuses:
        assert time.monotonic() < deadline, seen
        time.sleep(0.002)
        seen = refresh(refresh_id)
    return seen


def group_images() -> list[str]:
    group = asg().describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in group["Instances"]]
    reservations = ec2().describe_instances(InstanceIds=ids)["Reservations"]
    return sorted(i["ImageId"] for r in reservations for i in r["Instances"])


def test_a_refresh_replaces_every_instance_and_the_group_takes_the_desired_configuration() -> None:
    """StartInstanceRefresh with DesiredConfiguration: instances are replaced, and once the refresh
    succeeds the group uses the desired configuration. Status goes Pending -> InProgress -> Successful."""
    template_id, _, new_image = group_with_template()
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web", DesiredConfiguration=desired(template_id), Preferences=FAST
    )["InstanceRefreshId"]
    assert refresh(refresh_id)["Status"] == "Pending"
    done = wait_for(refresh_id, {"Successful"})
    assert (done["PercentageComplete"], done["InstancesToUpdate"]) == (100, 0)
    assert "EndTime" in done
    assert group_images() == [new_image] * 4
    group = asg().describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"


def test_min_healthy_percentage_bounds_how_many_are_replaced_at_once() -> None:
    """RefreshPreferences.MinHealthyPercentage: at least that share of capacity stays in service, so at
    90 % of 4 instances they are replaced one at a time."""
    template_id, old_image, new_image = group_with_template()
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id),
        # 200 s (0.2 s here) per batch: long enough to see every batch on a busy machine.
        Preferences={"InstanceWarmup": 200, "MinHealthyPercentage": 90},
    )["InstanceRefreshId"]
    seen = set()
    while True:
        running = group_images()
        current = refresh(refresh_id)  # read after the instances: its progress can only be further on
        seen.add(current["PercentageComplete"])
        assert running.count(new_image) <= current["PercentageComplete"] // 25 + 1  # one in flight at most
        assert set(running) <= {old_image, new_image}
        assert len(running) == 4
        if current["Status"] == "Successful":
            break
        time.sleep(0.002)
    assert {0, 25, 50, 75} <= seen


def test_checkpoints_pause_the_refresh_at_their_percentage() -> None:
    """CheckpointPercentages and CheckpointDelay: the refresh waits at each checkpoint."""
    template_id, _, _ = group_with_template()
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id),
        Preferences={**FAST, "CheckpointPercentages": [50, 100], "CheckpointDelay": 500},
    )["InstanceRefreshId"]
    deadline = time.monotonic() + 5
    while refresh(refresh_id)["PercentageComplete"] < 50:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    paused = refresh(refresh_id)
    assert (paused["Status"], paused["PercentageComplete"]) == ("InProgress", 50)
    assert "Checkpoint 50%" in paused["StatusReason"]
    time.sleep(0.2)  # well inside the 500 s (0.5 s) delay
    assert refresh(refresh_id)["PercentageComplete"] == 50
    assert wait_for(refresh_id, {"Successful"})["Preferences"]["CheckpointPercentages"] == [50, 100]


def test_a_second_refresh_while_one_is_active_is_refused() -> None:
    """StartInstanceRefresh: InstanceRefreshInProgress."""
    template_id, _, _ = group_with_template()
    asg().start_instance_refresh(
        AutoScalingGroupName="web", DesiredConfiguration=desired(template_id), Preferences=FAST
    )
    with pytest.raises(ClientError) as caught:
        asg().start_instance_refresh(AutoScalingGroupName="web", DesiredConfiguration=desired(template_id))
    assert caught.value.response["Error"]["Code"] == "InstanceRefreshInProgress"


def test_an_alarm_with_auto_rollback_rolls_back_to_the_previous_configuration() -> None:
    """AlarmSpecification + AutoRollback: an alarm in ALARM fails the refresh and rolls it back; the
    instances launched so far are replaced with the configuration the group had before."""
    template_id, old_image, _ = group_with_template()
    cloudwatch = alarm("web-5xx")
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id),
        Preferences={
            "InstanceWarmup": 300,
            "MinHealthyPercentage": 90,
            "AutoRollback": True,
            "AlarmSpecification": {"Alarms": ["web-5xx"]},
        },
    )["InstanceRefreshId"]
    deadline = time.monotonic() + 5
    while refresh(refresh_id)["PercentageComplete"] < 25:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx burst")
    rolled_back = wait_for(refresh_id, {"RollbackSuccessful"})
    assert "web-5xx" in rolled_back["StatusReason"]
    assert rolled_back["RollbackDetails"]["PercentageCompleteOnRollback"] >= 25
    assert group_images() == [old_image] * 4
    group = asg().describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "1"


def test_an_alarm_without_auto_rollback_fails_the_refresh() -> None:
    template_id, _, _ = group_with_template()
    cloudwatch = alarm("cpu")
    cloudwatch.set_alarm_state(AlarmName="cpu", StateValue="ALARM", StateReason="hot")
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id),
        Preferences={**FAST, "AlarmSpecification": {"Alarms": ["cpu"]}},
    )["InstanceRefreshId"]
    assert "cpu" in wait_for(refresh_id, {"Failed"})["StatusReason"]


def test_rollback_is_refused_when_the_group_uses_latest() -> None:
    """RollbackInstanceRefresh is not supported when the group uses $Latest or $Default
    (IrreversibleInstanceRefresh); AutoRollback is refused at the start for the same reason."""
    template_id, _, _ = group_with_template(version="$Latest")
    with pytest.raises(ClientError):
        asg().start_instance_refresh(
            AutoScalingGroupName="web",
            DesiredConfiguration=desired(template_id),
            Preferences={**FAST, "AutoRollback": True},
        )
    asg().start_instance_refresh(
        AutoScalingGroupName="web", DesiredConfiguration=desired(template_id), Preferences=FAST
    )
    with pytest.raises(ClientError) as caught:
        asg().rollback_instance_refresh(AutoScalingGroupName="web")
    assert caught.value.response["Error"]["Code"] == "IrreversibleInstanceRefresh"


def test_cancel_stops_the_refresh_and_keeps_what_was_replaced(
    autoscaling_emulation: AutoScalingEmulation,
) -> None:
    """CancelInstanceRefresh: Cancelling -> Cancelled; ActiveInstanceRefreshNotFound when none is active."""
    autoscaling_emulation.pending_seconds = 500  # long enough to observe Cancelling
    template_id, _, _ = group_with_template()
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id),
        Preferences={"InstanceWarmup": 1000, "MinHealthyPercentage": 90},
    )["InstanceRefreshId"]
    assert asg().cancel_instance_refresh(AutoScalingGroupName="web")["InstanceRefreshId"] == refresh_id
    assert refresh(refresh_id)["Status"] == "Cancelling"
    assert wait_for(refresh_id, {"Cancelled"})["Status"] == "Cancelled"
    with pytest.raises(ClientError) as caught:
        asg().cancel_instance_refresh(AutoScalingGroupName="web")
    assert caught.value.response["Error"]["Code"] == "ActiveInstanceRefreshNotFound"


def test_skip_matching_leaves_instances_already_on_the_desired_configuration() -> None:
    """RefreshPreferences.SkipMatching: instances that match the desired configuration are not replaced."""
    template_id, _, _ = group_with_template()
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id, "1"),
        Preferences={**FAST, "SkipMatching": True},
    )["InstanceRefreshId"]
    done = wait_for(refresh_id, {"Successful"})
    assert done["InstancesToUpdate"] == 0


def test_bake_time_holds_the_refresh_in_baking() -> None:
    """RefreshPreferences.BakeTime: after the last replacement the refresh is Baking for that long."""
    template_id, _, _ = group_with_template(capacity=2)
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id),
        Preferences={**FAST, "BakeTime": 400},
    )["InstanceRefreshId"]
    assert wait_for(refresh_id, {"Baking"})["PercentageComplete"] == 100
    assert wait_for(refresh_id, {"Successful"})["Status"] == "Successful"


def test_documented_eventbridge_events_reach_a_rule() -> None:
    """User Guide, "Instance refresh example events and patterns": source aws.autoscaling, detail-types
    "EC2 Auto Scaling Instance Refresh Started / Checkpoint Reached / Succeeded", the group's ARN in
    resources, InstanceRefreshId and AutoScalingGroupName (and for a checkpoint CheckpointPercentage
    and CheckpointDelay, as strings) in detail."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="refresh-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(
        Name="instance-refresh",
        EventPattern=json.dumps(
            {"source": ["aws.autoscaling"], "detail-type": [{"prefix": "EC2 Auto Scaling Instance Refresh"}]}
        ),
    )
    events.put_targets(Rule="instance-refresh", Targets=[{"Id": "queue", "Arn": queue_arn}])
    template_id, _, _ = group_with_template(capacity=2)
    refresh_id = asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id),
        Preferences={**FAST, "CheckpointPercentages": [50], "CheckpointDelay": 30},
    )["InstanceRefreshId"]
    wait_for(refresh_id, {"Successful"})

    received = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    assert [e["detail-type"] for e in received] == [
        "EC2 Auto Scaling Instance Refresh Started",
        "EC2 Auto Scaling Instance Refresh Checkpoint Reached",
        "EC2 Auto Scaling Instance Refresh Succeeded",
    ]
    group_arn = asg().describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0][
        "AutoScalingGroupARN"
    ]
    for event in received:
        assert event["source"] == "aws.autoscaling"
        assert event["resources"] == [group_arn]
        assert event["detail"]["InstanceRefreshId"] == refresh_id
        assert event["detail"]["AutoScalingGroupName"] == "web"
    assert received[1]["detail"]["CheckpointPercentage"] == "50"
    assert received[1]["detail"]["CheckpointDelay"] == "30"
