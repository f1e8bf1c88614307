"""What passes between environment power's steps. The execution state stays small (Step Functions caps it
at 256 KB): resources are read from the save in DynamoDB, and a mass failure is counted, its first ones
listed. Resources are `ResourceRef`s; labels are rendered only in the run record and plans."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from opsflow.aws.batches import ResourceFailure
from opsflow.aws.target import Target
from opsflow.runs.steps import CaughtError, RunState, StepResult
from opsflow.store.capacity import ResourceKind, ResourceRef
from opsflow.workflows.env_power.request import EnvPowerRequest, Place

MAX_LISTED_FAILURES = 50


class FailedResource(BaseModel):
    model_config = ConfigDict(frozen=True)

    ref: ResourceRef
    error: str

    def describe(self) -> str:
        return f"{self.ref.describe()}: {self.error}"

    def as_record(self) -> dict[str, str]:
        return {"resource": self.ref.describe(), "error": self.error}


class KindOutcome(StepResult):
    """One kind of resource stopped or restored: how many changed, which failed, which no longer exist."""

    changed: int = 0
    # The state and the run record have size limits: a mass failure is counted, its first ones listed.
    failed: list[FailedResource] = Field(default_factory=list)
    failed_count: int = 0
    gone: list[ResourceRef] = Field(default_factory=list)

    @classmethod
    def of(
        cls, kind: ResourceKind, total: int, failures: list[ResourceFailure], verb: str, what: str
    ) -> KindOutcome:
        """Failures whose resource no longer exists (deleted while the environment was down) are not
        failures: there is nothing left to act on. `ResourceFailure.resource` is the resource's id."""
        failed = [
            FailedResource(ref=ResourceRef(kind, f.resource), error=f.error) for f in failures if not f.gone
        ]
        gone = [ResourceRef(kind, f.resource) for f in failures if f.gone]
        return cls.counted(total, failed, gone, verb, what)

    @classmethod
    def counted(
        cls, total: int, failed: list[FailedResource], gone: list[ResourceRef], verb: str, what: str
    ) -> KindOutcome:
        done = total - len(failed) - len(gone)
        summary = f"{done:,} of {total:,} {what} {verb}"
        if failed:
            summary += f"; {len(failed)} failed: " + "; ".join(f.describe() for f in failed[:3])
        if gone:
            summary += f"; {len(gone)} no longer exist"
        return cls(
            changed=done,
            failed=failed[:MAX_LISTED_FAILURES],
            failed_count=len(failed),
            gone=gone[:MAX_LISTED_FAILURES],
            summary=summary,
        )


class DatabaseProgress(StepResult):
    """A start-up's databases: started as each has stopped, then waited for until available."""

    waiting_for: list[str]
    started: int = 0
    failed: list[FailedResource] = Field(default_factory=list)
    failed_count: int = 0
    gone: list[ResourceRef] = Field(default_factory=list)
    deadline: float
    ready: bool = False


def _result_kind(value: Any) -> str:
    keys = value if isinstance(value, dict) else vars(value)
    if "Error" in keys or isinstance(value, CaughtError):
        return "error"
    return "progress" if "deadline" in keys else "outcome"


# What a resource step leaves under its kind: its outcome, or what its Catch caught when it failed whole.
StepOutcome = Annotated[
    Annotated[KindOutcome, Tag("outcome")] | Annotated[CaughtError, Tag("error")],
    Discriminator(_result_kind),
]
DatabaseOutcome = Annotated[
    Annotated[KindOutcome, Tag("outcome")]
    | Annotated[DatabaseProgress, Tag("progress")]
    | Annotated[CaughtError, Tag("error")],
    Discriminator(_result_kind),
]


class SaveResult(StepResult):
    already_down: bool
    # The save the stop acts on: its own, or the one of an earlier stop that did not finish.
    save_run_id: str | None = None
    saved: dict[str, int] = Field(default_factory=dict)
    resumed: str | None = None
    carried_forward: list[ResourceRef] = Field(default_factory=list)
    # When already down: the save that is kept.
    since: str | None = None
    saved_by: str | None = None


class LoadResult(StepResult):
    nothing_to_restore: bool
    note: str = ""
    saved_by: str | None = None
    saved_at: str | None = None
    saved: dict[str, int] = Field(default_factory=dict)


class Settled(StepResult):
    """What the run did to its save once every step has run, and whether any resource failed; in a run over
    several accounts and regions, what one of them reports (`report`, or `error_report` when it failed)."""

    failed_count: int = 0
    not_restored: list[ResourceRef] = Field(default_factory=list)
    failed: bool = False
    report: dict[str, Any] = Field(default_factory=dict)
    error_report: dict[str, Any] | None = None


class PlaceResult(BaseModel):
    """What one iteration of the Map over an environment's accounts and regions hands back."""

    model_config = ConfigDict(extra="ignore")

    place: Place | None = None
    outcome: Settled = Field(default_factory=Settled)


class EnvPowerState(RunState):
    # In a Map iteration: the account and region it acts in. After the Map: what each reported.
    place: Place | None = None
    places: list[PlaceResult] | None = None
    save: SaveResult | None = None
    load: LoadResult | None = None
    services: StepOutcome | None = None
    groups: StepOutcome | None = None
    instances: StepOutcome | None = None
    databases: DatabaseOutcome | None = None
    outcome: Settled | None = None

    @property
    def power_request(self) -> EnvPowerRequest:
        return EnvPowerRequest.model_validate(self.request, strict=False)

    @property
    def environment(self) -> str:
        return self.power_request.environment

    @property
    def where(self) -> Target:
        """The account and region this part of the run acts in."""
        if self.place is not None:
            return Target("env", self.environment, self.place.account, self.place.region)
        return Target.from_key(self.target)

    @property
    def save_key(self) -> str:
        """The save of the environment in this account and region: the environment's name in the hub's own,
        `<name>@<account>/<region>` elsewhere, so each keeps its own save and its own restore."""
        return self.where.key.removeprefix("env:")

    @property
    def where_label(self) -> str:
        """` in 222222222222/eu-west-1` outside the hub, else empty."""
        where = "/".join(part for part in (self.where.account, self.where.region) if part)
        return f" in {where}" if where else ""

    def by_kind(self) -> dict[str, KindOutcome | DatabaseProgress | CaughtError | None]:
        return {
            "services": self.services,
            "groups": self.groups,
            "instances": self.instances,
            "databases": self.databases,
        }
