"""Starting a run: guard, audit record, lock and StartExecution, with in-memory stores."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsflow.errors import Busy, IdempotencyConflict, NotOptedIn
from opsflow.runs.settle import settle_ended_run
from opsflow.runs.start import DEDUP_WINDOW_SECONDS, RunStarter
from opsflow.store.locks import InMemoryLockStore
from opsflow.store.runs import DRY_RUN, RUNNING, InMemoryRunStore, Requester
from opsflow.workflows.ami_bake.request import AmiBakeRequest

ALICE = Requester("iam", "arn:aws:iam::123456789012:user/alice")
BOB = Requester("iam", "arn:aws:iam::123456789012:user/bob")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:opsflow-AmiBake"


class FakeExecutions:
    def __init__(self, fail: bool = False) -> None:
        self.started: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = fail

    def start_execution(self, state_machine_arn: str, name: str, input: str) -> str:
        if self.fail:
            raise RuntimeError("StartExecution throttled")
        self.started.append((state_machine_arn, name, json.loads(input)))
        return f"arn:aws:states:us-east-1:123456789012:execution:opsflow-AmiBake:{name}"

    def find_execution(self, state_machine_arn: str, name: str) -> str | None:
        started = [n for _, n, _ in self.started]
        return (
            f"arn:aws:states:us-east-1:123456789012:execution:opsflow-AmiBake:{name}"
            if name in started
            else None
        )


def request(**overrides: Any) -> AmiBakeRequest:
    return AmiBakeRequest.model_validate(
        {"workflow": "ami_bake", "instance_id": "i-0123456789abcdef0", "asg_name": "web", **overrides}
    )


class Harness:
    def __init__(self, refuse: Exception | None = None, fail_start: bool = False) -> None:
        self.runs = InMemoryRunStore()
        self.locks = InMemoryLockStore()
        self.executions = FakeExecutions(fail=fail_start)
        self.now = 1_800_000_000.0
        self.preflights = 0

        def preflight(_: AmiBakeRequest) -> dict[str, Any]:
            self.preflights += 1
            if refuse:
                raise refuse
            return {"actions": ["bake"]}

        self.starter = RunStarter(
            runs=self.runs,
            locks=self.locks,
            executions=self.executions,
            preflight=preflight,
            state_machine_arns={"ami_bake": MACHINE},
            settings={"image_poll_seconds": 15},
            clock=lambda: self.now,
        )


def test_start_records_locks_and_starts_one_execution_named_after_the_run() -> None:
    h = Harness()
    started = h.starter.start(request(), ALICE)
    run = started.run
    assert started.created
    assert run.status == RUNNING
    assert h.runs.get(run.run_id) is not None
    assert h.locks.holder("asg:web").run_id == run.run_id  # type: ignore[union-attr]
    [(machine, name, payload)] = h.executions.started
    assert (machine, name) == (MACHINE, run.run_id)
    assert payload["request"]["instance_id"] == "i-0123456789abcdef0"
    assert payload["requester"] == ALICE.identity
    assert payload["settings"] == {"image_poll_seconds": 15}
    assert run.execution_arn
    assert run.execution_arn.endswith(run.run_id)


def test_same_idempotency_key_returns_the_same_run_without_a_second_execution() -> None:
    h = Harness()
    first = h.starter.start(request(), ALICE, idempotency_key="deploy-42")
    h.now += 3600
    again = h.starter.start(request(), ALICE, idempotency_key="deploy-42")
    assert again.run.run_id == first.run.run_id
    assert not again.created
    assert len(h.executions.started) == 1


def test_idempotency_key_reused_for_another_request_is_a_conflict() -> None:
    h = Harness()
    h.starter.start(request(), ALICE, idempotency_key="deploy-42")
    with pytest.raises(IdempotencyConflict):
        h.starter.start(request(keep_images=2), ALICE, idempotency_key="deploy-42")


def test_keys_are_per_requester() -> None:
    h = Harness()
    mine = h.starter.start(request(asg_name="a"), ALICE, idempotency_key="k")
    theirs = h.starter.start(request(asg_name="b"), BOB, idempotency_key="k")
    assert mine.run.run_id != theirs.run.run_id


def test_identical_requests_without_key_are_deduplicated_within_the_window_only() -> None:
    h = Harness()
    h.now = 1_800_000_000 - (1_800_000_000 % DEDUP_WINDOW_SECONDS)
    first = h.starter.start(request(), ALICE)
    double_click = h.starter.start(request(), ALICE)
    assert double_click.run.run_id == first.run.run_id
    h.locks.release("asg:web", first.run.run_id)
    h.now += DEDUP_WINDOW_SECONDS
    later = h.starter.start(request(), ALICE)
    assert later.run.run_id != first.run.run_id
    assert len(h.executions.started) == 2


def test_a_busy_target_is_refused_before_the_preflight_and_nothing_is_recorded() -> None:
    h = Harness()
    first = h.starter.start(request(), ALICE)
    second = request(keep_images=3)
    with pytest.raises(Busy, match=first.run.run_id):
        h.starter.start(second, BOB)
    assert len(h.executions.started) == 1
    assert h.preflights == 1
    assert h.runs.get(h.starter.run_id_for(second, BOB, "x", "k")) is None
    assert [r.run_id for r in h.runs._runs.values()] == [first.run.run_id]


def test_a_refused_preflight_creates_nothing() -> None:
    h = Harness(refuse=NotOptedIn("instance lacks the opt-in tag"))
    with pytest.raises(NotOptedIn):
        h.starter.start(request(), ALICE)
    assert h.executions.started == []
    assert h.locks.holder("asg:web") is None


def test_dry_run_records_the_plan_and_starts_nothing() -> None:
    h = Harness()
    started = h.starter.start(request(dry_run=True), ALICE)
    assert started.run.status == DRY_RUN
    assert started.run.plan == {"actions": ["bake"]}
    assert h.executions.started == []
    assert h.locks.holder("asg:web") is None


def test_a_failed_start_releases_the_lock_and_the_record_says_so() -> None:
    h = Harness(fail_start=True)
    with pytest.raises(RuntimeError):
        h.starter.start(request(), ALICE, idempotency_key="k")
    assert h.locks.holder("asg:web") is None
    replay = h.starter.start(request(), ALICE, idempotency_key="k")
    assert not replay.created
    assert replay.run.status == "FAILED"
    assert replay.run.error is not None
    assert "StartExecution throttled" in replay.run.error["message"]


def test_a_start_whose_answer_was_lost_is_not_marked_failed() -> None:
    h = Harness()

    def started_but_answer_lost(state_machine_arn: str, name: str, input: str) -> str:
        h.executions.started.append((state_machine_arn, name, json.loads(input)))
        raise TimeoutError("read timed out")

    h.executions.start_execution = started_but_answer_lost  # type: ignore[method-assign]
    started = h.starter.start(request(), ALICE)
    assert started.run.status == RUNNING
    assert started.run.execution_arn is not None
    assert started.run.execution_arn.endswith(started.run.run_id)
    assert h.locks.holder("asg:web").run_id == started.run.run_id  # type: ignore[union-attr]


def test_an_aborted_execution_frees_its_target_and_says_how_it_ended() -> None:
    h = Harness()
    run = h.starter.start(request(), ALICE).run
    assert settle_ended_run(run.run_id, "ABORTED", None, h.runs, h.locks)
    settled = h.runs.get(run.run_id)
    assert settled is not None
    assert settled.status == "ABORTED"
    assert settled.error is not None
    assert "ended ABORTED" in settled.error["message"]
    assert h.locks.holder("asg:web") is None
    assert not settle_ended_run(run.run_id, "ABORTED", None, h.runs, h.locks)  # only once


def test_a_run_that_finished_itself_is_left_alone() -> None:
    h = Harness()
    run = h.starter.start(request(), ALICE).run
    h.runs.finish(run.run_id, "FAILED", error={"step": "publish", "message": "boom"})
    assert not settle_ended_run(run.run_id, "FAILED", "States.Runtime", h.runs, h.locks)
    finished = h.runs.get(run.run_id)
    assert finished is not None
    assert finished.error == {"step": "publish", "message": "boom"}


def test_an_ended_run_is_recorded_ended_before_it_is_put_back_and_says_what_was_put_back() -> None:
    h = Harness()
    run = h.starter.start(request(), ALICE).run
    seen: list[str] = []

    def put_back(ended: Any) -> dict[str, Any]:
        # A step still in flight reads the run: it must already look ended.
        now = h.runs.get(ended.run_id)
        assert now is not None
        seen.append(now.status)
        return {
            "undone": ["listener back to 100% blue"],
            "problems": [],
            "live": "blue",
            "summary": "put back",
        }

    assert settle_ended_run(run.run_id, "ABORTED", "aborted by bob", h.runs, h.locks, put_back)

    settled = h.runs.get(run.run_id)
    assert settled is not None
    assert seen == ["ABORTED"]
    assert settled.error is not None
    assert settled.error["message"] == "aborted by bob. Then: put back"
    assert settled.error["rollback"] == {"undone": ["listener back to 100% blue"], "problems": []}
    assert settled.error["live"] == "blue"
    assert h.locks.holder("asg:web") is None


def test_a_put_back_that_fails_is_recorded_and_the_target_still_freed() -> None:
    h = Harness()
    run = h.starter.start(request(), ALICE).run

    def put_back(ended: Any) -> dict[str, Any]:
        raise RuntimeError("ModifyListener throttled")

    assert settle_ended_run(run.run_id, "TIMED_OUT", None, h.runs, h.locks, put_back)

    settled = h.runs.get(run.run_id)
    assert settled is not None
    assert settled.error is not None
    assert settled.error["rollback"]["problems"] == ["putting things back: ModifyListener throttled"]
    assert h.locks.holder("asg:web") is None
