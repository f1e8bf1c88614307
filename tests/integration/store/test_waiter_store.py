"""The waiters store's contract, held by the DynamoDB store (on the table as the template declares it) and its
in-memory twin: one waiter per run and awaited thing, expired ones skipped, a newer token never forgotten."""

from __future__ import annotations

import time

import boto3
import pytest

from opsflow.store.waiters import DynamoWaiterStore, InMemoryWaiterStore, Waiter, WaiterStore

from .conftest import table_from_template

pytestmark = pytest.mark.usefixtures("mocked_aws")


@pytest.fixture(params=["dynamodb", "memory"])
def waiters(request: pytest.FixtureRequest) -> WaiterStore:
    if request.param == "memory":
        return InMemoryWaiterStore()
    return DynamoWaiterStore(boto3.client("dynamodb"), table_from_template("WaitersTable"))


def waiter(
    run_id: str = "ami-bake-1", token: str = "t1", awaited: str = "image:ami-1", ttl: int = 600
) -> Waiter:
    return Waiter(awaited, run_id, "await_image", token, int(time.time()) + ttl)


def test_every_run_waiting_on_a_thing_is_found_and_nothing_else(waiters: WaiterStore) -> None:
    waiters.register(waiter("run-1", "t1"))
    waiters.register(waiter("run-2", "t2"))
    waiters.register(waiter("run-3", "t3", awaited="image:ami-2"))
    assert sorted(w.token for w in waiters.waiting_on("image:ami-1")) == ["t1", "t2"]
    assert waiters.waiting_on("alarm:web-5xx") == []


def test_a_run_waiting_again_replaces_its_earlier_token(waiters: WaiterStore) -> None:
    waiters.register(waiter(token="t1"))
    waiters.register(waiter(token="t2"))
    assert [w.token for w in waiters.waiting_on("image:ami-1")] == ["t2"]


def test_forgetting_a_stale_token_keeps_the_newer_one(waiters: WaiterStore) -> None:
    old = waiter(token="t1")
    waiters.register(old)
    waiters.register(waiter(token="t2"))
    waiters.forget(old)
    assert [w.token for w in waiters.waiting_on("image:ami-1")] == ["t2"]
    waiters.forget(waiter(token="t2"))
    assert waiters.waiting_on("image:ami-1") == []


def test_an_expired_waiter_is_skipped_before_its_ttl_deletion(waiters: WaiterStore) -> None:
    waiters.register(waiter(ttl=-1))
    assert waiters.waiting_on("image:ami-1") == []
