"""The runs and locks stores' contracts, held by the DynamoDB stores (on tables as the template declares
them) and their in-memory twins alike: conditional writes, expiry and the newest runs by target or workflow."""

from __future__ import annotations

import time

import boto3
import pytest

from opsflow.store.locks import DynamoLockStore, InMemoryLockStore, LockStore
from opsflow.store.runs import (
    FAILED,
    RUNNING,
    DynamoRunStore,
    InMemoryRunStore,
    Requester,
    Run,
    RunExists,
    RunStore,
    StepOutcome,
)

from .conftest import table_from_template

pytestmark = pytest.mark.usefixtures("mocked_aws")


@pytest.fixture(params=["dynamodb", "memory"])
def runs(request: pytest.FixtureRequest) -> RunStore:
    if request.param == "memory":
        return InMemoryRunStore()
    return DynamoRunStore(boto3.client("dynamodb"), table_from_template("RunsTable"))


@pytest.fixture(params=["dynamodb", "memory"])
def locks(request: pytest.FixtureRequest) -> LockStore:
    if request.param == "memory":
        return InMemoryLockStore()
    return DynamoLockStore(boto3.client("dynamodb"), table_from_template("LocksTable"))


def a_run(
    run_id: str = "ami-bake-1", target: str = "asg:web", workflow: str = "ami_bake", at: str = "t0"
) -> Run:
    return Run(
        run_id,
        workflow,
        target,
        RUNNING,
        Requester("iam", "arn:aws:iam::123456789012:user/alice"),
        {"workflow": workflow, "keep_images": 5},
        "hash-1",
        at,
        at,
        plan={"actions": ["bake"]},
    )


def test_runs_round_trip_and_refuse_a_second_create(runs: RunStore) -> None:
    runs.create(a_run())
    with pytest.raises(RunExists) as exists:
        runs.create(a_run())
    assert exists.value.existing == a_run()
    runs.set_execution("ami-bake-1", "arn:execution")
    runs.record_step("ami-bake-1", StepOutcome("check_image", "waiting", "t1", "pending"))
    runs.record_step("ami-bake-1", StepOutcome("check_image", "succeeded", "t2", "available"))
    runs.finish("ami-bake-1", FAILED, error={"step": "publish", "message": "boom"})
    run = runs.get("ami-bake-1")
    assert run is not None
    assert run.execution_arn == "arn:execution"
    assert [(s.step, s.status, s.attempts) for s in run.steps] == [("check_image", "succeeded", 2)]
    assert (run.status, run.error) == (FAILED, {"step": "publish", "message": "boom"})
    assert run.request == {"workflow": "ami_bake", "keep_images": 5}
    assert runs.get("nope") is None


def test_the_newest_runs_of_a_target_or_a_workflow_come_first(runs: RunStore) -> None:
    runs.create(a_run("bake-old", at="2026-01-01T00:00:00Z"))
    runs.create(a_run("bake-new", at="2026-01-02T00:00:00Z"))
    runs.create(a_run("refresh", workflow="asg_refresh", at="2026-01-03T00:00:00Z"))
    runs.create(a_run("other-group", target="asg:api", at="2026-01-04T00:00:00Z"))

    assert [r.run_id for r in runs.recent(target="asg:web")] == ["refresh", "bake-new", "bake-old"]
    assert [r.run_id for r in runs.recent(target="asg:web", workflow="ami_bake")] == ["bake-new", "bake-old"]
    assert [r.run_id for r in runs.recent(workflow="ami_bake")] == ["other-group", "bake-new", "bake-old"]
    assert [r.run_id for r in runs.recent(limit=2)] == ["other-group", "refresh"]


def test_a_claim_and_a_conditional_finish_hold_only_while_the_run_runs(runs: RunStore) -> None:
    runs.create(a_run())

    assert runs.claim("ami-bake-1", "retiring_blue")
    assert runs.finish("ami-bake-1", "ABORTED", error={"message": "aborted"}, if_status=RUNNING)
    assert not runs.finish("ami-bake-1", "SUCCEEDED", result={}, if_status=RUNNING)
    assert not runs.claim("ami-bake-1", "something_else")

    run = runs.get("ami-bake-1")
    assert run is not None
    assert (run.status, run.mark) == ("ABORTED", "retiring_blue")


def test_one_run_per_target_and_only_the_holder_releases(locks: LockStore) -> None:
    assert locks.acquire("asg:web", "run-a", 600) is None
    assert locks.acquire("asg:web", "run-a", 600) is None  # re-entrant for the same run
    held = locks.acquire("asg:web", "run-b", 600)
    assert held is not None
    assert held.run_id == "run-a"
    locks.release("asg:web", "run-b")
    assert locks.holder("asg:web").run_id == "run-a"  # type: ignore[union-attr]
    locks.release("asg:web", "run-a")
    assert locks.acquire("asg:web", "run-b", 600) is None


def test_an_expired_lock_is_taken_over_even_before_ttl_deletion(locks: LockStore) -> None:
    assert locks.acquire("asg:web", "crashed-run", 1) is None
    time.sleep(1.1)
    assert locks.holder("asg:web") is None
    assert locks.acquire("asg:web", "next-run", 600) is None
