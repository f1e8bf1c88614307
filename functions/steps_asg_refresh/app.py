"""The ASG refresh state machine's steps: one Lambda, dispatching on `step`."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.steps import StepRunner, StepsConfig, build_runner
from opsflow.workflows import asg_refresh

logger = Logger(service="opsflow-asg-refresh")
tracer = Tracer(service="opsflow-asg-refresh")


@cache
def runner() -> StepRunner:
    config = StepsConfig.from_env()
    aws = asg_refresh.RefreshAws.from_default_clients(config.event_bus)
    return build_runner(
        config,
        asg_refresh.step_table(aws, config.opt_in),
        lambda state: asg_refresh.run_result(state, aws),
        asg_refresh.run_error,
    )


@logger.inject_lambda_context(correlation_id_path="state.run_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("step", extra={"step": event.get("step")})
    return runner()(event)
