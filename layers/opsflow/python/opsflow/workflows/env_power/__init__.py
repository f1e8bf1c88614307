"""Environment power: stop an environment for the night, saving what ran, and start exactly that again."""

from __future__ import annotations

from typing import Any

from opsflow.runs.workflow import Workflow, lazy
from opsflow.workflows.env_power.request import EnvPowerRequest


def _run_title(request: dict[str, Any]) -> str:
    action = request.get("action")
    return f"Environment {action}" if action else "Environment power"


WORKFLOW = Workflow(
    name="env_power",
    title="Environment power",
    request=EnvPowerRequest,
    preflight=lazy("opsflow.workflows.env_power.preflight", "preflight_run"),
    steps=lazy("opsflow.workflows.env_power.steps", "build_runner"),
    run_title=_run_title,
)
