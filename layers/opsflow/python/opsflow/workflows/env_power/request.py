"""The environment power request."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from opsflow.aws.sessions import Home
from opsflow.aws.target import Target
from opsflow.runs.requests import REQUEST_CONFIG, RunRequest

ACCOUNT_ID = r"^\d{12}$"
REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
# One Map iteration each: an inline Map runs at most 40 at once, and each adds to the execution's history.
MAX_PLACES = 100


class Place(BaseModel):
    """An account and region an environment has resources in (None: the hub's)."""

    model_config = REQUEST_CONFIG

    account: Annotated[str | None, Field(pattern=ACCOUNT_ID)] = None
    region: Annotated[str | None, Field(pattern=REGION)] = None

    def shown(self) -> dict[str, str]:
        """For people: the account and region, the hub's filled in where the place leaves them unsaid."""
        home = Home.from_env()
        return {"account": self.account or home.account, "region": self.region or home.region}

    def describe(self) -> str:
        shown = self.shown()
        return f"{shown['account']}/{shown['region']}"


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

    targets: Annotated[
        list[Place] | None,
        Field(
            min_length=1,
            max_length=MAX_PLACES,
            description="The accounts and regions the environment spans, each stopped and started on its own: "
            "one that fails does not stop the others. Default: the request's account and region.",
        ),
    ] = None

    @model_validator(mode="after")
    def _one_way_to_say_where(self) -> EnvPowerRequest:
        if self.targets is not None and (self.account or self.region):
            raise ValueError("give targets or account and region, not both")
        if self.targets is not None and len({(t.account, t.region) for t in self.targets}) != len(
            self.targets
        ):
            raise ValueError("targets lists an account and region twice")
        return self

    def target(self) -> Target:
        return self.located("env", self.environment)

    def places(self) -> list[Target]:
        """Every account and region the run acts in."""
        if not self.targets:
            return [self.target()]
        return [Target("env", self.environment, t.account, t.region) for t in self.targets]

    def at_home(self, account: str, region: str) -> EnvPowerRequest:
        request = super().at_home(account, region)
        assert isinstance(request, EnvPowerRequest)
        if not request.targets:
            return request
        places = [
            Place(
                account=None if t.account == account else t.account,
                region=None if t.region == region else t.region,
            )
            for t in request.targets
        ]
        return request.model_copy(update={"targets": places})
