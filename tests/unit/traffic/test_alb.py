"""The ALB listener shifter: weights read from the listener's forward action, written as one pair."""

from __future__ import annotations

from dataclasses import dataclass, field

from opsflow.aws.elbv2 import Listener
from opsflow.traffic.alb import ListenerShifter
from opsflow.traffic.shifter import Weights

LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1111/22223333aaaa"
BLUE_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/aaaa"
GREEN_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/bbbb"


@dataclass
class FakeElbv2:
    weights: dict[str, int]
    writes: list[dict[str, int]] = field(default_factory=list)

    def listener(self, arn: str) -> Listener:
        return Listener(arn, "arn:lb", "HTTP", 80, dict(self.weights))

    def set_weights(self, arn: str, weights: dict[str, int]) -> None:
        self.weights = dict(weights)
        self.writes.append(dict(weights))


def shifter(elbv2: FakeElbv2) -> ListenerShifter:
    return ListenerShifter(elbv2, LISTENER, BLUE_TG, GREEN_TG)  # type: ignore[arg-type]


def test_a_listener_forwarding_to_blue_alone_has_all_its_traffic_on_blue() -> None:
    listener = shifter(FakeElbv2({BLUE_TG: 100}))

    assert listener.weights() == Weights(100, 0)
    assert listener.describe() == "listener web/22223333"


def test_a_shift_writes_both_target_groups() -> None:
    elbv2 = FakeElbv2({BLUE_TG: 100, GREEN_TG: 0})

    shifter(elbv2).shift(30)

    assert elbv2.writes == [{BLUE_TG: 70, GREEN_TG: 30}]


def test_restoring_a_side_that_has_everything_writes_nothing() -> None:
    elbv2 = FakeElbv2({BLUE_TG: 100, GREEN_TG: 0})

    assert shifter(elbv2).restore_all("blue") == Weights(100, 0)
    assert shifter(elbv2).restore_all("green") == Weights(100, 0)
    assert elbv2.writes == [{BLUE_TG: 0, GREEN_TG: 100}]
