"""The notify function's configuration and its notifier, wired from the environment."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_lambda_powertools.utilities import parameters

from opsflow.aws import clients
from opsflow.aws.ec2 import tags_of
from opsflow.aws.sqs import Queue
from opsflow.notify.channels import Channel, parse_channels
from opsflow.notify.delivery import DeliveryFailed
from opsflow.notify.notifier import Notifier
from opsflow.runs.config import required_env
from opsflow.store.notify_state import DynamoNotifyState
from opsflow.store.runs import DynamoRunStore


@dataclass(frozen=True)
class NotifyConfig:
    channels: list[Channel]
    runs_table: str
    dead_letter_queue_url: str
    state_table: str  # de-duplication and bursts, in the idempotency table

    @classmethod
    def from_env(cls) -> NotifyConfig:
        return cls(
            channels=parse_channels(os.environ.get("NOTIFY_CHANNELS", "[]")),
            runs_table=required_env("RUNS_TABLE"),
            dead_letter_queue_url=required_env("NOTIFY_DEAD_LETTER_QUEUE_URL"),
            state_table=required_env("IDEMPOTENCY_TABLE"),
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


# DescribeInstances takes up to 1000 values in a filter; a Health event rarely names more than a few.
_LOOKED_UP_INSTANCES = 200


def instance_tags(account: str, region: str, instance_ids: Sequence[str]) -> Mapping[str, Mapping[str, str]]:
    """The tags of the instances an AWS Health event names, in any region: the hub account's with the
    function's own role, another account's through its spoke role there (ec2:DescribeInstances only). A
    failed lookup (an account without the spoke stack, say) gives nothing: the message then names the
    instances without their group."""
    if not instance_ids:
        return {}
    found: dict[str, dict[str, str]] = {}
    try:
        ec2 = clients.client_at("ec2", account or None, region or None)
        # A filter, not InstanceIds: an instance already gone must not fail the lookup of the others.
        for page in ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-id", "Values": list(instance_ids)[:_LOOKED_UP_INSTANCES]}]
        ):
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    found[instance["InstanceId"]] = tags_of(instance)
    except Exception:  # noqa: BLE001 - a notification must not fail for want of a group's name
        return {}
    return found


def build_notifier(config: NotifyConfig) -> Notifier:
    runs = DynamoRunStore(clients.client("dynamodb"), config.runs_table)
    return Notifier(
        channels=config.channels,
        secret=read_secret,
        dead_letters=Queue(clients.client("sqs"), config.dead_letter_queue_url),
        runs=runs,
        threads=runs,
        instance_tags=instance_tags,
        sleep=time.sleep,
        state=DynamoNotifyState(clients.client("dynamodb"), config.state_table),
    )
