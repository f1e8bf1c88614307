"""The Route 53 weighted-record shifter and the health-check gate, on a fake Route 53: blue's sets share the
rest in the proportions they began with, a put-back restores the starting weights exactly, and Route 53's
18 % rule decides a health check."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from opsflow.aws.route53 import HealthCheckStatus, WeightedSet, record_name
from opsflow.errors import Refused
from opsflow.traffic.gates import HealthCheckFailed, HealthChecksPass
from opsflow.traffic.route53 import WeightedRecordShifter, split
from opsflow.traffic.shifter import Weights

NAME = "www.example.com."


def weighted(set_id: str, weight: int, kind: str = "A") -> WeightedSet:
    raw = {"Name": NAME, "Type": kind, "SetIdentifier": set_id, "Weight": weight, "TTL": 60}
    return WeightedSet(NAME, kind, set_id, weight, 60, None, raw)


@dataclass
class FakeRoute53:
    sets: list[WeightedSet]
    batches: list[dict[str, int]] = field(default_factory=list)
    healthy_checkers: dict[str, int] = field(default_factory=dict)

    def record_sets(self, zone: str, name: str) -> list[WeightedSet]:
        return list(self.sets)

    def set_weights(self, zone: str, sets: list[WeightedSet]) -> str:
        changed = {(s.set_identifier, s.type): s for s in sets}
        self.sets = [changed.get((s.set_identifier, s.type), s) for s in self.sets]
        self.batches.append({s.set_identifier: s.weight for s in sets})
        return f"C{len(self.batches)}"

    def health_check_status(self, health_check_id: str) -> HealthCheckStatus:
        healthy = self.healthy_checkers.get(health_check_id, 8)
        return HealthCheckStatus(
            health_check_id, healthy / 8 > 0.18, 8, healthy, None if healthy == 8 else "Failure: timed out"
        )


def shifter(route53: FakeRoute53, start: dict[str, int], green: str = "eu") -> WeightedRecordShifter:
    return WeightedRecordShifter(route53, "Z1", NAME, "A", green, start)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("total", "proportions", "shares"),
    [
        (90, {"a": 1}, {"a": 90}),
        (90, {"a": 2, "b": 1}, {"a": 60, "b": 30}),
        (50, {"a": 1, "b": 1, "c": 1}, {"a": 17, "b": 17, "c": 16}),
        (10, {"a": 0, "b": 0}, {"a": 5, "b": 5}),
        (0, {"a": 3, "b": 1}, {"a": 0, "b": 0}),
    ],
)
def test_split_shares_in_whole_numbers_that_add_up(
    total: int, proportions: dict[str, int], shares: dict[str, int]
) -> None:
    assert split(total, proportions) == shares
    assert sum(shares.values()) == total


def test_a_shift_sets_the_new_set_and_splits_the_rest_between_the_others_in_one_batch() -> None:
    route53 = FakeRoute53(
        [weighted("us", 2), weighted("ap", 1), weighted("eu", 0), weighted("us", 5, "AAAA")]
    )

    change = shifter(route53, {"us": 2, "ap": 1, "eu": 0}).shift(40)

    assert change == "C1"
    assert route53.batches == [{"ap": 20, "eu": 40, "us": 40}]
    # Sets of another type are not the record's, and are left alone.
    assert [s.weight for s in route53.sets if s.type == "AAAA"] == [5]


def test_weights_are_shares_of_the_whole_name() -> None:
    route53 = FakeRoute53([weighted("us", 1), weighted("eu", 3)])

    assert shifter(route53, {"us": 1, "eu": 0}).weights() == Weights(25, 75)


def test_a_put_back_restores_the_starting_weights_exactly() -> None:
    route53 = FakeRoute53([weighted("us", 1), weighted("eu", 0)])
    records = shifter(route53, {"us": 1, "eu": 0})
    records.shift(50)

    assert records.restore_all("blue") == Weights(50, 50)
    assert route53.batches[-1] == {"us": 1, "eu": 0}


def test_a_put_back_when_the_new_set_began_with_a_share_takes_it_all_away() -> None:
    route53 = FakeRoute53([weighted("us", 90), weighted("eu", 10)])
    records = shifter(route53, {"us": 90, "eu": 10})
    records.shift(50)

    records.restore_all("blue")

    assert route53.batches[-1] == {"us": 100, "eu": 0}


def test_a_put_back_of_weights_already_back_writes_nothing() -> None:
    route53 = FakeRoute53([weighted("us", 100), weighted("eu", 0)])

    shifter(route53, {"us": 100, "eu": 0}).restore_all("blue")

    assert route53.batches == []


def test_a_set_someone_deleted_meanwhile_refuses_the_shift() -> None:
    route53 = FakeRoute53([weighted("us", 100)])

    with pytest.raises(Refused, match="has no weighted set eu any more"):
        shifter(route53, {"us": 100, "eu": 0}).shift(10)
    assert route53.batches == []


def test_a_health_check_is_healthy_while_more_than_18_percent_of_its_checkers_say_so() -> None:
    route53 = FakeRoute53([], healthy_checkers={"two-of-eight": 2, "one-of-eight": 1})

    assert HealthChecksPass(route53, ["two-of-eight"]).check() == "1 health check(s) healthy"  # type: ignore[arg-type]
    with pytest.raises(
        HealthCheckFailed,
        match=r"one-of-eight is unhealthy \(1 of 8 checkers report success\): Failure: timed out",
    ):
        HealthChecksPass(route53, ["two-of-eight", "one-of-eight"]).check()  # type: ignore[arg-type]


def test_a_name_compares_the_way_route_53_lists_it() -> None:
    assert record_name("WWW.Example.com") == "www.example.com."
    assert record_name("\\052.example.com.") == record_name("*.example.com") == "*.example.com."
