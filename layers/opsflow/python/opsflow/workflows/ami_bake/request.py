"""The AMI bake request."""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from opsflow.aws.target import Target
from opsflow.runs.requests import REQUEST_CONFIG, RESERVED_TAG_PREFIXES, RunRequest
from opsflow.workflows.asg_refresh.request import RefreshOptions

IMAGE_NAME_FIELDS = frozenset({"asg_name", "instance_id", "run_id", "timestamp"})


class Builder(BaseModel):
    """A temporary instance to put new code on and image: launched like the group's instances (its launch
    template version's or launch configuration's image, instance type, security groups and instance
    profile, in one of its subnets) unless told otherwise, then given an SSM Run Command, and terminated
    whatever happens."""

    model_config = REQUEST_CONFIG

    image_id: Annotated[str, Field(pattern=r"^ami-[0-9a-f]{8,17}$")] | None = Field(
        default=None, description="Launch from this image; default: the image the group launches from."
    )
    instance_type: Annotated[str, Field(pattern=r"^[a-z0-9-]+\.[a-z0-9]+$")] | None = None
    subnet_id: Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")] | None = None
    instance_profile: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None,
        description="Name or ARN; its role must let Systems Manager manage the instance "
        "(AmazonSSMManagedInstanceCore). Default: the group's.",
    )
    commands: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=4096)]], Field(max_length=100)] | None
    ) = Field(default=None, description="Shell lines to run with AWS-RunShellScript, as root, in order.")
    document: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.:/-]{3,128}$")] | None = Field(
        default=None, description="An SSM Command document to run instead of commands."
    )
    parameters: dict[str, list[str]] = Field(
        default_factory=dict, description='The document\'s parameters, e.g. {"version": ["2.4.1"]}.'
    )
    timeout_seconds: Annotated[int, Field(ge=60, le=172800)] = Field(
        default=3600, description="How long the commands may run before the bake fails."
    )

    @model_validator(mode="after")
    def _one_way_to_run(self) -> Builder:
        if self.document is None and not self.commands:
            raise ValueError("give commands (shell lines to run on the builder) or a document")
        if self.document is not None and self.commands:
            raise ValueError("give commands or a document, not both")
        if self.parameters and self.document is None:
            raise ValueError("parameters are a document's; with commands, put the values in the commands")
        return self


class AmiBakeRequest(RunRequest):
    """Image an instance, or a builder given new code, and publish the image to an Auto Scaling group's
    launch template or configuration."""

    workflow: Literal["ami_bake"]
    instance_id: Annotated[str, Field(pattern=r"^i-[0-9a-f]{8,17}$")] | None = Field(
        default=None, description="The instance to image (or give builder)."
    )
    builder: Builder | None = Field(
        default=None,
        description="Launch a builder, run commands on it and image it (instead of instance_id).",
    )
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

    @model_validator(mode="after")
    def _one_source(self) -> AmiBakeRequest:
        if (self.instance_id is None) == (self.builder is None):
            raise ValueError("give exactly one of instance_id (an instance to image) or builder")
        return self

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
