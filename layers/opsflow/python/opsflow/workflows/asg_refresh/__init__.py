"""ASG refresh: replace a group's instances with EC2 instance refresh, pinned to a launch template version."""

from __future__ import annotations

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.asg_refresh.request import AsgRefreshRequest

WORKFLOW = Workflow(
    name="asg_refresh",
    title="ASG refresh",
    request=AsgRefreshRequest,
    preflight=lazy("opsflow.workflows.asg_refresh.preflight", "preflight_run"),
    steps=lazy("opsflow.workflows.asg_refresh.steps", "build_runner"),
    success_summary=lambda result, target_name: f"Every instance of {target_name} was replaced.",
)
