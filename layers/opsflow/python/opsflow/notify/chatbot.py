"""AWS Chatbot (Amazon Q Developer in chat applications): a custom notification, published to an SNS topic
that a Chatbot channel configuration subscribes to. The event format is the documented one: `version`
"1.0" and `source` "custom" are required; the content is client markdown, which Chatbot renders in the
chat platform's own markdown; `metadata.threadId` threads a run's messages (where the channel's
preferences allow threads)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from opsflow.notify.message import Message, truncate

VERSION = "1.0"
SOURCE = "custom"
TEXT_TYPE = "client-markdown"  # the only text type Chatbot supports

# Opsflow's own bounds, well under SNS's 256 KB message limit and short enough to read in a chat.
TITLE, DESCRIPTION, SUMMARY, STEP, KEYWORD, CONTEXT_VALUE = 250, 8000, 500, 500, 50, 1000
STEPS, KEYWORDS, RESOURCES, CONTEXT_KEYS = 5, 10, 10, 20

# An ARN, for `relatedResources`; a link to a console page is not one.
_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:")


def _description(message: Message) -> str:
    lines = [message.summary] if message.summary else []
    lines += [f"*{label}:* {value}" for label, value in message.facts]
    if message.cause:
        lines.append(f"*Why:* {message.cause}")
    if message.links:
        # Plain URLs: every chat client links them, whatever its markdown.
        lines += [f"{link.label}: {link.url}" for link in message.links]
    # description is always given: a notification with nothing but a title says too little.
    return truncate("\n".join(lines) or message.title, DESCRIPTION)


def _keywords(message: Message) -> list[str]:
    candidates = [
        message.status.value,
        message.severity.value,
        message.workflow,
        message.environment,
        message.pipeline,
        message.project,
        message.application,
        message.repository,
    ]
    seen: list[str] = []
    for word in candidates:
        if word and word not in seen:
            seen.append(truncate(word, KEYWORD))
    return seen[:KEYWORDS]


def payload(message: Message, *, event_id: str | None = None) -> dict[str, Any]:
    """The custom notification for `message`. `id` is unique per message (a UUID unless given);
    `threadId` is the run id (or a pipeline execution's), so every message about it lands in one thread."""
    content: dict[str, Any] = {
        "textType": TEXT_TYPE,
        "title": truncate(message.headline, TITLE),
        "description": _description(message),
    }
    if message.next_step:
        content["nextSteps"] = [truncate(message.next_step, STEP)][:STEPS]
    keywords = _keywords(message)
    if keywords:
        content["keywords"] = keywords
    metadata: dict[str, Any] = {
        "summary": truncate(message.summary or message.title, SUMMARY),
        "eventType": truncate(message.source or "opsflow", 100),
    }
    if message.thread_key:
        metadata["threadId"] = message.thread_key
    resources = [value for value in message.extra.values() if _ARN.match(value)][:RESOURCES]
    if resources:
        metadata["relatedResources"] = resources
    context = {
        key: truncate(value, CONTEXT_VALUE)
        for key, value in (
            ("status", message.status.value),
            ("severity", message.severity.value),
            ("runId", message.run_id or ""),
            ("workflow", message.workflow or ""),
            ("environment", message.environment or ""),
            *((label, value) for label, value in message.facts),
        )
        if value
    }
    metadata["additionalContext"] = dict(list(context.items())[:CONTEXT_KEYS])
    return {
        "version": VERSION,
        "source": SOURCE,
        "id": event_id or str(uuid.uuid4()),
        "content": content,
        "metadata": metadata,
    }
