"""Publishing the image to the group: a new launch template version or a copied launch configuration,
then pointing the group at it."""

from __future__ import annotations

from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.state import (
    GroupPointed,
    LaunchConfigurationSource,
    LaunchTemplateSource,
    PublishedConfiguration,
    PublishedVersion,
)


def publish(
    source: LaunchTemplateSource | LaunchConfigurationSource,
    image_id: str,
    run_id: str,
    group_name: str,
    aws: BakeAws,
) -> PublishedVersion | PublishedConfiguration:
    published: PublishedVersion | PublishedConfiguration
    if isinstance(source, LaunchTemplateSource):
        version = aws.ec2.create_launch_template_version(
            template_id=source.template_id,
            source=aws.ec2.launch_template_version(source.template_id, str(source.version)),
            image_id=image_id,
            image_devices={m["DeviceName"] for m in aws.ec2.describe_image(image_id).block_device_mappings},
            description=f"Opsflow run {run_id}: image {image_id}",
        )
        published = PublishedVersion(template_id=source.template_id, version=version)
    else:
        name = launch_configuration_name(group_name, image_id)
        aws.autoscaling.copy_launch_configuration(
            aws.autoscaling.launch_configuration(source.name), new_name=name, image_id=image_id
        )
        published = PublishedConfiguration(name=name)
    published.summary = f"published {published.describe()}"
    return published


def launch_configuration_name(group_name: str, image_id: str) -> str:
    return f"{group_name}-{image_id}"[:255]


def point_group(
    group_name: str, published: PublishedVersion | PublishedConfiguration, aws: BakeAws
) -> GroupPointed:
    if isinstance(published, PublishedVersion):
        aws.autoscaling.use_launch_template(group_name, published.template_id, str(published.version))
    else:
        aws.autoscaling.use_launch_configuration(group_name, published.name)
    return GroupPointed(
        group=group_name, now_uses=published, summary=f"group {group_name} now uses the new image"
    )
