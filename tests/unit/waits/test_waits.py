"""Waiting on events: a wait step records its token and looks once; the resume function ends each wait the
event is about, once, and drops the tokens Step Functions no longer knows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsflow.aws.target import Target
from opsflow.runs.steps import StepRunner
from opsflow.store.runs import RUNNING, InMemoryRunStore, Requester, Run
from opsflow.store.waiters import InMemoryWaiterStore
from opsflow.waits.awaiting import Await
from opsflow.waits.events import wakes
from opsflow.waits.resume import Resumer

EVENTS = Path(__file__).resolve().parents[3] / "events"
HOME = ("123456789012", "us-east-1")


class FakeTokens:
    """Step Functions' side: a token is answered once; after that (or once its wait timed out) it is stale."""

    def __init__(self, *stale: str) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self._done = set(stale)

    def succeed(self, token: str, output: str = "{}") -> bool:
        return self._answer(token, "success", output)

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._answer(token, error, cause)

    def _answer(self, token: str, outcome: str, text: str) -> bool:
        if token in self._done:
            return False
        self._done.add(token)
        self.sent.append((token, outcome, text))
        return True


def runner(ready: Any, waiters: InMemoryWaiterStore, tokens: FakeTokens) -> StepRunner:
    runs = InMemoryRunStore()
    runs.create(Run("r1", "ami_bake", "asg:web", RUNNING, Requester("iam", "alice"), {}, "h", "t0", "t0"))
    wait = Await(awaited=lambda state: [Target("image", state["image_id"])], ready=ready)
    return StepRunner({"await_image": wait}, runs, waiters=waiters, tokens=tokens)


def await_event(token: str = "token-1") -> dict[str, Any]:
    state = {"run_id": "r1", "image_id": "ami-1", "settings": {"reconcile_seconds": 300}}
    return {"step": "await_image", "state": state, "task_token": token}


def ami_event(state: str = "available", image_id: str = "ami-1", **where: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "ec2" / f"ami_{state}.json").read_text())
    event["detail"]["ImageId"] = image_id
    event.update(where)
    return dict(event)


def test_a_wait_records_its_token_under_what_it_awaits_and_waits() -> None:
    waiters, tokens = InMemoryWaiterStore(), FakeTokens()
    state = runner(lambda state: False, waiters, tokens)(await_event())
    (waiter,) = waiters.waiting_on("image:ami-1")
    assert (waiter.run_id, waiter.step, waiter.token) == ("r1", "await_image", "token-1")
    assert tokens.sent == []
    assert state["image_id"] == "ami-1", "the state passes through"


def test_a_wait_already_over_when_it_begins_ends_at_once() -> None:
    waiters, tokens = InMemoryWaiterStore(), FakeTokens()
    runner(lambda state: True, waiters, tokens)(await_event())
    assert [(token, outcome) for token, outcome, _ in tokens.sent] == [("token-1", "success")]
    assert waiters.waiting_on("image:ami-1") == []


def test_a_look_that_fails_ends_the_wait_so_the_next_step_meets_the_error() -> None:
    def broken(state: Any) -> bool:
        raise RuntimeError("DescribeImages failed")

    waiters, tokens = InMemoryWaiterStore(), FakeTokens()
    runner(broken, waiters, tokens)(await_event())
    assert len(tokens.sent) == 1


def test_a_wait_invoked_without_a_token_says_how_to_invoke_it() -> None:
    event = await_event()
    del event["task_token"]
    with pytest.raises(ValueError, match=r"waitForTaskToken"):
        runner(lambda state: False, InMemoryWaiterStore(), FakeTokens())(event)


def test_the_ami_event_ends_the_wait_once_and_a_repeat_delivery_changes_nothing() -> None:
    waiters, tokens = InMemoryWaiterStore(), FakeTokens()
    runner(lambda state: False, waiters, tokens)(await_event())
    resume = Resumer(waiters, tokens, *HOME)

    assert resume(ami_event()) == {"resumed": ["r1"], "stale": 0}
    assert resume(ami_event()) == {"resumed": [], "stale": 0}
    ((token, outcome, output),) = tokens.sent
    assert (token, outcome) == ("token-1", "success")
    assert json.loads(output)["what"] == "image ami-1 is available"


def test_a_token_whose_wait_timed_out_is_dropped() -> None:
    waiters, tokens = InMemoryWaiterStore(), FakeTokens("token-1")
    runner(lambda state: False, waiters, tokens)(await_event())
    assert Resumer(waiters, tokens, *HOME)(ami_event()) == {"resumed": [], "stale": 1}
    assert waiters.waiting_on("image:ami-1") == []


def test_a_failed_image_ends_the_wait_too_and_other_images_end_nothing() -> None:
    assert [w.awaited.key for w in wakes(ami_event("failed"), *HOME)] == ["image:ami-1"]
    assert wakes(ami_event(image_id="ami-2"), *HOME)[0].awaited.key == "image:ami-2"
    assert (
        wakes(
            {"detail-type": "EC2 AMI State Change", "detail": {"ImageId": "ami-1", "State": "pending"}}, *HOME
        )
        == []
    )
    assert wakes({"detail-type": "Something Else", "detail": {}}, *HOME) == []


def test_an_event_from_another_account_or_region_names_its_location() -> None:
    event = ami_event(account="111122223333", region="eu-west-1")
    assert wakes(event, *HOME)[0].awaited.key == "image:ami-1@111122223333/eu-west-1"


def instance_event(state: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "ec2" / "instance_state_change.json").read_text())
    event["detail"]["state"] = state
    return dict(event)


def test_an_instance_that_stopped_or_runs_ends_a_wait_on_it_and_one_on_its_way_does_not() -> None:
    [wake] = wakes(instance_event("stopped"), *HOME)
    assert (wake.awaited.key, wake.what, wake.failure) == (
        "instance:i-1234567890abcdef0",
        "instance i-1234567890abcdef0 is stopped",
        None,
    )
    assert wakes(instance_event("running"), *HOME)[0].awaited.key == "instance:i-1234567890abcdef0"
    assert wakes(instance_event("stopping"), *HOME) == []
    assert wakes(instance_event("pending"), *HOME) == []


def test_an_alarm_back_to_ok_ends_a_wait_for_it_and_not_a_gate() -> None:
    event = json.loads((EVENTS / "cloudwatch" / "alarm_state_change.json").read_text())
    event["detail"]["previousState"]["value"], event["detail"]["state"]["value"] = "ALARM", "OK"
    [wake] = wakes(event, *HOME)
    assert (wake.awaited.key, wake.failure) == ("alarm-ok:ServerCpuTooHigh", None)
