"""Notifications: EventBridge rules deliver Opsflow, Step Functions, CodePipeline, CloudWatch alarm,
instance refresh, ECS deployment, CodeBuild, CodeDeploy, ECR and AWS Health events here;
`{"redrive": true}` re-delivers the dead letters."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.notify.notifier import Notifier
from opsflow.notify.wiring import NotifyConfig, build_notifier

logger = Logger(service="opsflow-notify")
tracer = Tracer(service="opsflow-notify")


@cache
def notifier() -> Notifier:
    return build_notifier(NotifyConfig.from_env())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("redrive"):
        result = notifier().redrive()
        logger.info("redrive", extra=result)
        return result
    # Stop retrying ten seconds before the function would time out: what is left goes to the dead letters.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - 10
    outcomes = notifier().notify(event, deadline=deadline)
    # Channel names and outcomes only: never a payload or a URL.
    logger.info(
        "notified",
        extra={"source": event.get("source"), "detail_type": event.get("detail-type"), "outcomes": outcomes},
    )
    return {"outcomes": outcomes}
