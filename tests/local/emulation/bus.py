"""The events AWS services send to the default event bus, read as a rule's target gets them: a rule with the
given pattern and an SQS queue as its target (moto delivers to SQS targets)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from opsflow_local.emulation.aws_events import AwsEvents, ServiceEvent


@dataclass(frozen=True)
class Rule:
    queue_url: str

    def received(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first `count` events the rule matched, waiting for them as long as `timeout` (a loaded
        2-core machine can stall a thread for seconds), with none read more than once."""
        sqs = boto3.client("sqs", region_name="us-east-1")
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(events) < count:
            assert time.monotonic() < deadline, f"{len(events)} of {count} events arrived: {events}"
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                time.sleep(0.005)
                continue
            events += [json.loads(m["Body"]) for m in messages]
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return events

    def nothing_more(self) -> bool:
        sqs = boto3.client("sqs", region_name="us-east-1")
        return not sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages")


def rule(name: str, pattern: dict[str, Any]) -> Rule:
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return Rule(queue_url)


# For the clock tests: when a call ran, and which thread sent each event.


@dataclass
class Window:
    """When a call began and when it returned: the emulation's schedule starts in between."""

    begin: datetime
    end: datetime


@contextmanager
def called() -> Iterator[Window]:
    window = Window(datetime.now(UTC), datetime.now(UTC))
    yield window
    window.end = datetime.now(UTC)


class Recorder(AwsEvents):
    """AwsEvents that also notes which thread sent each event."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[int, str] = {}

    def send(self, event: ServiceEvent) -> bool:
        self.threads[id(event)] = threading.current_thread().name
        return super().send(event)
