"""What an AMI bake would do, read without changing anything; refuses an instance or group it must not touch."""

from __future__ import annotations

from typing import Any

from opsflow.aws.autoscaling import Group
from opsflow.aws.ec2 import Instance
from opsflow.errors import NotOptedIn, Refused
from opsflow.runs.config import OptIn, StarterConfig
from opsflow.workflows.ami_bake import distribute
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.builder import plan_builder
from opsflow.workflows.ami_bake.request import AmiBakeRequest
from opsflow.workflows.ami_bake.state import BakeGuarded, LaunchConfigurationSource, LaunchTemplateSource
from opsflow.workflows.asg_refresh.refresh import ensure_no_refresh_running, refresh_spec


def guard(request: AmiBakeRequest, aws: BakeAws, opt_in: OptIn) -> tuple[Instance | None, Group, BakeGuarded]:
    """The instance (None for a builder bake), the group, and where the group launches from (with the
    refresh to start and the builder to launch, if asked for), once both are opted in and the bake can work."""
    instance = checked_instance(request.instance_id, aws, opt_in) if request.instance_id else None
    group = aws.autoscaling.describe_group(request.asg_name)
    if not opt_in.allows(group.tags):
        raise NotOptedIn(
            f"Auto Scaling group {request.asg_name} does not carry the tag {opt_in.describe()}, so Opsflow "
            "will not change it. Tag the group to opt it in."
        )
    source = publish_source(group, aws)
    if isinstance(source, LaunchTemplateSource) and not request.refresh:
        # A refresh someone else runs would put its own configuration on the group when it succeeds,
        # silently undoing what this bake publishes.
        ensure_no_refresh_running(group.name, aws.refresh)
    spec = refresh_spec(group, request.refresh, aws.refresh, target_version=None) if request.refresh else None
    builder = plan_builder(request.builder, group, source, aws) if request.builder else None
    if request.distribute:
        distribute.check(request.distribute, aws, opt_in)
    guarded = BakeGuarded(
        source=source, refresh_spec=spec, builder=builder, summary=f"group uses {source.describe()}"
    )
    return instance, group, guarded


def checked_instance(instance_id: str, aws: BakeAws, opt_in: OptIn) -> Instance:
    instance = aws.ec2.describe_instance(instance_id)
    if not opt_in.allows(instance.tags):
        raise NotOptedIn(
            f"instance {instance_id} does not carry the tag {opt_in.describe()}, so Opsflow will not "
            "image it. Tag the instance to opt it in."
        )
    if instance.state not in ("running", "stopped"):
        raise Refused(f"instance {instance_id} is {instance.state}; it must be running or stopped")
    return instance


def preflight(request: AmiBakeRequest, aws: BakeAws, opt_in: OptIn) -> dict[str, Any]:
    """Check that the bake is allowed and can work; return the plan. Changes nothing."""
    instance, group, guarded = guard(request, aws, opt_in)
    return {
        "instance": {
            "instance_id": instance.instance_id,
            "state": instance.state,
            "devices": instance.devices,
        }
        if instance
        else None,
        "builder": guarded.builder.model_dump(mode="json") if guarded.builder else None,
        "group": {"name": group.name, "desired_capacity": group.desired_capacity},
        "source": guarded.source.model_dump(mode="json"),
        "refresh_spec": guarded.refresh_spec.model_dump(mode="json") if guarded.refresh_spec else None,
        "actions": plan_actions(request, instance.devices if instance else [], guarded),
    }


def publish_source(group: Group, aws: BakeAws) -> LaunchTemplateSource | LaunchConfigurationSource:
    if group.uses_mixed_instances_policy:
        raise Refused(
            f"Auto Scaling group {group.name} uses a mixed instances policy; Opsflow publishes only to groups "
            "with a plain launch template or launch configuration"
        )
    if group.launch_template:
        ref = group.launch_template
        version = aws.ec2.launch_template_version(ref.template_id, ref.version)
        return LaunchTemplateSource(
            template_id=version.template_id,
            template_name=version.template_name,
            version_ref=ref.version,
            version=version.version,
            image_id=version.image_id,
        )
    if group.launch_configuration_name:
        configuration = aws.autoscaling.launch_configuration(group.launch_configuration_name)
        return LaunchConfigurationSource(
            name=group.launch_configuration_name, image_id=configuration.get("ImageId")
        )
    raise Refused(f"Auto Scaling group {group.name} has neither a launch template nor a launch configuration")


def plan_actions(request: AmiBakeRequest, devices: list[str], guarded: BakeGuarded) -> list[str]:
    source, refresh_spec, builder = guarded.source, guarded.refresh_spec, guarded.builder
    reboot = "without rebooting it" if request.no_reboot else "rebooting it for a consistent file system"
    if builder:
        where = f" in {builder.subnet_id}" if builder.subnet_id else ""
        run = (
            f"{len(builder.parameters.get('commands', []))} shell command(s)"
            if builder.document == "AWS-RunShellScript"
            else f"document {builder.document}"
        )
        first = [
            f"Launch a builder from {builder.image_id} ({builder.instance_type}, instance profile "
            f"{builder.instance_profile}){where}, and wait until Systems Manager manages it",
            f"Run {run} on it with SSM Run Command (at most {builder.timeout_seconds} s); a failure ends the bake",
            f"Create an image of the builder, {reboot}",
        ]
    else:
        first = [
            f"Create an image of {request.instance_id} ({len(devices)} volume(s): {', '.join(devices) or 'none'}), "
            f"{reboot}"
        ]
    actions = [
        *first,
        "Tag the image and each snapshot with the run id, source instance, group and requester",
        "Wait until the image is available",
        *(["Terminate the builder (on every path: success, failure and abort)"] if builder else []),
        *(distribute.actions(request.distribute, request.account) if request.distribute else []),
    ]
    if isinstance(source, LaunchTemplateSource):
        actions.append(
            f"Create a version of launch template {source.template_name or source.template_id} copied from "
            f"version {source.version}, changing only the image"
        )
        if refresh_spec:
            actions += refresh_spec.actions(target="<new>")
        else:
            actions.append(f"Point group {request.asg_name} at the new version (now: {source.version_ref})")
    else:
        actions += [
            f"Create a launch configuration copied from {source.name}, changing only the image",
            f"Point group {request.asg_name} at the new launch configuration (now: {source.name})",
        ]
    actions.append(
        f"Keep the {request.keep_images} newest images baked for {request.asg_name}; deregister older ones "
        "that nothing in use references, with their snapshots"
    )
    return actions


def preflight_run(request: AmiBakeRequest, config: StarterConfig) -> dict[str, Any]:
    """The pre-flight the starter runs, with the AWS it reads."""
    return preflight(request, BakeAws.at(request.target()), config.opt_in)
