"""How a deploy fails, and the gate each failure names for people."""

from __future__ import annotations

from opsflow.errors import OpsflowError


class GreenNotSteady(OpsflowError):
    code = "GreenNotSteady"


# What failed, for people: the failed step, or the gate the error names.
GATES = {
    "guard": "pre-flight",
    "start_green": "starting green",
    "check_green": "green stability",
    "smoke_test": "smoke test",
    "shift": "traffic shift",
    "watch": "traffic watch",
    "retire_blue": "retiring blue",
    "AlarmFired": "alarm",
    "GreenUnhealthy": "green health",
    "GreenNotSteady": "green stability",
    "SmokeTestFailed": "smoke test",
    "RunEnded": "abort",
}

# Errors whose message is the gate's own words.
GATE_ERRORS = frozenset({"AlarmFired", "GreenUnhealthy", "GreenNotSteady", "SmokeTestFailed", "RunEnded"})
