"""Resume the runs waiting on what an AWS event is about: an image available, an instance refresh moving on,
a service steady, a database up, an alarm gone to ALARM (opsflow.waits)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.aws.stepfunctions import TaskTokens
from opsflow.runs.config import required_env
from opsflow.store.runs import DynamoRunStore
from opsflow.store.waiters import DynamoWaiterStore
from opsflow.waits.resume import Resumer

logger = Logger(service="opsflow-resume")
tracer = Tracer(service="opsflow-resume")


@cache
def resumer(function_arn: str) -> Resumer:
    return Resumer(
        waiters=DynamoWaiterStore(clients.client("dynamodb"), required_env("WAITERS_TABLE")),
        tokens=TaskTokens(clients.client("stepfunctions")),
        home_account=function_arn.split(":")[4],
        home_region=os.environ.get("AWS_REGION", ""),
        runs=DynamoRunStore(clients.client("dynamodb"), required_env("RUNS_TABLE")),
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = resumer(context.invoked_function_arn)(event)
    logger.info(
        "event handled",
        extra={"detail_type": event.get("detail-type"), "resources": event.get("resources"), **outcome},
    )
    return outcome
