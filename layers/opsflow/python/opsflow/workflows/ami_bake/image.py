"""Baking the image: its name and tags, CreateImage, and the checks until it is available."""

from __future__ import annotations

from datetime import UTC, datetime

from opsflow.aws.ec2 import Image
from opsflow.errors import ImageFailed, ImageTimeout
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.request import AmiBakeRequest
from opsflow.workflows.ami_bake.state import BakedImage, DeviceSnapshot

# The tags a bake puts on its image and snapshots: prune finds the group's images by them, and rollback
# finds what a run created even when CreateImage's answer was lost.
CREATED_BY = "opsflow:created-by"
RUN_ID = "opsflow:run-id"
GROUP = "opsflow:asg"
SOURCE_INSTANCE = "opsflow:source-instance"
REQUESTED_BY = "opsflow:requested-by"
DEVICE = "opsflow:device"

FAILED_IMAGE_STATES = frozenset({"failed", "invalid", "deregistered", "error", "disabled"})


def image_name(request: AmiBakeRequest, run_id: str, now: datetime, instance_id: str | None = None) -> str:
    return request.image_name.format(
        asg_name=request.asg_name,
        instance_id=instance_id or request.instance_id,
        run_id=run_id,
        timestamp=now.strftime("%Y%m%d-%H%M%S"),
    )[:128]


def bake_tags(request: AmiBakeRequest, run_id: str, requester: str, instance_id: str) -> dict[str, str]:
    return {
        **request.tags,
        CREATED_BY: "opsflow",
        RUN_ID: run_id,
        GROUP: request.asg_name,
        SOURCE_INSTANCE: instance_id,
        REQUESTED_BY: requester[:256],
    }


def create_image(
    request: AmiBakeRequest,
    instance_id: str,
    run_id: str,
    requester: str,
    aws: BakeAws,
    now: datetime | None = None,
) -> BakedImage:
    """Image `instance_id`: the instance asked for, or the run's builder."""
    created_at = now or datetime.now(UTC)
    name = image_name(request, run_id, created_at, instance_id)
    tags = bake_tags(request, run_id, requester, instance_id)
    image_id = aws.ec2.create_image(
        instance_id=instance_id,
        name=name,
        description=f"Baked by Opsflow run {run_id} from {instance_id} for {request.asg_name}"[:255],
        no_reboot=request.no_reboot,
        image_tags={**tags, "Name": name},
        snapshot_tags=tags,
    )
    return BakedImage(
        image_id=image_id,
        name=name,
        created_at=created_at.isoformat(),
        summary=f"creating image {image_id} ({name})",
    )


def check_image(
    image: BakedImage, max_wait_seconds: int, aws: BakeAws, now: datetime | None = None
) -> BakedImage:
    """Report the image's state; `available` tags each snapshot with its device. Raises when it can't succeed."""
    found = aws.ec2.describe_image(image.image_id)
    if found.state in FAILED_IMAGE_STATES:
        raise ImageFailed(
            f"image {found.image_id} ended {found.state}: {found.state_reason or 'no reason given'}"
        )
    if found.state == "available":
        snapshots = snapshots_by_device(found)
        for snapshot in snapshots:
            if snapshot.snapshot_id:
                aws.ec2.tag(
                    [snapshot.snapshot_id],
                    {DEVICE: snapshot.device, "Name": f"{found.name} {snapshot.device}"},
                )
        return image.model_copy(
            update={
                "state": found.state,
                "snapshots": snapshots,
                "summary": f"image {image.image_id} is {found.state} with {len(snapshots)} snapshot(s)",
            }
        )
    waited = ((now or datetime.now(UTC)) - datetime.fromisoformat(image.created_at)).total_seconds()
    if waited > max_wait_seconds:
        raise ImageTimeout(
            f"image {found.image_id} is still {found.state} after {int(waited)} s (limit {max_wait_seconds} s)"
        )
    return image.model_copy(
        update={"state": found.state, "waiting": True, "summary": f"image {image.image_id} is {found.state}"}
    )


def snapshots_by_device(image: Image) -> list[DeviceSnapshot]:
    return [
        DeviceSnapshot(
            device=mapping["DeviceName"],
            snapshot_id=ebs.get("SnapshotId"),
            size_gib=ebs.get("VolumeSize"),
            volume_type=ebs.get("VolumeType"),
            iops=ebs.get("Iops"),
            throughput=ebs.get("Throughput"),
            encrypted=ebs.get("Encrypted"),
            delete_on_termination=ebs.get("DeleteOnTermination"),
        )
        for mapping in image.block_device_mappings
        if (ebs := mapping.get("Ebs"))
    ]
