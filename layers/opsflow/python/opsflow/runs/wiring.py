"""The one way every trigger (API, Chatbot, schedules, pipelines) starts a run: the same pre-flight,
guard, audit record and StartExecution, wired from the function's environment."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from opsflow.aws import clients
from opsflow.aws.organizations import Organizations
from opsflow.aws.stepfunctions import StepFunctions
from opsflow.runs import registry
from opsflow.runs.config import StarterConfig
from opsflow.runs.requests import RunRequest
from opsflow.runs.start import RunStarter
from opsflow.spokes.reach import Reach
from opsflow.store.locks import DynamoLockStore


def preflight(request: RunRequest, config: StarterConfig) -> dict[str, Any]:
    """What the run would do, read without changing anything; raises if it cannot run safely."""
    return registry.workflow_of(request).preflight(request, config)


def build_starter(config: StarterConfig) -> RunStarter:
    sessions = clients.sessions()
    discover = None
    if os.environ.get("DISCOVER_ACCOUNTS", "true") == "true":
        discover = Organizations(clients.client("organizations")).active_member
    reach = Reach(sessions.home, config.account_store(), sessions, discover=discover)
    return RunStarter(
        runs=config.run_store(),
        locks=DynamoLockStore(clients.client("dynamodb"), config.locks_table),
        executions=StepFunctions(clients.client("stepfunctions")),
        preflight=lambda request: preflight(request, config),
        state_machine_arns=config.state_machines,
        settings=config.execution_settings,
        lock_ttl_seconds=config.lock_ttl_seconds,
        home=(sessions.home.account, sessions.home.region),
        reach=reach.check,
    )


def default_config() -> StarterConfig:
    """The function's configuration, read once per cold start."""
    return _config_of(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))


def default_starter() -> RunStarter:
    return _starter_of(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))


# Kept per function: Lambda runs one function per process, but a runtime that runs several in one process
# must not hand one function's configuration (its spoke role) to another.
@cache
def _config_of(function: str) -> StarterConfig:
    return StarterConfig.from_env()


@cache
def _starter_of(function: str) -> RunStarter:
    return build_starter(default_config())


def forget() -> None:
    """A cold start: the next call reads the configuration again."""
    _config_of.cache_clear()
    _starter_of.cache_clear()
