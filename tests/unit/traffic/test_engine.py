"""The traffic engine on an in-memory shifter: steps held in waits, and traffic never left between the
sides by a failed gate or a run that ended."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from opsflow.errors import AwsCallFailed
from opsflow.traffic.engine import RunEnded, TrafficEngine
from opsflow.traffic.gates import AlarmFired, GateFailed
from opsflow.traffic.plan import TrafficStep
from opsflow.traffic.position import TrafficPosition
from opsflow.traffic.shifter import Side, Weights


@dataclass
class MemoryShifter:
    green: int = 0
    refuse: bool = False
    writes: list[int] = field(default_factory=list)
    sides: tuple[str, str] = ("blue", "green")

    def describe(self) -> str:
        return "records www"

    def weights(self) -> Weights:
        return Weights(100 - self.green, self.green)

    def shift(self, to_green_percent: int) -> None:
        if self.refuse:
            raise AwsCallFailed("ChangeResourceRecordSets", "Throttling", "Rate exceeded")
        self.green = to_green_percent
        self.writes.append(to_green_percent)

    def restore_all(self, to: Side) -> Weights:
        before = self.weights()
        if not before.all_on(to):
            self.shift(100 if to == "green" else 0)
        return before


@dataclass
class Gate:
    failure: GateFailed | None = None
    checks: int = 0

    def check(self) -> str:
        self.checks += 1
        if self.failure is not None:
            raise self.failure
        return "open"


@dataclass
class Run:
    running: bool = True

    def still_running(self) -> bool:
        return self.running


def engine(shifter: MemoryShifter, run: Run | None = None, poll_seconds: int = 30) -> TrafficEngine:
    return TrafficEngine(shifter, (run or Run()).still_running, poll_seconds)


def plan(*steps: tuple[int, int], bake_seconds: int = 0) -> TrafficPosition:
    return TrafficPosition.before(
        [TrafficStep(percent=p, hold_seconds=h) for p, h in steps], bake_seconds=bake_seconds
    )


def test_each_step_shifts_once_and_the_bake_keeps_the_last_share() -> None:
    shifter = MemoryShifter()
    traffic = engine(shifter)
    position = plan((10, 0), (50, 0), (100, 0), bake_seconds=60)

    seen = []
    while position.next_step() is not None:
        position = traffic.advance(position)
        seen.append((position.weight, position.baking))

    assert seen == [(10, False), (50, False), (100, False), (100, True)]
    assert shifter.writes == [10, 50, 100], "the bake does not shift"
    assert position.weights == [10, 50, 100]
    assert position.remaining == 60


def test_a_hold_is_counted_in_waits_and_the_last_step_ends_the_plan() -> None:
    traffic = engine(MemoryShifter(), poll_seconds=30)
    position = traffic.advance(plan((100, 0), bake_seconds=70))
    position = traffic.advance(position)  # the bake

    seen = []
    position = traffic.watch(position, [Gate()])
    while position.holding:
        seen.append((position.remaining, position.wait_seconds))
        position = traffic.watch(position, [Gate()])

    assert seen == [(70, 30), (40, 30), (10, 10)]
    assert position.done is True


def test_a_failed_gate_puts_all_traffic_back_on_blue_within_its_step() -> None:
    shifter = MemoryShifter()
    traffic = engine(shifter)
    position = traffic.advance(plan((40, 600), (100, 0)))
    later = Gate()

    with pytest.raises(AlarmFired, match="went to ALARM; records www back to 100% blue from 40% green"):
        traffic.watch(position, [Gate(AlarmFired("alarm 5xx went to ALARM")), later])

    assert shifter.weights() == Weights(100, 0)
    assert later.checks == 0, "the first shut gate decides"


def test_a_gate_failing_before_any_traffic_moved_changes_nothing() -> None:
    shifter = MemoryShifter()

    with pytest.raises(AlarmFired) as failure:
        engine(shifter).check([Gate(AlarmFired("smoke test failed"))])

    assert str(failure.value) == "smoke test failed"
    assert shifter.writes == []


def test_a_gate_whose_restore_fails_still_names_the_gate_for_the_rollback_to_retry() -> None:
    shifter = MemoryShifter(green=30)
    shifter.refuse = True

    with pytest.raises(AlarmFired, match=r"putting records www back failed: .*Throttling"):
        engine(shifter).check([Gate(AlarmFired("alarm 5xx went to ALARM"))])


def test_a_shift_after_the_run_ended_is_undone_by_the_shift_itself() -> None:
    shifter = MemoryShifter()

    with pytest.raises(RunEnded, match="ended while shifting to 20% green; records www is back to 100% blue"):
        engine(shifter, Run(running=False)).advance(plan((20, 60), (100, 0)))

    assert shifter.writes == [20, 0]


def test_long_holds_are_polled_less_often() -> None:
    traffic = engine(MemoryShifter(), poll_seconds=5)
    position = traffic.advance(plan((10, 6 * 3600), (100, 0), bake_seconds=6 * 3600))

    assert traffic.watch(position, []).wait_seconds == 22, "12 hours held in at most 2,000 watches"
    assert (
        engine(MemoryShifter(), poll_seconds=5)
        .watch(traffic.advance(plan((10, 60), (100, 0))), [])
        .wait_seconds
        == 5
    )


def test_a_failed_shift_is_described_by_the_share_it_was_moving_to() -> None:
    position = engine(MemoryShifter()).advance(plan((10, 0), (100, 0)))

    assert position.describe() == "at 10% green (step 1 of 2)"
    assert position.describe_next() == "while shifting to 100% green (step 2 of 2)"


def test_the_gates_look_back_from_the_last_check_across_a_shift_and_a_hold_is_one_wait() -> None:
    traffic = TrafficEngine(MemoryShifter(), Run().still_running, poll_seconds=None)
    first = traffic.advance(plan((10, 300), (100, 0)))
    assert first.checked_at is not None, "a plan's first step looks back to its shift"
    watched = traffic.watch(first, [Gate()])
    assert watched.wait_seconds == 300, "without a poll, the hold is one wait for all of it"
    after_hold = traffic.watch(watched, [Gate()])
    # The next step's gates look back from that last check, not from its own shift: nothing in between
    # goes unwatched.
    assert traffic.advance(after_hold).checked_at == after_hold.checked_at
