"""EC2 Auto Scaling instance refresh, which moto 5.2.5 does not implement, emulated as documented in the
Amazon EC2 Auto Scaling API Reference (StartInstanceRefresh, DescribeInstanceRefreshes,
CancelInstanceRefresh, RollbackInstanceRefresh, RefreshPreferences, InstanceRefresh) and the User Guide
("Use an instance refresh to update instances", "Add checkpoints", "Undo changes with a manual or auto
rollback").

- StartInstanceRefresh returns an id; a second one while a refresh is active is refused with
  InstanceRefreshInProgress. The refresh is `Pending`, then `InProgress`.
- Instances are replaced in batches: MinHealthyPercentage (default 90) bounds how many may be out of
  service at once (at least one), MaxHealthyPercentage above 100 lets that many more be launched first.
  Each batch takes InstanceWarmup seconds (default: the group's health check grace period).
  Replacement instances are launched from the DesiredConfiguration when given, else from the group's own.
  SkipMatching leaves instances that already match it alone.
- PercentageComplete and InstancesToUpdate follow the replaced instances. At each of
  CheckpointPercentages the refresh waits CheckpointDelay seconds (default 3600).
- BakeTime: after the last batch the refresh is `Baking` for that long, still watching its alarms.
- An alarm of AlarmSpecification in ALARM fails the refresh; with AutoRollback it rolls back instead.
- Rollback (automatic or RollbackInstanceRefresh) replaces the instances the refresh launched with the
  configuration the group had before it: `RollbackInProgress` then `RollbackSuccessful`. It is refused
  with IrreversibleInstanceRefresh without a desired configuration, or when the group uses a launch
  template's $Latest or $Default version, or an image resolved from an SSM parameter.
- CancelInstanceRefresh: `Cancelling` then `Cancelled`; replaced instances stay. With no active
  refresh, ActiveInstanceRefreshNotFound.
- When the refresh succeeds the group takes the desired configuration.
- Each change of status, and each checkpoint, sends the event the User Guide documents ("Instance
  refresh example events and patterns") to the default event bus: source `aws.autoscaling`,
  detail-type `EC2 Auto Scaling Instance Refresh Started`, `... Checkpoint Reached`, `... Succeeded`,
  `... Failed`, `... Cancelled`, `... Rollback Started`, `... Rollback Succeeded`, `... Rollback Failed`,
  with the group's ARN in `resources` and the refresh id and group name in `detail`.
Durations are AWS seconds multiplied by `time_scale`. A refresh moves on when the group or its refreshes are
next read or acted on, or, in the embedded runtime, on its own at each moment it is due to
(`aws_events.wake_at`): the next batch, a checkpoint and the end of its delay, the end of the bake time, of a
cancellation or of a rollback. A refresh with an AlarmSpecification, InProgress or Baking, also looks at its
alarms every `alarm_check_seconds`. So a refresh nobody reads still sends its events when AWS would.
"""

from __future__ import annotations

import math
import time
import uuid
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.responses import ActionResult

from opsflow_local.emulation import aws_events
from opsflow_local.emulation.aws_events import HeldEvents, Wakes

ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
# The status a refresh enters -> the detail-type of the event AWS sends for it.
_EVENTS = {
    "InProgress": "EC2 Auto Scaling Instance Refresh Started",
    "Successful": "EC2 Auto Scaling Instance Refresh Succeeded",
    "Failed": "EC2 Auto Scaling Instance Refresh Failed",
    "Cancelled": "EC2 Auto Scaling Instance Refresh Cancelled",
    "RollbackInProgress": "EC2 Auto Scaling Instance Refresh Rollback Started",
    "RollbackSuccessful": "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
    "RollbackFailed": "EC2 Auto Scaling Instance Refresh Rollback Failed",
}
CHECKPOINT_REACHED = "EC2 Auto Scaling Instance Refresh Checkpoint Reached"
# The shortest real-time period of the alarm check, however small time_scale is: the clock is no busy loop.
MIN_CHECK_PERIOD = 0.005


def _key(backend: AutoScalingBackend, group_name: str) -> tuple[str, str, str]:
    return (backend.account_id, backend.region_name, group_name)


def _error(code: str, message: str) -> AutoscalingClientError:
    return AutoscalingClientError(code, message)


@dataclass
class Refresh:
    refresh_id: str
    group_name: str
    preferences: dict[str, Any]
    desired: dict[str, Any] | None
    previous: tuple[
        Any, str | None, Any
    ]  # the group's launch template, its version, its launch configuration
    to_replace: list[str]
    started_at: datetime
    status: str = "Pending"
    status_reason: str = "Waiting for the instance refresh to start."
    ended_at: datetime | None = None
    next_at: float = 0.0
    replaced: int = 0
    launched: list[str] = field(default_factory=list)
    checkpoints_done: set[int] = field(default_factory=set)
    in_flight: int = 0  # instances of the current batch, still warming up
    rollback: dict[str, Any] | None = None
    rolled_back: bool = False
    described_percentage: int = 0  # PercentageComplete as DescribeInstanceRefreshes last returned it

    @property
    def total(self) -> int:
        return len(self.to_replace)

    @property
    def percentage(self) -> int:
        return 100 if not self.total else self.replaced * 100 // self.total

    def describe(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "InstanceRefreshId": self.refresh_id,
            "AutoScalingGroupName": self.group_name,
            "Status": self.status,
            "StatusReason": self.status_reason,
            "StartTime": self.started_at,
            "PercentageComplete": self.percentage,
            "InstancesToUpdate": self.total - self.replaced,
            "ProgressDetails": {
                "LivePoolProgress": {
                    "PercentageComplete": self.percentage,
                    "InstancesToUpdate": self.total - self.replaced,
                }
            },
            "Preferences": self.preferences,
            "Strategy": "Rolling",
        }
        if self.ended_at:
            result["EndTime"] = self.ended_at
        if self.desired:
            result["DesiredConfiguration"] = self.desired
        if self.rollback:
            result["RollbackDetails"] = self.rollback
        return result


@dataclass
class AutoScalingEmulation:
    """Controls for tests and the demo. Durations are AWS seconds, scaled like Wait states."""

    time_scale: float = 1.0
    pending_seconds: float = 5.0
    # How often an active refresh with an AlarmSpecification looks at its alarms when nobody reads it.
    alarm_check_seconds: float = 10.0
    # By (account, region, group name): one group's refreshes, oldest first.
    _refreshes: dict[tuple[str, str, str], list[Refresh]] = field(default_factory=dict)
    _events: HeldEvents = field(default_factory=HeldEvents)
    # By (account, region): the clock's wakes asked for to advance that backend.
    _wakes: Wakes = field(default_factory=Wakes)

    def _locked(self) -> AbstractContextManager[None]:
        return self._events.held()

    def _tell(self, group: FakeAutoScalingGroup, refresh: Refresh, detail_type: str, **detail: str) -> None:
        self._events.later(lambda: _send(group, refresh, detail_type, **detail))

    def install(self, stack: ExitStack) -> None:
        emulation = self
        original_describe_groups = AutoScalingBackend.describe_auto_scaling_groups

        def describe_auto_scaling_groups(backend: AutoScalingBackend, *args: Any, **kwargs: Any) -> Any:
            # Under the lock: the clock's thread may be replacing the group's instances meanwhile.
            with emulation._locked():
                emulation.advance(backend)
                return original_describe_groups(backend, *args, **kwargs)

        def start(response: AutoScalingResponse) -> ActionResult:
            refresh = emulation.start(
                response.autoscaling_backend,
                response._get_param("AutoScalingGroupName"),
                response._get_param("Preferences") or {},
                response._get_param("DesiredConfiguration") or None,
            )
            return ActionResult({"InstanceRefreshId": refresh.refresh_id})

        def describe(response: AutoScalingResponse) -> ActionResult:
            backend = response.autoscaling_backend
            wanted = set(response._get_param("InstanceRefreshIds") or [])
            with emulation._locked():
                emulation.advance(backend)
                chosen = [
                    r
                    for r in reversed(
                        emulation._refreshes.get(
                            _key(backend, response._get_param("AutoScalingGroupName")), []
                        )
                    )
                    if not wanted or r.refresh_id in wanted
                ]
                for r in chosen:
                    r.described_percentage = r.percentage
                found = [r.describe() for r in chosen]
            return ActionResult({"InstanceRefreshes": found})

        def cancel(response: AutoScalingResponse) -> ActionResult:
            refresh = emulation.cancel(
                response.autoscaling_backend, response._get_param("AutoScalingGroupName")
            )
            return ActionResult({"InstanceRefreshId": refresh.refresh_id})

        def rollback(response: AutoScalingResponse) -> ActionResult:
            refresh = emulation.roll_back(
                response.autoscaling_backend, response._get_param("AutoScalingGroupName")
            )
            return ActionResult({"InstanceRefreshId": refresh.refresh_id})

        stack.enter_context(
            mock.patch.object(
                AutoScalingBackend, "describe_auto_scaling_groups", describe_auto_scaling_groups
            )
        )
        for name, method in {
            "start_instance_refresh": start,
            "describe_instance_refreshes": describe,
            "cancel_instance_refresh": cancel,
            "rollback_instance_refresh": rollback,
        }.items():
            stack.enter_context(mock.patch.object(AutoScalingResponse, name, method, create=True))

    # API ----------------------------------------------------------------------------------------

    def start(
        self,
        backend: AutoScalingBackend,
        group_name: str,
        preferences: dict[str, Any],
        desired: dict[str, Any] | None,
    ) -> Refresh:
        with self._locked():
            self.advance(backend)
            group = _group(backend, group_name)
            if self._active(backend, group_name):
                raise _error(
                    "InstanceRefreshInProgress",
                    "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
                )
            prefs = _with_defaults(preferences, group)
            if prefs.get("AutoRollback") and not _can_roll_back(group, desired):
                raise _error(
                    "ValidationError",
                    "AutoRollback is not supported: it needs a DesiredConfiguration and a group that uses a "
                    "numbered launch template version whose image is not an SSM parameter.",
                )
            instances = [s.instance.id for s in group.instance_states if s.lifecycle_state == "InService"]
            if prefs.get("SkipMatching") and desired:
                instances = [i for i in instances if not _matches(backend, group, i, desired)]
            refresh = Refresh(
                refresh_id=str(uuid.uuid4()),
                group_name=group_name,
                preferences=prefs,
                desired=desired,
                previous=(group.ec2_launch_template, group.launch_template_version, group.launch_config),
                to_replace=instances,
                started_at=datetime.now(UTC),
                next_at=time.monotonic() + self.pending_seconds * self.time_scale,
            )
            self._refreshes.setdefault(_key(backend, group_name), []).append(refresh)
            self._plan(backend)
            return refresh

    def percentage_done(self, group_name: str) -> int:
        """How far the group's latest instance refresh has come, as its last description said (0 if none):
        what a caller of DescribeInstanceRefreshes last saw, not how far the clock has taken it since."""
        with self._locked():
            refreshes = [r for key, listed in self._refreshes.items() if key[2] == group_name for r in listed]
            latest = max(refreshes, key=lambda r: r.started_at, default=None)
            return latest.described_percentage if latest else 0

    def cancel(self, backend: AutoScalingBackend, group_name: str) -> Refresh:
        with self._locked():
            self.advance(backend)
            refresh = self._active(backend, group_name)
            if refresh is None or refresh.status == "Cancelling":
                raise _error(
                    "ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found."
                )
            self._set_status(
                _group(backend, group_name),
                refresh,
                "Cancelling",
                "Cancelling the instance refresh at the user's request.",
            )
            refresh.next_at = time.monotonic() + self.pending_seconds * self.time_scale
            self._plan(backend)
            return refresh

    def roll_back(self, backend: AutoScalingBackend, group_name: str) -> Refresh:
        with self._locked():
            self.advance(backend)
            refresh = self._active(backend, group_name)
            if refresh is None:
                raise _error(
                    "ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found."
                )
            group = _group(backend, group_name)
            if not _can_roll_back(group, refresh.desired):
                raise _error(
                    "IrreversibleInstanceRefresh",
                    "The instance refresh cannot be rolled back: no desired configuration, or the group uses "
                    "$Latest, $Default or an SSM parameter image.",
                )
            self._begin_rollback(group, refresh, "Rollback requested by the user.")
            self._plan(backend)
            return refresh

    # Progress -----------------------------------------------------------------------------------

    def advance(self, backend: AutoScalingBackend) -> None:
        """Bring the backend's refreshes up to now, and ask the clock to come back when one is next due."""
        with self._locked():
            for refresh in self._of(backend):
                if refresh.status in ACTIVE and refresh.group_name in backend.autoscaling_groups:
                    self._advance(backend, refresh)
            self._plan(backend)

    def _of(self, backend: AutoScalingBackend) -> list[Refresh]:
        where = (backend.account_id, backend.region_name)
        return [r for key, listed in list(self._refreshes.items()) if key[:2] == where for r in listed]

    # Clock --------------------------------------------------------------------------------------

    def _plan(self, backend: AutoScalingBackend) -> None:
        """Ask the clock to advance the backend when its next active refresh is due to change: at its
        `next_at`, or sooner to look at its alarms."""
        now = time.monotonic()
        check = max(self.alarm_check_seconds * self.time_scale, MIN_CHECK_PERIOD)
        for refresh in self._of(backend):
            if refresh.status not in ACTIVE or refresh.group_name not in backend.autoscaling_groups:
                continue
            due = refresh.next_at
            if refresh.status in ("InProgress", "Baking") and _alarm_names(refresh.preferences):
                due = min(due, now + check)
            self._wake(backend, max(due, now))

    def _wake(self, backend: AutoScalingBackend, due: float) -> None:
        self._wakes.ask((backend.account_id, backend.region_name), due, lambda: self._woken(backend))

    def _woken(self, backend: AutoScalingBackend) -> None:
        with self._locked():
            self.advance(backend)

    def _active(self, backend: AutoScalingBackend, group_name: str) -> Refresh | None:
        return next(
            (r for r in self._refreshes.get(_key(backend, group_name), []) if r.status in ACTIVE), None
        )

    def _advance(self, backend: AutoScalingBackend, refresh: Refresh) -> None:
        group = _group(backend, refresh.group_name)
        while refresh.status in ACTIVE:
            if refresh.status in ("InProgress", "Baking"):
                alarm = _alarm_in_alarm(backend, refresh.preferences)
                if alarm:
                    reason = f"The instance refresh failed because the alarm {alarm} went into ALARM state."
                    if refresh.preferences.get("AutoRollback"):
                        self._begin_rollback(group, refresh, reason)
                    else:
                        self._end(group, refresh, "Failed", reason)
                    continue
            if time.monotonic() < refresh.next_at:
                return
            if refresh.status == "Pending":
                self._set_status(group, refresh, "InProgress", "Replacing instances.")
            elif refresh.status == "InProgress":
                self._step(backend, group, refresh)
            elif refresh.status == "Baking":
                self._succeed(group, refresh)
            elif refresh.status == "Cancelling":
                self._end(group, refresh, "Cancelled", "The instance refresh was cancelled.")
            elif refresh.status == "RollbackInProgress":
                self._step_rollback(backend, group, refresh)

    def _step(self, backend: AutoScalingBackend, group: FakeAutoScalingGroup, refresh: Refresh) -> None:
        """The batch in flight has warmed up (or there is none): count it, pause at a checkpoint it
        crossed, then start the next batch or finish."""
        if refresh.in_flight:
            refresh.replaced += refresh.in_flight
            refresh.in_flight = 0
            crossed = [
                p
                for p in refresh.preferences["CheckpointPercentages"]
                if p <= refresh.percentage and p not in refresh.checkpoints_done
            ]
            if crossed:
                refresh.checkpoints_done.update(crossed)
                delay = refresh.preferences["CheckpointDelay"]
                refresh.status_reason = (
                    f"Checkpoint {max(crossed)}% reached; waiting {delay} seconds before continuing."
                )
                refresh.next_at = time.monotonic() + delay * self.time_scale
                if max(crossed) < 100:  # AWS documents no event for a checkpoint at 100%
                    self._tell(
                        group,
                        refresh,
                        CHECKPOINT_REACHED,
                        CheckpointPercentage=str(max(crossed)),
                        CheckpointDelay=str(delay),
                    )
                return
        if refresh.replaced >= refresh.total:
            bake = int(refresh.preferences.get("BakeTime") or 0)
            if bake > 0:
                self._set_status(
                    group, refresh, "Baking", f"Baking for {bake} seconds while watching alarms."
                )
                refresh.next_at = time.monotonic() + bake * self.time_scale
            else:
                self._succeed(group, refresh)
            return
        batch = refresh.to_replace[refresh.replaced : refresh.replaced + self._batch_size(group, refresh)]
        try:
            refresh.launched += _replace(backend, group, batch, refresh.desired)
        except Exception as error:  # noqa: BLE001 - e.g. the desired version was deleted: AWS fails the refresh
            self._end(group, refresh, "Failed", f"Failed to launch replacement instances: {error}")
            return
        refresh.in_flight = len(batch)
        refresh.status_reason = "Replacing instances."
        refresh.next_at = time.monotonic() + refresh.preferences["InstanceWarmup"] * self.time_scale

    def _step_rollback(
        self, backend: AutoScalingBackend, group: FakeAutoScalingGroup, refresh: Refresh
    ) -> None:
        if refresh.rolled_back:
            self._end(group, refresh, "RollbackSuccessful", refresh.status_reason)
            return
        # The group still holds the configuration it had before the refresh: launch from it.
        still_there = {s.instance.id for s in group.instance_states}
        _replace(backend, group, [i for i in refresh.launched if i in still_there], desired=None)
        refresh.rolled_back = True
        refresh.next_at = time.monotonic() + refresh.preferences["InstanceWarmup"] * self.time_scale

    def _batch_size(self, group: FakeAutoScalingGroup, refresh: Refresh) -> int:
        capacity = max(group.desired_capacity or 0, 1)
        out_of_service = math.floor(capacity * (100 - refresh.preferences["MinHealthyPercentage"]) / 100)
        extra = math.floor(capacity * (refresh.preferences["MaxHealthyPercentage"] - 100) / 100)
        return max(1, out_of_service + extra)

    def _succeed(self, group: FakeAutoScalingGroup, refresh: Refresh) -> None:
        if refresh.desired and refresh.desired.get("LaunchTemplate"):
            spec = refresh.desired["LaunchTemplate"]
            group.ec2_launch_template = _template(group, spec)
            group.launch_template_version = str(spec.get("Version") or "$Default")
            group.provided_launch_template_version = spec.get("Version")
            group.launch_config = None
            group.launch_configuration_name = None
        self._end(group, refresh, "Successful", "The instance refresh completed successfully.")

    def _begin_rollback(self, group: FakeAutoScalingGroup, refresh: Refresh, reason: str) -> None:
        self._set_status(group, refresh, "RollbackInProgress", reason)
        refresh.rollback = {
            "RollbackReason": reason,
            "RollbackStartTime": datetime.now(UTC),
            "PercentageCompleteOnRollback": refresh.percentage,
            "InstancesToUpdateOnRollback": len(refresh.launched),
        }
        refresh.in_flight = 0
        refresh.next_at = time.monotonic()

    def _end(self, group: FakeAutoScalingGroup, refresh: Refresh, status: str, reason: str) -> None:
        refresh.ended_at = datetime.now(UTC)
        self._set_status(group, refresh, status, reason)

    def _set_status(self, group: FakeAutoScalingGroup, refresh: Refresh, status: str, reason: str) -> None:
        refresh.status, refresh.status_reason = status, reason
        if status in _EVENTS:
            self._tell(group, refresh, _EVENTS[status])


def _with_defaults(preferences: dict[str, Any], group: FakeAutoScalingGroup) -> dict[str, Any]:
    prefs = dict(preferences)
    prefs.setdefault("MinHealthyPercentage", 90)
    prefs.setdefault("MaxHealthyPercentage", 100)
    prefs.setdefault("InstanceWarmup", group.health_check_grace_period or 300)
    prefs.setdefault("CheckpointDelay", 3600)
    prefs.setdefault("SkipMatching", False)
    prefs.setdefault("AutoRollback", False)
    prefs.setdefault("ScaleInProtectedInstances", "Ignore")
    prefs.setdefault("StandbyInstances", "Ignore")
    for key in (
        "MinHealthyPercentage",
        "MaxHealthyPercentage",
        "InstanceWarmup",
        "CheckpointDelay",
        "BakeTime",
    ):
        if key in prefs:
            prefs[key] = int(prefs[key])
    prefs["CheckpointPercentages"] = [int(p) for p in prefs.get("CheckpointPercentages") or []]
    if prefs["CheckpointPercentages"] and prefs["CheckpointPercentages"] != sorted(
        prefs["CheckpointPercentages"]
    ):
        raise _error("ValidationError", "CheckpointPercentages must be in ascending order.")
    return prefs


def _group(backend: AutoScalingBackend, name: str) -> FakeAutoScalingGroup:
    group = backend.autoscaling_groups.get(name)
    if group is None:
        raise _error(
            "ValidationError", f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found"
        )
    return group


def _template(group: FakeAutoScalingGroup, spec: dict[str, Any]) -> Any:
    ec2 = group.ec2_backend
    if spec.get("LaunchTemplateId"):
        return ec2.get_launch_template(spec["LaunchTemplateId"])
    return ec2.get_launch_template_by_name(spec["LaunchTemplateName"])


def _can_roll_back(group: FakeAutoScalingGroup, desired: dict[str, Any] | None) -> bool:
    if not desired or group.ec2_launch_template is None:
        return False
    version = str(group.launch_template_version or "$Default")
    if version.lower() in ("$latest", "$default"):
        return False
    image = str(group.ec2_launch_template.get_version(version).data.get("ImageId", ""))
    return not image.startswith("resolve:ssm:")


def _matches(
    backend: AutoScalingBackend, group: FakeAutoScalingGroup, instance_id: str, desired: dict[str, Any]
) -> bool:
    spec = desired.get("LaunchTemplate") or {}
    if not spec:
        return False
    version = _template(group, spec).get_version(str(spec.get("Version") or "$Default"))
    instance = backend.ec2_backend.get_instance(instance_id)
    return bool(instance.image_id == version.data.get("ImageId"))


def _replace(
    backend: AutoScalingBackend,
    group: FakeAutoScalingGroup,
    instance_ids: list[str],
    desired: dict[str, Any] | None,
) -> list[str]:
    """Terminate `instance_ids` and launch as many from `desired` (or the group's own configuration)."""
    if not instance_ids:
        return []
    backend.ec2_backend.terminate_instances(instance_ids)
    group.instance_states = [s for s in group.instance_states if s.instance.id not in instance_ids]
    saved = (group.ec2_launch_template, group.launch_template_version, group.launch_config)
    if desired and desired.get("LaunchTemplate"):
        spec = desired["LaunchTemplate"]
        group.ec2_launch_template = _template(group, spec)
        group.launch_template_version = str(spec.get("Version") or "$Default")
        group.launch_config = None
    before = {s.instance.id for s in group.instance_states}
    try:
        group.replace_autoscaling_group_instances(len(instance_ids), group.get_propagated_tags())
    finally:
        group.ec2_launch_template, group.launch_template_version, group.launch_config = saved
    return [s.instance.id for s in group.instance_states if s.instance.id not in before]


def _alarm_names(preferences: dict[str, Any]) -> list[str]:
    return list((preferences.get("AlarmSpecification") or {}).get("Alarms") or [])


def _alarm_in_alarm(backend: AutoScalingBackend, preferences: dict[str, Any]) -> str | None:
    names = _alarm_names(preferences)
    if not names:
        return None
    alarms = cloudwatch_backends[backend.account_id][backend.region_name].alarms
    for name in names:
        alarm = alarms.get(name)
        if alarm is not None and alarm.state_value == "ALARM":
            return str(name)
    return None


def _send(group: FakeAutoScalingGroup, refresh: Refresh, detail_type: str, **detail: str) -> None:
    aws_events.send(
        group.account_id,
        group.region,
        "aws.autoscaling",
        detail_type,
        [group.arn],
        {"InstanceRefreshId": refresh.refresh_id, "AutoScalingGroupName": refresh.group_name, **detail},
    )
