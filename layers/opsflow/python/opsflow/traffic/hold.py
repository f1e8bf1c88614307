"""A traffic step's hold: a wait that any watched alarm going to ALARM fails at once (CloudWatch sends those
state changes at least once); the watch after it checks every gate, the alarms' history for the hold too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opsflow.aws.cloudwatch import CloudWatch
from opsflow.aws.target import Target
from opsflow.waits.awaiting import Await
from opsflow.waits.events import ALARM_FIRED


def alarms_firing(cloudwatch: CloudWatch, alarms: Sequence[str]) -> tuple[str, str] | None:
    firing = cloudwatch.firing(list(alarms)) if alarms else {}
    if not firing:
        return None
    name, reason = next(iter(firing.items()))
    return ALARM_FIRED, f"alarm {name} went to ALARM" + (f": {reason.rstrip('.')}" if reason else "")


def alarm_hold(cloudwatch: CloudWatch, alarms_of: Callable[[Any], Sequence[str]]) -> Await:
    """A hold for the state's `wait_seconds`, ended early only by a failure: `alarms_of(state)` names the
    alarms it watches."""
    return Await(
        awaited=lambda state: [
            Target.from_key(state.target).beside("alarm", name) for name in alarms_of(state)
        ],
        ready=lambda state: False,
        fails=lambda state: alarms_firing(cloudwatch, alarms_of(state)),
    )
