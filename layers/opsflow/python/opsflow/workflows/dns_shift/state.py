"""What passes between the cutover's steps: the spec the guard settles, the traffic position, the wait for
each change to propagate, and what was put back. The state machine reads `$.sync.in_sync`,
`$.traffic.holding`, `$.traffic.done` and `$.traffic.wait_seconds`; the spec is also the run's stored plan,
read again by `put_back` for a run that ended without its rollback."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from opsflow.runs.rollback import RolledBack
from opsflow.runs.steps import CaughtError, RunState, StepResult
from opsflow.traffic.plan import TrafficStep
from opsflow.traffic.position import TrafficPosition

DEFAULT_SYNC_MAX_WAIT_SECONDS = 900
# How often a change's status is read while it propagates (Route 53 sends no event for it).
SYNC_POLL_SECONDS = 10
# How often a held step's health checks are read again: Route 53 sends no event when one fails either.
HEALTH_POLL_SECONDS = 30


class CutoverSpec(BaseModel):
    # Stored with the run: a record written by an older version must still read.
    model_config = ConfigDict(extra="ignore", frozen=True)

    hosted_zone_id: str
    zone_name: str
    name: str
    type: str
    green: str
    # Every weighted set's weight when the run began.
    start: dict[str, int]
    ttl: int
    # The plan with each hold at least the TTL.
    traffic: list[TrafficStep]
    bake_seconds: int
    health_checks: list[str] = Field(default_factory=list)
    alarms: list[str] = Field(default_factory=list)
    smoke_url: str | None = None
    smoke_timeout_seconds: int = 10

    @property
    def blue(self) -> list[str]:
        return sorted(key for key in self.start if key != self.green)

    def describe_start(self) -> str:
        return ", ".join(f"{key} {weight}" for key, weight in sorted(self.start.items()))


class GuardResult(StepResult):
    spec: CutoverSpec


class SyncResult(StepResult):
    change: str | None = None
    in_sync: bool = False
    # Seconds the change has propagated, counted in the state machine's waits.
    waited: int = 0


class PutBack(RolledBack):
    model_config = ConfigDict(extra="ignore")

    # The rollback's summary, kept in the state for the run's error.
    put_back: str = ""


class CutoverState(RunState):
    guard: GuardResult | None = None
    traffic: TrafficPosition | None = None
    sync: SyncResult | None = None
    rollback: PutBack | None = None
    rollback_error: CaughtError | None = None

    @property
    def spec(self) -> CutoverSpec:
        if self.guard is None:
            raise ValueError("the guard step has not run: there is no spec")
        return self.guard.spec

    @property
    def sync_max_wait_seconds(self) -> int:
        return self.settings.get("dns_sync_max_wait_seconds", DEFAULT_SYNC_MAX_WAIT_SECONDS)
