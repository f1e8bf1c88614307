"""Delivery to a webhook: retries that honour Retry-After, no retry for a refusal, and no URL in errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from opsflow.notify.delivery import DeliveryFailed, HttpResponse, deliver

SECRET_URL = "https://hooks.slack.com/services/T000/B000/very-secret-token"


class Webhook:
    def __init__(self, *responses: HttpResponse) -> None:
        self.responses = list(responses)
        self.received: list[bytes] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        self.received.append(body)
        return self.responses.pop(0)


def test_429_then_200_delivers_once_after_the_wait_it_asked_for() -> None:
    webhook = Webhook(HttpResponse(429, {"Retry-After": "7"}, "slow down"), HttpResponse(200, {}, "ok"))
    waits: list[float] = []
    assert deliver(SECRET_URL, {"text": "hi"}, post=webhook, sleep=waits.append) == 2
    assert waits == [7.0]
    assert len(webhook.received) == 2  # the refused try and the delivered one: one message arrives


def test_5xx_is_retried_with_backoff_then_fails_without_the_url() -> None:
    webhook = Webhook(*[HttpResponse(503, {}, "unavailable")] * 4)
    waits: list[float] = []
    with pytest.raises(DeliveryFailed) as failed:
        deliver(SECRET_URL, {"text": "hi"}, post=webhook, sleep=waits.append, max_attempts=4)
    assert waits == [1.0, 2.0, 4.0]
    assert "503" in failed.value.message
    assert "very-secret-token" not in failed.value.message


def test_a_refusal_is_not_retried() -> None:
    webhook = Webhook(HttpResponse(400, {}, "invalid_blocks"), HttpResponse(200, {}, "ok"))
    with pytest.raises(DeliveryFailed, match="invalid_blocks"):
        deliver(SECRET_URL, {"text": "hi"}, post=webhook, sleep=lambda s: None)
    assert len(webhook.received) == 1


def test_a_connection_error_is_retried() -> None:
    calls: list[int] = []

    def flaky(url: str, body: bytes, headers: Mapping[str, Any]) -> HttpResponse:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionResetError("reset")
        return HttpResponse(200, {}, "ok")

    assert deliver(SECRET_URL, {}, post=flaky, sleep=lambda s: None) == 2


def test_an_invalid_url_is_reported_without_quoting_it() -> None:
    def refuse(url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        raise ValueError(f"unknown url type: {url!r}")

    with pytest.raises(DeliveryFailed) as failed:
        deliver("hooks.slack.com/services/T0/B0/very-secret-token", {}, post=refuse, sleep=lambda s: None)
    assert "very-secret-token" not in str(failed.value)
    assert "not valid" in failed.value.message


def test_no_retry_waits_past_the_deadline() -> None:
    webhook = Webhook(*[HttpResponse(429, {"Retry-After": "20"}, "slow down")] * 4)
    waits: list[float] = []
    now = [100.0]
    with pytest.raises(DeliveryFailed, match="no time left"):
        deliver(SECRET_URL, {}, post=webhook, sleep=waits.append, deadline=110.0, clock=lambda: now[0])
    assert waits == []
    assert len(webhook.received) == 1
