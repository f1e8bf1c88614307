"""Rolling a failed bake back: undo what the run created, newest first, and put the group back as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

from opsflow.errors import NotFound, OpsflowError
from opsflow.workflows.ami_bake import distribute
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.builder import terminate_builders
from opsflow.workflows.ami_bake.image import RUN_ID
from opsflow.workflows.ami_bake.state import (
    BakeRollback,
    BakeState,
    LaunchConfigurationSource,
    LaunchTemplateSource,
    PublishedConfiguration,
    PublishedVersion,
)
from opsflow.workflows.asg_refresh.refresh import SUCCESSFUL, RefreshSpec, described, refresh_of_run, settle


def rollback(state: BakeState, aws: BakeAws) -> BakeRollback:
    """Each undo is attempted even if an earlier one fails; the problems are reported, not raised,
    so the run still records a complete account of what was left behind."""
    group_name = state.request.asg_name
    published = state.publish
    # A second pass, after waiting for AWS to roll an instance refresh back, keeps the first's account.
    undone: list[str] = list(state.rollback.undone) if state.rollback else []
    problems: list[str] = []
    created = describe_created(state)
    # The run's builder serves nothing after a failure, whatever else is kept.
    try:
        undone += [f"terminated builder {i}" for i in terminate_builders(state.run_id, group_name, aws)]
    except OpsflowError as error:
        problems.append(f"terminating the builder: {error}")
    if state.error and state.error.error == "LockLost":
        return finished(
            undone,
            [
                f"this run lost its lock on group {group_name} to another run, so nothing was rolled back that "
                f"could interfere with it; remove {created} by hand once nothing uses them"
            ],
        )
    # The refresh this run started, or (if its start's answer was lost) the one it was about to start.
    refresh: RefreshSpec | None = state.refresh
    spec = state.guard.refresh_spec if state.guard else None
    if refresh is None and spec and isinstance(published, PublishedVersion):
        refresh = spec.onto(published.version)
    if refresh:
        try:
            found = refresh_of_run(refresh, aws.refresh)
            refresh_id = found.refresh_id if found else None
            if found and found.status == SUCCESSFUL:
                # AWS, not the run's last reading, decides: the instances already run the new image, and
                # removing it now would do harm, not undo anything.
                return finished(
                    undone,
                    [
                        f"instance refresh {refresh_id} had already succeeded, so group {group_name} keeps the "
                        "new image; finish the failed step by hand"
                    ],
                )
            settled = settle(refresh, aws.refresh)
            if settled:
                undone.append(settled)
            now = described(group_name, refresh_id, aws.refresh) if refresh_id else None
            if now is not None and now.active:
                # AWS is putting the instances back: wait for it (the state machine calls again), then clean up.
                return BakeRollback(
                    undone=undone,
                    refresh_rolling_back=True,
                    waiting=True,
                    summary="waiting for AWS to roll the instance refresh back",
                )
            still_running = instances_running(group_name, state.image.image_id if state.image else None, aws)
        except OpsflowError as error:
            return finished(undone, [f"could not check the instance refresh ({error}); {created} are kept"])
        if still_running:
            problems.append(
                f"instance refresh {refresh_id} ended {now.status if now else None} and left {still_running} "
                f"instance(s) of group {group_name} on the new image; {created} are kept"
            )
            return finished(undone, problems)

    def attempt(description: str, action: Callable[[], Any]) -> None:
        try:
            if action() is not False:
                undone.append(description)
        except (OpsflowError, KeyError) as error:
            problems.append(f"{description}: {error}")

    source = state.guard.source if state.guard else None
    if source and published:
        attempt(
            f"pointed group {group_name} back at its previous configuration",
            lambda: restore_group(group_name, source, published, aws),
        )
    if isinstance(published, PublishedVersion):
        attempt(
            f"deleted launch template {published.template_id} version {published.version}",
            lambda: aws.ec2.delete_launch_template_version(published.template_id, published.version),
        )
    if isinstance(published, PublishedConfiguration):
        attempt(
            f"deleted launch configuration {published.name}",
            lambda: aws.autoscaling.delete_launch_configuration(published.name),
        )
    distributed, not_undone = distribute.undo(state, aws)
    undone += distributed
    problems += not_undone
    image_ids, snapshot_ids = created_by_run(state, aws)
    for image_id in image_ids:
        attempt(f"deregistered image {image_id}", partial(aws.ec2.deregister_image, image_id))
    for snapshot_id in snapshot_ids:
        attempt(f"deleted snapshot {snapshot_id}", partial(aws.ec2.delete_snapshot, snapshot_id))
    return finished(undone, problems)


def finished(undone: list[str], problems: list[str]) -> BakeRollback:
    summary = f"undid {len(undone)} change(s)"
    if problems:
        summary += f"; {len(problems)} could not be undone"
    return BakeRollback(undone=undone, problems=problems, summary=summary)


def describe_created(state: BakeState) -> str:
    image = f"image {state.image.image_id if state.image else 'the image'}"
    return f"{image} and {state.publish.describe()}" if state.publish else image


def instances_running(group_name: str, image_id: str | None, aws: BakeAws) -> int:
    if not image_id:
        return 0
    group = aws.autoscaling.describe_group(group_name)
    return sum(1 for image in aws.ec2.instance_images(group.instance_ids).values() if image == image_id)


def restore_group(
    group_name: str,
    source: LaunchTemplateSource | LaunchConfigurationSource,
    published: PublishedVersion | PublishedConfiguration,
    aws: BakeAws,
) -> bool:
    """Put the group back only if it still points at what this run published (never undo someone else's change)."""
    group = aws.autoscaling.describe_group(group_name)
    if isinstance(published, PublishedVersion) and isinstance(source, LaunchTemplateSource):
        current = group.launch_template
        if (
            not current
            or current.template_id != published.template_id
            or current.version != str(published.version)
        ):
            return False
        aws.autoscaling.use_launch_template(group_name, source.template_id, source.version_ref)
        return True
    if isinstance(published, PublishedConfiguration) and isinstance(source, LaunchConfigurationSource):
        if group.launch_configuration_name != published.name:
            return False
        aws.autoscaling.use_launch_configuration(group_name, source.name)
        return True
    return False


def created_by_run(state: BakeState, aws: BakeAws) -> tuple[list[str], list[str]]:
    """Every image and snapshot this run created, found by its run-id tag as well as from the state,
    so that an image whose CreateImage response was lost is still cleaned up."""
    image_ids: set[str] = set()
    snapshot_ids: set[str] = set(aws.ec2.find_snapshot_ids({RUN_ID: state.run_id}))
    if state.image:
        image_ids.add(state.image.image_id)
        with contextlib.suppress(NotFound):
            snapshot_ids.update(aws.ec2.describe_image(state.image.image_id).snapshot_ids)
    for image in aws.ec2.find_images({RUN_ID: state.run_id}):
        image_ids.add(image.image_id)
        snapshot_ids.update(image.snapshot_ids)
    return sorted(image_ids), sorted(snapshot_ids)
