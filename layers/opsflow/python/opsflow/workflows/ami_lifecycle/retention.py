"""What a lifecycle run does to each image Opsflow baked for a group, and why: read without changing
anything (the pre-flight and the dry run), then carried out by the apply step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from opsflow.aws.ec2 import Image
from opsflow.runs.config import StarterConfig
from opsflow.workflows.ami_bake.aws import BakeAws
from opsflow.workflows.ami_bake.image import CREATED_BY, GROUP
from opsflow.workflows.ami_bake.prune import images_in_use
from opsflow.workflows.ami_lifecycle.request import AmiLifecycleRequest

# When a lifecycle run disabled an image: a later run deregisters it `disable_days` after.
DISABLED_AT = "opsflow:disabled-at"

Action = Literal["keep", "deprecate", "disable", "deregister"]


class Decision(BaseModel):
    image_id: str
    name: str
    created: str
    action: Action
    why: str
    deprecate_at: str | None = None
    snapshots: list[str] = []

    def describe(self) -> str:
        verb = {"keep": "Keep", "deprecate": "Deprecate", "disable": "Disable", "deregister": "Deregister"}
        when = f" at {self.deprecate_at}" if self.deprecate_at else ""
        return f"{verb[self.action]} {self.image_id} ({self.name}, created {self.created[:10]}){when}: {self.why}"


def _created(image: Image) -> datetime:
    return datetime.fromisoformat(image.creation_date.replace("Z", "+00:00"))


def decide(request: AmiLifecycleRequest, aws: BakeAws, now: datetime) -> list[Decision]:
    baked = aws.ec2.find_images({CREATED_BY: "opsflow", GROUP: request.asg_name})
    baked.sort(key=lambda image: image.creation_date, reverse=True)
    in_use = images_in_use(aws)
    decisions = []
    for rank, image in enumerate(baked):
        age = now - _created(image)
        days = f"{age.days} day(s) old"
        made: dict[str, Any] = {
            "image_id": image.image_id,
            "name": image.name,
            "created": image.creation_date,
        }
        if rank < request.keep:
            retire, why = False, f"one of the newest {request.keep}"
        elif request.max_age_days is not None and age < timedelta(days=request.max_age_days):
            retire, why = False, f"{days}, younger than {request.max_age_days} days"
        else:
            retire = True
            why = f"beyond the newest {request.keep}" + (
                f" and {days}, older than {request.max_age_days} days" if request.max_age_days else ""
            )
        if retire and image.image_id in in_use:
            retire, why = False, f"{why}, but used by {in_use[image.image_id]}"
        if retire:
            decisions.append(Decision(**made, **retirement(request, image, why, now)))
            continue
        deprecate_at = deprecation(request, image, now)
        if deprecate_at:
            decisions.append(
                Decision(
                    **made,
                    action="deprecate",
                    deprecate_at=deprecate_at,
                    why=f"{why}; deprecated {request.deprecate_after_days} days after it was created",
                )
            )
        else:
            decisions.append(Decision(**made, action="keep", why=why))
    return decisions


def retirement(request: AmiLifecycleRequest, image: Image, why: str, now: datetime) -> dict[str, Any]:
    if request.disable_days is None:
        return {"action": "deregister", "why": why, "snapshots": image.snapshot_ids}
    disabled_at = image.tags.get(DISABLED_AT)
    if image.state != "disabled" or not disabled_at:
        return {
            "action": "disable",
            "why": f"{why}; deregistered {request.disable_days} days after it is disabled",
        }
    since = datetime.fromisoformat(disabled_at)
    if now - since >= timedelta(days=request.disable_days):
        return {
            "action": "deregister",
            "why": f"{why}; disabled since {disabled_at[:10]}, over {request.disable_days} days",
            "snapshots": image.snapshot_ids,
        }
    left = (since + timedelta(days=request.disable_days) - now).days + 1
    return {
        "action": "keep",
        "why": f"{why}; disabled since {disabled_at[:10]}, deregistered in {left} day(s)",
    }


def deprecation(request: AmiLifecycleRequest, image: Image, now: datetime) -> str | None:
    """When to deprecate a kept image, if it is not deprecated already; EC2 takes no time in the past, so
    an image past its date is deprecated in a minute."""
    if request.deprecate_after_days is None or image.deprecation_time:
        return None
    due = max(_created(image) + timedelta(days=request.deprecate_after_days), now + timedelta(minutes=1))
    return due.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00Z")


def plan(request: AmiLifecycleRequest, aws: BakeAws, now: datetime | None = None) -> dict[str, Any]:
    decisions = decide(request, aws, now or datetime.now(UTC))
    counts = {
        action: sum(1 for d in decisions if d.action == action)
        for action in ("deregister", "disable", "deprecate", "keep")
    }
    return {
        "decisions": [d.model_dump(mode="json") for d in decisions],
        "actions": [d.describe() for d in decisions]
        or [f"No image baked for group {request.asg_name}: nothing to do"],
        "counts": counts,
    }


def preflight_run(request: AmiLifecycleRequest, config: StarterConfig) -> dict[str, Any]:
    return plan(request, BakeAws.at(request.target()))
