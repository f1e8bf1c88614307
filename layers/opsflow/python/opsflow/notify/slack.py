"""Slack Block Kit, built with slack_sdk's block models, which enforce Slack's length limits."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from opsflow.notify.message import Message, Status, truncate

# Slack's documented limits: header 150, section text 3000, a field 2000, 10 fields a section,
# 5 elements an actions block (25 since 2023, 5 keeps older clients happy), button text 75, url 3000.
_HEADER, _TEXT, _FIELD, _FIELDS, _BUTTONS, _BUTTON_TEXT, _URL = 150, 3000, 2000, 10, 5, 75, 3000
_COLOURS = {
    Status.SUCCEEDED: "#2eb67d",
    Status.FAILED: "#e01e5a",
    Status.IN_PROGRESS: "#36c5f0",
    Status.WARNING: "#ecb22e",
    Status.INFO: "#9a9a9a",
}


def blocks(message: Message) -> list[Block]:
    result: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(message.headline, _HEADER), emoji=True))
    ]
    if message.summary:
        result.append(SectionBlock(text=MarkdownTextObject(text=truncate(message.summary, _TEXT))))
    facts = list(message.facts)
    for start in range(0, len(facts), _FIELDS):
        result.append(
            SectionBlock(
                fields=[
                    MarkdownTextObject(text=truncate(f"*{label}*\n{value}", _FIELD))
                    for label, value in facts[start : start + _FIELDS]
                ]
            )
        )
    if message.cause:
        result.append(DividerBlock())
        result.append(SectionBlock(text=MarkdownTextObject(text=truncate(f"*Why*\n{message.cause}", _TEXT))))
    if message.next_step:
        result.append(
            SectionBlock(text=MarkdownTextObject(text=truncate(f"*Next*\n{message.next_step}", _TEXT)))
        )
    buttons = [
        ButtonElement(text=truncate(link.label, _BUTTON_TEXT), url=link.url[:_URL], action_id=f"link-{i}")
        for i, link in enumerate(message.links[:_BUTTONS])
    ]
    if buttons:
        result.append(ActionsBlock(elements=buttons))
    context = " · ".join(
        part for part in (message.source, f"run {message.run_id}" if message.run_id else "") if part
    )
    if context:
        result.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(context, _TEXT))]))
    return result[:50]


def payload(message: Message) -> dict[str, Any]:
    """An incoming-webhook (or chat.postMessage) body: `text` is the notification fallback; the
    coloured attachment bar shows the status at a glance."""
    return {
        "text": truncate(message.headline, _TEXT),
        "attachments": [
            {"color": _COLOURS[message.status], "blocks": [b.to_dict() for b in blocks(message)]}
        ],
    }
