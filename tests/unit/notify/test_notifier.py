"""Routing, dead letters and redrive, with in-memory fakes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsflow.notify.channels import Channel, parse_channels
from opsflow.notify.delivery import HttpResponse
from opsflow.notify.notifier import Notifier

EVENTS = Path(__file__).resolve().parents[3] / "events"


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


class Queue:
    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}

    def send(self, body: dict[str, Any]) -> None:
        self.messages[str(len(self.messages))] = json.loads(json.dumps(body))

    def receive(self) -> list[tuple[str, dict[str, Any]]]:
        return list(self.messages.items())

    def delete(self, receipt: str) -> None:
        del self.messages[receipt]


class Webhooks:
    def __init__(self) -> None:
        self.down: set[str] = set()
        self.received: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        if url in self.down:
            return HttpResponse(500, {}, "down")
        self.received.setdefault(url, []).append(json.loads(body))
        return HttpResponse(200, {}, "ok")


CHANNELS = parse_channels(
    json.dumps(
        [
            {"name": "ops", "platform": "slack", "webhook_secret": "opsflow/slack-ops"},
            {
                "name": "oncall",
                "platform": "teams",
                "webhook_secret": "opsflow/teams",
                "min_severity": "critical",
            },
            {
                "name": "bakes",
                "platform": "slack",
                "webhook_secret": "opsflow/bakes",
                "workflows": ["ami_bake"],
            },
        ]
    )
)


def url(channel: Channel) -> str:
    return f"https://hooks.example/{channel.name}/secret-token"


def notifier(webhooks: Webhooks, queue: Queue) -> Notifier:
    return Notifier(channels=CHANNELS, secret=url, dead_letters=queue, post=webhooks)


def test_each_channel_gets_what_its_filters_let_through() -> None:
    webhooks, queue = Webhooks(), Queue()
    outcomes = notifier(webhooks, queue).notify(event("cloudwatch/alarm_state_change.json"))
    assert {o["channel"] for o in outcomes} == {"ops", "oncall"}  # an alarm is no AMI bake
    teams_card = webhooks.received[url(CHANNELS[1])][0]
    assert teams_card["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    progress = notifier(webhooks, queue).notify(event("opsflow/run_progress_checkpoint.json"))
    assert {o["channel"] for o in progress} == {"ops", "bakes"}  # info is below on-call's minimum


def test_an_undeliverable_message_is_parked_without_its_url_and_redrive_delivers_it() -> None:
    webhooks, queue = Webhooks(), Queue()
    webhooks.down.add(url(CHANNELS[0]))
    outcomes = notifier(webhooks, queue).notify(event("ecs/deployment_failed.json"))
    assert {"channel": "ops", "outcome": "dead-lettered"}.items() <= next(
        o for o in outcomes if o["channel"] == "ops"
    ).items()
    [parked] = queue.messages.values()
    assert parked["channel"] == "ops"
    assert "secret-token" not in json.dumps(parked)

    assert notifier(webhooks, queue).redrive() == {"delivered": 0, "failed": 1}
    assert len(queue.messages) == 1
    webhooks.down.clear()
    assert notifier(webhooks, queue).redrive() == {"delivered": 1, "failed": 0}
    assert queue.messages == {}
    assert webhooks.received[url(CHANNELS[0])][0]["text"].startswith("❌ ECS service")


def test_an_unexpected_error_is_parked_by_its_type_only() -> None:
    queue = Queue()

    def broken_secret(channel: Channel) -> str:
        raise RuntimeError(f"cannot read {url(channel)}")

    outcomes = Notifier(channels=CHANNELS[:1], secret=broken_secret, dead_letters=queue).notify(
        event("cloudwatch/alarm_state_change.json")
    )
    assert outcomes == [{"channel": "ops", "outcome": "dead-lettered", "error": "unexpected RuntimeError"}]
    assert "secret-token" not in json.dumps(queue.messages)


def test_a_failing_dead_letter_queue_never_fails_the_function() -> None:
    class Broken(Queue):
        def send(self, body: dict[str, Any]) -> None:
            raise OSError("SQS is down")

    webhooks = Webhooks()
    webhooks.down.add(url(CHANNELS[0]))
    outcomes = Notifier(channels=CHANNELS[:1], secret=url, dead_letters=Broken(), post=webhooks).notify(
        event("ecs/deployment_failed.json")
    )
    assert outcomes[0]["outcome"] == "lost"


def test_redrive_sends_raw_events_that_eventbridge_parked() -> None:
    webhooks, queue = Webhooks(), Queue()
    queue.send(event("ecs/deployment_completed.json"))
    assert notifier(webhooks, queue).redrive() == {"delivered": 1, "failed": 0}
    assert queue.messages == {}
    assert webhooks.received[url(CHANNELS[0])][0]["text"].startswith("✅ ECS service")


def test_redrive_sends_events_whose_invocation_failed_from_their_invocation_record() -> None:
    webhooks, queue = Webhooks(), Queue()
    queue.send(
        {
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event("ecs/deployment_completed.json"),
            "responsePayload": {"errorType": "Sandbox.Timedout"},
        }
    )
    assert notifier(webhooks, queue).redrive() == {"delivered": 1, "failed": 0}
    assert queue.messages == {}
    assert webhooks.received[url(CHANNELS[0])][0]["text"].startswith("✅ ECS service")
