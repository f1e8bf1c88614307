"""Slack's Web API through slack_sdk, against the local sink (which answers as Slack does): a message
posted and edited in place, and Slack's refusals as DeliveryFailed naming Slack's error code only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsflow.notify import slack_api
from opsflow.notify.delivery import DeliveryFailed
from opsflow_local.sink import NotificationSink

TOKEN = "xoxb-0000-test-token"


@pytest.fixture
def sink() -> Iterator[NotificationSink]:
    server = NotificationSink().start()
    yield server
    server.stop()


def where(sink: NotificationSink) -> dict[str, str]:
    return {"api_url": f"{sink.base_url}/api/", "token": TOKEN, "channel": "C0DEPLOYS"}


def test_a_posted_message_is_edited_in_place(sink: NotificationSink) -> None:
    ts = slack_api.post_message(**where(sink), payload={"text": "⏳ Pipeline web-deploy: started"})

    slack_api.update_message(**where(sink), ts=ts, payload={"text": "❌ Pipeline web-deploy: failed"})

    (shown,) = sink.received
    assert (shown.ts, shown.text, shown.edits) == (ts, "❌ Pipeline web-deploy: failed", 1)


def test_an_update_of_a_message_slack_does_not_have_is_refused_naming_slacks_error(
    sink: NotificationSink,
) -> None:
    with pytest.raises(DeliveryFailed) as refused:
        slack_api.update_message(**where(sink), ts="1700000000.000001", payload={"text": "x"})

    assert refused.value.message == "Slack refused the update: message_not_found"
    assert TOKEN not in refused.value.message


def test_an_unreachable_slack_is_a_delivery_failure_without_the_url() -> None:
    with pytest.raises(DeliveryFailed) as failed:
        slack_api.post_message(
            api_url="http://127.0.0.1:9/api/", token=TOKEN, channel="C0DEPLOYS", payload={"text": "x"}
        )

    assert failed.value.message.startswith("could not reach Slack (")
