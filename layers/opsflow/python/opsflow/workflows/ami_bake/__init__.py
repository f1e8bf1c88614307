"""AMI bake: image an instance, publish the image to its Auto Scaling group, optionally refresh the group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsflow.runs.workflow import Workflow
from opsflow.workflows.ami_bake.request import AmiBakeRequest

if TYPE_CHECKING:
    from opsflow.runs.config import StarterConfig, StepsConfig
    from opsflow.runs.steps import StepRunner


def _preflight(request: AmiBakeRequest, config: StarterConfig) -> dict[str, Any]:
    from opsflow.workflows.ami_bake.aws import BakeAws
    from opsflow.workflows.ami_bake.preflight import preflight

    return preflight(request, BakeAws.from_default_clients(), config.opt_in)


def _steps(config: StepsConfig) -> StepRunner:
    from opsflow.workflows.ami_bake import steps

    return steps.build_runner(config)


WORKFLOW = Workflow(
    name="ami_bake", title="AMI bake", request=AmiBakeRequest, preflight=_preflight, steps=_steps
)
