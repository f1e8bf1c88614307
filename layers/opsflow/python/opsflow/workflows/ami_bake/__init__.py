"""AMI bake: image an instance, publish the image to its Auto Scaling group, optionally refresh the group."""

from __future__ import annotations

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.ami_bake.request import AmiBakeRequest

WORKFLOW = Workflow(
    name="ami_bake",
    title="AMI bake",
    request=AmiBakeRequest,
    preflight=lazy("opsflow.workflows.ami_bake.preflight", "preflight_run"),
    steps=lazy("opsflow.workflows.ami_bake.steps", "build_runner"),
)
