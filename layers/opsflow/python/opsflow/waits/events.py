"""Which waits an AWS event can end, from the events' documented shapes (see `events/` at the repository root).

An event ends a wait by naming what it awaits (a Target key); the step after the wait looks at the resource
itself, so an event only has to say "look now". Alarm state changes to ALARM end a wait with a failure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opsflow.aws.target import Target

AMI_STATE_CHANGE = "EC2 AMI State Change"
# EC2 Auto Scaling User Guide, "Instance refresh example events and patterns": Started, Checkpoint Reached,
# Succeeded, Failed, Cancelled, Rollback Started, Rollback Succeeded, Rollback Failed.
INSTANCE_REFRESH = "EC2 Auto Scaling Instance Refresh "
# ECS Developer Guide, "Amazon ECS service deployment state change events".
ECS_DEPLOYMENT = "ECS Deployment State Change"
_DEPLOYMENT_DONE = frozenset({"SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED"})
# RDS User Guide, "Amazon RDS event categories and event messages": a DB instance or cluster stopped (it can be
# started now) or started.
_DATABASE_EVENTS = {
    "RDS DB Instance Event": ("db-instance", frozenset({"RDS-EVENT-0087", "RDS-EVENT-0088"})),
    "RDS DB Cluster Event": ("db-cluster", frozenset({"RDS-EVENT-0150", "RDS-EVENT-0151"})),
}
# CloudWatch User Guide, "Alarm events and EventBridge".
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
# The error a gate's wait fails with when one of its alarms goes to ALARM (traffic.gates names it too).
ALARM_FIRED = "AlarmFired"
# Systems Manager User Guide, "Monitoring Systems Manager events with Amazon EventBridge": a command's run on
# one managed node changed status; only its ends concern a wait.
COMMAND_INVOCATION = "EC2 Command Invocation Status-change Notification"
_COMMAND_ENDED = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
# Systems Manager User Guide, "Monitoring Systems Manager events with Amazon EventBridge": an Automation
# execution changed status; only its ends concern a wait.
AUTOMATION_EXECUTION = "EC2 Automation Execution Status-change Notification"
_AUTOMATION_ENDED = frozenset(
    {"Success", "Failed", "TimedOut", "Cancelled", "CompletedWithSuccess", "CompletedWithFailure"}
)
# EC2 User Guide, "State change events for Amazon EC2 instances": a stop or a start has ended.
INSTANCE_STATE_CHANGE = "EC2 Instance State-change Notification"
_INSTANCE_SETTLED = frozenset({"running", "stopped", "terminated"})
# CreateImage's image ends available or failed (EC2 User Guide, "Monitor AMI events using Amazon EventBridge").
_IMAGE_DONE = frozenset({"available", "failed", "deregistered", "disabled"})


@dataclass(frozen=True)
class Wake:
    awaited: Target
    what: str  # for the audit record: "image ami-0abc is available"
    failure: str | None = None  # an error name: the wait fails with it (an alarm went to ALARM)


def wakes(event: Mapping[str, Any], home_account: str, home_region: str) -> list[Wake]:
    """The waits `event` can end. Targets in the hub's own account and region carry no location."""
    detail = event.get("detail") or {}
    account = event.get("account") if event.get("account") != home_account else None
    region = event.get("region") if event.get("region") != home_region else None

    def target(kind: str, name: str) -> Target:
        return Target(kind, name, account, region)

    if event.get("detail-type") == AMI_STATE_CHANGE:
        state = str(detail.get("State", ""))
        image_id = str(detail.get("ImageId", ""))
        if image_id and state in _IMAGE_DONE:
            return [Wake(target("image", image_id), f"image {image_id} is {state}")]
    detail_type = str(event.get("detail-type", ""))
    if detail_type.startswith(INSTANCE_REFRESH) and detail.get("AutoScalingGroupName"):
        group = str(detail["AutoScalingGroupName"])
        what = detail_type.removeprefix(INSTANCE_REFRESH).lower()
        return [
            Wake(
                target("refresh", group),
                f"instance refresh {detail.get('InstanceRefreshId')} of {group}: {what}",
            )
        ]
    if detail_type == ECS_DEPLOYMENT and detail.get("eventName") in _DEPLOYMENT_DONE:
        # resources: the service's ARN, arn:aws:ecs:<region>:<account>:service/<cluster>/<service>
        services = [
            str(arn).split(":service/", 1)[1] for arn in event.get("resources") or [] if ":service/" in arn
        ]
        outcome = str(detail["eventName"]).removeprefix("SERVICE_DEPLOYMENT_").lower()
        return [
            Wake(target("service", service), f"deployment of {service} {outcome}") for service in services
        ]
    if detail_type in _DATABASE_EVENTS:
        kind, ids = _DATABASE_EVENTS[detail_type]
        if detail.get("EventID") in ids and detail.get("SourceIdentifier"):
            identifier = str(detail["SourceIdentifier"])
            return [
                Wake(target(kind, identifier), f"{identifier}: {detail.get('Message', detail['EventID'])}")
            ]
    if detail_type == COMMAND_INVOCATION and detail.get("status") in _COMMAND_ENDED:
        command = f"{detail.get('command-id')}/{detail.get('instance-id')}"
        return [Wake(target("command", command), f"command {command} ended {detail['status']}")]
    if detail_type == AUTOMATION_EXECUTION and detail.get("Status") in _AUTOMATION_ENDED:
        execution = str(detail.get("ExecutionId", ""))
        if execution:
            return [
                Wake(
                    target("automation", execution), f"runbook execution {execution} ended {detail['Status']}"
                )
            ]
    if (
        detail_type == INSTANCE_STATE_CHANGE
        and detail.get("state") in _INSTANCE_SETTLED
        and detail.get("instance-id")
    ):
        instance_id = str(detail["instance-id"])
        return [Wake(target("instance", instance_id), f"instance {instance_id} is {detail['state']}")]
    if detail_type == ALARM_STATE_CHANGE and (detail.get("state") or {}).get("value") == "OK":
        # A remediation waits for its alarm to be OK again; a gate's hold does not end at it.
        name = str(detail.get("alarmName", ""))
        return [Wake(target("alarm-ok", name), f"alarm {name} is OK again")]
    if detail_type == ALARM_STATE_CHANGE and (detail.get("state") or {}).get("value") == "ALARM":
        name = str(detail.get("alarmName", ""))
        reason = str((detail.get("state") or {}).get("reason", "")).rstrip(".")
        what = f"alarm {name} went to ALARM" + (f": {reason}" if reason else "")
        return [Wake(target("alarm", name), what, failure=ALARM_FIRED)]
    return []
