"""Notifications: EventBridge rules deliver Opsflow, Step Functions, CodePipeline, CloudWatch alarm,
instance refresh and ECS deployment events here; `{"redrive": true}` re-delivers the dead letters."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext

from opsflow.aws import clients
from opsflow.aws.sqs import Queue
from opsflow.notify.channels import Channel, parse_channels
from opsflow.notify.notifier import Notifier
from opsflow.settings import required_env
from opsflow.store.runs import DynamoRunStore

logger = Logger(service="opsflow-notify")
tracer = Tracer(service="opsflow-notify")


@dataclass(frozen=True)
class NotifyConfig:
    channels: list[Channel]
    runs_table: str
    dead_letter_queue_url: str

    @classmethod
    def from_env(cls) -> NotifyConfig:
        return cls(
            channels=parse_channels(os.environ.get("NOTIFY_CHANNELS", "[]")),
            runs_table=required_env("RUNS_TABLE"),
            dead_letter_queue_url=required_env("NOTIFY_DEAD_LETTER_QUEUE_URL"),
        )


def webhook_url(channel: Channel) -> str:
    """The secret holds the URL, or JSON with a `url` key. Cached for five minutes across invocations."""
    secret = str(parameters.get_secret(channel.webhook_secret, max_age=300))
    if secret.lstrip().startswith("{"):
        return str(json.loads(secret)["url"])
    return secret.strip()


@cache
def notifier() -> Notifier:
    config = NotifyConfig.from_env()
    return Notifier(
        channels=config.channels,
        webhook_url=webhook_url,
        dead_letters=Queue(clients.client("sqs"), config.dead_letter_queue_url),
        runs=DynamoRunStore(clients.client("dynamodb"), config.runs_table),
        sleep=time.sleep,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("redrive"):
        result = notifier().redrive()
        logger.info("redrive", extra=result)
        return result
    outcomes = notifier().notify(event)
    # Channel names and outcomes only: never a payload or a URL.
    logger.info(
        "notified",
        extra={"source": event.get("source"), "detail_type": event.get("detail-type"), "outcomes": outcomes},
    )
    return {"outcomes": outcomes}
