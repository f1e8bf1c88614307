"""What the notify function remembers, held by the idempotency table (as the template declares it) and by
its in-memory twin alike: an event once per channel, a burst's entries once per part and state, and the
two messages of a burst a channel may be sent."""

from __future__ import annotations

import time

import boto3
import pytest

from opsflow.store.notify_state import (
    BURST_SECONDS,
    DynamoNotifyState,
    InMemoryNotifyState,
    NotifyState,
)

from .conftest import table_from_template

pytestmark = pytest.mark.usefixtures("mocked_aws")
KEY = "codepipeline:123456789012:us-east-1:web:e-1"


@pytest.fixture(params=["dynamodb", "memory"])
def state(request: pytest.FixtureRequest) -> NotifyState:
    if request.param == "memory":
        return InMemoryNotifyState()
    return DynamoNotifyState(boto3.client("dynamodb"), table_from_template("IdempotencyTable"))


def test_an_event_is_delivered_to_a_channel_once_remembered(state: NotifyState) -> None:
    assert not state.delivered("e-1", "ops")

    state.remember("e-1", "ops")

    assert state.delivered("e-1", "ops")
    assert not state.delivered("e-1", "oncall")
    assert not state.delivered("e-2", "ops")


def test_an_expired_delivery_counts_as_gone_before_dynamodb_deletes_it() -> None:
    table = table_from_template("IdempotencyTable")
    state = DynamoNotifyState(boto3.client("dynamodb"), table)
    boto3.client("dynamodb").put_item(
        TableName=table,
        Item={"id": {"S": "notify-event#e-1#ops"}, "expiration": {"N": str(int(time.time()) - 1)}},
    )

    assert not state.delivered("e-1", "ops")


def test_a_burst_keeps_one_entry_per_part_and_state(state: NotifyState) -> None:
    state.fold(KEY, "#STARTED", "run started")
    state.fold(KEY, "Build / CodeBuild#FAILED", "build failed")

    again = state.fold(KEY, "Build / CodeBuild#FAILED", "build failed, delivered again")

    assert sorted(again) == ["build failed", "run started"]
    assert sorted(state.entries(KEY)) == sorted(again)
    assert state.entries("codepipeline:other") == []


def test_first_is_granted_once_and_not_after_last(state: NotifyState) -> None:
    assert state.claim(KEY, "ops", "first", "e-1")
    assert not state.claim(KEY, "ops", "first", "e-2")
    assert state.claim(KEY, "ops", "last", "e-3")
    assert not state.claim(KEY, "ops", "last", "e-4")
    assert state.claim(KEY, "oncall", "first", "e-2")


def test_last_takes_first_with_it(state: NotifyState) -> None:
    assert state.claim(KEY, "ops", "last", "e-1")

    assert not state.claim(KEY, "ops", "first", "e-2")


def test_a_claim_is_granted_again_to_the_event_that_took_it(state: NotifyState) -> None:
    """A retried invocation finishes what the one that died had claimed."""
    assert state.claim(KEY, "ops", "first", "e-1")
    assert state.claim(KEY, "ops", "first", "e-1")
    assert state.claim(KEY, "ops", "last", "e-6")
    assert state.claim(KEY, "ops", "last", "e-6")
    assert not state.claim(KEY, "ops", "last", "e-7")


def test_the_slack_message_of_a_burst_is_kept_per_channel(state: NotifyState) -> None:
    state.claim(KEY, "bot", "first", "e-1")
    assert state.parent(KEY, "bot") is None

    state.set_parent(KEY, "bot", "1800000000.000001")

    assert state.parent(KEY, "bot") == "1800000000.000001"
    assert state.parent(KEY, "other") is None


def test_items_live_under_the_notify_prefixes_and_expire() -> None:
    table = table_from_template("IdempotencyTable")
    state = DynamoNotifyState(boto3.client("dynamodb"), table)
    state.remember("e-1", "ops")
    state.fold(KEY, "#STARTED", "run started")
    state.claim(KEY, "ops", "first", "e-1")

    items = boto3.client("dynamodb").scan(TableName=table)["Items"]

    assert sorted(item["id"]["S"] for item in items) == [
        f"notify-burst#{KEY}",
        f"notify-burst#{KEY}#ops",
        "notify-event#e-1#ops",
    ]
    burst = next(item for item in items if item["id"]["S"] == f"notify-burst#{KEY}")
    assert int(burst["expiration"]["N"]) == pytest.approx(time.time() + BURST_SECONDS, abs=60)
