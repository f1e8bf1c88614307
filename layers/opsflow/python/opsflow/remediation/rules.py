"""A remediation rule, as `PUT /remediations/{name}` takes it: what fires it, what it may act on, what it
does, and the guards around that.

Where each trigger's events come from:
- `alarm`: the `CloudWatch Alarm State Change` event of an alarm named, prefixed or tagged as the rule says,
  going to ALARM; the resource is the alarm metric's dimension (`InstanceId`, `AutoScalingGroupName`, or
  `ClusterName` with `ServiceName`).
- `status_check`: the same event for an alarm on `AWS/EC2` `StatusCheckFailed`, `StatusCheckFailed_System` or
  `StatusCheckFailed_Instance`: EC2 sends no event of its own when a status check fails.
- `ecs_tasks_stopping`: ECS's `ECS Service Action` event `SERVICE_TASK_START_IMPAIRED` ("the service is unable
  to consistently start tasks successfully").
- `instance_stopped`: the `EC2 Instance State-change Notification` of an instance going to `stopped` that no
  Opsflow run stopped.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from opsflow.aws.regions import check_region
from opsflow.runs.requests import REQUEST_CONFIG

RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# Systems Manager document names (API Reference, CreateDocument: Name).
DOCUMENT_NAME = r"^[a-zA-Z0-9_\-.:/]{3,128}$"
# EC2's status check metrics (User Guide, "Status check metrics").
STATUS_CHECK_METRICS = {
    "any": ("StatusCheckFailed", "StatusCheckFailed_System", "StatusCheckFailed_Instance"),
    "system": ("StatusCheckFailed_System",),
    "instance": ("StatusCheckFailed_Instance",),
}

AlarmName = Annotated[str, Field(min_length=1, max_length=255)]
TagText = Annotated[str, Field(min_length=1, max_length=256)]


class _Part(BaseModel):
    model_config = REQUEST_CONFIG


# Triggers ------------------------------------------------------------------------------------------


class AlarmTrigger(_Part):
    """An alarm going to ALARM: named, by name prefix, or carrying tags (exactly one of them)."""

    kind: Literal["alarm"]
    alarm_names: Annotated[list[AlarmName], Field(min_length=1, max_length=100)] | None = None
    alarm_name_prefix: AlarmName | None = None
    alarm_tags: Annotated[dict[TagText, TagText], Field(min_length=1, max_length=10)] | None = None

    @model_validator(mode="after")
    def _one_way_of_naming(self) -> AlarmTrigger:
        given = [
            n for n in ("alarm_names", "alarm_name_prefix", "alarm_tags") if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of alarm_names, alarm_name_prefix and alarm_tags")
        return self


class StatusCheckTrigger(_Part):
    """An alarm on an EC2 status check metric going to ALARM."""

    kind: Literal["status_check"]
    check: Literal["any", "system", "instance"] = Field(
        default="any", description="Which status check: system (AWS's hardware), instance (the OS), or any."
    )


class TasksStoppingTrigger(_Part):
    """An ECS service that cannot keep its tasks running (`SERVICE_TASK_START_IMPAIRED`)."""

    kind: Literal["ecs_tasks_stopping"]
    cluster: Annotated[str, Field(min_length=1, max_length=255)]
    services: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]], Field(max_length=100)] | None
    ) = Field(
        default=None, description="The services it covers; all the cluster's opted-in services without it."
    )


class InstanceStoppedTrigger(_Part):
    """An instance that stopped without an Opsflow run stopping it."""

    kind: Literal["instance_stopped"]


Trigger = Annotated[
    AlarmTrigger | StatusCheckTrigger | TasksStoppingTrigger | InstanceStoppedTrigger,
    Field(discriminator="kind"),
]

# Actions -------------------------------------------------------------------------------------------


class Reboot(_Part):
    """RebootInstances: the OS restarts on the same host."""

    kind: Literal["reboot"]


class StopStart(_Part):
    """StopInstances, then StartInstances: an EBS-backed instance comes back on other hardware."""

    kind: Literal["stop_start"]


class Recover(_Part):
    """EC2 recovery, for a failed system status check: the instance keeps its id, addresses and volumes on
    new hardware. EC2 recovers only as a CloudWatch alarm action (`arn:aws:automate:<region>:ec2:recover`),
    so Opsflow recovers an EBS-backed instance by a stop and a start, and refuses one with instance store
    volumes, whose data a stop loses."""

    kind: Literal["recover"]


class EcsRedeploy(_Part):
    """UpdateService with forceNewDeployment: the service's tasks are replaced by its deployment settings."""

    kind: Literal["ecs_redeploy"]


class Runbook(_Part):
    """A Systems Manager Automation runbook (`AWS-RestartEC2Instance`, or a team's own)."""

    kind: Literal["runbook"]
    document: Annotated[
        str, Field(pattern=DOCUMENT_NAME, description="The Automation document's name or ARN.")
    ]
    document_version: Annotated[str, Field(pattern=r"^([$]LATEST|[$]DEFAULT|[0-9]+)$")] | None = None
    parameters: Annotated[
        dict[
            Annotated[str, Field(min_length=1, max_length=255)],
            Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=50)],
        ],
        Field(max_length=50),
    ] = Field(
        default_factory=dict,
        description="The runbook's parameters; `{{resource}}` in a value is the resource acted on.",
    )


Action = Annotated[Reboot | StopStart | Recover | EcsRedeploy | Runbook, Field(discriminator="kind")]

INSTANCE_ACTIONS = ("reboot", "stop_start", "recover")
# Every trigger's and action's kind.
KINDS = frozenset(
    {"alarm", "status_check", "ecs_tasks_stopping", "instance_stopped", "reboot", "stop_start", "recover"}
    | {"ecs_redeploy", "runbook"}
)
INSTANCE_TRIGGERS = ("status_check", "instance_stopped")

# Guards --------------------------------------------------------------------------------------------


class Breaker(_Part):
    """After `max_actions` actions of the rule within `within_minutes`, the rule stops acting and stays so
    until the breaker is closed (`DELETE /remediations/{name}/breaker`)."""

    max_actions: Annotated[int, Field(ge=1, le=1000)] = 3
    within_minutes: Annotated[int, Field(ge=1, le=1440)] = 60


class Concurrency(_Part):
    """How much is acted on at once: at most `max_resources`, and at most `max_percent` of a group."""

    max_resources: Annotated[int, Field(ge=1, le=1000)] = 1
    max_percent: Annotated[int, Field(ge=1, le=100)] | None = None


class Scope(_Part):
    """Which resources the rule may act on, beyond Opsflow's opt-in tag, which each must carry."""

    environment: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None, description="Only resources whose environment tag has this value."
    )
    asg_name: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="Only instances of this Auto Scaling group."
    )
    tags: Annotated[dict[TagText, TagText], Field(max_length=10)] = Field(
        default_factory=dict, description="Only resources carrying all these tags."
    )


class RemediationRule(_Part):
    description: Annotated[str, Field(max_length=500)] = ""
    trigger: Trigger
    action: Action
    scope: Scope = Field(default_factory=Scope)
    cooldown_minutes: Annotated[int, Field(ge=1, le=10080)] = Field(
        description="A resource acted on is left alone this long, whatever fires."
    )
    breaker: Breaker = Field(default_factory=Breaker)
    concurrency: Concurrency = Field(default_factory=Concurrency)
    outcome_timeout_minutes: Annotated[int, Field(ge=1, le=120)] = Field(
        default=15,
        description="How long the action has to help (the alarm back to OK, the instance passing checks).",
    )
    dry_run: bool = Field(default=False, description="Record what it would do and notify; act on nothing.")
    enabled: bool = True
    account: Annotated[str, Field(pattern=r"^\d{12}$")] | None = Field(
        default=None, description="The account its resources are in (default: the hub's); a registered one."
    )
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] | None = Field(
        default=None, description="The region its resources are in (default: the hub's)."
    )

    @field_validator("action")
    @classmethod
    def _suits_the_trigger(cls, action: Action, info: ValidationInfo) -> Action:
        trigger = info.data.get("trigger")
        if trigger is None:
            return action
        if trigger.kind == "ecs_tasks_stopping" and action.kind in INSTANCE_ACTIONS:
            raise ValueError(
                f"{action.kind} acts on an instance; an ECS service takes ecs_redeploy or runbook"
            )
        if trigger.kind in INSTANCE_TRIGGERS and action.kind == "ecs_redeploy":
            raise ValueError(
                f"ecs_redeploy acts on an ECS service; a {trigger.kind} trigger names an instance"
            )
        return action

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        return None if value is None else check_region(value)
