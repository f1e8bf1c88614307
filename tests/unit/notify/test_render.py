"""Slack and Teams renderings stay within each platform's limits and schema, whatever the message."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from slack_sdk.errors import SlackObjectFormationError

from opsflow.notify import slack, teams
from opsflow.notify.message import Link, Message, Severity, Status

from .conftest import assert_valid_card, assert_valid_slack

HUGE = "x" * 10_000


def long_message() -> Message:
    return Message(
        title="AMI bake failed: " + HUGE,
        status=Status.FAILED,
        severity=Severity.CRITICAL,
        summary=HUGE,
        facts=tuple((f"fact {i} " + HUGE[:200], HUGE) for i in range(25)),
        cause=HUGE,
        next_step=HUGE,
        links=tuple(Link(f"link {i} " + HUGE[:100], f"https://example.com/{i}") for i in range(9)),
        run_id="ami-bake-1",
        source="Opsflow AMI bake",
    )


def test_long_fields_are_cut_to_slack_limits() -> None:
    payload = slack.payload(long_message())
    assert_valid_slack(payload)
    header = payload["attachments"][0]["blocks"][0]
    assert len(header["text"]["text"]) == 150
    assert header["text"]["text"].endswith("…")


def test_long_fields_are_cut_to_teams_limits(adaptive_card_schema: dict[str, Any]) -> None:
    assert_valid_card(teams.payload(long_message()), adaptive_card_schema)


@pytest.mark.parametrize("status", list(Status))
def test_status_reads_at_a_glance(status: Status, adaptive_card_schema: dict[str, Any]) -> None:
    message = Message(title="web", status=status, severity=Severity.INFO)
    slack_payload = slack.payload(message)
    card = teams.payload(message)["attachments"][0]["content"]
    assert slack_payload["attachments"][0]["color"].startswith("#")
    assert slack_payload["text"].startswith(message.headline[:1])
    assert card["body"][0]["color"] in {"Good", "Attention", "Accent", "Warning", "Default"}
    assert_valid_card(teams.payload(message), adaptive_card_schema)


def test_the_schema_check_itself_rejects_a_broken_card(adaptive_card_schema: dict[str, Any]) -> None:
    broken = teams.payload(Message(title="x", status=Status.INFO, severity=Severity.INFO))
    broken["attachments"][0]["content"]["body"][0]["size"] = "Gigantic"
    with pytest.raises(jsonschema.ValidationError):
        assert_valid_card(broken, adaptive_card_schema)


def test_the_slack_check_itself_rejects_an_oversized_header() -> None:
    payload = slack.payload(Message(title="x", status=Status.INFO, severity=Severity.INFO))
    payload["attachments"][0]["blocks"][0]["text"]["text"] = "y" * 151
    with pytest.raises(SlackObjectFormationError):
        assert_valid_slack(payload)
