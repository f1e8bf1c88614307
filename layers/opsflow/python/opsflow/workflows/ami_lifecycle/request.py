"""The AMI lifecycle request."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from opsflow.aws.target import Target
from opsflow.runs.requests import RunRequest

Days = Annotated[int, Field(ge=1, le=3650)]


class AmiLifecycleRequest(RunRequest):
    """Retire the images Opsflow baked for a group: beyond the newest `keep`, those older than
    `max_age_days` (or all of them, without it). An image that a launch configuration, a launch template
    version a group uses (or its template's default or latest), or an instance references is kept."""

    workflow: Literal["ami_lifecycle"]
    asg_name: Annotated[
        str, Field(min_length=1, max_length=255, description="The group whose baked images to manage.")
    ]
    keep: Annotated[int, Field(ge=1, le=100, description="The newest images kept whatever their age.")] = 5
    max_age_days: Days | None = Field(
        default=None, description="Retire only images older than this (beyond the newest `keep`)."
    )
    deprecate_after_days: Days | None = Field(
        default=None,
        description="Deprecate every image this many days after it was created (EnableImageDeprecation).",
    )
    disable_days: Days | None = Field(
        default=None,
        description="Disable a retired image first, and deregister it on a run this many days later.",
    )

    def target(self) -> Target:
        # The group's lock: a lifecycle run never overlaps a bake of the same group.
        return self.located("asg", self.asg_name)
