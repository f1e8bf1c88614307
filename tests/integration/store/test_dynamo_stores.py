"""The DynamoDB stores against moto's DynamoDB: conditional writes and expiry, as the design relies on."""

from __future__ import annotations

import time

import boto3
import pytest

from opsflow.store.locks import DynamoLockStore
from opsflow.store.runs import FAILED, RUNNING, DynamoRunStore, Requester, Run, RunExists, StepOutcome

pytestmark = pytest.mark.usefixtures("mocked_aws")


def table(name: str, key: str) -> str:
    boto3.client("dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def a_run(run_id: str = "ami-bake-1") -> Run:
    return Run(
        run_id,
        "ami_bake",
        "asg:web",
        RUNNING,
        Requester("iam", "arn:aws:iam::123456789012:user/alice"),
        {"workflow": "ami_bake", "keep_images": 5},
        "hash-1",
        "t0",
        "t0",
        plan={"actions": ["bake"]},
    )


def test_runs_round_trip_and_refuse_a_second_create() -> None:
    store = DynamoRunStore(boto3.client("dynamodb"), table("runs", "run_id"))
    store.create(a_run())
    with pytest.raises(RunExists) as exists:
        store.create(a_run())
    assert exists.value.existing == a_run()
    store.set_execution("ami-bake-1", "arn:execution")
    store.record_step("ami-bake-1", StepOutcome("check_image", "waiting", "t1", "pending"))
    store.record_step("ami-bake-1", StepOutcome("check_image", "succeeded", "t2", "available"))
    store.finish("ami-bake-1", FAILED, error={"step": "publish", "message": "boom"})
    run = store.get("ami-bake-1")
    assert run is not None
    assert run.execution_arn == "arn:execution"
    assert [(s.step, s.status, s.attempts) for s in run.steps] == [("check_image", "succeeded", 2)]
    assert (run.status, run.error) == (FAILED, {"step": "publish", "message": "boom"})
    assert run.request == {"workflow": "ami_bake", "keep_images": 5}
    assert store.get("nope") is None


def test_one_run_per_target_and_only_the_holder_releases() -> None:
    locks = DynamoLockStore(boto3.client("dynamodb"), table("locks", "target"))
    assert locks.acquire("asg:web", "run-a", 600) is None
    assert locks.acquire("asg:web", "run-a", 600) is None  # re-entrant for the same run
    held = locks.acquire("asg:web", "run-b", 600)
    assert held is not None
    assert held.run_id == "run-a"
    locks.release("asg:web", "run-b")
    assert locks.holder("asg:web").run_id == "run-a"  # type: ignore[union-attr]
    locks.release("asg:web", "run-a")
    assert locks.acquire("asg:web", "run-b", 600) is None


def test_an_expired_lock_is_taken_over_even_before_ttl_deletion() -> None:
    locks = DynamoLockStore(boto3.client("dynamodb"), table("locks", "target"))
    assert locks.acquire("asg:web", "crashed-run", 1) is None
    time.sleep(1.1)
    assert locks.holder("asg:web") is None
    assert locks.acquire("asg:web", "next-run", 600) is None


def test_a_claim_and_a_conditional_finish_hold_only_while_the_run_runs() -> None:
    store = DynamoRunStore(boto3.client("dynamodb"), table("runs", "run_id"))
    store.create(a_run())

    assert store.claim("ami-bake-1", "retiring_blue")
    assert store.finish("ami-bake-1", "ABORTED", error={"message": "aborted"}, if_status=RUNNING)
    assert not store.finish("ami-bake-1", "SUCCEEDED", result={}, if_status=RUNNING)
    assert not store.claim("ami-bake-1", "something_else")

    run = store.get("ami-bake-1")
    assert run is not None
    assert (run.status, run.mark) == ("ABORTED", "retiring_blue")
