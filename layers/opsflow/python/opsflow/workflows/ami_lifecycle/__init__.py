"""AMI lifecycle: retire the images Opsflow baked for a group by count and by age, deprecating and disabling
them first where asked, and never one that something still uses."""

from __future__ import annotations

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.ami_lifecycle.request import AmiLifecycleRequest

WORKFLOW = Workflow(
    name="ami_lifecycle",
    title="AMI lifecycle",
    request=AmiLifecycleRequest,
    preflight=lazy("opsflow.workflows.ami_lifecycle.retention", "preflight_run"),
    steps=lazy("opsflow.workflows.ami_lifecycle.steps", "build_runner"),
)
