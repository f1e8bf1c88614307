"""What passes between an AMI bake's steps: where the group launches from, the image, what was published."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, Field

from opsflow.runs.rollback import RolledBack
from opsflow.runs.steps import CaughtError, RunState, StepResult
from opsflow.workflows.ami_bake.request import AmiBakeRequest
from opsflow.workflows.asg_refresh.refresh import InstanceRefreshProgress, RefreshSpec


class LaunchTemplateSource(BaseModel):
    kind: Literal["launch_template"] = "launch_template"
    template_id: str
    template_name: str
    version_ref: str  # as the group holds it: a number, "$Latest" or "$Default"
    version: int
    image_id: str | None

    def describe(self) -> str:
        return f"launch template {self.template_id} version {self.version_ref}"


class LaunchConfigurationSource(BaseModel):
    kind: Literal["launch_configuration"] = "launch_configuration"
    name: str
    image_id: str | None

    def describe(self) -> str:
        return f"launch configuration {self.name}"


GroupSource = Annotated[LaunchTemplateSource | LaunchConfigurationSource, Field(discriminator="kind")]


class BuilderPlan(BaseModel):
    """The builder as the guard settled it: what it launches from, and what it runs."""

    image_id: str
    instance_type: str
    subnet_id: str | None = None
    security_group_ids: list[str] = Field(default_factory=list)
    instance_profile: str
    document: str
    parameters: dict[str, list[str]] = Field(default_factory=dict)
    timeout_seconds: int = 3600


class BakeGuarded(StepResult):
    source: GroupSource
    refresh_spec: RefreshSpec | None = None
    builder: BuilderPlan | None = None


class BuilderState(StepResult):
    """The builder instance; `ready` once it is an online managed node. `waited` counts the state machine's
    waits for it, in seconds."""

    instance_id: str
    ready: bool = False
    waited: int = 0
    checks: int = 0


class CommandState(StepResult):
    command_id: str
    instance_id: str
    status: str = "Pending"
    done: bool = False
    waited: int = 0


class DeviceSnapshot(BaseModel):
    device: str
    snapshot_id: str | None = None
    size_gib: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool | None = None
    delete_on_termination: bool | None = None


class BakedImage(StepResult):
    """The image being baked; `state` and `snapshots` once a check has seen it."""

    image_id: str
    name: str
    created_at: str
    state: str | None = None
    snapshots: list[DeviceSnapshot] = Field(default_factory=list)


class PublishedVersion(StepResult):
    kind: Literal["launch_template"] = "launch_template"
    template_id: str
    version: int

    def describe(self) -> str:
        return f"launch template {self.template_id} version {self.version}"


class PublishedConfiguration(StepResult):
    kind: Literal["launch_configuration"] = "launch_configuration"
    name: str

    def describe(self) -> str:
        return f"launch configuration {self.name}"


Published = Annotated[PublishedVersion | PublishedConfiguration, Field(discriminator="kind")]


class GroupPointed(StepResult):
    group: str
    now_uses: Published


class DeregisteredImage(BaseModel):
    image_id: str
    snapshots: list[str]


class Pruned(StepResult):
    kept: list[str]
    kept_in_use: list[str]
    deregistered: list[DeregisteredImage]


class RegionCopy(BaseModel):
    """The image's copy into one region: `queued` until CopyImage takes it (the region's concurrent-copy
    quota may be full), then `pending`, then `available`."""

    region: str
    image_id: str | None = None
    state: str = "queued"
    kms_key_id: str | None = None
    snapshot_ids: list[str] = Field(default_factory=list)


class DistributedTemplate(BaseModel):
    """A launch template version a distribution published, and the default it replaced."""

    account: str | None = None
    region: str
    name: str
    template_id: str
    version: int
    image_id: str
    previous_default: int | None = None

    def describe(self) -> str:
        where = "/".join(part for part in (self.account, self.region) if part)
        return f"launch template {self.name} version {self.version} in {where}"


class Distributed(StepResult):
    """Where the image went: its copies (`done` once all are available), what was shared, and the launch
    template versions published."""

    copies: list[RegionCopy] = Field(default_factory=list)
    started_at: str
    done: bool = False
    shared: list[str] = Field(default_factory=list)
    templates: list[DistributedTemplate] = Field(default_factory=list)

    def copy_in(self, region: str) -> RegionCopy | None:
        return next((c for c in self.copies if c.region == region), None)


class BakeRollback(RolledBack):
    # AWS is rolling the instance refresh back: the state machine waits, then calls the rollback again.
    refresh_rolling_back: bool = False


class BakeState(RunState):
    request: AmiBakeRequest  # type: ignore[assignment]  # the base holds any workflow's request
    guard: BakeGuarded | None = None
    builder: BuilderState | None = None
    command: CommandState | None = None
    builder_gone: StepResult | None = None
    image: BakedImage | None = None
    distribution: Distributed | None = None
    publish: Published | None = None
    point_group: GroupPointed | None = None
    refresh: InstanceRefreshProgress | None = None
    prune: Pruned | None = None
    prune_error: CaughtError | None = None
    rollback: BakeRollback | None = None
    rollback_error: CaughtError | None = None

    @property
    def guarded(self) -> BakeGuarded:
        return _required(self.guard, "guard")

    @property
    def source_instance(self) -> str:
        """The instance imaged: the one asked for, or the builder the run launched."""
        if self.request.instance_id:
            return self.request.instance_id
        return _required(self.builder, "launch_builder").instance_id

    @property
    def baked(self) -> BakedImage:
        return _required(self.image, "create_image")

    @property
    def published(self) -> PublishedVersion | PublishedConfiguration:
        if self.publish is None:
            raise ValueError("the state holds no result of step publish, which comes before this one")
        return self.publish


T = TypeVar("T")


def _required(value: T | None, step: str) -> T:
    if value is None:
        raise ValueError(f"the state holds no result of step {step}, which comes before this one")
    return value
