"""Environment power: stop an environment for the night, saving what ran, and start exactly that again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsflow.runs.workflow import Workflow
from opsflow.workflows.env_power.request import EnvPowerRequest

if TYPE_CHECKING:
    from opsflow.runs.config import StarterConfig, StepsConfig
    from opsflow.runs.steps import StepRunner


def _preflight(request: EnvPowerRequest, config: StarterConfig) -> dict[str, Any]:
    from opsflow.workflows.env_power.inventory import PowerAws
    from opsflow.workflows.env_power.preflight import preflight

    aws = PowerAws.from_default_clients(config.capacity_table)
    return preflight(request, aws, config.opt_in, config.environment_tag_key)


def _steps(config: StepsConfig) -> StepRunner:
    from opsflow.workflows.env_power import steps

    return steps.build_runner(config)


WORKFLOW = Workflow(
    name="env_power", title="Environment power", request=EnvPowerRequest, preflight=_preflight, steps=_steps
)
