"""The AMI bake request."""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import Field, field_validator

from opsflow.aws.target import Target
from opsflow.runs.requests import RESERVED_TAG_PREFIXES, RunRequest
from opsflow.workflows.asg_refresh.request import RefreshOptions

IMAGE_NAME_FIELDS = frozenset({"asg_name", "instance_id", "run_id", "timestamp"})


class AmiBakeRequest(RunRequest):
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

    def target(self) -> Target:
        return self.located("asg", self.asg_name)
