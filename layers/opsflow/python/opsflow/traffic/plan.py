"""Traffic step plans: canary, linear or an explicit list of shares, each with a hold."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from opsflow.runs.requests import REQUEST_CONFIG

# Holding, baking and watching alarms poll every few seconds, and each poll adds events to the execution's
# history, which Step Functions caps at 25,000.
MAX_TRAFFIC_SECONDS = 12 * 3600
Seconds = Annotated[int, Field(ge=0, le=MAX_TRAFFIC_SECONDS)]


class StrictModel(BaseModel):
    model_config = REQUEST_CONFIG


class TrafficStep(StrictModel):
    percent: Annotated[int, Field(ge=1, le=100, description="Share of production traffic sent to green.")]
    hold_seconds: Seconds = Field(default=0, description="How long to hold this share, watching the alarms.")


class CanaryTraffic(StrictModel):
    """`percent` to green for `hold_seconds`, then the rest at once."""

    type: Literal["canary"]
    percent: Annotated[int, Field(ge=1, le=99)] = 10
    hold_seconds: Seconds = 300

    def expand(self) -> list[TrafficStep]:
        return [TrafficStep(percent=self.percent, hold_seconds=self.hold_seconds), TrafficStep(percent=100)]


class LinearTraffic(StrictModel):
    """`step_percent` more to green every `interval_seconds` until all of it."""

    type: Literal["linear"]
    step_percent: Annotated[int, Field(ge=1, le=99)] = 10
    interval_seconds: Seconds = 60

    def expand(self) -> list[TrafficStep]:
        percents = [*range(self.step_percent, 100, self.step_percent), 100]
        return [
            TrafficStep(percent=p, hold_seconds=0 if p == 100 else self.interval_seconds) for p in percents
        ]


class ExplicitTraffic(StrictModel):
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
