"""Slack's Web API with a bot token: chat.postMessage, so that the messages of a run share a thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from opsflow.notify.delivery import DeliveryFailed


def _client(api_url: str, token: str) -> WebClient:
    return WebClient(
        token=token,
        base_url=api_url,
        timeout=10,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=3),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


@contextmanager
def _as_delivery_failure(what: str) -> Iterator[None]:
    """Slack's refusal or an unreachable Slack, as DeliveryFailed, saying only Slack's error code."""
    try:
        yield
    except SlackApiError as error:
        raise DeliveryFailed(
            f"Slack refused the {what}: {error.response.get('error', 'unknown error')}"
        ) from None
    except (SlackClientError, OSError, ValueError) as error:
        raise DeliveryFailed(f"could not reach Slack ({type(error).__name__})") from None


def post_message(
    *, api_url: str, token: str, channel: str, payload: dict[str, Any], thread_ts: str | None = None
) -> str:
    """Post `payload` (a Slack webhook body) and return the message's ts. 429 (as Slack's Retry-After
    asks), 5xx and connection errors are retried by slack_sdk's retry handlers."""
    with _as_delivery_failure("message"):
        response = _client(api_url, token).chat_postMessage(
            channel=channel, text=payload["text"], attachments=payload.get("attachments"), thread_ts=thread_ts
        )
    return str(response["ts"])


def update_message(*, api_url: str, token: str, channel: str, ts: str, payload: dict[str, Any]) -> None:
    """Replace the message `ts` with `payload` (chat.update: the bot may edit its own messages)."""
    with _as_delivery_failure("update"):
        _client(api_url, token).chat_update(
            channel=channel, ts=ts, text=payload["text"], attachments=payload.get("attachments")
        )
