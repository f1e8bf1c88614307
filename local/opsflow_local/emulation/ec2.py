"""EC2 behaviours that moto 5.2.5 lacks or bends, emulated as the EC2 API reference documents them.

- CreateImage (API reference, CreateImage; User Guide, "Create an Amazon EBS-backed AMI"):
  the image holds one snapshot per EBS volume attached to the instance, and a block device mapping
  per device with the volume's size, type, IOPS, throughput, encryption and DeleteOnTermination.
  `BlockDeviceMappings` in the request may exclude a device (`NoDevice`), add a new empty EBS
  volume or an instance store volume, and change DeleteOnTermination of an existing one; "the only
  option that can be changed for existing mappings or snapshots is DeleteOnTermination", so a
  different VolumeSize, VolumeType, Iops, Throughput or Encrypted for an existing volume is refused
  with InvalidBlockDeviceMapping. `TagSpecifications` tag the image and every snapshot. The image
  is `pending` for a while, then `available`; a test can make it end `failed` with a StateReason.
  moto: one 15 GiB snapshot whatever the instance has, `available` at once, snapshot tags raise.
- RunInstances `BlockDeviceMappings` (API reference, EbsBlockDevice): Iops and Throughput are kept.
  moto drops them, so an io1/io2 mapping fails and a gp3 one loses its provisioned IOPS.
- CreateLaunchTemplateVersion `SourceVersion` (API reference): the new version takes the source
  version's data, and the `LaunchTemplateData` of the request overrides it key by key; "snapshots
  applied to the block device mapping are ignored ... unless they are explicitly included".
  moto ignores SourceVersion.
- DeleteLaunchTemplateVersions (API reference): deletes versions, never the default one; version
  numbers are never reused. moto has no such call and numbers versions by list position.
- StopInstances / StartInstances (User Guide, "Amazon EC2 instance state changes" and "Stop and start
  Amazon EC2 instances"; API reference, InstanceState and InstanceStateChange): a stopped instance goes
  `stopping` (64) then `stopped` (80); a started one goes `pending` (0) then `running` (16). Each
  response reports the CurrentState and PreviousState of every instance; an instance already stopping
  or stopped (stop), or pending or running (start), is left as it is and reported so. Starting an
  instance that is `stopping`, `shutting-down` or `terminated` is refused with IncorrectInstanceState
  ("The instance ... is not in a state from which it can be started"); so is stopping one that is
  `pending`, `shutting-down` or `terminated` (the documented lifecycle stops only a running instance).
  moto changes state at once, starts terminated instances and always answers `stopping`/`pending`.
- AMI state change events (User Guide, "Monitor AMI events using Amazon EventBridge"): "Amazon EC2
  generates an `EC2 AMI State Change` event when an AMI enters any of the following states: available,
  failed, deregistered, disabled", on a best effort basis. Each goes to the default bus as the documented
  examples show it: source `aws.ec2`, the image ARN (`arn:aws:ec2:<region>::image/<id>`, no account) in
  `resources`, detail `RequestId`, `ImageId`, `State` and `ErrorMessage` ("" unless the image failed, else
  the reason it failed). Sent when a CreateImage or CopyImage image ends `available` or `failed` (at its
  deadline, see `aws_events.wake_at`; a copy's event comes from its destination region), when RegisterImage
  (available at once in moto) returns, on
  DeregisterImage (`deregistered`), DisableImage (`disabled`) and EnableImage (`available`). moto sends none.
- CopyImage (API reference, CopyImage; User Guide, "Copy an Amazon EC2 AMI"): the copy is made in the
  caller's region from an `available` image of `SourceRegion`, `pending` for `image_copy_seconds`, then
  `available` (or `failed`, `fail_next_copy`); each EBS snapshot is copied with the source's size and
  encryption, re-encrypted with `KmsKeyId` when given (which requires `Encrypted`, else
  InvalidParameterDependency); `TagSpecifications` tag the image and its snapshots, `CopyImageTags` copies
  the source image's own tags (not its snapshots'); launch permissions are not copied; a name in use is
  InvalidAMIName.Duplicate; the same `ClientToken` returns the first copy. A destination takes at most
  `copy_limit_per_destination` (50) copies under way, `copy_limit_per_source` (25) of them from one source
  region (User Guide's limits); one more is ResourceLimitExceeded. moto copies at once, ignores KmsKeyId,
  tags and tokens, and points the copy at the source's mappings and snapshots.
- EnableImageDeprecation / DisableImageDeprecation (API reference; User Guide, "Deprecate an Amazon EC2
  AMI"): `DeprecateAt` is rounded to the minute, may not be in the past (InvalidParameterValue) nor more than
  10 years ahead, and DescribeImages reports it as the image's `DeprecationTime`
  (`YYYY-MM-DDTHH:MM:SS.000Z`) until DisableImageDeprecation removes it. moto has neither call.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from moto.core.responses import ActionResult
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidLaunchTemplateVersionNotFound,
    OperationDisableApiStopNotPermitted,
)
from moto.ec2.models import EC2Backend
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import Instance, InstanceState, StateReason
from moto.ec2.models.launch_templates import LaunchTemplate, LaunchTemplateVersion
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import random_ami_id
from moto.utilities.utils import get_partition

from opsflow_local.emulation import aws_events

# Volume types whose mappings carry provisioned IOPS / throughput, and gp3's documented baseline.
_IOPS_TYPES = frozenset({"io1", "io2", "gp3"})
_GP3_BASELINE = {"Iops": 3000, "Throughput": 125}


class EmulatedImage(Ami):
    """An AMI whose block device mappings are the ones CreateImage recorded."""

    mappings: list[dict[str, Any]]

    @property
    def block_device_mappings(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.mappings)


@dataclass
class _PendingImage:
    ready_at: float
    outcome: str
    reason: str | None
    snapshot_ids: list[str]
    request_id: str
    backend: Any = None  # the account and region the image is in
    copied_from: str | None = None  # a copy's source region


@dataclass(frozen=True)
class _StateChange:
    """What StopInstances or StartInstances does to an instance, by the state it is in."""

    verb: str
    refused: frozenset[str]
    unchanged: frozenset[str]
    during: tuple[str, int]
    final: tuple[str, int]
    seconds_field: str
    moto_change: Callable[[Instance], InstanceState]


_STOP = _StateChange(
    verb="stopped",
    refused=frozenset({"pending", "shutting-down", "terminated"}),
    unchanged=frozenset({"stopping", "stopped"}),
    during=("stopping", 64),
    final=("stopped", 80),
    seconds_field="instance_stop_seconds",
    moto_change=Instance.stop,
)
_START = _StateChange(
    verb="started",
    refused=frozenset({"stopping", "shutting-down", "terminated"}),
    unchanged=frozenset({"pending", "running"}),
    during=("pending", 0),
    final=("running", 16),
    seconds_field="instance_start_seconds",
    moto_change=Instance.start,
)


@dataclass
class _InstanceTransition:
    """Instances that went `during` and reach `final` (name, code) at `due` (time.monotonic)."""

    due: float
    instances: list[Instance]
    during: str
    final: tuple[str, int]
    backend: Any = None


@dataclass
class Ec2Emulation:
    """Controls for tests and the demo. Durations are AWS seconds, scaled like Wait states."""

    time_scale: float = 1.0
    image_pending_seconds: float = 60.0
    instance_stop_seconds: float = 30.0
    instance_start_seconds: float = 15.0
    image_copy_seconds: float = 120.0
    # The User Guide ("Copying an AMI"): "Destination regions are limited to 50 concurrent AMI copies at a
    # time, with no more than 25 of those coming from a single source region."
    copy_limit_per_destination: int = 50
    copy_limit_per_source: int = 25
    _copy_failures: dict[str, list[str]] = field(default_factory=dict)
    _copy_tokens: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _failures: list[str] = field(default_factory=list)
    _pending: dict[str, _PendingImage] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _instance_transitions: list[_InstanceTransition] = field(default_factory=list)
    _instance_mutex: threading.RLock = field(default_factory=threading.RLock)
    # Status checks: how long they are `initializing` after an instance starts or reboots, and the
    # impairments a test gave instances (instance id -> check -> whether a reboot fixes it).
    status_initializing_seconds: float = 60.0
    _status: dict[str, dict[str, bool]] = field(default_factory=dict)
    _initializing_until: dict[str, float] = field(default_factory=dict)
    # Told (account, region, instance id, system status, instance status) when an instance's checks may
    # have changed: the CloudWatch emulation moves its status check alarms.
    on_status_change: Callable[[str, str, str, str, str], None] | None = None

    def fail_next_image(self, reason: str = "Snapshot creation failed: internal error") -> None:
        """The next CreateImage returns an image that ends `failed` with this StateReason message."""
        with self._mutex:
            self._failures.append(reason)

    def impair(self, instance_id: str, check: str = "instance", reboot_fixes: bool = True) -> None:
        """The instance's `system` check (AWS's hardware: a reboot never fixes it, a stop and start does) or
        `instance` check (its OS: a reboot fixes it unless `reboot_fixes` is False) fails from now on."""
        if check not in ("system", "instance"):
            raise ValueError("check is system or instance")
        with self._instance_mutex:
            self._status.setdefault(instance_id, {})[check] = reboot_fixes and check == "instance"
        self._status_changed(instance_id)

    def stop_unexpectedly(
        self,
        instance_id: str,
        code: str = "Server.InternalError",
        message: str = "Server.InternalError: Internal error on launch",
    ) -> None:
        """The instance stops without anyone asking (a host failure, its OS shutting down): stopping, then
        stopped, with this StateReason (EC2 API Reference, StateReason: `Server.InternalError`,
        `Client.InstanceInitiatedShutdown`, ...) instead of StopInstances' `Client.UserInitiatedShutdown`."""
        for _account, _region, instance in _find_instance(instance_id):
            self._change_instances(instance.ec2_backend, [instance_id], _STOP)
            instance.state_reason = StateReason(message, code)

    def status_of(self, instance: Instance) -> tuple[str, str]:
        """(system status, instance status) as DescribeInstanceStatus reports them."""
        if instance._state.name != "running":
            return "not-applicable", "not-applicable"
        failing = self._status.get(instance.id, {})
        if time.monotonic() < self._initializing_until.get(instance.id, 0.0):
            starting = "initializing"
            return ("impaired" if "system" in failing else starting), (
                "impaired" if "instance" in failing else starting
            )
        return ("impaired" if "system" in failing else "ok"), ("impaired" if "instance" in failing else "ok")

    def _reboot(self, instance: Instance) -> None:
        with self._instance_mutex:
            failing = self._status.get(instance.id, {})
            for check in [c for c, fixed_by_reboot in failing.items() if fixed_by_reboot]:
                del failing[check]
        self._checks_initializing(instance)

    def _checks_initializing(self, instance: Instance) -> None:
        until = time.monotonic() + self.status_initializing_seconds * self.time_scale
        self._initializing_until[instance.id] = until
        self._status_changed(instance.id)
        aws_events.wake_at(until, lambda: self._status_changed(instance.id))

    def _status_changed(self, instance_id: str) -> None:
        if self.on_status_change is None:
            return
        for account, region, instance in _find_instance(instance_id):
            self.on_status_change(account, region, instance_id, *self.status_of(instance))

    def fail_next_copy(self, region: str, reason: str = "Copy of snapshot failed: internal error") -> None:
        """The next CopyImage into `region` returns a copy that ends `failed` with this StateReason message."""
        with self._mutex:
            self._copy_failures.setdefault(region, []).append(reason)

    def _register(
        self, backend: Any, image_id: str, snapshot_ids: list[str], copied_from: str | None = None
    ) -> None:
        with self._mutex:
            if copied_from is None:
                reason = self._failures.pop(0) if self._failures else None
                seconds = self.image_pending_seconds
            else:
                failures = self._copy_failures.get(backend.region_name) or []
                reason = failures.pop(0) if failures else None
                seconds = self.image_copy_seconds
            pending = _PendingImage(
                ready_at=time.monotonic() + seconds * self.time_scale,
                outcome="failed" if reason else "available",
                reason=reason,
                snapshot_ids=snapshot_ids,
                request_id=str(uuid.uuid4()),
                backend=backend,
                copied_from=copied_from,
            )
            self._pending[image_id] = pending
        aws_events.wake_at(pending.ready_at, lambda: self._advance(backend))

    def _copies_under_way(self, backend: Any, source_region: str) -> tuple[int, int]:
        """Copies still pending into `backend`'s region: all of them, and those from `source_region`."""
        with self._mutex:
            into = [
                p
                for image_id, p in self._pending.items()
                if p.copied_from is not None and p.backend is backend and image_id in backend.amis
            ]
        return len(into), sum(1 for p in into if p.copied_from == source_region)

    def _advance(self, backend: Any) -> None:
        now = time.monotonic()
        ended: list[tuple[str, _PendingImage]] = []
        with self._mutex:
            due = [image_id for image_id, p in self._pending.items() if p.ready_at <= now]
            for image_id in due:
                pending = self._pending.pop(image_id)
                # Each image in its own account and region, whichever backend's describe saw it due.
                backend = pending.backend or backend
                image = backend.amis.get(image_id)
                if image is None:
                    continue
                image.state = pending.outcome
                if pending.reason:
                    image.state_reason = {"Code": "Server.InternalError", "Message": pending.reason}
                for snapshot_id in pending.snapshot_ids:
                    snapshot = backend.snapshots.get(snapshot_id)
                    if snapshot is not None:
                        snapshot.status = "completed" if pending.outcome == "available" else "error"
                ended.append((image_id, pending))
        # Outside the lock: a rule's Lambda target runs in this thread and may describe images itself.
        for image_id, pending in ended:
            send_image_state(
                pending.backend or backend,
                image_id,
                pending.outcome,
                pending.reason or "",
                pending.request_id,
            )

    def install(self, stack: ExitStack) -> None:
        emulation = self
        original_describe_images = EC2Backend.describe_images
        original_describe_snapshots = EC2Backend.describe_snapshots

        def describe_images(backend: Any, *args: Any, **kwargs: Any) -> Any:
            emulation._advance(backend)
            return original_describe_images(backend, *args, **kwargs)

        def describe_snapshots(backend: Any, *args: Any, **kwargs: Any) -> Any:
            emulation._advance(backend)
            return original_describe_snapshots(backend, *args, **kwargs)

        def create_image_backend(
            backend: Any,
            instance_id: str,
            name: str,
            description: str,
            tag_specifications: list[dict[str, Any]],
            block_device_mappings: list[dict[str, Any]] | None = None,
        ) -> Ami:
            return _create_image(
                emulation,
                backend,
                instance_id,
                name,
                description,
                tag_specifications,
                block_device_mappings or [],
            )

        def create_image_response(response: AmisResponse) -> ActionResult:
            response.error_on_dryrun()
            image = response.ec2_backend.create_image(
                response._get_param("InstanceId"),
                response._get_param("Name"),
                response._get_param("Description", ""),
                tag_specifications=response._get_param("TagSpecifications", []),
                block_device_mappings=response._get_param("BlockDeviceMappings", []),
            )
            return ActionResult({"ImageId": image.id})

        stack.enter_context(mock.patch.object(EC2Backend, "describe_images", describe_images))
        stack.enter_context(mock.patch.object(EC2Backend, "describe_snapshots", describe_snapshots))
        stack.enter_context(mock.patch.object(EC2Backend, "create_image", create_image_backend))
        stack.enter_context(mock.patch.object(AmisResponse, "create_image", create_image_response))
        _install_image_copies(self, stack)
        _install_image_deprecation(stack)
        _install_image_events(stack)
        _install_run_instances(stack)
        _install_launch_template_versions(stack)
        _install_instance_state_changes(self, stack)

    # Instance state changes -----------------------------------------------------------------------

    def _advance_instances(self) -> None:
        if not self._instance_transitions:
            return
        now = time.monotonic()
        ended: list[tuple[Any, Instance]] = []
        with self._instance_mutex:
            waiting: list[_InstanceTransition] = []
            for transition in self._instance_transitions:
                if transition.due > now:
                    waiting.append(transition)
                    continue
                for instance in transition.instances:
                    # A reboot or a termination meanwhile wins over the transition.
                    if instance._state.name == transition.during:
                        instance._state.name, instance._state.code = transition.final
                        ended.append((transition.backend, instance))
            self._instance_transitions = waiting
        # Outside the lock: a rule's target runs in this thread and may describe instances itself.
        for backend, instance in ended:
            if instance._state.name == "running":
                self._checks_initializing(instance)
            if backend is not None:
                send_instance_state(backend, instance.id, instance._state.name)

    def _forget_instance_transitions(self) -> None:
        with self._instance_mutex:
            self._instance_transitions = []

    def _change_instances(
        self, backend: Any, instance_ids: list[str], change: _StateChange
    ) -> list[tuple[Instance, InstanceState]]:
        """Stop or start instances as StopInstances / StartInstances do and return each with its previous
        state. Every instance is checked first: one refused instance fails the whole request."""
        with self._instance_mutex:
            instances = backend.get_multi_instances_by_id(instance_ids)
            for instance in instances:
                if change is _STOP and instance.disable_api_stop is True:
                    raise OperationDisableApiStopNotPermitted(instance.id)
                if instance.state in change.refused:
                    raise EC2ClientError(
                        "IncorrectInstanceState",
                        f"The instance '{instance.id}' is not in a state from which it can be {change.verb}.",
                    )
            changed: list[tuple[Instance, InstanceState]] = []
            moving: list[Instance] = []
            for instance in instances:
                previous = copy.copy(instance._state)
                if instance.state not in change.unchanged:
                    # moto's own stop/start also stops or starts the network interfaces and sets the reason.
                    change.moto_change(instance)
                    instance._state.name, instance._state.code = change.during
                    moving.append(instance)
                changed.append((instance, previous))
            if moving:
                due = time.monotonic() + getattr(self, change.seconds_field) * self.time_scale
                self._instance_transitions.append(
                    _InstanceTransition(due, moving, change.during[0], change.final, backend)
                )
                if change is _STOP:
                    # Stopped, it leaves its host (a failed system check) and its OS restarts (an instance
                    # check a reboot fixes); what is wrong on its volumes stays.
                    for instance in moving:
                        failing = self._status.get(instance.id, {})
                        for check in [
                            c for c, reboot_fixes in failing.items() if c == "system" or reboot_fixes
                        ]:
                            del failing[check]
        for instance in moving:
            send_instance_state(backend, instance.id, change.during[0])
        if moving:
            aws_events.wake_at(due, self._advance_instances)
        return changed


# CreateImage ------------------------------------------------------------------------------------


def _invalid_mapping(message: str) -> EC2ClientError:
    return EC2ClientError("InvalidBlockDeviceMapping", message)


def _create_image(
    emulation: Ec2Emulation,
    backend: Any,
    instance_id: str,
    name: str,
    description: str,
    tag_specifications: list[dict[str, Any]],
    requested: list[dict[str, Any]],
) -> Ami:
    instance = backend.get_instance(instance_id)
    image_tags, snapshot_tags = _spec_tags(tag_specifications)
    if name in {ami.name for ami in backend.amis.values()}:
        raise EC2ClientError(
            "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by an AMI owned by this account."
        )

    overrides = {m["DeviceName"]: m for m in requested}
    attached = dict(instance.get_block_device_mapping)
    image_id = random_ami_id()
    mappings: list[dict[str, Any]] = []
    snapshot_ids: list[str] = []
    for device, attachment in attached.items():
        override = overrides.pop(device, None)
        if override is not None and "NoDevice" in override:
            continue
        volume = backend.get_volume(attachment.volume_id)
        ebs = _existing_volume_mapping(device, volume, attachment.delete_on_termination, override)
        snapshot = backend.create_snapshot(
            volume.id, f"Created by CreateImage({instance_id}) for {image_id}", from_ami=image_id
        )
        snapshot.status = "pending"
        snapshot.add_tags(snapshot_tags)
        snapshot_ids.append(snapshot.id)
        mappings.append({"DeviceName": device, "Ebs": {"SnapshotId": snapshot.id, **ebs}})
    for device, added in overrides.items():
        if "NoDevice" in added:
            continue
        if added.get("VirtualName"):
            mappings.append({"DeviceName": device, "VirtualName": added["VirtualName"]})
        elif added.get("Ebs"):
            mappings.append({"DeviceName": device, "Ebs": _new_volume_mapping(device, added["Ebs"])})
        else:
            raise _invalid_mapping(
                f"The block device mapping for {device} needs Ebs, VirtualName or NoDevice."
            )

    image = EmulatedImage(
        backend,
        image_id,
        instance=instance,
        source_ami=None,
        name=name,
        description=description,
        owner_id=None,
        snapshot_description=f"Created by CreateImage({instance_id}) for {image_id}",
    )
    # moto's Ami constructor makes a 15 GiB placeholder snapshot of its own; this image has real ones.
    backend.snapshots.pop(image.ebs_snapshot.id, None)
    image.mappings = mappings
    devices = [m["DeviceName"] for m in mappings]
    if instance.root_device_name in devices or not devices:
        image.root_device_name = instance.root_device_name
    else:
        image.root_device_name = devices[0]
    image.state = "pending"
    for key, value in image_tags.items():
        image.add_tag(key, value)
    backend.amis[image_id] = image
    # Only once the image is listed: the clock may complete it on its own thread at once.
    emulation._register(backend, image_id, snapshot_ids)
    return image


def _existing_volume_mapping(
    device: str, volume: Any, delete_on_termination: bool, override: dict[str, Any] | None
) -> dict[str, Any]:
    ebs: dict[str, Any] = {
        "DeleteOnTermination": bool(delete_on_termination),
        "VolumeSize": volume.size,
        "VolumeType": volume.volume_type,
        "Encrypted": bool(volume.encrypted),
    }
    if volume.volume_type in _IOPS_TYPES:
        ebs["Iops"] = volume.iops or _GP3_BASELINE["Iops"]
    if volume.volume_type == "gp3":
        ebs["Throughput"] = volume.throughput or _GP3_BASELINE["Throughput"]
    if volume.kms_key_id:
        ebs["KmsKeyId"] = volume.kms_key_id
    requested = (override or {}).get("Ebs") or {}
    for key in ("VolumeSize", "VolumeType", "Iops", "Throughput", "Encrypted"):
        if key in requested and requested[key] != ebs.get(key):
            raise _invalid_mapping(
                f"{key} of {device} cannot be changed when creating an image: the only option that can be "
                "changed for existing mappings is DeleteOnTermination."
            )
    if "DeleteOnTermination" in requested:
        ebs["DeleteOnTermination"] = bool(requested["DeleteOnTermination"])
    return ebs


def _new_volume_mapping(device: str, requested: dict[str, Any]) -> dict[str, Any]:
    if "VolumeSize" not in requested:
        raise _invalid_mapping(f"A new EBS volume for {device} needs a VolumeSize.")
    volume_type = requested.get("VolumeType", "gp2")
    ebs: dict[str, Any] = {
        "DeleteOnTermination": bool(requested.get("DeleteOnTermination", True)),
        "VolumeSize": int(requested["VolumeSize"]),
        "VolumeType": volume_type,
        "Encrypted": bool(requested.get("Encrypted", False)),
    }
    if volume_type in ("io1", "io2") and "Iops" not in requested:
        raise EC2ClientError(
            "InvalidParameterDependency", f"The parameter Iops is required for {volume_type} volumes."
        )
    if volume_type in _IOPS_TYPES:
        ebs["Iops"] = int(requested.get("Iops", _GP3_BASELINE["Iops"]))
    if volume_type == "gp3":
        ebs["Throughput"] = int(requested.get("Throughput", _GP3_BASELINE["Throughput"]))
    return ebs


# AMI state change events ------------------------------------------------------------------------


def send_image_state(backend: Any, image_id: str, state: str, error: str = "", request_id: str = "") -> None:
    """The `EC2 AMI State Change` event of `image_id` entering `state`."""
    region = backend.region_name
    aws_events.send(
        backend.account_id,
        region,
        "aws.ec2",
        "EC2 AMI State Change",
        [f"arn:{get_partition(region)}:ec2:{region}::image/{image_id}"],
        {
            "RequestId": request_id or str(uuid.uuid4()),
            "ImageId": image_id,
            "State": state,
            "ErrorMessage": error,
        },
    )


def _install_image_events(stack: ExitStack) -> None:
    """Image calls that end in a documented state at once: the event follows the call."""
    originals = {
        name: getattr(EC2Backend, name)
        for name in ("register_image", "deregister_image", "disable_image", "enable_image")
    }

    def register_image(backend: Any, *args: Any, **kwargs: Any) -> Ami:
        image: Ami = originals["register_image"](backend, *args, **kwargs)
        send_image_state(backend, image.id, image.state)
        return image

    def changing_to(name: str, state: str) -> Callable[..., None]:
        def change(backend: Any, ami_id: str) -> None:
            originals[name](backend, ami_id)
            send_image_state(backend, ami_id, state)

        return change

    stack.enter_context(mock.patch.object(EC2Backend, "register_image", register_image))
    for name, state in (
        ("deregister_image", "deregistered"),
        ("disable_image", "disabled"),
        ("enable_image", "available"),
    ):
        stack.enter_context(mock.patch.object(EC2Backend, name, changing_to(name, state)))


# CopyImage --------------------------------------------------------------------------------------------


def _install_image_copies(emulation: Ec2Emulation, stack: ExitStack) -> None:
    def copy_image_response(response: AmisResponse) -> ActionResult:
        response.error_on_dryrun()
        backend = response.ec2_backend
        token = response._get_param("ClientToken")
        key = (backend.account_id, backend.region_name, str(token))
        if token and key in emulation._copy_tokens:
            return ActionResult({"ImageId": emulation._copy_tokens[key]})
        image = _copy_image(
            emulation,
            backend,
            source_image_id=response._get_param("SourceImageId"),
            source_region=response._get_param("SourceRegion"),
            name=response._get_param("Name"),
            description=response._get_param("Description"),
            encrypted=bool(response._get_param("Encrypted", False)),
            kms_key_id=response._get_param("KmsKeyId"),
            copy_tags=bool(response._get_param("CopyImageTags", False)),
            tag_specifications=response._get_param("TagSpecifications", []),
        )
        if token:
            emulation._copy_tokens[key] = image.id
        return ActionResult({"ImageId": image.id})

    stack.enter_context(mock.patch.object(AmisResponse, "copy_image", copy_image_response))


def _copy_image(
    emulation: Ec2Emulation,
    backend: Any,
    *,
    source_image_id: str,
    source_region: str,
    name: str,
    description: str | None,
    encrypted: bool,
    kms_key_id: str | None,
    copy_tags: bool,
    tag_specifications: list[dict[str, Any]],
) -> Ami:
    """A copy made in `backend`'s region: new snapshots like the source's, `pending`, then `available`."""
    if kms_key_id and not encrypted:
        raise EC2ClientError(
            "InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set."
        )
    from moto.ec2.models import ec2_backends

    source_backend = ec2_backends[backend.account_id][source_region]
    source = source_backend.describe_images(ami_ids=[source_image_id])[0]
    if source.state != "available":
        raise EC2ClientError(
            "IncorrectState",
            f"The source image {source_image_id} is {source.state}; only an available image is copied.",
        )
    if name in {ami.name for ami in backend.amis.values()}:
        raise EC2ClientError(
            "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by an AMI owned by this account."
        )
    under_way, from_source = emulation._copies_under_way(backend, source_region)
    if under_way >= emulation.copy_limit_per_destination or from_source >= emulation.copy_limit_per_source:
        raise EC2ClientError(
            "ResourceLimitExceeded",
            f"You have reached the limit of concurrent AMI copies into {backend.region_name} "
            f"({emulation.copy_limit_per_destination}, {emulation.copy_limit_per_source} from one source region).",
        )
    image_tags, snapshot_tags = _spec_tags(tag_specifications)
    if copy_tags:
        # CopyImageTags: "the user-defined tags of the source AMI" go to the new AMI (not its snapshots).
        source_tags = {t["key"]: t["value"] for t in source.get_tags() if not t["key"].startswith("aws:")}
        image_tags = {**source_tags, **image_tags}
    image_id = random_ami_id()
    mappings: list[dict[str, Any]] = []
    snapshot_ids: list[str] = []
    for mapping in copy.deepcopy(source.block_device_mappings):
        ebs = mapping.get("Ebs")
        original = source_backend.snapshots.get(ebs.get("SnapshotId")) if ebs else None
        if ebs is None or original is None:
            mappings.append(mapping)
            continue
        now_encrypted = encrypted or bool(original.encrypted)
        volume = backend.create_volume(
            size=original.volume.size,
            zone_name=f"{backend.region_name}a",
            encrypted=now_encrypted,
            kms_key_id=kms_key_id if now_encrypted else None,
        )
        snapshot = backend.create_snapshot(
            volume.id, f"Copied for {image_id} from {source_region}:{source_image_id}", from_ami=image_id
        )
        backend.delete_volume(volume.id)
        snapshot.status = "pending"
        snapshot.kms_key_id = volume.kms_key_id if now_encrypted else None
        snapshot.add_tags(snapshot_tags)
        snapshot_ids.append(snapshot.id)
        ebs.update({"SnapshotId": snapshot.id, "Encrypted": now_encrypted})
        if now_encrypted:
            ebs["KmsKeyId"] = volume.kms_key_id
        mappings.append(mapping)
    image = EmulatedImage(
        backend, image_id, instance=None, source_ami=source, name=name, description=description, owner_id=None
    )
    backend.snapshots.pop(image.ebs_snapshot.id, None)
    image.mappings = mappings
    image.root_device_name = source.root_device_name
    image.state = "pending"
    for key, value in image_tags.items():
        image.add_tag(key, value)
    backend.amis[image_id] = image
    emulation._register(backend, image_id, snapshot_ids, copied_from=source_region)
    return image


def _spec_tags(tag_specifications: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """The image's and the snapshots' tags of a TagSpecifications list; another resource type is refused."""
    image_tags: dict[str, str] = {}
    snapshot_tags: dict[str, str] = {}
    for spec in tag_specifications:
        tags = {t["Key"]: t["Value"] for t in spec.get("Tags", [])}
        if spec["ResourceType"] == "image":
            image_tags.update(tags)
        elif spec["ResourceType"] == "snapshot":
            snapshot_tags.update(tags)
        else:
            raise EC2ClientError(
                "InvalidParameterValue",
                f"'{spec['ResourceType']}' is not a valid taggable resource type for this operation.",
            )
    return image_tags, snapshot_tags


# RunInstances block device mappings --------------------------------------------------------------

_requested_devices = threading.local()


def _install_run_instances(stack: ExitStack) -> None:
    original_run_instances = EC2Backend.run_instances
    original_parse = InstanceResponse._parse_block_device_mapping

    def parse_block_device_mapping(response: InstanceResponse) -> list[dict[str, Any]]:
        # moto's request parser keeps Iops but drops Throughput.
        mappings = original_parse(response)
        requested = {
            m.get("DeviceName"): m.get("Ebs") or {} for m in response._get_param("BlockDeviceMappings", [])
        }
        for mapping in mappings:
            throughput = requested.get(mapping["DeviceName"], {}).get("Throughput")
            if throughput is not None:
                mapping["Ebs"]["Throughput"] = throughput
        return mappings

    def run_instances(
        backend: Any,
        image_id: str,
        count: int,
        user_data: Any,
        security_group_names: list[str],
        **kwargs: Any,
    ) -> Any:
        mappings = kwargs.get("block_device_mappings")
        if mappings is None and kwargs.get("launch_template"):
            mappings = backend._get_template_from_args(kwargs["launch_template"]).data.get(
                "BlockDeviceMappings"
            )
        _requested_devices.ebs = {m["DeviceName"]: m.get("Ebs") or {} for m in mappings or []}
        try:
            return original_run_instances(backend, image_id, count, user_data, security_group_names, **kwargs)
        finally:
            _requested_devices.ebs = {}

    def add_block_device(
        instance: Instance,
        size: int,
        device_path: str,
        snapshot_id: str | None,
        encrypted: bool,
        delete_on_termination: bool,
        kms_key_id: str | None,
        volume_type: str | None,
    ) -> None:
        requested = getattr(_requested_devices, "ebs", {}).get(device_path, {})
        volume = instance.ec2_backend.create_volume(
            size=size,
            zone_name=instance._placement.zone,
            snapshot_id=snapshot_id,
            encrypted=encrypted,
            kms_key_id=kms_key_id,
            volume_type=volume_type,
            iops=requested.get("Iops"),
            throughput=requested.get("Throughput"),
        )
        instance.ec2_backend.attach_volume(volume.id, instance.id, device_path, delete_on_termination)

    stack.enter_context(
        mock.patch.object(InstanceResponse, "_parse_block_device_mapping", parse_block_device_mapping)
    )
    stack.enter_context(mock.patch.object(EC2Backend, "run_instances", run_instances))
    stack.enter_context(mock.patch.object(Instance, "add_block_device", add_block_device))


# Instance state changes -------------------------------------------------------------------------


def _install_instance_state_changes(emulation: Ec2Emulation, stack: ExitStack) -> None:
    original_all_reservations = EC2Backend.all_reservations

    def all_reservations(backend: Any, filters: Any = None) -> Any:
        # Every instance lookup in moto's EC2 backend goes through here.
        emulation._advance_instances()
        return original_all_reservations(backend, filters)

    def stop_instances(backend: Any, instance_ids: list[str]) -> list[tuple[Instance, InstanceState]]:
        return emulation._change_instances(backend, instance_ids, _STOP)

    def start_instances(backend: Any, instance_ids: list[str]) -> list[tuple[Instance, InstanceState]]:
        return emulation._change_instances(backend, instance_ids, _START)

    def stop_instances_response(response: InstanceResponse) -> ActionResult:
        instance_ids = response._get_param("InstanceIds", [])
        response.error_on_dryrun()
        changed = response.ec2_backend.stop_instances(instance_ids)
        return ActionResult({"StoppingInstances": [_state_change(i, previous) for i, previous in changed]})

    def start_instances_response(response: InstanceResponse) -> ActionResult:
        instance_ids = response._get_param("InstanceIds", [])
        response.error_on_dryrun()
        changed = response.ec2_backend.start_instances(instance_ids)
        return ActionResult({"StartingInstances": [_state_change(i, previous) for i, previous in changed]})

    def reboot_instances(backend: Any, instance_ids: list[str]) -> list[Instance]:
        instances: list[Instance] = backend.get_multi_instances_by_id(instance_ids)
        for instance in instances:
            if instance._state.name == "running":
                emulation._reboot(instance)
        return instances

    def instance_status(instance: Instance) -> dict[str, Any]:
        return _status_detail(emulation.status_of(instance)[1])

    def system_status(instance: Instance) -> dict[str, Any]:
        return _status_detail(emulation.status_of(instance)[0])

    stack.enter_context(mock.patch.object(EC2Backend, "reboot_instances", reboot_instances))
    stack.enter_context(mock.patch.object(Instance, "instance_status", property(instance_status)))
    stack.enter_context(mock.patch.object(Instance, "system_status", property(system_status)))
    stack.enter_context(mock.patch.object(EC2Backend, "all_reservations", all_reservations))
    stack.enter_context(mock.patch.object(EC2Backend, "stop_instances", stop_instances))
    stack.enter_context(mock.patch.object(EC2Backend, "start_instances", start_instances))
    stack.enter_context(mock.patch.object(InstanceResponse, "stop_instances", stop_instances_response))
    stack.enter_context(mock.patch.object(InstanceResponse, "start_instances", start_instances_response))
    stack.callback(emulation._forget_instance_transitions)


def _status_detail(status: str) -> dict[str, Any]:
    """A status check as DescribeInstanceStatus reports it (API Reference, InstanceStatusSummary)."""
    if status == "not-applicable":
        return {"Status": status}
    passed = {"ok": "passed", "impaired": "failed", "initializing": "initializing"}[status]
    return {"Status": status, "Details": [{"Name": "reachability", "Status": passed}]}


def _find_instance(instance_id: str) -> list[tuple[str, str, Instance]]:
    from moto.ec2.models import ec2_backends

    found = []
    for account, regions in list(ec2_backends.items()):
        for region, backend in list(regions.items()):
            for reservation in list(backend.reservations.values()):
                for instance in reservation.instances:
                    if instance.id == instance_id:
                        found.append((account, region, instance))
    return found


def send_instance_state(backend: Any, instance_id: str, state: str) -> None:
    """The `EC2 Instance State-change Notification` of `instance_id` entering `state` (EC2 User Guide,
    "Amazon EC2 instance state change events"): detail `instance-id` and `state`, the instance's ARN."""
    region = backend.region_name
    aws_events.send(
        backend.account_id,
        region,
        "aws.ec2",
        "EC2 Instance State-change Notification",
        [f"arn:{get_partition(region)}:ec2:{region}:{backend.account_id}:instance/{instance_id}"],
        {"instance-id": instance_id, "state": state},
    )


def _state_change(instance: Instance, previous: InstanceState) -> dict[str, Any]:
    return {
        "InstanceId": instance.id,
        "CurrentState": {"Code": instance._state.code, "Name": instance._state.name},
        "PreviousState": {"Code": previous.code, "Name": previous.name},
    }


# Launch template versions -----------------------------------------------------------------------


def _install_launch_template_versions(stack: ExitStack) -> None:
    def create_version(
        template: LaunchTemplate, data: dict[str, Any], description: str
    ) -> LaunchTemplateVersion:
        highest = max(
            [v.number for v in template.versions] + [getattr(template, "highest_version_number", 0)]
        )
        template.highest_version_number = highest + 1  # type: ignore[attr-defined]
        version = LaunchTemplateVersion(template, highest + 1, data, description)
        template.versions.append(version)
        return version

    def get_version(template: LaunchTemplate, number: Any) -> LaunchTemplateVersion:
        wanted = str(number)
        if wanted.lower() == "$latest":
            return max(template.versions, key=lambda v: v.number)
        if wanted.lower() == "$default":
            wanted = str(template.default_version_number)
        for version in template.versions:
            if str(version.number) == wanted:
                return version
        raise InvalidLaunchTemplateVersionNotFound(template_id=template.id, version=wanted)

    def default_version(template: LaunchTemplate) -> LaunchTemplateVersion:
        return get_version(template, template.default_version_number)

    def latest_version(template: LaunchTemplate) -> LaunchTemplateVersion:
        return get_version(template, "$Latest")

    def create_launch_template_version(response: LaunchTemplates) -> ActionResult:
        template = _template_of(response)
        data = response._get_param("LaunchTemplateData", {})
        source = response._get_param("SourceVersion")
        if source is not None:
            inherited = copy.deepcopy(template.get_version(source).data)
            for mapping in inherited.get("BlockDeviceMappings") or []:
                (mapping.get("Ebs") or {}).pop("SnapshotId", None)
            data = {**inherited, **data}
        response.error_on_dryrun()
        version = template.create_version(data, response._get_param("VersionDescription"))
        return ActionResult({"LaunchTemplateVersion": _version_result(response, template, version)})

    def delete_launch_template_versions(response: LaunchTemplates) -> ActionResult:
        template = _template_of(response)
        response.error_on_dryrun()
        deleted, failed = [], []
        for requested in response._get_param("Versions", []):
            identity = {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name}
            match = [v for v in template.versions if str(v.number) == str(requested)]
            if not match:
                error = {"Code": "launchTemplateVersionDoesNotExist", "Message": "Version does not exist"}
            elif match[0].number == template.default_version_number:
                error = {
                    "Code": "unexpectedError",
                    "Message": "The default version of a launch template cannot be deleted.",
                }
            else:
                template.versions.remove(match[0])
                deleted.append({**identity, "VersionNumber": match[0].number})
                continue
            failed.append({**identity, "VersionNumber": int(requested), "ResponseError": error})
        return ActionResult(
            {
                "SuccessfullyDeletedLaunchTemplateVersions": deleted,
                "UnsuccessfullyDeletedLaunchTemplateVersions": failed,
            }
        )

    stack.enter_context(mock.patch.object(LaunchTemplate, "create_version", create_version))
    stack.enter_context(mock.patch.object(LaunchTemplate, "get_version", get_version))
    stack.enter_context(mock.patch.object(LaunchTemplate, "default_version", default_version))
    stack.enter_context(mock.patch.object(LaunchTemplate, "latest_version", latest_version))
    stack.enter_context(
        mock.patch.object(LaunchTemplates, "create_launch_template_version", create_launch_template_version)
    )
    stack.enter_context(
        mock.patch.object(
            LaunchTemplates, "delete_launch_template_versions", delete_launch_template_versions, create=True
        )
    )


def _template_of(response: LaunchTemplates) -> LaunchTemplate:
    template_id = response._get_param("LaunchTemplateId")
    if template_id:
        return response.ec2_backend.get_launch_template(template_id)
    return response.ec2_backend.get_launch_template_by_name(response._get_param("LaunchTemplateName"))


def _version_result(
    response: LaunchTemplates, template: LaunchTemplate, version: LaunchTemplateVersion
) -> dict[str, Any]:
    return {
        "CreateTime": version.create_time,
        "CreatedBy": f"arn:{response.partition}:iam::{response.current_account}:root",
        "DefaultVersion": template.is_default(version),
        "LaunchTemplateData": version.data,
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "VersionDescription": version.description,
        "VersionNumber": version.number,
    }


def deprecation_time(deprecate_at: datetime, now: datetime) -> str:
    """`DeprecateAt` as EC2 keeps it: rounded to the nearest minute, never in the past, at most 10 years on."""
    rounded = (deprecate_at + timedelta(seconds=30)).replace(second=0, microsecond=0)
    if rounded < now.replace(second=0, microsecond=0):
        raise EC2ClientError("InvalidParameterValue", "The deprecation time can't be in the past.")
    if rounded > now + timedelta(days=3653):
        raise EC2ClientError(
            "InvalidParameterValue", "The deprecation time can't be more than 10 years away."
        )
    return rounded.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _install_image_deprecation(stack: ExitStack) -> None:
    def image(response: AmisResponse) -> Ami:
        image_id = response._get_param("ImageId")
        found = response.ec2_backend.amis.get(image_id)
        if found is None:
            raise EC2ClientError("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
        return found

    def enable_image_deprecation(response: AmisResponse) -> ActionResult:
        response.error_on_dryrun()
        found = image(response)
        deprecate_at = response._get_param("DeprecateAt")
        if isinstance(deprecate_at, str):
            deprecate_at = datetime.fromisoformat(deprecate_at.replace("Z", "+00:00"))
        if deprecate_at.tzinfo is None:
            deprecate_at = deprecate_at.replace(tzinfo=UTC)
        found.deprecation_time = deprecation_time(deprecate_at, datetime.now(UTC))
        return ActionResult({"Return": True})

    def disable_image_deprecation(response: AmisResponse) -> ActionResult:
        response.error_on_dryrun()
        found = image(response)
        if hasattr(found, "deprecation_time"):
            del found.deprecation_time
        return ActionResult({"Return": True})

    for name, method in {
        "enable_image_deprecation": enable_image_deprecation,
        "disable_image_deprecation": disable_image_deprecation,
    }.items():
        stack.enter_context(mock.patch.object(AmisResponse, name, method, create=True))
