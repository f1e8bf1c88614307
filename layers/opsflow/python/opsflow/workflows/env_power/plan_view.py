"""What an environment's next stop and next start would do to each resource, and when: read only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opsflow.runs.config import StarterConfig
from opsflow.store.environments import Environment
from opsflow.workflows.env_power import environments
from opsflow.workflows.env_power.inventory import PowerAws
from opsflow.workflows.env_power.preflight import plan_everywhere
from opsflow.workflows.env_power.request import EnvPowerRequest


def environment_plan(name: str, config: StarterConfig, now: datetime) -> dict[str, Any]:
    """The plan `GET /environments/{name}/plan` shows, in every account and region the environment's schedule
    lists (the hub's own if none); changes nothing."""
    environment = config.environment_store().get(name)
    view = environments.describe(environment or Environment(name), config.capacity_store(), now)
    upcoming = view.get("next") or {}
    targets = environment.schedule.targets if environment and environment.schedule else None

    def plan(action: str) -> dict[str, Any]:
        request = EnvPowerRequest(workflow="env_power", environment=name, action=action, targets=targets)  # type: ignore[arg-type]
        return plan_everywhere(
            request,
            lambda place: PowerAws.at(config.capacity_table, place),
            config.opt_in,
            config.environment_tag_key,
        )

    return {
        "environment": name,
        "timezone": environment.schedule.timezone if environment and environment.schedule else None,
        "stop": {"when": upcoming.get("stop"), **plan("stop")},
        "start": {"when": upcoming.get("start"), **plan("start")},
        "keep_alive": view["keep_alive"],
    }
