"""The one way every trigger (API, Chatbot, schedules, pipelines) starts a run: the same pre-flight,
guard, audit record and StartExecution, wired from the function's environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from opsflow.aws import clients
from opsflow.aws.stepfunctions import StepFunctions
from opsflow.requests import AnyRunRequest, AsgRefreshRequest, EcsBlueGreenRequest, EnvPowerRequest
from opsflow.runs import RunStarter
from opsflow.settings import OptIn, environment_tag_key, required_env
from opsflow.store.capacity import DynamoCapacityStore
from opsflow.store.environments import DynamoEnvironmentStore
from opsflow.store.locks import DynamoLockStore
from opsflow.store.runs import DynamoRunStore

if TYPE_CHECKING:
    from opsflow.workflows.env_power import PowerAws


@dataclass(frozen=True)
class StarterConfig:
    runs_table: str
    locks_table: str
    capacity_table: str
    state_machines: dict[str, str]
    opt_in: OptIn
    environment_tag_key: str
    lock_ttl_seconds: int
    # Handed to every execution: polling intervals and limits the state machines read.
    execution_settings: dict[str, int]

    @classmethod
    def from_env(cls) -> StarterConfig:
        return cls(
            runs_table=required_env("RUNS_TABLE"),
            locks_table=required_env("LOCKS_TABLE"),
            capacity_table=required_env("CAPACITY_TABLE"),
            state_machines={
                "ami_bake": required_env("AMI_BAKE_STATE_MACHINE_ARN"),
                "asg_refresh": required_env("ASG_REFRESH_STATE_MACHINE_ARN"),
                "env_power": required_env("ENV_POWER_STATE_MACHINE_ARN"),
                "ecs_blue_green": required_env("ECS_BLUE_GREEN_STATE_MACHINE_ARN"),
            },
            opt_in=OptIn.from_env(),
            environment_tag_key=environment_tag_key(),
            lock_ttl_seconds=int(os.environ.get("LOCK_TTL_SECONDS", "21600")),
            execution_settings={
                "image_poll_seconds": int(os.environ.get("IMAGE_POLL_SECONDS", "15")),
                "image_max_wait_seconds": int(os.environ.get("IMAGE_MAX_WAIT_SECONDS", "7200")),
                "refresh_poll_seconds": int(os.environ.get("REFRESH_POLL_SECONDS", "30")),
                "database_poll_seconds": int(os.environ.get("DATABASE_POLL_SECONDS", "30")),
                "database_max_wait_seconds": int(os.environ.get("DATABASE_MAX_WAIT_SECONDS", "3600")),
                "deploy_poll_seconds": int(os.environ.get("DEPLOY_POLL_SECONDS", "30")),
                "green_max_wait_seconds": int(os.environ.get("GREEN_MAX_WAIT_SECONDS", "1800")),
            },
        )

    def run_store(self) -> DynamoRunStore:
        return DynamoRunStore(clients.client("dynamodb"), self.runs_table)

    def power_aws(self) -> PowerAws:
        from opsflow.workflows.env_power import PowerAws

        return PowerAws.from_default_clients(self.capacity_table)

    def capacity_store(self) -> DynamoCapacityStore:
        return DynamoCapacityStore(clients.client("dynamodb"), self.capacity_table)

    def environment_store(self) -> DynamoEnvironmentStore:
        return DynamoEnvironmentStore(clients.client("dynamodb"), required_env("ENVIRONMENTS_TABLE"))


def preflight(request: AnyRunRequest, config: StarterConfig) -> dict[str, Any]:
    """What the run would do, read without changing anything; raises if it cannot run safely.

    Each workflow is imported when a request for it comes: a trigger's cold start loads none of them, and
    a run loads only its own."""
    if isinstance(request, EnvPowerRequest):
        from opsflow.workflows import env_power

        return env_power.preflight(request, config.power_aws(), config.opt_in, config.environment_tag_key)
    if isinstance(request, EcsBlueGreenRequest):
        from opsflow.workflows import ecs_blue_green

        return ecs_blue_green.preflight(
            request, ecs_blue_green.DeployAws.from_default_clients(), config.opt_in
        )
    if isinstance(request, AsgRefreshRequest):
        from opsflow.workflows import asg_refresh

        return asg_refresh.preflight(request, asg_refresh.RefreshAws.from_default_clients(), config.opt_in)
    from opsflow.workflows import ami_bake

    return ami_bake.preflight(request, ami_bake.BakeAws.from_default_clients(), config.opt_in)


def build_starter(config: StarterConfig) -> RunStarter:
    return RunStarter(
        runs=config.run_store(),
        locks=DynamoLockStore(clients.client("dynamodb"), config.locks_table),
        executions=StepFunctions(clients.client("stepfunctions")),
        preflight=lambda request: preflight(request, config),
        state_machine_arns=config.state_machines,
        settings=config.execution_settings,
        lock_ttl_seconds=config.lock_ttl_seconds,
    )


@cache
def default_config() -> StarterConfig:
    """The function's configuration, read once per cold start."""
    return StarterConfig.from_env()


@cache
def default_starter() -> RunStarter:
    return build_starter(default_config())
