"""The traffic engine: moves a shifter through a step plan and checks each step's gates.

Its one rule: traffic is never left between the sides by a step that fails or a run that ends. A failed
gate puts all traffic back on blue within the step that found it, and a shift made after its run ended
is undone by the shift itself. What else a failure leaves (a service to scale down) is the workflow's."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opsflow.errors import OpsflowError
from opsflow.traffic.gates import Gate, GateFailed
from opsflow.traffic.position import Shifted, TrafficPosition
from opsflow.traffic.shifter import Shifter

# Each watch adds about 9 events to the execution's history, which Step Functions caps at 25,000.
MAX_WATCHES = 2000


class RunEnded(OpsflowError):
    """The run was aborted (or ended otherwise) while a step was acting; the step put things back."""

    code = "RunEnded"


@dataclass(frozen=True)
class TrafficEngine:
    shifter: Shifter
    # Reads the run's record: a step that moved traffic re-checks it, and undoes the move if the run ended.
    still_running: Callable[[], bool]
    # How often a hold is broken up to check its gates again; None: once, at its end (its gates' events, an
    # alarm's state change, end it early).
    poll_seconds: int | None

    def advance(self, position: TrafficPosition) -> TrafficPosition:
        """Move to the plan's next step and hold it from now."""
        step = position.next_step()
        if step is None:
            raise ValueError("the plan has no step left")
        history = position.history
        now = datetime.now(UTC).isoformat()
        if step.percent != position.weight:
            change = self.shifter.shift(step.percent)
            history = [*history, Shifted(percent=step.percent, at=now, change=change)]
            if not self.still_running():
                self.shifter.restore_all("blue")
                raise RunEnded(
                    f"the run ended while shifting to {step.percent}% green; "
                    f"{self.shifter.describe()} is back to 100% blue"
                )
        return position.model_copy(
            update={
                "index": position.index + 1,
                "weight": step.percent,
                "history": history,
                "baking": step.bake,
                "remaining": step.hold_seconds,
                "wait_seconds": 0,
                "holding": False,
                "done": False,
                # The gates' look back goes on from the last check, so no moment between two is unwatched.
                "checked_at": position.checked_at or now,
            }
        )

    def watch(self, position: TrafficPosition, gates: Sequence[Gate]) -> TrafficPosition:
        """Check the held step's gates. Runs right after a shift and after each wait of `wait_seconds`: the
        hold is counted in those waits, not read from a clock, so it means the same in a faster run. The gates
        may look back to `checked_at`, the previous check."""
        checking_from = datetime.now(UTC).isoformat()
        self.check(gates)
        remaining = max(0, position.remaining - position.wait_seconds)
        holding = remaining > 0
        return position.model_copy(
            update={
                "remaining": remaining,
                "holding": holding,
                "wait_seconds": min(self._poll(position), remaining),
                "done": not holding and position.index == len(position.plan) - 1,
                "checked_at": checking_from,
            }
        )

    def check(self, gates: Sequence[Gate]) -> list[str]:
        """Each gate's word on what passed; the first that fails puts all traffic back on blue."""
        passed = []
        for gate in gates:
            try:
                passed.append(gate.check())
            except GateFailed as failed:
                raise self._restored(failed) from failed
        return passed

    def _restored(self, failed: GateFailed) -> GateFailed:
        try:
            before = self.shifter.restore_all("blue")
        except OpsflowError as error:
            # The gate stays the reason; the workflow's rollback tries the shifter again.
            return type(failed)(f"{failed.message}; putting {self.shifter.describe()} back failed: {error}")
        if before.green == 0:
            return failed
        blue, green = self.shifter.sides
        return type(failed)(
            f"{failed.message}; {self.shifter.describe()} back to 100% {blue} from {before.green}% {green}"
        )

    def _poll(self, position: TrafficPosition) -> int:
        if self.poll_seconds is None:
            return position.remaining
        held = sum(step.hold_seconds for step in position.plan)
        return max(self.poll_seconds, math.ceil(held / MAX_WATCHES))
