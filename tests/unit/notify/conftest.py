from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from slack_sdk.models.blocks import Block

from opsflow.notify import teams


@pytest.fixture(scope="session")
def adaptive_card_schema() -> dict[str, Any]:
    """The published Adaptive Card schema for the version the Teams renderer declares."""
    path = resources.files("adaptive_cards") / "schemas" / f"schema-{teams.CARD_VERSION}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def assert_valid_slack(payload: dict[str, Any]) -> None:
    blocks = payload["attachments"][0]["blocks"]
    assert 1 <= len(blocks) <= 50
    for raw in blocks:
        # Parsing back through slack_sdk's models re-checks Slack's length limits.
        Block.parse(raw).validate_json()  # type: ignore[union-attr]
    assert len(payload["text"]) <= 3000


def assert_valid_card(payload: dict[str, Any], schema: dict[str, Any]) -> None:
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    jsonschema.validate(attachment["content"], schema)
    assert len(json.dumps(payload)) < 28_000  # Teams refuses larger messages
