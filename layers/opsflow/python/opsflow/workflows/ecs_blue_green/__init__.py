"""ECS blue/green: deploy beside the live service and shift an ALB listener's traffic in gated steps."""

from __future__ import annotations

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.ecs_blue_green.request import EcsBlueGreenRequest

WORKFLOW = Workflow(
    name="ecs_blue_green",
    title="ECS blue/green",
    request=EcsBlueGreenRequest,
    preflight=lazy("opsflow.workflows.ecs_blue_green.preflight", "preflight_run"),
    steps=lazy("opsflow.workflows.ecs_blue_green.steps", "build_runner"),
    put_back=lazy("opsflow.workflows.ecs_blue_green.results", "put_back_run"),
)
