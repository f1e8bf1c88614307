"""A rule as the API and the CLI show it: the rule, its breaker, what is under way and in its cooldown,
and its latest decisions, newest first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from opsflow.store.remediations import StoredRule


def describe(stored: StoredRule, now: datetime) -> dict[str, Any]:
    rule, record = stored.rule, stored.guard
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    latest: dict[str, Any] = {}
    for action in record.actions:
        latest[action.resource] = action
    return {
        "name": stored.name,
        "rule": rule.model_dump(mode="json"),
        "updated_by": stored.updated_by,
        "updated_at": stored.updated_at,
        "breaker": {
            "state": "open" if record.breaker else "closed",
            **(
                {"opened_at": _iso(record.breaker.opened_at), "reason": record.breaker.reason}
                if record.breaker
                else {}
            ),
        },
        "under_way": [
            {"resource": a.resource, "run_id": a.run_id, "since": _iso(a.at)} for a in record.under_way()
        ],
        "cooling_down": [
            {"resource": a.resource, "until": _iso(a.at + cooldown), "outcome": a.outcome}
            for a in latest.values()
            if not a.under_way and a.at + cooldown > now
        ],
        "decisions": [
            {
                "at": _iso(d.at),
                "resource": d.resource,
                "verdict": d.verdict,
                "reason": d.reason,
                **({"run_id": d.run_id} if d.run_id else {}),
            }
            for d in reversed(record.decisions)
        ],
    }


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
