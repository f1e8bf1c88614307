"""AMI bake: image an instance, publish the image to its Auto Scaling group, optionally refresh the group."""

from __future__ import annotations

from typing import Any

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.ami_bake.request import AmiBakeRequest


def _success_summary(result: dict[str, Any], target_name: str) -> str:
    if not result.get("image_id"):
        return f"{target_name} done."
    rolled = " and rolled out to every instance" if result.get("refresh") else ""
    return f"Image {result['image_id']} baked for {target_name}{rolled}."


WORKFLOW = Workflow(
    name="ami_bake",
    title="AMI bake",
    request=AmiBakeRequest,
    preflight=lazy("opsflow.workflows.ami_bake.preflight", "preflight_run"),
    steps=lazy("opsflow.workflows.ami_bake.steps", "build_runner"),
    put_back=lazy("opsflow.workflows.ami_bake.builder", "put_back_run"),
    success_summary=_success_summary,
)
