"""The ASG refresh request, and the instance refresh options an AMI bake's request shares."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from opsflow.aws.target import Target
from opsflow.runs.requests import REQUEST_CONFIG, RunRequest


class Checkpoints(BaseModel):
    model_config = REQUEST_CONFIG

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

    model_config = REQUEST_CONFIG

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


class AsgRefreshRequest(RunRequest, RefreshOptions):
    """Replace a group's instances with EC2 instance refresh, pinned to a launch template version."""

    workflow: Literal["asg_refresh"]
    asg_name: Annotated[str, Field(min_length=1, max_length=255)]
    launch_template_version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The version to roll onto; default: the version the group uses now."
    )
    dry_run: bool = False

    def target(self) -> Target:
        return self.located("asg", self.asg_name)

    def refresh_options(self) -> RefreshOptions:
        return RefreshOptions.model_validate(self.model_dump(include=set(RefreshOptions.model_fields)))
