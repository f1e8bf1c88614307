"""Where a run is in its step plan, kept in the execution's state between the shift and watch steps."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from opsflow.runs.steps import StepResult
from opsflow.traffic.plan import TrafficStep


class PlannedStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    percent: int
    hold_seconds: int = 0
    # The last step: all traffic on green, held before blue is retired.
    bake: bool = False


class Shifted(BaseModel):
    percent: int
    at: str
    # The change that must propagate before the share counts (a Route 53 change id), if any.
    change: str | None = None


class TrafficPosition(StepResult):
    """The plan's steps and the bake after them, the step held now (`index`, `weight`), the shares set so
    far, and the hold: `remaining` seconds of it, counted in waits of `wait_seconds`."""

    model_config = ConfigDict(extra="ignore")

    plan: list[PlannedStep]
    index: int = -1
    weight: int = 0
    history: list[Shifted] = Field(default_factory=list)
    baking: bool = False
    remaining: int = 0
    wait_seconds: int = 0
    holding: bool = False
    done: bool = False
    checked_at: str | None = None  # when the held step's gates were last checked (ISO 8601)

    @classmethod
    def before(cls, steps: Sequence[TrafficStep | PlannedStep], bake_seconds: int) -> TrafficPosition:
        """Before the first step: every share of the plan, then the bake at 100 %."""
        plan = [PlannedStep(percent=s.percent, hold_seconds=s.hold_seconds) for s in steps]
        return cls(plan=[*plan, PlannedStep(percent=100, hold_seconds=bake_seconds, bake=True)])

    @property
    def steps(self) -> int:
        """The plan's steps; the bake is not one."""
        return len(self.plan) - 1

    @property
    def weights(self) -> list[int]:
        return [shifted.percent for shifted in self.history]

    def next_step(self) -> PlannedStep | None:
        return self.plan[self.index + 1] if self.index + 1 < len(self.plan) else None

    def describe(self) -> str:
        if self.baking:
            return f"while baking at {self.weight}% green"
        return f"at {self.weight}% green (step {self.index + 1} of {self.steps})"

    def describe_next(self) -> str | None:
        """The share a shift was moving to, for a shift that failed on its way."""
        step = self.next_step()
        if step is None:
            return None
        if step.bake:
            return "while starting the bake at 100% green"
        return f"while shifting to {step.percent}% green (step {self.index + 2} of {self.steps})"
