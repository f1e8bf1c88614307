"""How a cutover fails, and the gate each failure names for people."""

from __future__ import annotations

from opsflow.errors import OpsflowError


class ChangeNotInSync(OpsflowError):
    """Route 53 did not report a change INSYNC within the wait allowed."""

    code = "ChangeNotInSync"


# What failed, for people: the failed step, or the gate the error names.
GATES = {
    "guard": "pre-flight",
    "shift": "traffic shift",
    "check_sync": "DNS propagation",
    "watch": "traffic watch",
    "AlarmFired": "alarm",
    "HealthCheckFailed": "health check",
    "SmokeTestFailed": "smoke test",
    "ChangeNotInSync": "DNS propagation",
    "RunEnded": "abort",
}

# Errors whose message is the gate's own words.
GATE_ERRORS = frozenset({"AlarmFired", "HealthCheckFailed", "SmokeTestFailed", "ChangeNotInSync", "RunEnded"})
