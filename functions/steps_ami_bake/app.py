"""The AMI bake state machine's steps: one Lambda, dispatching on `step`."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.steps import StepRunner, StepsConfig, build_runner
from opsflow.workflows import ami_bake

logger = Logger(service="opsflow-ami-bake")
tracer = Tracer(service="opsflow-ami-bake")


@cache
def runner() -> StepRunner:
    config = StepsConfig.from_env()
    aws = ami_bake.BakeAws.from_default_clients(config.event_bus)
    return build_runner(
        config, ami_bake.step_table(aws, config.opt_in), ami_bake.result_of, ami_bake.error_of
    )


@logger.inject_lambda_context(correlation_id_path="state.run_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("step", extra={"step": event.get("step")})
    return runner()(event)
