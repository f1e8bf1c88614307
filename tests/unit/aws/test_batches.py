"""Batched actions: as few calls as AWS allows, and one refusing resource never stops the others."""

from __future__ import annotations

from opsflow.aws.batches import act_in_batches, act_on_each
from opsflow.errors import AwsCallFailed


def test_each_batch_is_one_call_of_at_most_the_batch_size() -> None:
    calls: list[list[str]] = []

    failures = act_in_batches([f"i-{n}" for n in range(2500)], 1000, calls.append)

    assert failures == []
    assert [len(c) for c in calls] == [1000, 1000, 500]


def test_a_refusing_resource_is_isolated_with_its_reason_and_the_rest_still_act() -> None:
    acted: set[str] = set()

    def stop(ids: list[str]) -> None:
        # EC2 refuses the whole call when one instance cannot stop.
        if "i-13" in ids:
            raise AwsCallFailed("StopInstances", "UnsupportedOperation", "i-13 is a spot instance")
        acted.update(ids)

    failures = act_in_batches([f"i-{n}" for n in range(40)], 1000, stop)

    assert [(f.resource, f.error) for f in failures] == [
        ("i-13", "StopInstances failed: UnsupportedOperation: i-13 is a spot instance")
    ]
    assert acted == {f"i-{n}" for n in range(40)} - {"i-13"}


def test_one_at_a_time_actions_report_each_failure_by_name() -> None:
    def stop(name: str) -> None:
        if name.endswith("ledger"):
            raise AwsCallFailed("StopDBInstance", "InvalidDBInstanceState", "read replica")

    failures = act_on_each(["qa-orders", "qa-ledger"], lambda n: f"database {n}", stop)

    assert [f.as_dict() for f in failures] == [
        {
            "resource": "database qa-ledger",
            "error": "StopDBInstance failed: InvalidDBInstanceState: read replica",
        }
    ]
