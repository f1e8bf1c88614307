"""EC2 instance refresh as Opsflow runs it, for this workflow and for an AMI bake's optional refresh.

A refresh starts with a *pinned* desired configuration (template id and version number), so an automatic
rollback returns to the version the group used before, never to the new one. The state machine watches it
with Wait and Choice states; each checkpoint and each quarter of progress is reported once, and the new
version becomes the template's default only once the refresh has succeeded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from opsflow.aws import clients
from opsflow.aws.autoscaling import AutoScaling, Group, InstanceRefresh
from opsflow.aws.cloudwatch import CloudWatch, ensure_quiet
from opsflow.aws.ec2 import Ec2
from opsflow.aws.events import Events
from opsflow.aws.target import Target
from opsflow.errors import Busy, OpsflowError, Refused
from opsflow.runs.steps import StepResult
from opsflow.waits.awaiting import Await
from opsflow.workflows.asg_refresh.request import RefreshOptions

SUCCESSFUL = "Successful"
QUARTERS = (25, 50, 75, 100)


class RefreshFailed(OpsflowError):
    code = "RefreshFailed"


@dataclass(frozen=True)
class RefreshAws:
    autoscaling: AutoScaling
    ec2: Ec2
    cloudwatch: CloudWatch
    events: Events

    @classmethod
    def at(cls, where: Target | None = None, event_bus: str = "default") -> RefreshAws:
        """In the account and region of `where` (None: the hub's); Opsflow's own events go to the hub's bus."""
        account, region = (where.account, where.region) if where else (None, None)
        return cls(
            autoscaling=AutoScaling(clients.client_at("autoscaling", account, region)),
            ec2=Ec2(clients.client_at("ec2", account, region)),
            cloudwatch=CloudWatch(clients.client_at("cloudwatch", account, region)),
            events=Events(clients.client("events"), event_bus),
        )


class RefreshSpec(BaseModel):
    """What to start: checked to be safe by `refresh_spec`, started by `start`."""

    model_config = ConfigDict(extra="ignore")

    group: str
    template_id: str
    template_name: str
    previous_version: int
    target_version: int
    capacity: int
    options: RefreshOptions

    def onto(self, version: int) -> RefreshSpec:
        return self.model_copy(update={"target_version": version})

    def actions(self, target: str | None = None) -> list[str]:
        """The plan a person reads; `target` names a version not known yet (an AMI bake's new one)."""
        version = target or str(self.target_version)
        options = self.options
        actions = [
            f"Start an instance refresh of group {self.group} ({self.capacity} instance(s)) onto launch template "
            f"{self.template_name or self.template_id} version {version}, keeping at least "
            f"{options.min_healthy_percentage}% healthy"
        ]
        if options.checkpoints:
            actions.append(
                f"Pause at {', '.join(f'{p}%' for p in options.checkpoints.percentages)} for "
                f"{options.checkpoints.delay_seconds} s each"
            )
        if options.alarms:
            actions.append(f"Watch alarm(s) {', '.join(options.alarms)}: one in ALARM fails the refresh")
        if options.auto_rollback:
            actions.append(f"On failure, AWS rolls the instances back to version {self.previous_version}")
        actions.append(f"On success, make version {version} the template's default")
        return actions


class InstanceRefreshProgress(RefreshSpec, StepResult):
    """A started refresh, as the last check found it (the state at `$.refresh`)."""

    model_config = ConfigDict(extra="ignore")

    refresh_id: str
    status: str
    percentage: int = 0
    status_reason: str | None = None
    checkpoints_reached: list[int] = Field(default_factory=list)
    quarters_reported: list[int] = Field(default_factory=list)
    started_at: str
    default_version: int | None = None


class RefreshResult(BaseModel):
    """The refresh in a run's result or error."""

    refresh_id: str | None = None
    status: str | None = None
    template_id: str | None = None
    previous_version: int | None = None
    version: int | None = None
    default_version: int | None = None
    checkpoints_reached: list[int] = Field(default_factory=list)

    @classmethod
    def of(cls, refresh: InstanceRefreshProgress | None) -> RefreshResult:
        if refresh is None:
            return cls()
        return cls(
            refresh_id=refresh.refresh_id,
            status=refresh.status,
            template_id=refresh.template_id,
            previous_version=refresh.previous_version,
            version=refresh.target_version,
            default_version=refresh.default_version,
            checkpoints_reached=refresh.checkpoints_reached,
        )


def refresh_spec(
    group: Group, options: RefreshOptions, aws: RefreshAws, target_version: int | None
) -> RefreshSpec:
    """Check that the group can be refreshed safely with these options, and return what to start.
    `target_version` None means the version the group uses now (for an AMI bake: filled in later)."""
    if group.uses_mixed_instances_policy:
        raise Refused(
            f"Auto Scaling group {group.name} uses a mixed instances policy; Opsflow refreshes only "
            "groups with a plain launch template"
        )
    if group.launch_template is None:
        raise Refused(
            f"Auto Scaling group {group.name} uses a launch configuration; instance refresh can pin and roll back "
            "only a launch template. Move the group to a launch template first."
        )
    ref = group.launch_template
    if options.auto_rollback and ref.version.lower() in ("$latest", "$default"):
        raise Refused(
            f"Auto Scaling group {group.name} uses launch template {ref.template_name or ref.template_id} version "
            f"{ref.version}; AWS cannot roll an instance refresh back to $Latest or $Default. Pin the group to a "
            f"version number (aws autoscaling update-auto-scaling-group --auto-scaling-group-name {group.name} "
            f"--launch-template LaunchTemplateId={ref.template_id},Version=<number>) or set auto_rollback to false."
        )
    current = aws.ec2.launch_template_version(ref.template_id, ref.version)
    if options.auto_rollback and (current.image_id or "").startswith("resolve:ssm:"):
        raise Refused(
            f"launch template {ref.template_id} version {current.version} takes its image from an SSM parameter "
            f"({current.image_id}); AWS cannot roll back to it. Use an image id, or set auto_rollback to false."
        )
    if target_version is not None:
        target = aws.ec2.launch_template_version(ref.template_id, str(target_version))
        if options.auto_rollback and (target.image_id or "").startswith("resolve:ssm:"):
            raise Refused(
                f"launch template version {target.version} takes its image from an SSM parameter; "
                "set auto_rollback to false to refresh onto it"
            )
    ensure_no_refresh_running(group.name, aws)
    ensure_quiet(options.alarms, aws.cloudwatch, "the refresh would fail at once")
    return RefreshSpec(
        group=group.name,
        template_id=ref.template_id,
        template_name=ref.template_name,
        previous_version=current.version,
        target_version=target_version if target_version is not None else current.version,
        capacity=group.desired_capacity,
        options=options,
    )


def ensure_no_refresh_running(group_name: str, aws: RefreshAws) -> None:
    running = next((r for r in aws.autoscaling.instance_refreshes(group_name) if r.active), None)
    if running:
        raise Busy(
            f"Auto Scaling group {group_name} already has instance refresh {running.refresh_id} "
            f"{running.status} ({running.percentage_complete}% complete). Wait for it to end, or cancel it first: "
            f"aws autoscaling cancel-instance-refresh --auto-scaling-group-name {group_name}"
        )


def preferences(options: RefreshOptions) -> dict[str, Any]:
    """The options as StartInstanceRefresh's Preferences; those not given stay AWS's defaults."""
    prefs: dict[str, Any] = {
        "MinHealthyPercentage": options.min_healthy_percentage,
        "SkipMatching": options.skip_matching,
        "AutoRollback": options.auto_rollback,
    }
    if options.max_healthy_percentage is not None:
        prefs["MaxHealthyPercentage"] = options.max_healthy_percentage
    if options.instance_warmup is not None:
        prefs["InstanceWarmup"] = options.instance_warmup
    if options.checkpoints:
        prefs["CheckpointPercentages"] = options.checkpoints.percentages
        prefs["CheckpointDelay"] = options.checkpoints.delay_seconds
    if options.alarms:
        prefs["AlarmSpecification"] = {"Alarms": options.alarms}
    return prefs


def start(spec: RefreshSpec, aws: RefreshAws) -> InstanceRefreshProgress:
    # A retried start (its first answer lost) adopts the refresh it already started; any other running
    # refresh is someone else's, and is refused.
    mine = running_refresh_of(spec, aws)
    if mine is not None:
        refresh_id = mine.refresh_id
    else:
        ensure_no_refresh_running(spec.group, aws)
        desired = {
            "LaunchTemplate": {"LaunchTemplateId": spec.template_id, "Version": str(spec.target_version)}
        }
        refresh_id = aws.autoscaling.start_instance_refresh(spec.group, preferences(spec.options), desired)
    return InstanceRefreshProgress(
        **dict(spec),
        refresh_id=refresh_id,
        status="Pending",
        started_at=datetime.now(UTC).isoformat(),
        summary=f"started instance refresh {refresh_id}",
    )


class RunIdentity(Protocol):
    @property
    def run_id(self) -> str: ...
    @property
    def workflow(self) -> str: ...
    @property
    def target(self) -> str: ...


class WatchedRun(RunIdentity, Protocol):
    """A run's state that holds a started refresh at `refresh`."""

    @property
    def refresh(self) -> InstanceRefreshProgress | None: ...


def check(refresh: InstanceRefreshProgress, run: RunIdentity, aws: RefreshAws) -> InstanceRefreshProgress:
    """Read the refresh's progress; publish each checkpoint and quarter reached once. Raises RefreshFailed
    when the refresh ended any way but successfully, saying why and what the group runs now."""
    found = aws.autoscaling.instance_refreshes(refresh.group, refresh.refresh_id)
    if not found:
        raise RefreshFailed(f"instance refresh {refresh.refresh_id} of group {refresh.group} is gone")
    current = found[0]
    percentage = current.percentage_complete
    checkpoints_reached = list(refresh.checkpoints_reached)
    quarters_reported = list(refresh.quarters_reported)
    milestones: list[str] = []

    def publish(kind: str, message: str, **detail: Any) -> None:
        # Progress events feed notifications; losing one must never fail or roll back the refresh.
        try:
            aws.events.progress(run.run_id, run.workflow, run.target, kind, message, **detail)
        except Exception as error:  # noqa: BLE001 - whatever breaks, the refresh goes on
            milestones.append(f"(progress event not sent: {error})")

    checkpoints = refresh.options.checkpoints.percentages if refresh.options.checkpoints else []
    for checkpoint in checkpoints:
        if percentage >= checkpoint and checkpoint not in checkpoints_reached:
            checkpoints_reached.append(checkpoint)
            message = f"checkpoint {checkpoint}% reached: {percentage}% of instances replaced"
            publish("checkpoint", message, checkpoint=checkpoint, percentage=percentage)
            milestones.append(message)
    for quarter in QUARTERS:
        if percentage >= quarter and quarter not in quarters_reported:
            quarters_reported.append(quarter)
            message = f"{quarter}% of instances replaced"
            publish("progress", message, percentage=quarter)
            milestones.append(message)
    if current.status in ("Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"):
        reason = (current.rollback_reason or current.status_reason or "no reason given").rstrip(".")
        raise RefreshFailed(
            f"instance refresh {current.refresh_id} ended {current.status}: {reason}. "
            f"The group now runs {group_now(refresh.group, aws)}."
        )
    return refresh.model_copy(
        update={
            "status": current.status,
            "percentage": percentage,
            "status_reason": current.status_reason,
            "checkpoints_reached": checkpoints_reached,
            "quarters_reported": quarters_reported,
            "milestones": milestones,
            "waiting": current.status != SUCCESSFUL,
            "summary": f"instance refresh {current.status}, {percentage}% of instances replaced",
        }
    )


def make_default(refresh: InstanceRefreshProgress, aws: RefreshAws) -> InstanceRefreshProgress:
    aws.ec2.set_default_version(refresh.template_id, refresh.target_version)
    return refresh.model_copy(
        update={
            "default_version": refresh.target_version,
            "summary": f"launch template {refresh.template_id} default version is now {refresh.target_version}",
        }
    )


def watch_steps(aws: RefreshAws) -> dict[str, Callable[[Any], StepResult] | Await]:
    """The steps that follow a started refresh, for a state whose `refresh` holds it: shared by this
    workflow and the AMI bake. The refresh is awaited by its events (checkpoint reached, succeeded, failed,
    cancelled, rolled back), each followed by a check; without one, the check comes after the reconcile
    interval."""

    def started(state: WatchedRun) -> InstanceRefreshProgress:
        if state.refresh is None:
            raise RefreshFailed(f"run {state.run_id} has no instance refresh to watch")
        return state.refresh

    def check_step(state: WatchedRun) -> InstanceRefreshProgress:
        return check(started(state), state, aws)

    def make_default_step(state: WatchedRun) -> InstanceRefreshProgress:
        return make_default(started(state), aws)

    def moved_on(state: WatchedRun) -> bool:
        """Whether AWS's refresh is no longer where the last check left it."""
        last = started(state)
        now = described(last.group, last.refresh_id, aws)
        return now is None or (now.status, now.percentage_complete) != (last.status, last.percentage)

    return {
        "await_refresh": Await(
            awaited=lambda state: [refresh_target(state, started(state).group)], ready=moved_on
        ),
        "check_refresh": check_step,
        "make_default": make_default_step,
    }


def refresh_target(state: Any, group_name: str) -> Target:
    """What a wait on a group's instance refresh awaits: its `EC2 Auto Scaling Instance Refresh ...` events,
    from the account and region the run acts in."""
    return Target.from_key(state.target).beside("refresh", group_name)


def await_rollback(group_name: Callable[[Any], str], aws: RefreshAws) -> Await:
    """A wait for AWS to finish rolling back (or cancelling) the group's instance refresh."""

    def settled(state: Any) -> bool:
        return not any(refresh.active for refresh in aws.autoscaling.instance_refreshes(group_name(state)))

    return Await(awaited=lambda state: [refresh_target(state, group_name(state))], ready=settled)


def running_refresh_of(spec: RefreshSpec, aws: RefreshAws) -> InstanceRefresh | None:
    """The active refresh of the group that moves it onto this spec's template version, if any."""
    for refresh in aws.autoscaling.instance_refreshes(spec.group):
        if (
            refresh.active
            and refresh.desired_template_id == spec.template_id
            and str(refresh.desired_version) == str(spec.target_version)
        ):
            return refresh
    return None


def described(group_name: str, refresh_id: str, aws: RefreshAws) -> InstanceRefresh | None:
    found = aws.autoscaling.instance_refreshes(group_name, refresh_id)
    return found[0] if found else None


def refresh_of_run(refresh: RefreshSpec, aws: RefreshAws) -> InstanceRefresh | None:
    """The run's refresh as AWS sees it now: the one it started, or, for the spec it was about to start
    (a start whose answer was lost), the active refresh onto that spec's version."""
    if isinstance(refresh, InstanceRefreshProgress):
        return described(refresh.group, refresh.refresh_id, aws)
    return running_refresh_of(refresh, aws)


def settle(refresh: RefreshSpec | None, aws: RefreshAws) -> str | None:
    """After a failure elsewhere, never leave a refresh running unattended: roll it back (or, where AWS
    cannot, cancel it). `refresh` is the run's refresh, or the spec it was about to start. Returns what was
    done, or None if no refresh of this run was active."""
    if refresh is None:
        return None
    active = refresh_of_run(refresh, aws)
    if active is None or not active.active or active.status in ("Cancelling", "RollbackInProgress"):
        return None
    try:
        aws.autoscaling.rollback_instance_refresh(refresh.group)
        return f"rolled back instance refresh {active.refresh_id}"
    except OpsflowError:
        aws.autoscaling.cancel_instance_refresh(refresh.group)
        return f"cancelled instance refresh {active.refresh_id} (AWS could not roll it back)"


def group_now(group_name: str, aws: RefreshAws) -> str:
    """What the group runs: its launch template version and the images of its instances."""
    group = aws.autoscaling.describe_group(group_name)
    if group.launch_template:
        config = (
            f"launch template {group.launch_template.template_id} version {group.launch_template.version}"
        )
    else:
        config = f"launch configuration {group.launch_configuration_name}"
    images = aws.ec2.instance_images(group.instance_ids)
    counts: dict[str, int] = {}
    for image_id in images.values():
        counts[image_id] = counts.get(image_id, 0) + 1
    running = ", ".join(f"{image_id} on {n} of {len(images)}" for image_id, n in sorted(counts.items()))
    return f"{config} ({running or 'no instances'})"
