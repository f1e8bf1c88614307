"""Baking on a builder: a temporary instance launched like the group's, given new code by an SSM Run
Command, imaged, and terminated on every path (its image taken, a failed step's rollback, an abort)."""

from __future__ import annotations

from typing import Any

from opsflow.aws import clients
from opsflow.aws.autoscaling import Group
from opsflow.aws.ssm import SHELL_DOCUMENT
from opsflow.aws.target import Target
from opsflow.errors import NotFound, OpsflowError, Refused
from opsflow.runs.config import OptIn
from opsflow.runs.steps import StepResult
from opsflow.store.runs import Run
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.image import CREATED_BY, GROUP, RUN_ID
from opsflow.workflows.ami_bake.request import Builder
from opsflow.workflows.ami_bake.state import (
    BakeState,
    BuilderPlan,
    BuilderState,
    CommandState,
    LaunchConfigurationSource,
    LaunchTemplateSource,
)

# Marks an instance a bake launched as its builder, with the group it bakes for.
BUILDER = "opsflow:builder"
# How often the state machine looks at a builder registering with Systems Manager (no event says it has).
BUILDER_POLL_SECONDS = 15
BUILDER_MAX_WAIT_SECONDS = 900
# How much of a failed command's output the error quotes: its last lines, as a person reading a build log.
OUTPUT_TAIL_LINES = 20
OUTPUT_TAIL_CHARACTERS = 2000


class BuilderFailed(OpsflowError):
    code = "BuilderFailed"


class BuildCommandFailed(OpsflowError):
    code = "BuildCommandFailed"


def plan_builder(
    builder: Builder,
    group: Group,
    source: LaunchTemplateSource | LaunchConfigurationSource,
    aws: BakeAws,
) -> BuilderPlan:
    """The builder as the group's instances launch, with what the request overrides; refuses one that
    could not run the commands."""
    if isinstance(source, LaunchTemplateSource):
        data = aws.ec2.launch_template_version(source.template_id, str(source.version)).data
        profile_data = data.get("IamInstanceProfile") or {}
        template_profile = profile_data.get("Arn") or profile_data.get("Name")
        template_type = data.get("InstanceType")
        groups = list(data.get("SecurityGroupIds") or [])
    else:
        configuration = aws.autoscaling.launch_configuration(source.name)
        template_profile = configuration.get("IamInstanceProfile")
        template_type = configuration.get("InstanceType")
        groups = list(configuration.get("SecurityGroups") or [])
    image_id = builder.image_id or source.image_id
    if not image_id:
        raise Refused(
            f"builder.image_id: {source.describe()} names no image to launch the builder from; give one"
        )
    try:
        aws.ec2.describe_image(image_id)
    except NotFound as error:
        raise Refused(
            f"builder.image_id: image {image_id} does not exist in this account and region"
        ) from error
    instance_type = builder.instance_type or template_type
    if not instance_type:
        raise Refused(f"builder.instance_type: {source.describe()} names no instance type; give one")
    profile = builder.instance_profile or template_profile
    if not profile:
        raise Refused(
            f"builder.instance_profile: {source.describe()} has no instance profile; give one whose role lets "
            "Systems Manager manage the builder (the AmazonSSMManagedInstanceCore policy)"
        )
    if builder.document:
        document, parameters = builder.document, dict(builder.parameters)
    else:
        document = SHELL_DOCUMENT
        parameters = {
            "commands": list(builder.commands or []),
            "executionTimeout": [str(builder.timeout_seconds)],
        }
    return BuilderPlan(
        image_id=image_id,
        instance_type=instance_type,
        subnet_id=builder.subnet_id or (group.subnet_ids[0] if group.subnet_ids else None),
        security_group_ids=groups,
        instance_profile=profile,
        document=document,
        parameters=parameters,
        timeout_seconds=builder.timeout_seconds,
    )


def launch(state: BakeState, aws: BakeAws, opt_in: OptIn) -> BuilderState:
    plan = _plan(state)
    group = state.request.asg_name
    instance_id = aws.ec2.run_builder(
        image_id=plan.image_id,
        instance_type=plan.instance_type,
        subnet_id=plan.subnet_id,
        security_group_ids=plan.security_group_ids,
        instance_profile=plan.instance_profile,
        tags={
            "Name": f"opsflow-builder-{group}",
            BUILDER: group,
            RUN_ID: state.run_id,
            CREATED_BY: "opsflow",
            GROUP: group,
            # The bake images only opted-in instances; the builder is one of Opsflow's own.
            opt_in.key: opt_in.value,
        },
        # A retry of this step returns the builder the first attempt launched.
        client_token=state.run_id[-64:],
    )
    return BuilderState(
        instance_id=instance_id,
        summary=f"launched builder {instance_id} ({plan.instance_type}) from {plan.image_id}",
    )


def check(state: BakeState, aws: BakeAws) -> BuilderState:
    builder = state.builder
    if builder is None:
        raise ValueError("the launch_builder step has not run")
    # Launched, then looked at every BUILDER_POLL_SECONDS: the first look comes right after the launch.
    waited = builder.waited + (BUILDER_POLL_SECONDS if builder.checks else 0)
    instance = aws.ec2.describe_instance(builder.instance_id)
    if instance.state not in ("pending", "running"):
        raise BuilderFailed(f"builder {builder.instance_id} is {instance.state}: it cannot run the build")
    ping = aws.ssm.ping_status(builder.instance_id) if instance.state == "running" else None
    ready = ping == "Online"
    if not ready and waited >= BUILDER_MAX_WAIT_SECONDS:
        raise BuilderFailed(
            f"builder {builder.instance_id} did not register with Systems Manager in {waited} s: check that its "
            "instance profile's role has AmazonSSMManagedInstanceCore and that it reaches the SSM endpoints"
        )
    return builder.model_copy(
        update={
            "ready": ready,
            "waited": waited,
            "checks": builder.checks + 1,
            "summary": f"builder {builder.instance_id} is {instance.state}"
            + (", online with Systems Manager" if ready else ", not yet a managed node"),
        }
    )


def run(state: BakeState, aws: BakeAws) -> CommandState:
    plan = _plan(state)
    instance_id = state.source_instance
    command_id = aws.ssm.send(instance_id, plan.document, plan.parameters, f"Opsflow run {state.run_id}")
    return CommandState(
        command_id=command_id,
        instance_id=instance_id,
        summary=f"sent {plan.document} as command {command_id}",
    )


def command_ended(state: BakeState, aws: BakeAws) -> bool:
    command = state.command
    if command is None:
        return True
    try:
        return aws.ssm.invocation(command.command_id, command.instance_id).ended
    except NotFound:
        return False


def check_command(state: BakeState, aws: BakeAws, reconcile_seconds: int) -> CommandState:
    command = state.command
    if command is None:
        raise ValueError("the run_command step has not run")
    waited = command.waited + (reconcile_seconds if state.woken_by_timeout else 0)
    try:
        invocation = aws.ssm.invocation(command.command_id, command.instance_id)
    except NotFound:
        return command.model_copy(
            update={"waited": waited, "waiting": True, "summary": "command not delivered yet"}
        )
    if invocation.status == "Success":
        return command.model_copy(
            update={
                "status": "Success",
                "done": True,
                "waited": waited,
                "summary": f"command {command.command_id} succeeded",
            }
        )
    if invocation.ended:
        said = tail(invocation.stderr) or tail(invocation.stdout) or "no output"
        code = f" with exit code {invocation.exit_code}" if invocation.exit_code >= 0 else ""
        raise BuildCommandFailed(
            f"the build on {command.instance_id} ended {invocation.details or invocation.status}{code} "
            f"(command {command.command_id}); its output ends: {said}"
        )
    if waited > _plan(state).timeout_seconds + 600:
        raise BuildCommandFailed(
            f"command {command.command_id} was still {invocation.status} after {waited} s"
        )
    return command.model_copy(
        update={
            "status": invocation.status,
            "waited": waited,
            "waiting": True,
            "summary": f"command {invocation.status}",
        }
    )


def tail(output: str) -> str:
    lines = output.rstrip().splitlines()[-OUTPUT_TAIL_LINES:]
    return "\n".join(lines)[-OUTPUT_TAIL_CHARACTERS:]


def terminate(state: BakeState, aws: BakeAws) -> StepResult:
    gone = terminate_builders(state.run_id, state.request.asg_name, aws)
    return StepResult(summary=f"terminated builder {', '.join(gone)}" if gone else "no builder to terminate")


def terminate_builders(run_id: str, group: str, aws: BakeAws) -> list[str]:
    """Every builder this run launched, found by its tags (so one whose launch answer was lost too)."""
    found = [i.instance_id for i in aws.ec2.find_instances({RUN_ID: run_id, BUILDER: group})]
    aws.ec2.terminate_instances(found)
    return found


def _plan(state: BakeState) -> BuilderPlan:
    plan = state.guarded.builder
    if plan is None:
        raise ValueError("the bake has no builder")
    return plan


def put_back_run(run: Run) -> dict[str, Any] | None:
    """For a bake whose execution ended without its rollback (aborted, timed out): its builder must not
    run on, billed and unwatched."""
    if not (run.request or {}).get("builder"):
        return None
    group = str(run.request["asg_name"])
    with clients.acting_for(run.run_id):
        gone = terminate_builders(run.run_id, group, BakeAws.at(Target.from_key(run.target)))
    summary = f"terminated builder {', '.join(gone)}" if gone else "no builder was running"
    return {"undone": [f"terminated builder {i}" for i in gone], "problems": [], "summary": summary}
