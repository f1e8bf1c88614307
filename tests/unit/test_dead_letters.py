"""The redrive every dead-letter queue shares, with an in-memory queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opsflow.runs.dead_letters import Redriven, original_event, redrive

EVENTS = Path(__file__).resolve().parents[2] / "events"


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


class Queue:
    """Keeps what it is sent; every receive sees everything not deleted (no visibility timeout)."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.messages = {str(i): body for i, body in enumerate(bodies)}

    def send(self, body: dict[str, Any]) -> None:
        self.messages[str(len(self.messages))] = body

    def receive(self) -> list[tuple[str, dict[str, Any]]]:
        return list(self.messages.items())[:10]

    def delete(self, receipt: str) -> None:
        del self.messages[receipt]


def test_an_event_eventbridge_parked_is_the_event_itself() -> None:
    aborted = event("stepfunctions/execution_aborted.json")
    assert original_event(aborted) == aborted


def test_an_event_lambda_parked_is_unwrapped_from_its_invocation_record() -> None:
    record = event("lambda/on_failure_run_ended.json")
    assert original_event(record) == event("stepfunctions/execution_aborted.json")


def test_what_is_handled_is_deleted_and_what_fails_again_stays() -> None:
    queue = Queue({"n": 1}, {"n": 2}, {"n": 3})
    seen: list[int] = []

    def handle(body: dict[str, Any]) -> bool:
        seen.append(body["n"])
        if body["n"] == 3:
            raise RuntimeError("still broken")
        return body["n"] == 1

    assert redrive(queue, handle) == Redriven(handled=1, failed=4)
    assert [body["n"] for body in queue.messages.values()] == [2, 3]
    # Once everything visible has failed again, the redrive stops instead of looping.
    assert seen == [1, 2, 3, 2, 3]


def test_more_than_a_batch_is_redriven() -> None:
    queue = Queue(*({"n": n} for n in range(25)))
    assert redrive(queue, lambda body: True) == Redriven(handled=25, failed=0)
    assert queue.messages == {}
