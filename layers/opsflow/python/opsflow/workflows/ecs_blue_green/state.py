"""What passes between the deploy's steps: the spec the guard settles, green's state, the traffic position,
and what was put back. Dumped as JSON into the execution's state, where the state machine reads
`$.green.steady`, `$.traffic.holding`, `$.traffic.done` and `$.traffic.wait_seconds`; the spec is also the
run's stored plan, read again by `put_back` for a run that ended without its rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opsflow.runs.rollback import RolledBack
from opsflow.runs.steps import CaughtError, RunState, StepResult
from opsflow.traffic.plan import TrafficStep
from opsflow.traffic.position import TrafficPosition

DEFAULT_GREEN_MAX_WAIT_SECONDS = 1800


class SpecModel(BaseModel):
    # Stored with the run: a record written by an older version must still read.
    model_config = ConfigDict(extra="ignore", frozen=True)


class BlueSpec(SpecModel):
    service: str
    service_arn: str = ""
    target_group: str
    task_definition: str
    desired: int


class GreenSpec(SpecModel):
    service: str
    exists: bool = False
    service_arn: str | None = None
    target_group: str
    # The new version: a task definition ARN, or an image to put in blue's task definition's `container`.
    task_definition: str | None = None
    image: str | None = None
    container: str = ""


class SmokeTestSpec(SpecModel):
    url: str | None = None
    lambda_function: str | None = None
    timeout_seconds: int = 10


class DeploySpec(SpecModel):
    cluster: str
    listener_arn: str
    test_listener_arn: str | None = None
    blue: BlueSpec
    green: GreenSpec
    traffic: list[TrafficStep]
    bake_seconds: int
    alarms: list[str] = Field(default_factory=list)
    smoke_test: SmokeTestSpec | None = None


class GuardResult(StepResult):
    spec: DeploySpec


class GreenState(StepResult):
    model_config = ConfigDict(extra="ignore")

    service: str
    service_arn: str
    created: bool
    task_definition: str
    desired: int
    started_at: str = ""
    # Seconds waited for green to be steady, counted in reconcile intervals no event cut short.
    waited: int = 0
    steady: bool = False
    running: int = 0
    healthy: int = 0

    @classmethod
    def started(
        cls, service: str, service_arn: str, created: bool, task_definition: str, desired: int
    ) -> GreenState:
        return cls(
            service=service,
            service_arn=service_arn,
            created=created,
            task_definition=task_definition,
            desired=desired,
            started_at=datetime.now(UTC).isoformat(),
        )


class SmokeResult(StepResult):
    passed: bool = True
    skipped: bool = False
    detail: str = ""


class RetireResult(StepResult):
    retired: str
    problems: list[str] = Field(default_factory=list)


class PutBack(RolledBack):
    """What a rollback or an abort put back, and which side is live after it."""

    model_config = ConfigDict(extra="ignore")

    live: Literal["blue", "green"] | None = None
    # The rollback's summary, kept in the state for the run's error.
    put_back: str = ""


class DeployState(RunState):
    guard: GuardResult | None = None
    green: GreenState | None = None
    smoke_test: SmokeResult | None = None
    traffic: TrafficPosition | None = None
    retire_blue: RetireResult | None = None
    rollback: PutBack | None = None
    rollback_error: CaughtError | None = None

    @property
    def spec(self) -> DeploySpec:
        if self.guard is None:
            raise ValueError("the guard step has not run: there is no spec")
        return self.guard.spec

    @property
    def started_green(self) -> GreenState:
        if self.green is None:
            raise ValueError("the start_green step has not run")
        return self.green

    @property
    def green_max_wait_seconds(self) -> int:
        return self.settings.get("green_max_wait_seconds", DEFAULT_GREEN_MAX_WAIT_SECONDS)
