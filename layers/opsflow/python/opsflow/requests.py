"""One request model per workflow, shared unchanged by every trigger (API, Chatbot, schedules, pipelines)."""

from __future__ import annotations

import string
from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

# Tag keys Opsflow writes itself; a request may not set them.
RESERVED_TAG_PREFIXES = ("aws:", "opsflow:")

IMAGE_NAME_FIELDS = frozenset({"asg_name", "instance_id", "run_id", "timestamp"})

# Each model's validator is built when it first validates, not at import: a steps function validates only
# its own workflow's request, and most API routes validate none.
_REQUEST_CONFIG = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class _Request(BaseModel):
    model_config = _REQUEST_CONFIG

    dry_run: bool = Field(default=False, description="Return the plan and change nothing.")


class Checkpoints(BaseModel):
    model_config = _REQUEST_CONFIG

    percentages: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=1, max_length=10)]
    delay_seconds: Annotated[
        int, Field(ge=0, le=43200, validation_alias=AliasChoices("delay_seconds", "delay"))
    ] = 3600

    @model_validator(mode="after")
    def _bounded_wait(self) -> Checkpoints:
        # Every poll adds events to the execution's history, which Step Functions caps at 25,000;
        # half a day of checkpoints leaves room for the replacements themselves.
        if len(self.percentages) * self.delay_seconds > 12 * 3600:
            raise ValueError(
                "checkpoints may pause for at most 12 hours in all (percentages x delay_seconds)"
            )
        return self

    @field_validator("percentages")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        if value != sorted(set(value)):
            raise ValueError("must be distinct and in ascending order, e.g. [25, 50, 100]")
        return value


class RefreshOptions(BaseModel):
    """How to roll instances onto a new launch template version with EC2 instance refresh."""

    model_config = _REQUEST_CONFIG

    min_healthy_percentage: Annotated[int, Field(ge=0, le=100)] = 90
    max_healthy_percentage: Annotated[int, Field(ge=100, le=200)] | None = None
    instance_warmup: Annotated[int, Field(ge=0, le=3600)] | None = None
    checkpoints: Checkpoints | None = None
    alarms: Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]], Field(max_length=10)] = (
        Field(default_factory=list)
    )
    skip_matching: bool = False
    auto_rollback: bool = True

    @model_validator(mode="after")
    def _healthy_range(self) -> RefreshOptions:
        if (
            self.max_healthy_percentage is not None
            and self.max_healthy_percentage - self.min_healthy_percentage > 100
        ):
            raise ValueError("max_healthy_percentage may exceed min_healthy_percentage by at most 100")
        return self


class AmiBakeRequest(_Request):
    """Image an instance, publish the image to an Auto Scaling group's launch template or configuration."""

    workflow: Literal["ami_bake"]
    instance_id: Annotated[str, Field(pattern=r"^i-[0-9a-f]{8,17}$", description="The instance to image.")]
    asg_name: Annotated[str, Field(min_length=1, max_length=255, description="The group to publish to.")]
    image_name: Annotated[
        str,
        Field(
            min_length=3,
            max_length=128,
            description="AMI name template; fields: {asg_name}, {instance_id}, {run_id}, {timestamp}.",
        ),
    ] = "{asg_name}-{timestamp}"
    no_reboot: bool = Field(default=True, description="Image without rebooting the instance.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags for the image and snapshots.")
    keep_images: Annotated[int, Field(ge=1, le=100, description="Images baked for the group to keep.")] = 5
    refresh: RefreshOptions | None = Field(
        default=None, description="Roll the group's instances onto the new image with an instance refresh."
    )

    @field_validator("image_name")
    @classmethod
    def _known_fields_only(cls, value: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as error:
            raise ValueError(f"is not a valid name template: {error}") from error
        unknown = fields - IMAGE_NAME_FIELDS
        if unknown:
            raise ValueError(
                f"uses unknown field(s) {', '.join(sorted(unknown))}; "
                f"available: {', '.join('{' + f + '}' for f in sorted(IMAGE_NAME_FIELDS))}"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 40:
            raise ValueError("may hold at most 40 tags (AWS allows 50 per resource; Opsflow adds its own)")
        for key, tag_value in value.items():
            if key.lower().startswith(RESERVED_TAG_PREFIXES):
                raise ValueError(f"tag key {key!r} is reserved (keys starting with aws: or opsflow:)")
            if not 1 <= len(key) <= 128 or len(tag_value) > 256:
                raise ValueError(f"tag {key!r}: keys are 1-128 characters, values at most 256")
        return value

    def target(self) -> str:
        return f"asg:{self.asg_name}"


class AsgRefreshRequest(RefreshOptions):
    """Replace a group's instances with EC2 instance refresh, pinned to a launch template version."""

    workflow: Literal["asg_refresh"]
    asg_name: Annotated[str, Field(min_length=1, max_length=255)]
    launch_template_version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The version to roll onto; default: the version the group uses now."
    )
    dry_run: bool = False

    def target(self) -> str:
        return f"asg:{self.asg_name}"

    def refresh_options(self) -> RefreshOptions:
        return RefreshOptions.model_validate(self.model_dump(include=set(RefreshOptions.model_fields)))


# An environment's name is a tag value and part of its EventBridge Scheduler schedules' names
# ([0-9A-Za-z-_.], 64 characters in all), hence the narrower alphabet.
ENVIRONMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$"


class EnvPowerRequest(_Request):
    """Stop an environment for the night (saving what ran) or start it again (restoring exactly that)."""

    workflow: Literal["env_power"]
    environment: Annotated[
        str,
        Field(
            pattern=ENVIRONMENT_NAME,
            description="The value of the environment tag (opsflow:environment) its resources carry.",
        ),
    ]
    action: Literal["stop", "start", "restop_databases"] = Field(
        description="stop: save what runs, then stop it; start: restore what the last stop saved; "
        "restop_databases: stop again the saved databases AWS started after seven days stopped."
    )

    def target(self) -> str:
        return f"env:{self.environment}"


# Blue/green ----------------------------------------------------------------------------------------

LISTENER_ARN = (
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/app/[A-Za-z0-9-]+/[0-9a-f]+/[0-9a-f]+$"
)
TARGET_GROUP_ARN = (
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$"
)
# Holding, baking and watching alarms poll every few seconds, and each poll adds events to the execution's
# history, which Step Functions caps at 25,000.
MAX_TRAFFIC_SECONDS = 12 * 3600
_Seconds = Annotated[int, Field(ge=0, le=MAX_TRAFFIC_SECONDS)]


class _Strict(BaseModel):
    model_config = _REQUEST_CONFIG


class TrafficStep(_Strict):
    percent: Annotated[int, Field(ge=1, le=100, description="Share of production traffic sent to green.")]
    hold_seconds: _Seconds = Field(default=0, description="How long to hold this share, watching the alarms.")


class CanaryTraffic(_Strict):
    """`percent` to green for `hold_seconds`, then the rest at once."""

    type: Literal["canary"]
    percent: Annotated[int, Field(ge=1, le=99)] = 10
    hold_seconds: _Seconds = 300

    def expand(self) -> list[TrafficStep]:
        return [TrafficStep(percent=self.percent, hold_seconds=self.hold_seconds), TrafficStep(percent=100)]


class LinearTraffic(_Strict):
    """`step_percent` more to green every `interval_seconds` until all of it."""

    type: Literal["linear"]
    step_percent: Annotated[int, Field(ge=1, le=99)] = 10
    interval_seconds: _Seconds = 60

    def expand(self) -> list[TrafficStep]:
        percents = [*range(self.step_percent, 100, self.step_percent), 100]
        return [
            TrafficStep(percent=p, hold_seconds=0 if p == 100 else self.interval_seconds) for p in percents
        ]


class ExplicitTraffic(_Strict):
    """Any ascending list of shares, each with its own hold; the last is 100."""

    type: Literal["steps"]
    steps: Annotated[list[TrafficStep], Field(min_length=1, max_length=20)]

    @field_validator("steps")
    @classmethod
    def _ascending_to_all(cls, value: list[TrafficStep]) -> list[TrafficStep]:
        percents = [step.percent for step in value]
        if percents != sorted(set(percents)):
            raise ValueError("percents must be distinct and ascending, e.g. 10, 50, 100")
        if percents[-1] != 100:
            raise ValueError("the last step must send 100 percent to green")
        return value

    def expand(self) -> list[TrafficStep]:
        return list(self.steps)


TrafficPlan = Annotated[CanaryTraffic | LinearTraffic | ExplicitTraffic, Field(discriminator="type")]


class SmokeTest(_Strict):
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


class EcsBlueGreenRequest(_Request):
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
    bake_seconds: _Seconds = Field(
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

    def target(self) -> str:
        return f"ecs:{self.cluster.split('/')[-1]}/{self.service}"

    def traffic_steps(self) -> list[TrafficStep]:
        return self.traffic.expand()


AnyRunRequest = AmiBakeRequest | AsgRefreshRequest | EnvPowerRequest | EcsBlueGreenRequest
RunRequest = Annotated[AnyRunRequest, Field(discriminator="workflow")]
WORKFLOW_NAMES = ("ami_bake", "asg_refresh", "env_power", "ecs_blue_green")


@cache
def _run_request_adapter() -> TypeAdapter[AnyRunRequest]:
    return TypeAdapter(RunRequest)


def held_while_running(request: AnyRunRequest) -> list[str]:
    """What a run locks while it runs: its target and, for a blue/green deploy, the production listener
    too, because either service of a pair may be named and both share the listener."""
    keys = [request.target()]
    if isinstance(request, EcsBlueGreenRequest):
        keys.append(f"listener:{request.listener_arn}")
    return keys


def parse_run_request(payload: Any, strict: bool | None = None) -> AnyRunRequest:
    """Validate a request from any trigger; raises pydantic's ValidationError. `strict=False` reads one
    back from its JSON record."""
    return _run_request_adapter().validate_python(payload, strict=strict)


def describe_validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Each problem as `{field, problem}`, worded for a person fixing their request.

    Takes pydantic's error dicts (`ValidationError.errors()`, or Powertools' RequestValidationError)."""
    problems = []
    for item in errors:
        location = ".".join(str(part) for part in item["loc"] if part not in ("body", *WORKFLOW_NAMES))
        kind = item["type"]
        if kind == "json_invalid":
            location, message = "(body)", "is not valid JSON"
        elif kind == "missing" and not location:
            message = "a JSON object with a workflow field is required"
        elif kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a field of this workflow"
        elif kind in ("union_tag_invalid", "union_tag_not_found") and location in ("", "workflow"):
            location = location or "workflow"
            message = f"must be one of: {', '.join(WORKFLOW_NAMES)}"
        elif kind == "union_tag_not_found":
            field = str((item.get("ctx") or {}).get("discriminator", "type")).strip("'")
            message = f"needs a {field} field saying which kind it is"
        elif kind in ("json_invalid", "model_attributes_type", "dict_type") and not location:
            message = "the body must be a JSON object"
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            message = message[0].lower() + message[1:] if message else message
        problems.append({"field": location or "(body)", "problem": message})
    return problems
