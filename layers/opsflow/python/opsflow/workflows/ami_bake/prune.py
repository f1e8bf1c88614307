"""Pruning: the images a bake made for the group beyond the newest few, unless something still uses them."""

from __future__ import annotations

from opsflow.errors import NotFound
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.image import CREATED_BY, GROUP
from opsflow.workflows.ami_bake.state import DeregisteredImage, Pruned


def prune(group_name: str, keep: int, new_image_id: str, aws: BakeAws) -> Pruned:
    """Deregister images this app baked for the group beyond the newest `keep`, unless something uses them."""
    baked = aws.ec2.find_images({CREATED_BY: "opsflow", GROUP: group_name})
    baked.sort(key=lambda image: image.creation_date, reverse=True)
    newest_first = [new_image_id] + [image.image_id for image in baked if image.image_id != new_image_id]
    keep_ids = set(newest_first[:keep])
    in_use = images_in_use(aws)
    deregistered: list[DeregisteredImage] = []
    kept_in_use: list[str] = []
    for image in baked:
        if image.image_id in keep_ids:
            continue
        if image.image_id in in_use:
            kept_in_use.append(image.image_id)
            continue
        aws.ec2.deregister_image(image.image_id)
        for snapshot_id in image.snapshot_ids:
            aws.ec2.delete_snapshot(snapshot_id)
        deregistered.append(DeregisteredImage(image_id=image.image_id, snapshots=image.snapshot_ids))
    return Pruned(
        kept=sorted(keep_ids),
        kept_in_use=kept_in_use,
        deregistered=deregistered,
        summary=f"deregistered {len(deregistered)} old image(s)",
    )


def images_in_use(aws: BakeAws) -> dict[str, str]:
    """Image id -> what uses it, for every image referenced by a launch configuration, by a launch template
    version a group uses (with each such template's default and latest versions, which a group can switch
    to at any time), or by an instance that is not terminated, in the account and region."""
    in_use: dict[str, str] = {}
    for configuration in aws.autoscaling.all_launch_configurations():
        if configuration.get("ImageId"):
            in_use.setdefault(
                configuration["ImageId"],
                f"launch configuration {configuration.get('LaunchConfigurationName')}",
            )
    seen: set[tuple[str, str]] = set()
    for group in aws.autoscaling.all_groups():
        if not group.launch_template:
            continue
        for version in (group.launch_template.version, "$Default", "$Latest"):
            key = (group.launch_template.template_id, version)
            if key in seen:
                continue
            seen.add(key)
            try:
                found = aws.ec2.launch_template_version(*key)
            except NotFound:
                continue
            if found.image_id:
                in_use.setdefault(
                    found.image_id,
                    f"launch template {found.template_id} version {found.version}, which group {group.name} "
                    "uses or can switch to",
                )
    for image_id, instances in aws.ec2.images_of_instances().items():
        shown = ", ".join(instances[:3]) + (f" and {len(instances) - 3} more" if len(instances) > 3 else "")
        in_use.setdefault(image_id, f"instance(s) {shown}")
    return in_use
