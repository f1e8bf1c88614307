"""What an environment's next stop and next start would do to each resource, and when: read only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opsflow.runs.config import StarterConfig
from opsflow.store.environments import Environment
from opsflow.workflows.env_power import environments
from opsflow.workflows.env_power.inventory import PowerAws
from opsflow.workflows.env_power.preflight import plan_start, plan_stop


def environment_plan(name: str, config: StarterConfig, now: datetime) -> dict[str, Any]:
    """The plan `GET /environments/{name}/plan` shows; changes nothing."""
    environment = config.environment_store().get(name)
    view = environments.describe(environment or Environment(name), config.capacity_store(), now)
    aws = PowerAws.at(config.capacity_table)
    upcoming = view.get("next") or {}
    return {
        "environment": name,
        "timezone": environment.schedule.timezone if environment and environment.schedule else None,
        "stop": {
            "when": upcoming.get("stop"),
            **plan_stop(name, aws, config.opt_in, config.environment_tag_key),
        },
        "start": {"when": upcoming.get("start"), **plan_start(name, aws)},
        "keep_alive": view["keep_alive"],
    }
