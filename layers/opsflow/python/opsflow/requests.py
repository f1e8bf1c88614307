"""One request model per workflow, shared unchanged by every trigger (API, Chatbot, schedules, pipelines)."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

# Tag keys Opsflow writes itself; a request may not set them.
RESERVED_TAG_PREFIXES = ("aws:", "opsflow:")

IMAGE_NAME_FIELDS = frozenset({"asg_name", "instance_id", "run_id", "timestamp"})


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    dry_run: bool = Field(default=False, description="Return the plan and change nothing.")


class Checkpoints(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

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

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

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


AnyRunRequest = AmiBakeRequest | AsgRefreshRequest | EnvPowerRequest
RunRequest = Annotated[AnyRunRequest, Field(discriminator="workflow")]
WORKFLOW_NAMES = ("ami_bake", "asg_refresh", "env_power")

_run_request_adapter: TypeAdapter[AnyRunRequest] = TypeAdapter(RunRequest)


def parse_run_request(payload: Any) -> AnyRunRequest:
    """Validate a request from any trigger; raises pydantic's ValidationError."""
    return _run_request_adapter.validate_python(payload)


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
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            location = location or "workflow"
            message = f"must be one of: {', '.join(WORKFLOW_NAMES)}"
        elif kind in ("json_invalid", "model_attributes_type", "dict_type") and not location:
            message = "the body must be a JSON object"
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            message = message[0].lower() + message[1:] if message else message
        problems.append({"field": location or "(body)", "problem": message})
    return problems
