"""Slack through AWS Chatbot: the channel's `@aws lambda invoke` lands here and gets a one-line answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.aws.stepfunctions import StepFunctions
from opsflow.runs.wiring import default_config, default_starter
from opsflow.triggers import chatbot as commands
from opsflow.triggers.idempotency import once_per

logger = Logger(service="opsflow-command")
tracer = Tracer(service="opsflow-command")


@cache
def context() -> commands.CommandContext:
    config = default_config()
    region = clients.client("stepfunctions").meta.region_name
    return commands.CommandContext(
        starter=default_starter(),
        runs=config.run_store(),
        environments=config.environment_store(),
        executions=StepFunctions(clients.client("stepfunctions")),
        now=lambda: datetime.now(UTC),
        console=lambda arn: (
            f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{arn}"
        ),
    )


@cache
def act_once() -> Callable[[dict[str, Any], LambdaContext], str]:
    # The same command sent twice within a minute (a double paste, a retry) acts once and gets the same
    # answer; a status asks afresh every time.
    return once_per(lambda event: commands.handle(event, context()), key="@", expires_after_seconds=60)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: Any, lambda_context: LambdaContext) -> str:
    if isinstance(event, dict) and event.get("command") != "status":
        reply = act_once()(event, lambda_context)
    else:
        reply = commands.handle(event, context())
    logger.info(
        "command answered",
        extra={"command": (event or {}).get("command", "run") if isinstance(event, dict) else None},
    )
    return reply
