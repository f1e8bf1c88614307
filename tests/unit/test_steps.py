from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from opsflow.errors import AwsTransient, ImageFailed, LockLost, TransientRetriesExhausted
from opsflow.runs.steps import RunState, StepResult, StepRunner, UnknownStep
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


class Baked(StepResult):
    image_id: str


class BakeState(RunState):
    image: Baked | None = None


def test_a_typed_step_gets_its_state_validated_and_its_result_dumped_without_the_audit_fields() -> None:
    runs = store_with_run()
    seen: list[BakeState] = []

    def publish(state: BakeState) -> Baked:
        seen.append(state)
        assert state.image is not None
        return Baked(image_id=state.image.image_id, summary="published", milestones=["image ready"])

    runner = StepRunner({"publish": publish}, runs, state_model=BakeState)
    start = {
        "run_id": "r1",
        "workflow": "ami_bake",
        "target": "asg:web",
        "image": {"image_id": "ami-1"},
        "x": 1,
    }
    state = runner({"step": "publish", "result_key": "published", "state": start})

    assert isinstance(seen[0].image, Baked)
    assert seen[0].image.image_id == "ami-1"
    assert state == {**start, "published": {"image_id": "ami-1"}}  # unmodelled fields pass through
    assert [(o.status, o.summary) for o in runs.get("r1").steps] == [  # type: ignore[union-attr]
        ("milestone", "image ready"),
        ("succeeded", "published"),
    ]


def test_a_state_that_does_not_fit_the_model_fails_the_step_and_is_recorded() -> None:
    runs = store_with_run()
    runner = StepRunner({"publish": lambda state: Baked(image_id="x")}, runs, state_model=BakeState)
    with pytest.raises(ValidationError):
        runner(
            {
                "step": "publish",
                "state": {"run_id": "r1", "workflow": "ami_bake", "target": "asg:web", "image": 7},
            }
        )
    assert runs.get("r1").steps[-1].status == "failed"  # type: ignore[union-attr]


def test_rollback_is_told_the_step_that_failed_from_the_run_record() -> None:
    runs = store_with_run()
    told: list[str | None] = []

    def create_image(_: RunState) -> StepResult:
        raise ImageFailed("disk error")

    def rollback(state: RunState) -> StepResult:
        told.append(state.failed_step)
        return StepResult(summary="nothing to undo")

    runner = StepRunner({"create_image": create_image, "rollback": rollback}, runs, state_model=RunState)
    start = {"run_id": "r1", "workflow": "ami_bake", "target": "asg:web"}
    with pytest.raises(ImageFailed):
        runner({"step": "create_image", "state": start})
    caught = {**start, "error": {"Error": "ImageFailed", "Cause": "{}"}}
    state = runner({"step": "rollback", "state": caught})
    assert told == ["create_image"]
    assert state["failed_step"] == "create_image"


def test_a_step_that_never_reached_the_runner_is_named_after_the_last_that_ran() -> None:
    runs = store_with_run()
    runner = StepRunner(
        {"guard": lambda s: StepResult(), "rollback": lambda s: StepResult()}, runs, state_model=RunState
    )
    start = {"run_id": "r1", "workflow": "ami_bake", "target": "asg:web"}
    runner({"step": "guard", "state": start})
    # The next step's Lambda timed out: Step Functions caught States.Timeout, the runner never saw it.
    state = runner({"step": "rollback", "state": {**start, "error": {"Error": "States.Timeout"}}})
    assert state["failed_step"] == "unknown (after guard)"


def test_a_rollback_retried_after_failing_once_is_still_told_the_step_that_failed_first() -> None:
    runs = store_with_run()
    attempts: list[str | None] = []

    def watch(_: RunState) -> StepResult:
        raise ImageFailed("alarm fired")

    def rollback(state: RunState) -> StepResult:
        attempts.append(state.failed_step)
        if len(attempts) == 1:
            raise RuntimeError("throttled")
        return StepResult()

    runner = StepRunner({"watch": watch, "rollback": rollback}, runs, state_model=RunState)
    start = {"run_id": "r1", "workflow": "ecs_blue_green", "target": "ecs:prod/web"}
    with pytest.raises(ImageFailed):
        runner({"step": "watch", "state": start})
    caught = {**start, "error": {"Error": "ImageFailed"}}
    with pytest.raises(RuntimeError):
        runner({"step": "rollback", "state": caught})
    runner({"step": "rollback", "state": caught})
    assert attempts == ["watch", "watch"]


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def throttled(_: Any) -> dict[str, Any]:
    raise AwsTransient("ModifyListener", "Throttling", "Rate exceeded")


def test_a_throttled_step_is_handed_back_to_the_retrier_and_recorded_as_retrying() -> None:
    runs, clock = store_with_run(), Clock()
    calls = iter([throttled, throttled, lambda s: {"summary": "20% of traffic on green"}])
    runner = StepRunner({"shift": lambda s: next(calls)(s)}, runs, transient_retry_seconds=300, now=clock)
    for _ in range(2):
        with pytest.raises(AwsTransient):
            runner({"step": "shift", "state": {"run_id": "r1"}})
        clock.advance(10)
    runner({"step": "shift", "state": {"run_id": "r1"}})
    outcomes = [(o.status, o.summary) for o in runs.get("r1").steps]  # type: ignore[union-attr]
    assert outcomes == [
        ("retrying", "ModifyListener failed: Throttling: Rate exceeded; retrying"),
        ("retrying", "ModifyListener failed: Throttling: Rate exceeded; retrying"),
        ("succeeded", "20% of traffic on green"),
    ]


def test_a_step_throttled_past_its_budget_fails_with_an_error_no_retrier_matches() -> None:
    runs, clock = store_with_run(), Clock()
    runner = StepRunner({"shift": throttled}, runs, transient_retry_seconds=300, now=clock)
    for _ in range(3):
        with pytest.raises(AwsTransient):
            runner({"step": "shift", "state": {"run_id": "r1"}})
        clock.advance(120)
    with pytest.raises(TransientRetriesExhausted, match="still failing after 360 s of retries"):
        runner({"step": "shift", "state": {"run_id": "r1"}})
    assert runs.get("r1").steps[-1].status == "failed"  # type: ignore[union-attr]


def test_the_budget_counts_only_the_current_streak() -> None:
    runs, clock = store_with_run(), Clock()
    outcomes = iter([throttled, lambda s: {}, throttled])
    runner = StepRunner({"watch": lambda s: next(outcomes)(s)}, runs, transient_retry_seconds=300, now=clock)
    with pytest.raises(AwsTransient):
        runner({"step": "watch", "state": {"run_id": "r1"}})
    clock.advance(250)
    runner({"step": "watch", "state": {"run_id": "r1"}})
    clock.advance(250)
    # 500 s after the first throttle, but the streak began just now: retried, not given up.
    with pytest.raises(AwsTransient):
        runner({"step": "watch", "state": {"run_id": "r1"}})


def test_rollback_rides_out_a_throttle_three_times_as_long() -> None:
    runs, clock = store_with_run(), Clock()
    runner = StepRunner({"rollback": throttled}, runs, transient_retry_seconds=300, now=clock)
    for _ in range(4):
        with pytest.raises(AwsTransient):
            runner({"step": "rollback", "state": {"run_id": "r1", "failed_step": "shift"}})
        clock.advance(250)
    with pytest.raises(TransientRetriesExhausted):
        runner({"step": "rollback", "state": {"run_id": "r1", "failed_step": "shift"}})


def test_a_step_whose_retries_ran_out_in_the_state_machine_is_the_one_rollback_is_told() -> None:
    runs = store_with_run()
    runner = StepRunner({"shift": throttled, "rollback": lambda s: {"failed": s["failed_step"]}}, runs)
    with pytest.raises(AwsTransient):
        runner({"step": "shift", "state": {"run_id": "r1"}})
    state = runner({"step": "rollback", "state": {"run_id": "r1"}})
    assert state["rollback"] == {"failed": "shift"}
