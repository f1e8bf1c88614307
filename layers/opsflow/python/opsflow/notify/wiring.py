"""The notify function's configuration and its notifier, wired from the environment."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from aws_lambda_powertools.utilities import parameters

from opsflow.aws import clients
from opsflow.aws.sqs import Queue
from opsflow.notify.channels import Channel, parse_channels
from opsflow.notify.delivery import DeliveryFailed
from opsflow.notify.notifier import Notifier
from opsflow.runs.config import required_env
from opsflow.store.runs import DynamoRunStore


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


def read_secret(channel: Channel) -> str:
    """The webhook URL or bot token: the secret's text, or JSON with a `url` or `token` key. Cached for
    five minutes across invocations."""
    try:
        value = str(parameters.get_secret(channel.secret, max_age=300)).strip()
        if value.startswith("{"):
            value = str(json.loads(value).get("url") or json.loads(value).get("token") or "")
    except Exception as error:  # noqa: BLE001 - say which secret, never what it holds
        raise DeliveryFailed(f"secret {channel.secret} could not be read ({type(error).__name__})") from None
    return value


def build_notifier(config: NotifyConfig) -> Notifier:
    runs = DynamoRunStore(clients.client("dynamodb"), config.runs_table)
    return Notifier(
        channels=config.channels,
        secret=read_secret,
        dead_letters=Queue(clients.client("sqs"), config.dead_letter_queue_url),
        runs=runs,
        threads=runs,
        sleep=time.sleep,
    )
