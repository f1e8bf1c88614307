"""The environment power request."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from opsflow.aws.target import Target
from opsflow.runs.requests import RunRequest

# An environment's name is a tag value and part of its EventBridge Scheduler schedules' names
# ([0-9A-Za-z-_.], 64 characters in all), hence the narrower alphabet.
ENVIRONMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$"


class EnvPowerRequest(RunRequest):
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

    def target(self) -> Target:
        return self.located("env", self.environment)
