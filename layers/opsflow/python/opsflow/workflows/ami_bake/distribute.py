"""Distributing a baked image: copies into other regions of the group's account, launch permissions for
accounts, organizations and OUs, and a version of each named launch template that launches the copy in
its region. A failure removes what this run made everywhere, and only that (`undo`)."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime

from opsflow.errors import CopyFailed, NotFound, NotOptedIn, OpsflowError, Refused
from opsflow.runs.config import OptIn
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.image import FAILED_IMAGE_STATES, RUN_ID, bake_tags
from opsflow.workflows.ami_bake.request import Distribution, TemplateTarget
from opsflow.workflows.ami_bake.state import BakeState, Distributed, DistributedTemplate, RegionCopy

SOURCE_IMAGE = "opsflow:source-image"
SOURCE_REGION = "opsflow:source-region"
# A copy takes minutes to hours (AWS: "best-effort"); beyond this the distribution fails and is undone.
DEFAULT_COPY_MAX_WAIT_SECONDS = 6 * 3600
_FROM_VERSION = re.compile(r"\(from version (\d+)\)")


def where(account: str | None, region: str) -> str:
    return f"{account}/{region}" if account else region


# Before anything is made ---------------------------------------------------------------------------------


def check(distribution: Distribution, aws: BakeAws, opt_in: OptIn) -> None:
    """Refuse a distribution that cannot work, before the bake starts: the regions, and each launch template
    (it must exist where it is named and carry the opt-in tag, as every resource Opsflow changes does)."""
    if aws.region in distribution.regions:
        raise Refused(
            f"distribute.regions names {aws.region}, where the image is baked: give only the regions to copy "
            "it into"
        )
    reachable = {aws.region, *distribution.regions}
    for template in distribution.launch_templates:
        if template.region not in reachable:
            raise Refused(
                f"distribute.launch_templates: {template.name} is in {template.region}, which the image is not "
                f"copied into: add {template.region} to distribute.regions"
            )
        checked_template(template, aws, opt_in)


def checked_template(template: TemplateTarget, aws: BakeAws, opt_in: OptIn) -> str:
    account = template.account or aws.account
    try:
        template_id, tags = aws.ec2_in(account, template.region).launch_template_named(template.name)
    except NotFound as error:
        raise NotFound(
            f"distribute.launch_templates: launch template {template.name} does not exist in "
            f"{where(account, template.region)}"
        ) from error
    if not opt_in.allows(tags):
        raise NotOptedIn(
            f"launch template {template.name} in {where(account, template.region)} does not carry the tag "
            f"{opt_in.describe()}, so Opsflow will not publish to it. Tag the launch template to opt it in."
        )
    return template_id


def check_shareable(distribution: Distribution, encrypted: bool) -> None:
    """An encrypted copy without a key of the request's is encrypted with its region's default EBS key, the
    AWS managed aws/ebs unless the account changed it, and an image encrypted with an AWS managed key cannot
    be shared with another account."""
    if not (encrypted and distribution.shares):
        return
    missing = [region for region in distribution.regions if region not in distribution.kms_key_ids]
    if missing:
        raise Refused(
            "the image is encrypted, and its copies into "
            f"{', '.join(missing)} would be encrypted with the region's AWS managed key (aws/ebs), which "
            "cannot be shared with other accounts: give distribute.kms_key_ids a customer managed key for "
            f"{', '.join(missing)} that the accounts may use"
        )


def actions(distribution: Distribution, group_account: str | None = None) -> list[str]:
    """What a distribution does, for the plan."""
    planned: list[str] = []
    if distribution.regions:
        copies = ", ".join(
            f"{region} (encrypted with {distribution.kms_key_ids[region]})"
            if region in distribution.kms_key_ids
            else region
            for region in distribution.regions
        )
        planned.append(
            f"Copy the image into {copies}, tagged like it, and wait until every copy is available (a copy the "
            "region's concurrent-copy quota refuses waits its turn)"
        )
    if distribution.shares:
        who = [
            *(f"account {a}" for a in distribution.accounts),
            *(f"organization {o.rsplit('/', 1)[-1]}" for o in distribution.organizations),
            *(f"OU {u.rsplit('/', 1)[-1]}" for u in distribution.organizational_units),
        ]
        planned.append(f"Let {', '.join(who)} launch the image and its copies")
        if distribution.share_snapshots:
            planned.append(
                f"Let account(s) {', '.join(distribution.accounts)} create volumes from their snapshots"
            )
    for template in distribution.launch_templates:
        default = ", and make it the default" if template.make_default else ""
        planned.append(
            f"Publish a version of launch template {template.name} in "
            f"{where(template.account or group_account, template.region)} that launches the image there{default}"
        )
    planned.append(
        "If any of it fails, remove every copy and version this run made, in every region and account"
    )
    return planned


# The steps ------------------------------------------------------------------------------------------------


def copy_images(
    state: BakeState, aws: BakeAws, max_wait_seconds: int, now: datetime | None = None
) -> Distributed:
    """Start the copies the quota lets start, and look at the ones started; `done` once all are available.
    Raises `CopyFailed` when a copy fails or the copies take longer than `max_wait_seconds`."""
    distribution = _distribution(state)
    image = state.baked
    moment = now or datetime.now(UTC)
    current = state.distribution
    if current is None:
        check_shareable(distribution, any(s.encrypted for s in image.snapshots))
        current = Distributed(
            copies=[
                RegionCopy(region=r, kms_key_id=distribution.kms_key_ids.get(r)) for r in distribution.regions
            ],
            started_at=moment.isoformat(),
        )
    tags = {
        **bake_tags(state.request, state.run_id, state.requester or "unknown", state.source_instance),
        "Name": image.name,
        SOURCE_IMAGE: image.image_id,
        SOURCE_REGION: aws.region,
    }
    copies = [_advance(copy, state, aws, tags) for copy in current.copies]
    waiting = [c for c in copies if c.state != "available"]
    waited = (moment - datetime.fromisoformat(current.started_at)).total_seconds()
    if waiting and waited > max_wait_seconds:
        raise CopyFailed(
            f"the copies of image {image.image_id} into {', '.join(c.region for c in waiting)} are still "
            f"{'/'.join(sorted({c.state for c in waiting}))} after {int(waited)} s (limit {max_wait_seconds} s)"
        )
    ready = len(copies) - len(waiting)
    summary = (
        f"image {image.image_id} copied into {', '.join(c.region for c in copies)}"
        if not waiting
        else f"{ready} of {len(copies)} copies available; waiting for "
        + ", ".join(f"{c.region} ({c.state})" for c in waiting)
    )
    update = {"copies": copies, "done": not waiting, "waiting": bool(waiting), "summary": summary}
    return current.model_copy(update=update)


def _advance(copy: RegionCopy, state: BakeState, aws: BakeAws, tags: dict[str, str]) -> RegionCopy:
    ec2 = aws.ec2_in(aws.account, copy.region)
    image = state.baked
    if copy.state == "queued":
        image_id = ec2.copy_image(
            source_image_id=image.image_id,
            source_region=aws.region,
            name=image.name,
            description=f"Copied by Opsflow run {state.run_id} from {image.image_id} in {aws.region}",
            client_token=f"{state.run_id}-{copy.region}",
            kms_key_id=copy.kms_key_id,
            tags=tags,
        )
        return copy.model_copy(update={"image_id": image_id, "state": "pending"}) if image_id else copy
    if copy.state != "pending" or copy.image_id is None:
        return copy
    try:
        found = ec2.describe_image(copy.image_id)
    except NotFound:  # DescribeImages is eventually consistent just after CopyImage
        return copy
    if found.state in FAILED_IMAGE_STATES:
        raise CopyFailed(
            f"the copy {copy.image_id} of image {image.image_id} into {copy.region} ended {found.state}: "
            f"{found.state_reason or 'no reason given'}"
        )
    if found.state == "available":
        return copy.model_copy(update={"state": "available", "snapshot_ids": found.snapshot_ids})
    return copy


def share(state: BakeState, aws: BakeAws) -> Distributed:
    """Launch permissions on the image and each copy (and snapshot permissions, if asked)."""
    distribution, current = _distribution(state), _required(state)
    images = [
        (aws.region, state.baked.image_id, [s.snapshot_id for s in state.baked.snapshots if s.snapshot_id])
    ]
    images += [(c.region, c.image_id, c.snapshot_ids) for c in current.copies if c.image_id]
    shared: list[str] = []
    if distribution.shares:
        for region, image_id, snapshot_ids in images:
            ec2 = aws.ec2_in(aws.account, region)
            ec2.share_image(
                image_id,
                accounts=distribution.accounts,
                organizations=distribution.organizations,
                units=distribution.organizational_units,
            )
            if distribution.share_snapshots:
                for snapshot_id in snapshot_ids:
                    ec2.share_snapshot(snapshot_id, distribution.accounts)
            shared.append(f"image {image_id} in {region}")
    summary = f"shared {', '.join(shared)}" if shared else "nothing to share"
    return current.model_copy(update={"shared": shared, "summary": summary})


def publish_templates(state: BakeState, aws: BakeAws, opt_in: OptIn) -> Distributed:
    distribution, current = _distribution(state), _required(state)
    devices = {s.device for s in state.baked.snapshots}
    published: list[DistributedTemplate] = []
    for template in distribution.launch_templates:
        account = template.account or aws.account
        image_id = _image_in(template.region, state, aws)
        ec2 = aws.ec2_in(account, template.region)
        template_id = checked_template(template, aws, opt_in)
        default = ec2.launch_template_version(template_id, "$Default")
        version = ec2.create_launch_template_version(
            template_id=template_id,
            source=default,
            image_id=image_id,
            image_devices=devices,
            description=f"Opsflow run {state.run_id}: image {image_id} (from version {default.version})",
        )
        if template.make_default:
            ec2.set_default_version(template_id, version)
        published.append(
            DistributedTemplate(
                account=account,
                region=template.region,
                name=template.name,
                template_id=template_id,
                version=version,
                image_id=image_id,
                previous_default=default.version if template.make_default else None,
            )
        )
    summary = (
        f"published {', '.join(p.describe() for p in published)}" if published else "no launch templates"
    )
    return current.model_copy(update={"templates": published, "summary": summary})


def _image_in(region: str, state: BakeState, aws: BakeAws) -> str:
    if region == aws.region:
        return state.baked.image_id
    copy = _required(state).copy_in(region)
    if copy is None or copy.image_id is None or copy.state != "available":
        raise CopyFailed(f"the image has no available copy in {region}")
    return copy.image_id


# Undoing it -----------------------------------------------------------------------------------------------


def undo(state: BakeState, aws: BakeAws) -> tuple[list[str], list[str]]:
    """Remove the launch template versions and copies this run made, found by the run id (in their
    descriptions and tags) as well as from the state, so a lost answer leaves nothing behind. Each is tried
    even if another fails; returns what was undone and what could not be."""
    distribution = state.request.distribute
    undone: list[str] = []
    problems: list[str] = []
    if distribution is None:
        return undone, problems
    for template in distribution.launch_templates:
        place = where(template.account or aws.account, template.region)
        try:
            undone += _undo_template(template, state.run_id, aws)
        except OpsflowError as error:
            problems.append(f"launch template {template.name} in {place}: {error}")
    recorded = state.distribution.copies if state.distribution else []
    for region in distribution.regions:
        try:
            undone += _undo_copy(region, [c for c in recorded if c.region == region], state.run_id, aws)
        except OpsflowError as error:
            problems.append(f"the copy in {region}: {error}")
    return undone, problems


def _undo_template(template: TemplateTarget, run_id: str, aws: BakeAws) -> list[str]:
    account = template.account or aws.account
    ec2 = aws.ec2_in(account, template.region)
    place = where(account, template.region)
    try:
        template_id, _ = ec2.launch_template_named(template.name)
    except NotFound:
        return []
    undone: list[str] = []
    for version in ec2.launch_template_versions(template_id):
        if not (version.description or "").startswith(f"Opsflow run {run_id}:"):
            continue
        if version.is_default:
            # Only while it is still the default: a default someone set since is theirs.
            found = _FROM_VERSION.search(version.description or "")
            if found is None:
                raise Refused(f"version {version.version} is the default, and the one before it is unknown")
            ec2.set_default_version(template_id, int(found[1]))
            undone.append(
                f"made version {found[1]} of launch template {template.name} in {place} the default again"
            )
        ec2.delete_launch_template_version(template_id, version.version)
        undone.append(f"deleted launch template {template.name} version {version.version} in {place}")
    return undone


def _undo_copy(region: str, recorded: list[RegionCopy], run_id: str, aws: BakeAws) -> list[str]:
    ec2 = aws.ec2_in(aws.account, region)
    image_ids = {c.image_id for c in recorded if c.image_id}
    snapshot_ids = {s for c in recorded for s in c.snapshot_ids}
    for image in ec2.find_images({RUN_ID: run_id}):
        image_ids.add(image.image_id)
        snapshot_ids.update(image.snapshot_ids)
    undone: list[str] = []
    for image_id in sorted(image_ids):
        with contextlib.suppress(NotFound):
            # A pending copy stops when its image is deregistered; its launch permissions go with it.
            ec2.deregister_image(image_id)
            undone.append(f"deregistered copy {image_id} in {region}")
    snapshot_ids.update(ec2.find_snapshot_ids({RUN_ID: run_id}))
    for snapshot_id in sorted(snapshot_ids):
        with contextlib.suppress(NotFound):
            ec2.delete_snapshot(snapshot_id)
            undone.append(f"deleted snapshot {snapshot_id} in {region}")
    return undone


def _distribution(state: BakeState) -> Distribution:
    if state.request.distribute is None:
        raise ValueError("the request holds no distribution")
    return state.request.distribute


def _required(state: BakeState) -> Distributed:
    if state.distribution is None:
        raise ValueError("the state holds no result of step copy_images, which comes before this one")
    return state.distribution
