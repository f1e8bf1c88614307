"""ECS blue/green: deploy beside the live service and shift an ALB listener's traffic in gated steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsflow.runs.workflow import Workflow
from opsflow.workflows.ecs_blue_green.request import EcsBlueGreenRequest

if TYPE_CHECKING:
    from opsflow.runs.config import StarterConfig, StepsConfig
    from opsflow.runs.steps import StepRunner
    from opsflow.store.runs import Run


def _preflight(request: EcsBlueGreenRequest, config: StarterConfig) -> dict[str, Any]:
    from opsflow.workflows.ecs_blue_green.deps import DeployAws
    from opsflow.workflows.ecs_blue_green.preflight import preflight

    return preflight(request, DeployAws.from_default_clients(), config.opt_in)


def _steps(config: StepsConfig) -> StepRunner:
    from opsflow.workflows.ecs_blue_green import steps

    return steps.build_runner(config)


def _put_back(run: Run) -> dict[str, Any] | None:
    from opsflow.workflows.ecs_blue_green.deps import DeployAws
    from opsflow.workflows.ecs_blue_green.results import put_back_ended_run

    return put_back_ended_run(run, DeployAws.from_default_clients())


WORKFLOW = Workflow(
    name="ecs_blue_green",
    title="ECS blue/green",
    request=EcsBlueGreenRequest,
    preflight=_preflight,
    steps=_steps,
    put_back=_put_back,
)
