"""The ECS blue/green state machine's steps: one Lambda, dispatching on `step`."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.steps import StepRunner, StepsConfig, build_runner
from opsflow.store.runs import RUNNING, DynamoRunStore
from opsflow.workflows import ecs_blue_green

logger = Logger(service="opsflow-ecs-blue-green")
tracer = Tracer(service="opsflow-ecs-blue-green")


@cache
def runner() -> StepRunner:
    config = StepsConfig.from_env()
    aws = ecs_blue_green.DeployAws.from_default_clients(config.event_bus)
    runs = DynamoRunStore(clients.client("dynamodb"), config.runs_table)

    def still_running(run_id: str) -> bool:
        run = runs.get(run_id)
        return run is not None and run.status == RUNNING

    return build_runner(
        config,
        ecs_blue_green.step_table(aws, config.opt_in, still_running, runs.claim),
        ecs_blue_green.run_result,
        ecs_blue_green.run_error,
    )


@logger.inject_lambda_context(correlation_id_path="state.run_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("step", extra={"step": event.get("step")})
    return runner()(event)
