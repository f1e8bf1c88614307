"""AMI bake: image an instance, publish the image to its Auto Scaling group, prune old images.

Every function here is one step of `statemachines/ami_bake.asl.json`; ordering, waiting and the
rollback path belong to the state machine.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opsflow.aws.autoscaling import AutoScaling, Group
from opsflow.aws.ec2 import Ec2, Image
from opsflow.errors import ImageFailed, ImageTimeout, NotFound, NotOptedIn, OpsflowError, Refused
from opsflow.runs.config import OptIn, StepsConfig
from opsflow.runs.steps import StepRunner, describe_failure, steps_runner
from opsflow.workflows.ami_bake.request import AmiBakeRequest
from opsflow.workflows.asg_refresh import steps as asg_refresh
from opsflow.workflows.asg_refresh.steps import RefreshAws

CREATED_BY = "opsflow:created-by"
RUN_ID = "opsflow:run-id"
GROUP = "opsflow:asg"
SOURCE_INSTANCE = "opsflow:source-instance"
REQUESTED_BY = "opsflow:requested-by"
DEVICE = "opsflow:device"

FAILED_IMAGE_STATES = frozenset({"failed", "invalid", "deregistered", "error", "disabled"})


@dataclass(frozen=True)
class BakeAws:
    ec2: Ec2
    autoscaling: AutoScaling
    refresh: RefreshAws

    @classmethod
    def from_default_clients(cls, event_bus: str = "default") -> BakeAws:
        refresh = RefreshAws.from_default_clients(event_bus)
        return cls(ec2=refresh.ec2, autoscaling=refresh.autoscaling, refresh=refresh)


# Pre-flight ---------------------------------------------------------------------------------------


def preflight(request: AmiBakeRequest, aws: BakeAws, opt_in: OptIn) -> dict[str, Any]:
    """Check that the bake is allowed and can work; return the plan. Changes nothing."""
    instance = aws.ec2.describe_instance(request.instance_id)
    if not opt_in.allows(instance.tags):
        raise NotOptedIn(
            f"instance {request.instance_id} does not carry the tag {opt_in.describe()}, so Opsflow will not "
            "image it. Tag the instance to opt it in."
        )
    if instance.state not in ("running", "stopped"):
        raise Refused(f"instance {request.instance_id} is {instance.state}; it must be running or stopped")
    group = aws.autoscaling.describe_group(request.asg_name)
    if not opt_in.allows(group.tags):
        raise NotOptedIn(
            f"Auto Scaling group {request.asg_name} does not carry the tag {opt_in.describe()}, so Opsflow "
            "will not change it. Tag the group to opt it in."
        )
    source = _publish_source(group, aws)
    if source["kind"] == "launch_template" and not request.refresh:
        # A refresh someone else runs would put its own configuration on the group when it succeeds,
        # silently undoing what this bake publishes.
        asg_refresh.ensure_no_refresh_running(group.name, aws.refresh)
    refresh_spec = (
        asg_refresh.refresh_spec(group, request.refresh, aws.refresh, target_version=None)
        if request.refresh
        else None
    )
    return {
        "instance": {
            "instance_id": instance.instance_id,
            "state": instance.state,
            "devices": instance.devices,
        },
        "group": {"name": group.name, "desired_capacity": group.desired_capacity},
        "source": source,
        "refresh_spec": refresh_spec,
        "actions": _plan_actions(request, instance.devices, source, refresh_spec),
    }


def _publish_source(group: Group, aws: BakeAws) -> dict[str, Any]:
    if group.uses_mixed_instances_policy:
        raise Refused(
            f"Auto Scaling group {group.name} uses a mixed instances policy; Opsflow publishes only to groups "
            "with a plain launch template or launch configuration"
        )
    if group.launch_template:
        ref = group.launch_template
        version = aws.ec2.launch_template_version(ref.template_id, ref.version)
        return {
            "kind": "launch_template",
            "template_id": version.template_id,
            "template_name": version.template_name,
            "version_ref": ref.version,
            "version": version.version,
            "image_id": version.image_id,
        }
    if group.launch_configuration_name:
        configuration = aws.autoscaling.launch_configuration(group.launch_configuration_name)
        return {
            "kind": "launch_configuration",
            "name": group.launch_configuration_name,
            "image_id": configuration.get("ImageId"),
        }
    raise Refused(f"Auto Scaling group {group.name} has neither a launch template nor a launch configuration")


def _plan_actions(
    request: AmiBakeRequest, devices: list[str], source: dict[str, Any], refresh_spec: dict[str, Any] | None
) -> list[str]:
    reboot = "without rebooting it" if request.no_reboot else "rebooting it for a consistent file system"
    actions = [
        f"Create an image of {request.instance_id} ({len(devices)} volume(s): {', '.join(devices) or 'none'}), "
        f"{reboot}",
        "Tag the image and each snapshot with the run id, source instance, group and requester",
        "Wait until the image is available",
    ]
    if source["kind"] == "launch_template" and refresh_spec:
        actions.append(
            f"Create a version of launch template {source['template_name'] or source['template_id']} copied from "
            f"version {source['version']}, changing only the image"
        )
        actions += asg_refresh.plan_actions({**refresh_spec, "target_version": "<new>"})
    elif source["kind"] == "launch_template":
        actions += [
            f"Create a version of launch template {source['template_name'] or source['template_id']} copied from "
            f"version {source['version']}, changing only the image",
            f"Point group {request.asg_name} at the new version (now: {source['version_ref']})",
        ]
    else:
        actions += [
            f"Create a launch configuration copied from {source['name']}, changing only the image",
            f"Point group {request.asg_name} at the new launch configuration (now: {source['name']})",
        ]
    actions.append(
        f"Keep the {request.keep_images} newest images baked for {request.asg_name}; deregister older ones "
        "that nothing in use references, with their snapshots"
    )
    return actions


# Image ------------------------------------------------------------------------------------------


def image_name(request: AmiBakeRequest, run_id: str, now: datetime) -> str:
    return request.image_name.format(
        asg_name=request.asg_name,
        instance_id=request.instance_id,
        run_id=run_id,
        timestamp=now.strftime("%Y%m%d-%H%M%S"),
    )[:128]


def bake_tags(request: AmiBakeRequest, run_id: str, requester: str) -> dict[str, str]:
    return {
        **request.tags,
        CREATED_BY: "opsflow",
        RUN_ID: run_id,
        GROUP: request.asg_name,
        SOURCE_INSTANCE: request.instance_id,
        REQUESTED_BY: requester[:256],
    }


def create_image(
    request: AmiBakeRequest, run_id: str, requester: str, aws: BakeAws, now: datetime | None = None
) -> dict[str, Any]:
    created_at = now or datetime.now(UTC)
    name = image_name(request, run_id, created_at)
    tags = bake_tags(request, run_id, requester)
    image_id = aws.ec2.create_image(
        instance_id=request.instance_id,
        name=name,
        description=f"Baked by Opsflow run {run_id} from {request.instance_id} for {request.asg_name}"[:255],
        no_reboot=request.no_reboot,
        image_tags={**tags, "Name": name},
        snapshot_tags=tags,
    )
    return {"image_id": image_id, "name": name, "created_at": created_at.isoformat()}


def check_image(
    image: dict[str, Any], max_wait_seconds: int, aws: BakeAws, now: datetime | None = None
) -> dict[str, Any]:
    """Report the image's state; `available` tags each snapshot with its device. Raises when it can't succeed."""
    found = aws.ec2.describe_image(image["image_id"])
    if found.state in FAILED_IMAGE_STATES:
        raise ImageFailed(
            f"image {found.image_id} ended {found.state}: {found.state_reason or 'no reason given'}"
        )
    if found.state == "available":
        for mapping in found.block_device_mappings:
            snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
            if snapshot_id:
                aws.ec2.tag(
                    [snapshot_id],
                    {DEVICE: mapping["DeviceName"], "Name": f"{found.name} {mapping['DeviceName']}"},
                )
        return {**image, "state": found.state, "snapshots": snapshots_by_device(found)}
    waited = ((now or datetime.now(UTC)) - datetime.fromisoformat(image["created_at"])).total_seconds()
    if waited > max_wait_seconds:
        raise ImageTimeout(
            f"image {found.image_id} is still {found.state} after {int(waited)} s (limit {max_wait_seconds} s)"
        )
    return {**image, "state": found.state}


def snapshots_by_device(image: Image) -> list[dict[str, Any]]:
    result = []
    for mapping in image.block_device_mappings:
        ebs = mapping.get("Ebs")
        if not ebs:
            continue
        result.append(
            {
                "device": mapping["DeviceName"],
                "snapshot_id": ebs.get("SnapshotId"),
                "size_gib": ebs.get("VolumeSize"),
                "volume_type": ebs.get("VolumeType"),
                "iops": ebs.get("Iops"),
                "throughput": ebs.get("Throughput"),
                "encrypted": ebs.get("Encrypted"),
                "delete_on_termination": ebs.get("DeleteOnTermination"),
            }
        )
    return result


# Publish ----------------------------------------------------------------------------------------


def publish(
    source: dict[str, Any], image_id: str, run_id: str, group_name: str, aws: BakeAws
) -> dict[str, Any]:
    if source["kind"] == "launch_template":
        version = aws.ec2.create_launch_template_version(
            template_id=source["template_id"],
            source=aws.ec2.launch_template_version(source["template_id"], str(source["version"])),
            image_id=image_id,
            image_devices={m["DeviceName"] for m in aws.ec2.describe_image(image_id).block_device_mappings},
            description=f"Opsflow run {run_id}: image {image_id}",
        )
        return {"kind": "launch_template", "template_id": source["template_id"], "version": version}
    name = launch_configuration_name(group_name, image_id)
    aws.autoscaling.copy_launch_configuration(
        aws.autoscaling.launch_configuration(source["name"]), new_name=name, image_id=image_id
    )
    return {"kind": "launch_configuration", "name": name}


def launch_configuration_name(group_name: str, image_id: str) -> str:
    return f"{group_name}-{image_id}"[:255]


def point_group(group_name: str, published: dict[str, Any], aws: BakeAws) -> dict[str, Any]:
    if published["kind"] == "launch_template":
        aws.autoscaling.use_launch_template(group_name, published["template_id"], str(published["version"]))
    else:
        aws.autoscaling.use_launch_configuration(group_name, published["name"])
    return {"group": group_name, "now_uses": published}


# Prune ------------------------------------------------------------------------------------------


def prune(group_name: str, keep: int, new_image_id: str, aws: BakeAws) -> dict[str, Any]:
    """Deregister images this app baked for the group beyond the newest `keep`, unless something uses them."""
    baked = aws.ec2.find_images({CREATED_BY: "opsflow", GROUP: group_name})
    baked.sort(key=lambda image: image.creation_date, reverse=True)
    newest_first = [new_image_id] + [image.image_id for image in baked if image.image_id != new_image_id]
    keep_ids = set(newest_first[:keep])
    in_use = images_in_use(aws)
    deregistered, kept_in_use = [], []
    for image in baked:
        if image.image_id in keep_ids:
            continue
        if image.image_id in in_use:
            kept_in_use.append(image.image_id)
            continue
        aws.ec2.deregister_image(image.image_id)
        for snapshot_id in image.snapshot_ids:
            aws.ec2.delete_snapshot(snapshot_id)
        deregistered.append({"image_id": image.image_id, "snapshots": image.snapshot_ids})
    return {"kept": sorted(keep_ids), "kept_in_use": kept_in_use, "deregistered": deregistered}


def images_in_use(aws: BakeAws) -> set[str]:
    """Images referenced by any launch configuration, or by a launch template version a group uses
    (with each such template's default and latest versions, which a group can switch to at any time)."""
    in_use: set[str] = set()
    for configuration in aws.autoscaling.all_launch_configurations():
        if configuration.get("ImageId"):
            in_use.add(configuration["ImageId"])
    seen: set[tuple[str, str]] = set()
    for group in aws.autoscaling.all_groups():
        if not group.launch_template:
            continue
        for version in {group.launch_template.version, "$Default", "$Latest"}:
            key = (group.launch_template.template_id, version)
            if key in seen:
                continue
            seen.add(key)
            try:
                image_id = aws.ec2.launch_template_version(*key).image_id
            except NotFound:
                continue
            if image_id:
                in_use.add(image_id)
    return in_use


# Rollback ---------------------------------------------------------------------------------------


def rollback(state: dict[str, Any], aws: BakeAws) -> dict[str, Any]:
    """Undo what this run created, newest first, and put the group back as it was.

    Each undo is attempted even if an earlier one fails; the problems are reported, not raised,
    so the run still records a complete account of what was left behind.
    """
    run_id = state["run_id"]
    request = state["request"]
    source = (state.get("guard") or {}).get("source")
    published = state.get("publish")
    group_name = request["asg_name"]
    # A second pass, after waiting for AWS to roll an instance refresh back, keeps the first's account.
    undone: list[str] = list((state.get("rollback") or {}).get("undone", []))
    problems: list[str] = []
    created = _describe_created(state)
    if (state.get("error") or {}).get("Error") == "LockLost":
        return {
            "undone": [],
            "problems": [
                f"this run lost its lock on group {group_name} to another run, so nothing was rolled back that "
                f"could interfere with it; remove {created} by hand once nothing uses them"
            ],
        }
    # The refresh this run started, or (if its start's answer was lost) the one it was about to start.
    refresh = state.get("refresh")
    spec = (state.get("guard") or {}).get("refresh_spec")
    if not refresh and spec and published and published.get("kind") == "launch_template":
        refresh = {**spec, "target_version": published["version"]}
    if refresh:
        try:
            refresh_id = refresh.get("refresh_id") or getattr(
                asg_refresh.running_refresh_of({**refresh, "group": group_name}, aws.refresh),
                "refresh_id",
                None,
            )
            status = asg_refresh.current_status(group_name, refresh_id, aws.refresh) if refresh_id else None
            if status == asg_refresh.SUCCESSFUL:
                # AWS, not the run's last reading, decides: the instances already run the new image, and
                # removing it now would do harm, not undo anything.
                return {
                    "undone": undone,
                    "problems": [
                        f"instance refresh {refresh_id} had already succeeded, so group {group_name} keeps the "
                        "new image; finish the failed step by hand"
                    ],
                }
            settled = asg_refresh.settle(
                group_name, {**refresh, "refresh_id": refresh_id} if refresh_id else refresh, aws.refresh
            )
            if settled:
                undone.append(settled)
            status = asg_refresh.current_status(group_name, refresh_id, aws.refresh) if refresh_id else None
            if status in asg_refresh.ACTIVE:
                # AWS is putting the instances back: wait for it (the state machine calls again), then clean up.
                return {"undone": undone, "problems": [], "refresh_rolling_back": True}
            still_running = _instances_running(group_name, (state.get("image") or {}).get("image_id"), aws)
        except OpsflowError as error:
            return {
                "undone": undone,
                "problems": [f"could not check the instance refresh ({error}); {created} are kept"],
            }
        if still_running:
            problems.append(
                f"instance refresh {refresh_id} ended {status} and left {still_running} instance(s) of group "
                f"{group_name} on the new image; {created} are kept"
            )
            return {"undone": undone, "problems": problems}

    def attempt(description: str, action: Any) -> None:
        try:
            if action() is not False:
                undone.append(description)
        except (OpsflowError, KeyError) as error:
            problems.append(f"{description}: {error}")

    if source and published:
        attempt(
            f"pointed group {request['asg_name']} back at its previous configuration",
            lambda: _restore_group(request["asg_name"], source, published, aws),
        )
    if published and published["kind"] == "launch_template":
        attempt(
            f"deleted launch template {published['template_id']} version {published['version']}",
            lambda: aws.ec2.delete_launch_template_version(published["template_id"], published["version"]),
        )
    if published and published["kind"] == "launch_configuration":
        attempt(
            f"deleted launch configuration {published['name']}",
            lambda: aws.autoscaling.delete_launch_configuration(published["name"]),
        )
    image_ids, snapshot_ids = _created_by_run(run_id, state, aws)
    for image_id in image_ids:
        attempt(
            f"deregistered image {image_id}", lambda image_id=image_id: aws.ec2.deregister_image(image_id)
        )
    for snapshot_id in snapshot_ids:
        attempt(
            f"deleted snapshot {snapshot_id}",
            lambda snapshot_id=snapshot_id: aws.ec2.delete_snapshot(snapshot_id),
        )
    return {"undone": undone, "problems": problems}


def _describe_created(state: dict[str, Any]) -> str:
    published = state.get("publish") or {}
    image = (state.get("image") or {}).get("image_id", "the image")
    if published.get("kind") == "launch_template":
        return f"image {image} and launch template {published['template_id']} version {published['version']}"
    if published.get("kind") == "launch_configuration":
        return f"image {image} and launch configuration {published['name']}"
    return f"image {image}"


def _instances_running(group_name: str, image_id: str | None, aws: BakeAws) -> int:
    if not image_id:
        return 0
    group = aws.autoscaling.describe_group(group_name)
    return sum(1 for image in aws.ec2.instance_images(group.instance_ids).values() if image == image_id)


def _restore_group(group_name: str, source: dict[str, Any], published: dict[str, Any], aws: BakeAws) -> bool:
    """Put the group back only if it still points at what this run published (never undo someone else's change)."""
    group = aws.autoscaling.describe_group(group_name)
    if published["kind"] == "launch_template":
        current = group.launch_template
        if (
            not current
            or current.template_id != published["template_id"]
            or current.version != str(published["version"])
        ):
            return False
        aws.autoscaling.use_launch_template(group_name, source["template_id"], source["version_ref"])
        return True
    if group.launch_configuration_name != published["name"]:
        return False
    aws.autoscaling.use_launch_configuration(group_name, source["name"])
    return True


def _created_by_run(run_id: str, state: dict[str, Any], aws: BakeAws) -> tuple[list[str], list[str]]:
    """Every image and snapshot this run created, found by its run-id tag as well as from the state,
    so that an image whose CreateImage response was lost is still cleaned up."""
    image_ids: set[str] = set()
    snapshot_ids: set[str] = set(aws.ec2.find_snapshot_ids({RUN_ID: run_id}))
    known = (state.get("image") or {}).get("image_id")
    if known:
        image_ids.add(known)
        with contextlib.suppress(NotFound):
            snapshot_ids.update(aws.ec2.describe_image(known).snapshot_ids)
    for image in aws.ec2.find_images({RUN_ID: run_id}):
        image_ids.add(image.image_id)
        snapshot_ids.update(image.snapshot_ids)
    return sorted(image_ids), sorted(snapshot_ids)


# Step table -------------------------------------------------------------------------------------


def describe_source(source: dict[str, Any] | None) -> str:
    if not source:
        return "unknown"
    if source["kind"] == "launch_template":
        version = source.get("version_ref") or source["version"]
        return f"launch template {source['template_id']} version {version}"
    return f"launch configuration {source['name']}"


def result_of(state: dict[str, Any]) -> dict[str, Any]:
    image = state.get("image") or {}
    published = state.get("publish") or {}
    source = (state.get("guard") or {}).get("source")
    warnings = []
    if state.get("prune_error"):
        warnings.append(f"pruning old images failed: {describe_failure(state['prune_error'])}")
    group = state["request"]["asg_name"]
    after = describe_source({**published, "version_ref": published.get("version")}) if published else None
    summary = f"Baked {image.get('image_id')} for {group}" + (
        f"; the group now uses {after}" if after else ""
    )
    if state.get("refresh"):
        summary += ", rolled out to every instance by an instance refresh"
    return {
        "summary": summary + ".",
        "image_id": image.get("image_id"),
        "image_name": image.get("name"),
        "snapshots": image.get("snapshots", []),
        "published": published,
        "group": {"name": group, "before": describe_source(source), "after": after},
        "pruned": state.get("prune"),
        "refresh": asg_refresh.result_of(state["refresh"]) if state.get("refresh") else None,
        "warnings": warnings,
    }


def error_of(state: dict[str, Any]) -> dict[str, Any]:
    rollback_result = state.get("rollback") or {}
    if state.get("rollback_error"):
        rollback_result = {"problems": [describe_failure(state["rollback_error"])], "undone": []}
    return {
        "step": state.get("failed_step", "unknown"),
        "error": (state.get("error") or {}).get("Error", "Error"),
        "message": describe_failure(state.get("error")),
        "rollback": rollback_result,
        "group_unchanged": not rollback_result.get("problems"),
    }


def step_table(aws: BakeAws, opt_in: OptIn) -> dict[str, Any]:
    """The steps of the state machine, each taking the execution state and returning its result."""

    def request_of(state: dict[str, Any]) -> AmiBakeRequest:
        return AmiBakeRequest.model_validate(state["request"], strict=False)

    def guard(state: dict[str, Any]) -> dict[str, Any]:
        plan = preflight(request_of(state), aws, opt_in)
        return {
            "source": plan["source"],
            "refresh_spec": plan["refresh_spec"],
            "summary": f"group uses {describe_source(plan['source'])}",
        }

    def create(state: dict[str, Any]) -> dict[str, Any]:
        image = create_image(request_of(state), state["run_id"], state.get("requester", "unknown"), aws)
        return {**image, "summary": f"creating image {image['image_id']} ({image['name']})"}

    def check(state: dict[str, Any]) -> dict[str, Any]:
        max_wait = int((state.get("settings") or {}).get("image_max_wait_seconds", 7200))
        image = check_image(state["image"], max_wait, aws)
        waiting = image["state"] != "available"
        summary = f"image {image['image_id']} is {image['state']}"
        if not waiting:
            summary += f" with {len(image['snapshots'])} snapshot(s)"
        return {**image, "waiting": waiting, "summary": summary}

    def publish_step(state: dict[str, Any]) -> dict[str, Any]:
        request = request_of(state)
        published = publish(
            state["guard"]["source"], state["image"]["image_id"], state["run_id"], request.asg_name, aws
        )
        return {
            **published,
            "summary": f"published {describe_source({**published, 'version_ref': published.get('version')})}",
        }

    def point(state: dict[str, Any]) -> dict[str, Any]:
        result = point_group(request_of(state).asg_name, state["publish"], aws)
        return {**result, "summary": f"group {result['group']} now uses the new image"}

    def start_refresh(state: dict[str, Any]) -> dict[str, Any]:
        spec = {**state["guard"]["refresh_spec"], "target_version": state["publish"]["version"]}
        refresh = asg_refresh.start(spec, aws.refresh)
        return {
            **refresh,
            "summary": f"started instance refresh {refresh['refresh_id']} onto version "
            f"{spec['target_version']}",
        }

    def prune_step(state: dict[str, Any]) -> dict[str, Any]:
        request = request_of(state)
        result = prune(request.asg_name, request.keep_images, state["image"]["image_id"], aws)
        return {**result, "summary": f"deregistered {len(result['deregistered'])} old image(s)"}

    def rollback_step(state: dict[str, Any]) -> dict[str, Any]:
        result = rollback(state, aws)
        if result.get("refresh_rolling_back"):
            return {**result, "waiting": True, "summary": "waiting for AWS to roll the instance refresh back"}
        summary = f"undid {len(result['undone'])} change(s)"
        if result["problems"]:
            summary += f"; {len(result['problems'])} could not be undone"
        return {**result, "summary": summary}

    return {
        "guard": guard,
        "create_image": create,
        "check_image": check,
        "publish": publish_step,
        "point_group": point,
        "start_refresh": start_refresh,
        **asg_refresh.watch_steps(aws.refresh),
        "prune": prune_step,
        "rollback": rollback_step,
    }


def build_runner(config: StepsConfig) -> StepRunner:
    aws = BakeAws.from_default_clients(config.event_bus)
    return steps_runner(config, step_table(aws, config.opt_in), result_of, error_of)
