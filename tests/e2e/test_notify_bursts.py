"""Quiet where it should be, on the embedded runtime: the template's CodePipeline rule delivers a failing
pipeline run's six events to the notify function (its role's policies held, its state in the idempotency
table), and the local Slack API and webhooks show what each channel would have shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed
from opsflow_local.sink import Notification

EXECUTION = "3137f7cb-8d49-4d8b-b7e3-3f8ba8d7c2a1"
CAUSE = "Build failed: npm test exited with 1"
FAILED = "Pipeline web-deploy: failed at Build / CodeBuild"
FUNCTION = "opsflow-NotifyFunction"
CHANNELS = [
    {
        "name": "bot",
        "platform": "slack",
        "bot_token_secret": "opsflow/slack-bot",
        "slack_channel": "C0DEPLOYS",
        "slack_api_url": "{local_sink}/api/",
    },
    {"name": "hook", "platform": "slack", "webhook_secret": "opsflow/slack-hook"},
    {"name": "cards", "platform": "teams", "webhook_secret": "opsflow/teams-cards"},
]


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws(parameters={"NotifyChannels": json.dumps(CHANNELS)}) as embedded:
        secrets = embedded.client("secretsmanager")
        secrets.create_secret(Name="opsflow/slack-bot", SecretString="xoxb-0000-test-token")
        secrets.create_secret(Name="opsflow/slack-hook", SecretString=embedded.sink.url("slack", "hook"))
        secrets.create_secret(Name="opsflow/teams-cards", SecretString=embedded.sink.url("teams", "cards"))
        yield embedded


def shown(notification: Notification) -> str:
    return json.dumps(notification.payload, ensure_ascii=False)


def in_channel(aws: EmbeddedAws, channel: str) -> list[Notification]:
    return [n for n in aws.notifications if n.channel == channel]


def failing_run(aws: EmbeddedAws) -> list[dict[str, Any]]:
    return seed.failing_pipeline_run(aws, "web-deploy", EXECUTION, CAUSE)


def test_a_failing_run_is_one_thread_with_a_bot_token_and_two_messages_by_webhook(aws: EmbeddedAws) -> None:
    aws.client("events").put_events(Entries=failing_run(aws))

    bot, hook, cards = (in_channel(aws, name) for name in ("C0DEPLOYS", "hook", "cards"))

    (parent, *replies) = bot
    assert parent.thread_ts is None
    # Replies: the action that failed, and the run's end.
    assert [reply.thread_ts for reply in replies] == [parent.ts, parent.ts]
    # The one message at the top is kept up to date by the five events after the first.
    assert parent.edits == 5
    assert parent.text == f"❌ {FAILED}"
    assert CAUSE in shown(parent)
    assert [n.text for n in hook] == ["⏳ Pipeline web-deploy: started", f"❌ {FAILED}"]
    assert [n.text for n in cards] == ["⏳ Pipeline web-deploy: started", f"❌ {FAILED}"]
    for last in (hook[-1], cards[-1]):
        assert last.text == f"❌ {FAILED}"
        assert CAUSE in shown(last)
        assert "Build / CodeBuild ❌" in shown(last)


def test_events_arriving_after_the_runs_end_correct_the_thread_and_add_no_webhook_message(
    aws: EmbeddedAws,
) -> None:
    """EventBridge does not keep order. Here the action's failure arrives after the run's end, later than
    the summary waits for it (the embedded runtime runs one invocation at a time; the wait for events
    arriving together is in tests/unit/notify/test_bursts.py)."""
    started, *middle, failed_action, stage_failed, run_failed = failing_run(aws)
    events = aws.client("events")
    events.put_events(Entries=[started, *middle, run_failed])
    events.put_events(Entries=[failed_action, stage_failed])

    hook = in_channel(aws, "hook")
    (parent, *replies) = in_channel(aws, "C0DEPLOYS")

    assert [n.text for n in hook] == [
        "⏳ Pipeline web-deploy: started",
        "❌ Pipeline web-deploy: failed",
    ]
    assert parent.text == f"❌ {FAILED}"
    assert CAUSE in shown(parent)
    assert [reply.thread_ts for reply in replies] == [parent.ts] * len(replies)


def test_an_event_delivered_twice_reaches_each_channel_once(aws: EmbeddedAws) -> None:
    """EventBridge delivers at least once: the second delivery of the same event (same id) is a repeat."""
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": aws.account_id,
        "time": "2026-12-03T10:00:00Z",
        "region": aws.region,
        "resources": [],
        "detail": {
            "build-status": "FAILED",
            "project-name": "web",
            "build-id": f"arn:aws:codebuild:{aws.region}:{aws.account_id}:build/web:42",
            "additional-information": {"build-number": 42, "phases": []},
        },
    }

    first = aws.lambdas.invoke(FUNCTION, event)
    again = aws.lambdas.invoke(FUNCTION, event)

    assert {o["outcome"] for o in first["outcomes"]} == {"delivered"}
    assert {o["outcome"] for o in again["outcomes"]} == {"duplicate"}
    assert [n.channel for n in aws.notifications] == ["C0DEPLOYS", "hook", "cards"]
