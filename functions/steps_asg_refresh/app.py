"""The ASG refresh state machine's steps: one Lambda, dispatching on `step`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.settings import OptIn, required_env
from opsflow.steps import StepRunner, finish_failed, finish_succeeded
from opsflow.store.locks import DynamoLockStore
from opsflow.store.runs import DynamoRunStore
from opsflow.workflows import asg_refresh

logger = Logger(service="opsflow-asg-refresh")
tracer = Tracer(service="opsflow-asg-refresh")


@dataclass(frozen=True)
class StepsConfig:
    runs_table: str
    locks_table: str
    event_bus: str
    lock_ttl_seconds: int
    opt_in: OptIn

    @classmethod
    def from_env(cls) -> StepsConfig:
        return cls(
            runs_table=required_env("RUNS_TABLE"),
            locks_table=required_env("LOCKS_TABLE"),
            event_bus=os.environ.get("EVENT_BUS_NAME", "default"),
            lock_ttl_seconds=int(os.environ.get("LOCK_TTL_SECONDS", "21600")),
            opt_in=OptIn.from_env(),
        )


@cache
def runner() -> StepRunner:
    config = StepsConfig.from_env()
    runs = DynamoRunStore(clients.client("dynamodb"), config.runs_table)
    locks = DynamoLockStore(clients.client("dynamodb"), config.locks_table)
    aws = asg_refresh.RefreshAws.from_default_clients(config.event_bus)
    steps = asg_refresh.step_table(aws, config.opt_in)
    steps["finish"] = lambda state: finish_succeeded(state, asg_refresh.run_result(state, aws), runs, locks)
    steps["finish_failed"] = lambda state: finish_failed(state, asg_refresh.run_error(state), runs, locks)
    return StepRunner(steps=steps, runs=runs, locks=locks, lock_ttl_seconds=config.lock_ttl_seconds)


@logger.inject_lambda_context(correlation_id_path="state.run_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("step", extra={"step": event.get("step")})
    return runner()(event)
