"""Microsoft Teams: an Adaptive Card (schema 1.5) in the envelope a Teams Workflows webhook accepts."""

from __future__ import annotations

from typing import Any

from opsflow.notify.message import Message, Status, truncate

CARD_VERSION = "1.5"
_COLOURS = {
    Status.SUCCEEDED: "Good",
    Status.FAILED: "Attention",
    Status.IN_PROGRESS: "Accent",
    Status.WARNING: "Warning",
    Status.INFO: "Default",
}
# Teams rejects messages over about 28 KB; these bounds keep a card well under it.
_TEXT, _FACT_VALUE, _FACTS, _ACTIONS = 2000, 500, 20, 6


def card(message: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": truncate(message.headline, 200),
            "size": "Large",
            "weight": "Bolder",
            "color": _COLOURS[message.status],
            "wrap": True,
        }
    ]
    if message.summary:
        body.append({"type": "TextBlock", "text": truncate(message.summary, _TEXT), "wrap": True})
    if message.facts:
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": truncate(label, 100), "value": truncate(value, _FACT_VALUE)}
                    for label, value in message.facts[:_FACTS]
                ],
            }
        )
    if message.cause:
        body.append({"type": "TextBlock", "text": "Why", "weight": "Bolder", "separator": True})
        body.append({"type": "TextBlock", "text": truncate(message.cause, _TEXT), "wrap": True})
    if message.next_step:
        body.append({"type": "TextBlock", "text": "Next", "weight": "Bolder"})
        body.append({"type": "TextBlock", "text": truncate(message.next_step, _TEXT), "wrap": True})
    context = " · ".join(
        part for part in (message.source, f"run {message.run_id}" if message.run_id else "") if part
    )
    if context:
        body.append(
            {
                "type": "TextBlock",
                "text": truncate(context, 300),
                "isSubtle": True,
                "size": "Small",
                "wrap": True,
            }
        )
    result: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
    }
    if message.links:
        result["actions"] = [
            {"type": "Action.OpenUrl", "title": truncate(link.label, 100), "url": link.url}
            for link in message.links[:_ACTIONS]
        ]
    return result


def payload(message: Message) -> dict[str, Any]:
    """The body a Teams Workflows "post to a channel when a webhook request is received" flow accepts."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card(message),
            }
        ],
    }
