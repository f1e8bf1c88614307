"""What moves traffic between the two sides of a deploy: an ALB listener's weights (`alb.py`) or a name's
Route 53 weighted record sets (`route53.py`). The engine (`traffic/engine.py`) holds the rules; a shifter
only reads and sets weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Side = Literal["blue", "green"]


@dataclass(frozen=True)
class Weights:
    blue: int
    green: int

    def all_on(self, side: Side) -> bool:
        """Every share on `side` and none on the other."""
        on, off = (self.blue, self.green) if side == "blue" else (self.green, self.blue)
        return on > 0 and off == 0


class Shifter(Protocol):
    @property
    def sides(self) -> tuple[str, str]:
        """What blue and green are called for people: ("blue", "green"), or a cutover's set identifiers."""
        ...

    def describe(self) -> str:
        """What moves, for people: "listener web/2222"."""
        ...

    def weights(self) -> Weights: ...

    def shift(self, to_green_percent: int) -> str | None:
        """Send `to_green_percent` of the traffic to green and the rest to blue. Returns the change to await
        before the new shares count (Route 53's change id), or None when they count at once."""
        ...

    def restore_all(self, to: Side) -> Weights:
        """Send all the traffic to one side, unless it goes there already; returns the weights found."""
        ...
