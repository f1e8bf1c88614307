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
from opsflow.notify.delivery import DeliveryFailed
from opsflow.notify.notifier import Notifier
from opsflow.runs.config import required_env
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


def secret(channel: Channel) -> str:
    """The webhook URL or bot token: the secret's text, or JSON with a `url` or `token` key. Cached for
    five minutes across invocations."""
    try:
        value = str(parameters.get_secret(channel.secret, max_age=300)).strip()
        if value.startswith("{"):
            value = str(json.loads(value).get("url") or json.loads(value).get("token") or "")
    except Exception as error:  # noqa: BLE001 - say which secret, never what it holds
        raise DeliveryFailed(f"secret {channel.secret} could not be read ({type(error).__name__})") from None
    return value


@cache
def notifier() -> Notifier:
    config = NotifyConfig.from_env()
    return Notifier(
        channels=config.channels,
        secret=secret,
        dead_letters=Queue(clients.client("sqs"), config.dead_letter_queue_url),
        runs=(runs := DynamoRunStore(clients.client("dynamodb"), config.runs_table)),
        threads=runs,
        sleep=time.sleep,
    )


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
