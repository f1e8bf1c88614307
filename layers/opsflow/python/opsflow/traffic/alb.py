"""The first shifter: an ALB listener's weighted forward action between two target groups."""

from __future__ import annotations

from dataclasses import dataclass

from opsflow.aws.elbv2 import Elbv2, display_name
from opsflow.traffic.shifter import Side, Weights


@dataclass(frozen=True)
class ListenerShifter:
    elbv2: Elbv2
    listener_arn: str
    blue_target_group: str
    green_target_group: str
    sides: tuple[str, str] = ("blue", "green")

    def describe(self) -> str:
        return f"listener {display_name(self.listener_arn)}"

    def weights(self) -> Weights:
        found = self.elbv2.listener(self.listener_arn).weights
        return Weights(found.get(self.blue_target_group, 0), found.get(self.green_target_group, 0))

    def shift(self, to_green_percent: int) -> None:
        # A listener's new weights apply to its next requests: nothing to await.
        self.elbv2.set_weights(
            self.listener_arn,
            {self.blue_target_group: 100 - to_green_percent, self.green_target_group: to_green_percent},
        )

    def restore_all(self, to: Side) -> Weights:
        before = self.weights()
        if not before.all_on(to):
            self.shift(100 if to == "green" else 0)
        return before
