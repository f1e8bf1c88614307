"""A workflow's steps: one Lambda per state machine, dispatching on `step`. Which workflow it serves comes
from its `WORKFLOW` environment variable; the registry builds that workflow's step table on the shared
runner."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.runs import registry
from opsflow.runs.config import StepsConfig, required_env
from opsflow.runs.steps import StepRunner

SERVICE = f"opsflow-{os.environ.get('WORKFLOW', 'steps').replace('_', '-')}"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


@cache
def runner() -> StepRunner:
    return registry.get(required_env("WORKFLOW")).steps(StepsConfig.from_env())


@logger.inject_lambda_context(correlation_id_path="state.run_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("step", extra={"step": event.get("step")})
    return runner()(event)
