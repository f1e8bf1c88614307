"""AMI bake's steps (`statemachines/ami_bake.asl.json`): ordering, waiting and the rollback path belong to
the state machine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsflow.aws.target import Target
from opsflow.errors import NotFound
from opsflow.runs.config import OptIn, StepsConfig
from opsflow.runs.steps import Step, StepResult, StepRunner, StepTable, acted_on, steps_runner
from opsflow.waits.awaiting import Await, reconcile_seconds
from opsflow.workflows.ami_bake import builder, distribute, image, preflight, prune, publish, rollback
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.results import run_error, run_result
from opsflow.workflows.ami_bake.state import (
    BakedImage,
    BakeGuarded,
    BakeRollback,
    BakeState,
    BuilderState,
    CommandState,
    Distributed,
    GroupPointed,
    Pruned,
    PublishedConfiguration,
    PublishedVersion,
    RegionCopy,
)
from opsflow.workflows.asg_refresh import refresh
from opsflow.workflows.asg_refresh.refresh import InstanceRefreshProgress


def step_table(aws: BakeAws, opt_in: OptIn) -> dict[str, Step | Await]:
    def guard(state: BakeState) -> BakeGuarded:
        return preflight.guard(state.request, aws, opt_in)[2]

    def create_image(state: BakeState) -> BakedImage:
        return image.create_image(
            state.request, state.source_instance, state.run_id, state.requester or "unknown", aws
        )

    def check_image(state: BakeState) -> BakedImage:
        return image.check_image(state.baked, state.settings.get("image_max_wait_seconds", 7200), aws)

    # Ended by the image's EC2 AMI State Change event, or by a look after the reconcile interval.
    def image_settled(state: BakeState) -> bool:
        try:
            return aws.ec2.describe_image(state.baked.image_id).state != "pending"
        except NotFound:  # DescribeImages is eventually consistent just after CreateImage
            return False

    await_image = Await(
        awaited=lambda state: [Target.from_key(state.target).beside("image", state.baked.image_id)],
        ready=image_settled,
    )

    def copy_images(state: BakeState) -> Distributed:
        limit = int(state.settings.get("copy_max_wait_seconds", distribute.DEFAULT_COPY_MAX_WAIT_SECONDS))
        return distribute.copy_images(state, aws, limit)

    # Ended by a copy's EC2 AMI State Change event (the spoke stack forwards it from its region), or a look
    # after the reconcile interval (a copy the quota queued has no event to send).
    def pending_copies(state: BakeState) -> list[RegionCopy]:
        copies = state.distribution.copies if state.distribution else []
        return [c for c in copies if c.state == "pending" and c.image_id]

    def copy_settled(state: BakeState) -> bool:
        for copy in pending_copies(state):
            try:
                if aws.ec2_in(aws.account, copy.region).describe_image(str(copy.image_id)).state != "pending":
                    return True
            except NotFound:
                continue
        return False

    await_copies = Await(
        awaited=lambda state: [
            Target("image", str(c.image_id), Target.from_key(state.target).account, c.region)
            for c in pending_copies(state)
        ],
        ready=copy_settled,
    )

    def share_images(state: BakeState) -> Distributed:
        return distribute.share(state, aws)

    def publish_templates(state: BakeState) -> Distributed:
        return distribute.publish_templates(state, aws, opt_in)

    def publish_image(state: BakeState) -> PublishedVersion | PublishedConfiguration:
        return publish.publish(
            state.guarded.source, state.baked.image_id, state.run_id, state.request.asg_name, aws
        )

    def point_group(state: BakeState) -> GroupPointed:
        return publish.point_group(state.request.asg_name, state.published, aws)

    def start_refresh(state: BakeState) -> InstanceRefreshProgress:
        published = state.published
        spec = state.guarded.refresh_spec
        if spec is None or not isinstance(published, PublishedVersion):
            raise ValueError(
                "an instance refresh needs a refresh spec and a published launch template version"
            )
        started = refresh.start(spec.onto(published.version), aws.refresh)
        started.summary += f" onto version {published.version}"
        return started

    def prune_images(state: BakeState) -> Pruned:
        return prune.prune(state.request.asg_name, state.request.keep_images, state.baked.image_id, aws)

    def roll_back(state: BakeState) -> BakeRollback:
        return rollback.rollback(state, aws)

    def launch_builder(state: BakeState) -> BuilderState:
        return builder.launch(state, aws, opt_in)

    def check_builder(state: BakeState) -> BuilderState:
        return builder.check(state, aws)

    def run_command(state: BakeState) -> CommandState:
        return builder.run(state, aws)

    def check_command(state: BakeState) -> CommandState:
        return builder.check_command(state, aws, reconcile_seconds(state.settings))

    # Ended by the command's EC2 Command Invocation Status-change Notification, or a look after the
    # reconcile interval.
    await_command = Await(
        awaited=lambda state: [
            Target.from_key(state.target).beside(
                "command", f"{state.command.command_id}/{state.command.instance_id}"
            )
        ],
        ready=lambda state: builder.command_ended(state, aws),
    )

    def terminate_builder(state: BakeState) -> StepResult:
        return builder.terminate(state, aws)

    return {
        "guard": guard,
        "launch_builder": launch_builder,
        "check_builder": check_builder,
        "run_command": run_command,
        "await_command": await_command,
        "check_command": check_command,
        "terminate_builder": terminate_builder,
        "create_image": create_image,
        "await_image": await_image,
        "check_image": check_image,
        "copy_images": copy_images,
        "await_copies": await_copies,
        "share_images": share_images,
        "publish_templates": publish_templates,
        "publish": publish_image,
        "point_group": point_group,
        "start_refresh": start_refresh,
        **refresh.watch_steps(aws.refresh),
        "await_refresh_rollback": refresh.await_rollback(lambda state: state.request.asg_name, aws.refresh),
        "prune": prune_images,
        "rollback": roll_back,
    }


def build_runner(config: StepsConfig) -> StepRunner:
    def table(state: Mapping[str, Any]) -> StepTable:
        return step_table(BakeAws.at(acted_on(state), config.event_bus), config.opt_in)

    return steps_runner(config, table, run_result, run_error, state_model=BakeState)
