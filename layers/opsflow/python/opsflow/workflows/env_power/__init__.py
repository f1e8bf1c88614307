"""Environment power: stop an environment for the night, saving what ran, and start exactly that again."""

from __future__ import annotations

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.env_power.request import EnvPowerRequest

WORKFLOW = Workflow(
    name="env_power",
    title="Environment power",
    request=EnvPowerRequest,
    preflight=lazy("opsflow.workflows.env_power.preflight", "preflight_run"),
    steps=lazy("opsflow.workflows.env_power.steps", "build_runner"),
)
