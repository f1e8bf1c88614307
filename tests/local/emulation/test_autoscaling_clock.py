"""An instance refresh nobody reads still runs on its own clock and sends its EventBridge events when AWS
would (User Guide, "Instance refresh example events and patterns": Started, Checkpoint Reached, Succeeded,
Rollback Started, Rollback Succeeded, Cancelled): no DescribeAutoScalingGroups or DescribeInstanceRefreshes
is called until every event has been seen; each is sent by the clock's thread at the moment the
emulation's schedule (pending_seconds, InstanceWarmup, CheckpointDelay, the alarm check, all AWS seconds x
time_scale) makes it due."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime

import pytest
from moto import mock_aws

from opsflow_local.emulation.autoscaling import AutoScalingEmulation
from opsflow_local.emulation.aws_events import ServiceEvent
from opsflow_local.emulation.cloudwatch import CloudWatchEmulation
from opsflow_local.emulation.ec2 import Ec2Emulation

from .bus import Recorder, Window, called
from .test_autoscaling import alarm, asg, desired, group_images, group_with_template

SCALE = 0.01  # one AWS second lasts 10 ms
PENDING = 30.0  # AWS seconds a refresh (or a cancellation) is Pending (Cancelling)
# How late an event may come after it is due, in real seconds: the clock's thread and moto's calls on a
# loaded 2-core machine. Every phase below lasts longer, so an event a phase late fails the test.
LATE = 0.25
EARLY = 0.01  # wall-clock jitter between the test's reading of the time and the emulation's
PREFIX = "EC2 Auto Scaling Instance Refresh "


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    events = Recorder()
    with ExitStack() as stack:
        Ec2Emulation(time_scale=SCALE).install(stack)
        AutoScalingEmulation(time_scale=SCALE, pending_seconds=PENDING).install(stack)
        CloudWatchEmulation().install(stack)
        stack.enter_context(mock_aws())
        events.install(stack)  # its clock stops first
        yield events


def refresh_events(recorder: Recorder, count: int, timeout: float = 10.0) -> list[ServiceEvent]:
    """The first `count` instance refresh events sent, waiting for them without calling AWS."""
    deadline = time.monotonic() + timeout
    while len(found := [e for e in recorder.sent if e.source == "aws.autoscaling"]) < count:
        assert time.monotonic() < deadline, [e.detail_type for e in found]
        time.sleep(0.002)
    return found[:count]


def assert_on_time(
    recorder: Recorder, event: ServiceEvent, since: Window | datetime, aws_seconds: float
) -> None:
    """`event` was sent by the clock's thread `aws_seconds` (x SCALE) after `since` (a call, whose schedule
    starts while it runs, or an instant), give or take LATE."""
    assert recorder.threads[id(event)] == "emulated-aws-clock", event.detail_type
    window = since if isinstance(since, Window) else Window(since, since)
    due = aws_seconds * SCALE
    earliest = (event.at - window.end).total_seconds()
    latest = (event.at - window.begin).total_seconds()
    seen = (event.detail_type, earliest, latest, due)
    assert latest >= due - EARLY, seen
    assert earliest <= due + LATE, seen


def test_a_refresh_left_alone_reaches_its_checkpoint_and_succeeds_on_time(recorder: Recorder) -> None:
    """Four instances, two at a time (MinHealthyPercentage 50), 30 s warmup, a checkpoint at 50 % with a 60 s
    delay: Started after the 30 s pending, Checkpoint Reached once the first batch warmed up (+30 s),
    Succeeded after the delay and the second batch (+60 s +30 s)."""
    template_id, _, new_image = group_with_template()
    with called() as start:
        refresh_id = asg().start_instance_refresh(
            AutoScalingGroupName="web",
            DesiredConfiguration=desired(template_id),
            Preferences={
                "InstanceWarmup": 30,
                "MinHealthyPercentage": 50,
                "CheckpointPercentages": [50],
                "CheckpointDelay": 60,
            },
        )["InstanceRefreshId"]

    started, checkpoint, succeeded = refresh_events(recorder, 3)

    assert [e.detail_type for e in (started, checkpoint, succeeded)] == [
        PREFIX + "Started",
        PREFIX + "Checkpoint Reached",
        PREFIX + "Succeeded",
    ]
    assert_on_time(recorder, started, start, PENDING)
    assert_on_time(recorder, checkpoint, start, PENDING + 30)
    assert_on_time(recorder, succeeded, start, PENDING + 30 + 60 + 30)
    assert (checkpoint.detail["CheckpointPercentage"], checkpoint.detail["CheckpointDelay"]) == ("50", "60")
    assert {e.detail["InstanceRefreshId"] for e in (started, checkpoint, succeeded)} == {refresh_id}
    # Only now does anyone look: the group already took the desired configuration.
    assert group_images() == [new_image] * 4
    group = asg().describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"


def test_an_alarm_rolls_a_refresh_left_alone_back_on_time(recorder: Recorder) -> None:
    """AlarmSpecification with AutoRollback: the refresh looks at its alarms every alarm_check_seconds
    (10 s) on its own, so Rollback Started comes at most that long after the alarm went into ALARM, and
    Rollback Succeeded one warmup (50 s) later."""
    template_id, old_image, _ = group_with_template()
    cloudwatch = alarm("web-5xx")
    with called() as start:
        asg().start_instance_refresh(
            AutoScalingGroupName="web",
            DesiredConfiguration=desired(template_id),
            Preferences={
                "InstanceWarmup": 50,
                "MinHealthyPercentage": 90,
                "AutoRollback": True,
                "AlarmSpecification": {"Alarms": ["web-5xx"]},
            },
        )
    [started] = refresh_events(recorder, 1)
    assert_on_time(recorder, started, start, PENDING)
    with called() as alarmed:
        cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx burst")

    _, rollback_started, rollback_succeeded = refresh_events(recorder, 3)

    assert [rollback_started.detail_type, rollback_succeeded.detail_type] == [
        PREFIX + "Rollback Started",
        PREFIX + "Rollback Succeeded",
    ]
    assert recorder.threads[id(rollback_started)] == "emulated-aws-clock"
    assert rollback_started.at >= alarmed.begin
    assert (rollback_started.at - alarmed.end).total_seconds() <= 10 * SCALE + LATE
    assert_on_time(recorder, rollback_succeeded, rollback_started.at, 50)
    assert group_images() == [old_image] * 4


def test_a_cancelled_refresh_left_alone_is_cancelled_on_time(recorder: Recorder) -> None:
    """CancelInstanceRefresh: Cancelling for the pending time, then Cancelled, with nobody reading."""
    template_id, _, _ = group_with_template()
    asg().start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration=desired(template_id),
        Preferences={"InstanceWarmup": 1000, "MinHealthyPercentage": 90},
    )
    [started] = refresh_events(recorder, 1)
    assert started.detail_type == PREFIX + "Started"
    with called() as cancelling:
        asg().cancel_instance_refresh(AutoScalingGroupName="web")

    _, cancelled = refresh_events(recorder, 2)

    assert cancelled.detail_type == PREFIX + "Cancelled"
    assert_on_time(recorder, cancelled, cancelling, PENDING)
