"""Dead-letter queues and their redrive: what EventBridge or Lambda could not deliver, or what a function
parked itself, kept until it is asked to be handled again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class DeadLetters(Protocol):
    def send(self, body: dict[str, Any]) -> None: ...

    def receive(self) -> list[tuple[str, dict[str, Any]]]:
        """Up to a batch of (receipt, body)."""

    def delete(self, receipt: str) -> None: ...


@dataclass(frozen=True)
class Redriven:
    handled: int
    failed: int


def original_event(body: dict[str, Any]) -> dict[str, Any]:
    """The event itself, whether EventBridge parked it as it was or Lambda's on-failure destination wrapped
    it in an invocation record (`requestPayload`, beside `requestContext` and the function's response)."""
    if "requestContext" in body and isinstance(body.get("requestPayload"), dict):
        return dict(body["requestPayload"])
    return body


def redrive(dead_letters: DeadLetters, handle: Callable[[dict[str, Any]], bool]) -> Redriven:
    """Hand each message's original event to `handle` and delete those it handled (it returned True). What
    fails again stays, for the next redrive."""
    handled = failed = 0
    while batch := dead_letters.receive():
        handled_now = 0
        for receipt, body in batch:
            try:
                ok = handle(original_event(body))
            except Exception:  # noqa: BLE001 - one bad message must not stop the redrive
                ok = False
            if ok:
                dead_letters.delete(receipt)
                handled += 1
                handled_now += 1
            else:
                failed += 1
        if handled_now == 0:
            break  # everything visible failed again: leave it for the next redrive
    return Redriven(handled=handled, failed=failed)
