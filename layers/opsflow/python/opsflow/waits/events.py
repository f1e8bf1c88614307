"""Which waits an AWS event can end, from the events' documented shapes (see `events/` at the repository root).

An event ends a wait by naming what it awaits (a Target key); the step after the wait looks at the resource
itself, so an event only has to say "look now". Alarm state changes to ALARM end a wait with a failure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opsflow.aws.target import Target

AMI_STATE_CHANGE = "EC2 AMI State Change"
# EC2 Auto Scaling User Guide, "Instance refresh example events and patterns": Started, Checkpoint Reached,
# Succeeded, Failed, Cancelled, Rollback Started, Rollback Succeeded, Rollback Failed.
INSTANCE_REFRESH = "EC2 Auto Scaling Instance Refresh "
# CreateImage's image ends available or failed (EC2 User Guide, "Monitor AMI events using Amazon EventBridge").
_IMAGE_DONE = frozenset({"available", "failed", "deregistered", "disabled"})


@dataclass(frozen=True)
class Wake:
    awaited: Target
    what: str  # for the audit record: "image ami-0abc is available"
    failure: str | None = None  # an error name: the wait fails with it (an alarm went to ALARM)


def wakes(event: Mapping[str, Any], home_account: str, home_region: str) -> list[Wake]:
    """The waits `event` can end. Targets in the hub's own account and region carry no location."""
    detail = event.get("detail") or {}
    account = event.get("account") if event.get("account") != home_account else None
    region = event.get("region") if event.get("region") != home_region else None

    def target(kind: str, name: str) -> Target:
        return Target(kind, name, account, region)

    if event.get("detail-type") == AMI_STATE_CHANGE:
        state = str(detail.get("State", ""))
        image_id = str(detail.get("ImageId", ""))
        if image_id and state in _IMAGE_DONE:
            return [Wake(target("image", image_id), f"image {image_id} is {state}")]
    detail_type = str(event.get("detail-type", ""))
    if detail_type.startswith(INSTANCE_REFRESH) and detail.get("AutoScalingGroupName"):
        group = str(detail["AutoScalingGroupName"])
        what = detail_type.removeprefix(INSTANCE_REFRESH).lower()
        return [
            Wake(
                target("refresh", group),
                f"instance refresh {detail.get('InstanceRefreshId')} of {group}: {what}",
            )
        ]
    return []
