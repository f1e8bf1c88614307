"""The ECS blue/green request."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, model_validator

from opsflow.aws.target import Target
from opsflow.runs.requests import RunRequest
from opsflow.traffic.plan import (
    MAX_TRAFFIC_SECONDS,
    CanaryTraffic,
    Seconds,
    StrictModel,
    TrafficPlan,
    TrafficStep,
)

LISTENER_ARN = (
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/app/[A-Za-z0-9-]+/[0-9a-f]+/[0-9a-f]+$"
)
TARGET_GROUP_ARN = (
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$"
)


class SmokeTest(StrictModel):
    """Run once green is steady, before any production traffic reaches it: an HTTP GET of `url` (through
    the test listener, which Opsflow points at green) expecting a 2xx, or a Lambda function returning
    `{"passed": true|false, "reason": "..."}`."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)] | None = None
    lambda_function: Annotated[str, Field(min_length=1, max_length=170)] | None = Field(
        default=None, validation_alias=AliasChoices("lambda_function", "lambda")
    )
    # Well inside the steps Lambda's own 60-second timeout.
    timeout_seconds: Annotated[int, Field(ge=1, le=30)] = 10

    @model_validator(mode="after")
    def _one_kind(self) -> SmokeTest:
        if (self.url is None) == (self.lambda_function is None):
            raise ValueError("give exactly one of url or lambda")
        return self


class EcsBlueGreenRequest(RunRequest):
    """Deploy a new version of an ECS service beside the live one and shift an ALB listener's traffic to
    it step by step, each step gated by alarms; any failed gate puts all traffic back on the live side."""

    workflow: Literal["ecs_blue_green"]
    cluster: Annotated[str, Field(min_length=1, max_length=255, description="The ECS cluster (name or ARN).")]
    service: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$",
            description="The service taking production traffic now (or its partner on the other target group).",
        ),
    ]
    task_definition: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, description="The new version: a task definition ARN or family:revision."
    )
    image: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="The new version: a container image to put in the live task definition."
    )
    container: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="The container `image` replaces; default: the load-balanced one."
    )
    listener_arn: Annotated[str, Field(pattern=LISTENER_ARN, description="The production listener.")]
    test_listener_arn: Annotated[str, Field(pattern=LISTENER_ARN)] | None = Field(
        default=None, description="A listener Opsflow points at green for the smoke test."
    )
    target_groups: Annotated[
        list[Annotated[str, Field(pattern=TARGET_GROUP_ARN)]],
        Field(min_length=2, max_length=2, description="The blue and green target groups, in either order."),
    ]
    traffic: TrafficPlan = Field(
        default_factory=lambda: CanaryTraffic(type="canary"),
        description="canary {percent, hold_seconds}, linear {step_percent, interval_seconds} or "
        "steps {steps: [{percent, hold_seconds}]}.",
    )
    alarms: Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]], Field(max_length=10)] = (
        Field(
            default_factory=list, description="CloudWatch alarms; one in ALARM puts all traffic back on blue."
        )
    )
    smoke_test: SmokeTest | None = None
    bake_seconds: Seconds = Field(
        default=600, description="How long green takes all traffic, watched, before blue is scaled to zero."
    )

    @model_validator(mode="after")
    def _consistent(self) -> EcsBlueGreenRequest:
        if (self.task_definition is None) == (self.image is None):
            raise ValueError("give exactly one of task_definition (the new version's ARN) or image")
        if self.container is not None and self.image is None:
            raise ValueError("container names the container an image replaces: give image too")
        if self.target_groups[0] == self.target_groups[1]:
            raise ValueError("target_groups must be two different target groups")
        if self.smoke_test is not None and self.smoke_test.url is not None and self.test_listener_arn is None:
            raise ValueError(
                "a smoke_test url needs test_listener_arn: the test listener is what sends its requests to green"
            )
        if self.test_listener_arn is not None and self.test_listener_arn == self.listener_arn:
            raise ValueError("test_listener_arn must be another listener than the production one")
        held = sum(step.hold_seconds for step in self.traffic.expand()) + self.bake_seconds
        if held > MAX_TRAFFIC_SECONDS:
            raise ValueError(
                f"holds and bake_seconds add up to {held} s; at most {MAX_TRAFFIC_SECONDS} s (12 hours) in all"
            )
        return self

    def target(self) -> Target:
        return self.located("ecs", f"{self.cluster.split('/')[-1]}/{self.service}")

    def holds(self) -> list[Target]:
        # Either service of a pair may be named, and both share the production listener.
        return [self.target(), self.located("listener", self.listener_arn)]

    def traffic_steps(self) -> list[TrafficStep]:
        return self.traffic.expand()
