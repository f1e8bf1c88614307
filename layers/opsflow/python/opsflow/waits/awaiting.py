"""A step the state machine runs with `.waitForTaskToken`: it records the task token under each thing it awaits,
then looks once, so that an event that came before the token was recorded is not missed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opsflow.aws.target import Target

# How long a token is kept beyond its wait's reconcile interval: past it, the execution cannot be waiting.
TOKEN_MARGIN_SECONDS = 3600
DEFAULT_RECONCILE_SECONDS = 300


@dataclass(frozen=True)
class Await:
    """`awaited` names what the step waits on (Target keys); `ready` looks at it once, read-only, after the
    token is recorded: true when the wait can end at once (the state machine's next step looks again and
    decides). A `ready` that raises ends the wait too, so that the next step meets the error itself. A wait
    that is a gate (a hold that an alarm ends) has `fails` as well, and a `ready` that is never true."""

    awaited: Callable[[Any], list[Target]]
    ready: Callable[[Any], bool]
    # For a gate: (error, cause) when the wait must fail at once (an alarm already in ALARM), else None.
    fails: Callable[[Any], tuple[str, str] | None] | None = None


def reconcile_seconds(settings: dict[str, Any]) -> int:
    return int(settings.get("reconcile_seconds") or DEFAULT_RECONCILE_SECONDS)
