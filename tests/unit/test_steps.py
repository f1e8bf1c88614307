from __future__ import annotations

import time
from typing import Any

import pytest

from opsflow.errors import ImageFailed, LockLost
from opsflow.runs.steps import StepRunner, UnknownStep
from opsflow.store.locks import InMemoryLockStore
from opsflow.store.runs import RUNNING, InMemoryRunStore, Requester, Run


def store_with_run() -> InMemoryRunStore:
    runs = InMemoryRunStore()
    runs.create(Run("r1", "ami_bake", "asg:web", RUNNING, Requester("iam", "alice"), {}, "h", "t0", "t0"))
    return runs


def test_result_goes_under_its_key_and_the_outcome_is_recorded() -> None:
    runs = store_with_run()
    runner = StepRunner({"create_image": lambda s: {"image_id": "ami-1", "summary": "creating ami-1"}}, runs)
    state = runner({"step": "create_image", "result_key": "image", "state": {"run_id": "r1", "x": 1}})
    assert state == {"run_id": "r1", "x": 1, "image": {"image_id": "ami-1"}}
    [outcome] = runs.get("r1").steps  # type: ignore[union-attr]
    assert (outcome.step, outcome.status, outcome.summary) == ("create_image", "succeeded", "creating ami-1")


def test_a_polling_loop_is_one_entry_with_its_attempts() -> None:
    runs = store_with_run()
    states = iter(["pending", "pending", "available"])

    def check(_: dict[str, Any]) -> dict[str, Any]:
        state = next(states)
        return {"state": state, "waiting": state != "available"}

    runner = StepRunner({"check_image": check}, runs)
    for _ in range(3):
        runner({"step": "check_image", "result_key": "image", "state": {"run_id": "r1"}})
    [outcome] = runs.get("r1").steps  # type: ignore[union-attr]
    assert (outcome.status, outcome.attempts) == ("succeeded", 3)


def test_a_failing_step_is_recorded_and_re_raised_with_its_own_type() -> None:
    runs = store_with_run()

    def check(_: dict[str, Any]) -> dict[str, Any]:
        raise ImageFailed("image ami-1 ended failed: disk error")

    with pytest.raises(ImageFailed):
        StepRunner({"check_image": check}, runs)({"step": "check_image", "state": {"run_id": "r1"}})
    [outcome] = runs.get("r1").steps  # type: ignore[union-attr]
    assert outcome.status == "failed"
    assert "disk error" in outcome.summary


def test_an_unknown_step_names_the_known_ones() -> None:
    with pytest.raises(UnknownStep, match="create_image"):
        StepRunner({"create_image": lambda s: {}}, store_with_run())({"step": "nope", "state": {}})


def test_every_step_renews_the_runs_lock() -> None:
    locks = InMemoryLockStore()
    assert locks.acquire("asg:web", "r1", 1) is None
    runner = StepRunner({"check_image": lambda s: {}}, store_with_run(), locks=locks, lock_ttl_seconds=3600)
    runner({"step": "check_image", "state": {"run_id": "r1", "target": "asg:web"}})
    held = locks.holder("asg:web")
    assert held is not None
    assert held.run_id == "r1"
    assert held.expires_at > time.time() + 3000


def test_a_run_that_lost_its_lock_stops_before_acting() -> None:
    locks = InMemoryLockStore()
    assert locks.acquire("asg:web", "someone-else", 3600) is None
    acted = []
    runner = StepRunner({"publish": lambda s: acted.append(1) or {}}, store_with_run(), locks=locks)
    with pytest.raises(LockLost, match="someone-else"):
        runner({"step": "publish", "state": {"run_id": "r1", "target": "asg:web"}})
    assert acted == []
