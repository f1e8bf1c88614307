"""AWS Chatbot custom notifications: the documented event format, threads per run, channel config and
delivery through SNS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from opsflow.notify import chatbot
from opsflow.notify.build import build_message
from opsflow.notify.channels import parse_channels
from opsflow.notify.delivery import DeliveryFailed, publish
from opsflow.notify.message import Link, Message, Severity, Status
from opsflow.notify.notifier import Notifier

from .test_notifier import Queue

EVENTS = Path(__file__).resolve().parents[3] / "events"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:opsflow-chatbot"
HUGE = "x" * 20_000

_text = {"type": "string", "minLength": 1}
_strings = {"type": "array", "items": _text}
# The custom notification event format of Amazon Q Developer in chat applications (AWS Chatbot):
# version "1.0" and source "custom" are required, textType is client-markdown only; every other field
# is optional, and only the documented ones are allowed.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "source", "content"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": "1.0"},
        "source": {"const": "custom"},
        "id": _text,
        "content": {
            "type": "object",
            "required": ["description"],
            "additionalProperties": False,
            "properties": {
                "textType": {"const": "client-markdown"},
                "title": _text,
                "description": _text,
                "nextSteps": _strings,
                "keywords": _strings,
            },
        },
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "threadId": _text,
                "summary": _text,
                "eventType": _text,
                "relatedResources": _strings,
                "additionalContext": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "title": "AMI bake failed: web",
        "status": Status.FAILED,
        "severity": Severity.CRITICAL,
        "summary": "The bake of web failed at Test.",
        "facts": (("Step", "Test"), ("Error", "States.TaskFailed")),
        "cause": "the smoke test exited 1",
        "next_step": "Read the test's log, fix the image recipe and bake again.",
        "links": (Link("Execution", "https://console.aws.amazon.com/states/home"),),
        "run_id": "ami-bake-1",
        "source": "Opsflow AMI bake",
        "workflow": "ami_bake",
        "environment": "prod",
        "extra": {"execution": "arn:aws:states:eu-west-1:123456789012:execution:bake:ami-bake-1"},
    }
    return Message(**(fields | changes))


def test_payload_is_a_valid_custom_notification() -> None:
    payload = chatbot.payload(message())
    jsonschema.validate(payload, SCHEMA)
    assert payload["content"]["title"] == "❌ AMI bake failed: web"
    assert "*Why:* the smoke test exited 1" in payload["content"]["description"]
    assert payload["content"]["nextSteps"] == ["Read the test's log, fix the image recipe and bake again."]
    assert payload["content"]["keywords"] == ["failed", "critical", "ami_bake", "prod"]
    assert payload["metadata"]["threadId"] == "ami-bake-1"
    assert payload["metadata"]["relatedResources"] == [
        "arn:aws:states:eu-west-1:123456789012:execution:bake:ami-bake-1"
    ]
    assert payload["metadata"]["additionalContext"]["Step"] == "Test"


def test_a_bare_message_still_validates_and_has_a_description() -> None:
    payload = chatbot.payload(Message(title="Hello", status=Status.INFO, severity=Severity.INFO))
    jsonschema.validate(payload, SCHEMA)
    assert payload["content"]["description"] == "Hello"
    assert "threadId" not in payload["metadata"]


def test_long_fields_are_cut_and_stay_under_the_sns_limit() -> None:
    huge = message(
        title=HUGE, summary=HUGE, cause=HUGE, next_step=HUGE, facts=tuple((f"f{i}", HUGE) for i in range(40))
    )
    payload = chatbot.payload(huge)
    jsonschema.validate(payload, SCHEMA)
    assert len(payload["content"]["title"]) == chatbot.TITLE
    assert len(payload["content"]["description"]) == chatbot.DESCRIPTION
    assert len(payload["metadata"]["additionalContext"]) <= chatbot.CONTEXT_KEYS
    assert len(json.dumps(payload).encode()) < 256 * 1024


def test_ids_are_unique_and_a_runs_messages_share_a_thread() -> None:
    names = [
        "opsflow/run_progress_checkpoint.json",
        "stepfunctions/execution_failed.json",
        "stepfunctions/execution_succeeded.json",
    ]
    payloads = []
    for name in names:
        built = build_message(event(name))
        assert built is not None
        payloads.append(chatbot.payload(built))
    for payload in payloads:
        jsonschema.validate(payload, SCHEMA)
    assert {p["metadata"]["threadId"] for p in payloads} == {"ami-bake-3f0c9a1d2b4e5f60718293a4"}
    assert len({p["id"] for p in payloads}) == len(payloads)


def test_channel_config() -> None:
    [channel] = parse_channels(json.dumps([{"name": "q", "platform": "chatbot", "topic_arn": TOPIC}]))
    assert channel.topic_arn == TOPIC
    parse_channels(
        json.dumps(
            [
                {
                    "name": "q",
                    "platform": "chatbot",
                    "topic_arn": "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t",
                }
            ]
        )
    )
    with pytest.raises(ValidationError, match="topic_arn"):
        parse_channels(json.dumps([{"name": "q", "platform": "chatbot"}]))
    for bad in ["arn:aws:sqs:eu-west-1:123456789012:q", "arn:aws:sns:eu-west-1:1234:t", "opsflow-chatbot"]:
        with pytest.raises(ValidationError, match="not an SNS topic ARN"):
            parse_channels(json.dumps([{"name": "q", "platform": "chatbot", "topic_arn": bad}]))
    with pytest.raises(ValidationError, match="not a secret"):
        parse_channels(
            json.dumps(
                [{"name": "q", "platform": "chatbot", "topic_arn": TOPIC, "webhook_secret": "opsflow/x"}]
            )
        )
    with pytest.raises(ValidationError, match="topic_arn is for platform chatbot"):
        parse_channels(
            json.dumps(
                [{"name": "s", "platform": "slack", "webhook_secret": "opsflow/x", "topic_arn": TOPIC}]
            )
        )


def _error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Publish"
    )


def test_publish_retries_throttling_and_not_a_missing_grant() -> None:
    sent: list[tuple[str, str]] = []
    failures = [_error("Throttling", 400)]

    def publisher(topic: str, body: str) -> None:
        if failures:
            raise failures.pop(0)
        sent.append((topic, body))

    waits: list[float] = []
    assert publish(TOPIC, {"version": "1.0"}, publisher=publisher, sleep=waits.append) == 2
    assert waits == [1.0]
    assert sent == [(TOPIC, '{"version": "1.0"}')]

    failures[:] = [_error("AuthorizationError", 403)]
    with pytest.raises(DeliveryFailed, match="AuthorizationError"):
        publish(TOPIC, {}, publisher=publisher, sleep=waits.append)


def test_notifier_publishes_chatbot_channels_and_dead_letters_failures() -> None:
    channels = parse_channels(json.dumps([{"name": "q", "platform": "chatbot", "topic_arn": TOPIC}]))
    sent: list[dict[str, Any]] = []

    def publisher(topic: str, body: str) -> None:
        sent.append(json.loads(body))

    def no_secret(channel: Any) -> str:
        raise AssertionError("a chatbot channel has no secret")

    queue = Queue()
    notifier = Notifier(channels=channels, secret=no_secret, dead_letters=queue, publisher=publisher)
    outcomes = notifier.notify(event("stepfunctions/execution_failed.json"))
    assert outcomes == [{"channel": "q", "outcome": "delivered", "attempts": 1}]
    jsonschema.validate(sent[0], SCHEMA)

    def refuse(topic: str, body: str) -> None:
        raise _error("NotFound", 404)

    notifier.publisher = refuse
    [outcome] = notifier.notify(event("stepfunctions/execution_failed.json"))
    assert outcome["outcome"] == "dead-lettered"
    parked_id = next(iter(queue.messages.values()))["payload"]["id"]
    notifier.publisher = publisher
    assert notifier.redrive() == {"delivered": 1, "failed": 0}
    assert sent[1]["id"] == parked_id  # redrive sends the same notification again
