"""ASG refresh: replace a group's instances with EC2 instance refresh, pinned to a launch template version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsflow.runs.workflow import Workflow
from opsflow.workflows.asg_refresh.request import AsgRefreshRequest

if TYPE_CHECKING:
    from opsflow.runs.config import StarterConfig, StepsConfig
    from opsflow.runs.steps import StepRunner


def _preflight(request: AsgRefreshRequest, config: StarterConfig) -> dict[str, Any]:
    from opsflow.workflows.asg_refresh.preflight import preflight
    from opsflow.workflows.asg_refresh.refresh import RefreshAws

    return preflight(request, RefreshAws.from_default_clients(), config.opt_in)


def _steps(config: StepsConfig) -> StepRunner:
    from opsflow.workflows.asg_refresh import steps

    return steps.build_runner(config)


WORKFLOW = Workflow(
    name="asg_refresh", title="ASG refresh", request=AsgRefreshRequest, preflight=_preflight, steps=_steps
)
