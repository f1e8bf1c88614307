"""Whether a rule may act on a resource now: its cooldown per resource, its circuit breaker, and its
concurrency cap, decided on the rule's guard record alone so that the store can apply a decision
atomically (it writes the new record only if no other decision was written since it was read).

An action counts for the breaker when it is taken, whether it then helps or not, so a remediation that
does not help cannot loop: it is not repeated within the cooldown, and enough of them open the breaker."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from opsflow.remediation.rules import RemediationRule

# How many of the latest decisions the guard record keeps for `GET /remediations/{name}`.
DECISIONS_KEPT = 50
# An action still under way this long after its outcome was due lost its run (which reports every ending):
# it stops holding a place under the concurrency cap.
LOST_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Action:
    """One action the rule took (or, in a dry run, would have taken)."""

    resource: str
    run_id: str
    at: datetime
    group: str | None = None
    # None while under way; then "helped", "did not help", "failed".
    outcome: str | None = None

    @property
    def under_way(self) -> bool:
        return self.outcome is None


@dataclass(frozen=True)
class Decision:
    resource: str
    at: datetime
    verdict: Literal["act", "skip"]
    reason: str
    run_id: str | None = None


@dataclass(frozen=True)
class Breaker:
    opened_at: datetime
    reason: str


@dataclass(frozen=True)
class Guard:
    """The rule's guard record: its recent actions, its breaker, and its latest decisions."""

    actions: tuple[Action, ...] = ()
    breaker: Breaker | None = None
    # Actions before this no longer count for the breaker: it was closed then.
    counted_since: datetime | None = None
    decisions: tuple[Decision, ...] = ()
    version: int = 0

    def under_way(self, group: str | None = None) -> list[Action]:
        return [a for a in self.actions if a.under_way and (group is None or a.group == group)]


@dataclass(frozen=True)
class Asked:
    """A resource an event asks the rule to act on, and the group it belongs to, if any, with its size."""

    resource: str
    run_id: str
    group: str | None = None
    group_size: int | None = None


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    guard: Guard
    # Set when this decision opened the breaker: the team is told once.
    breaker_opened: bool = False


def decide(rule: RemediationRule, guard: Guard, asked: Asked, now: datetime) -> Outcome:
    """Act on `asked.resource`, or skip it and say why. The new guard record is in the outcome."""
    guard = _pruned(rule, guard, now)

    def skip(reason: str, opened: Breaker | None = None) -> Outcome:
        decision = Decision(asked.resource, now, "skip", reason)
        kept = replace(guard, breaker=opened or guard.breaker, decisions=_kept(guard.decisions, decision))
        return Outcome(decision, kept, breaker_opened=opened is not None)

    if not rule.enabled:
        return skip("the rule is disabled")
    if guard.breaker is not None:
        return skip(
            f"the circuit breaker is open since {_time(guard.breaker.opened_at)}: {guard.breaker.reason}"
        )
    previous = [a for a in guard.actions if a.resource == asked.resource]
    if any(a.under_way for a in previous):
        return skip(f"already being remediated by run {previous[-1].run_id}")
    if previous and now < previous[-1].at + timedelta(minutes=rule.cooldown_minutes):
        last = previous[-1]
        until = last.at + timedelta(minutes=rule.cooldown_minutes)
        outcome = f" ({last.outcome})" if last.outcome else ""
        return skip(f"in its cooldown until {_time(until)}: acted on at {_time(last.at)}{outcome}")
    window_start = now - timedelta(minutes=rule.breaker.within_minutes)
    counted = [
        a
        for a in guard.actions
        if a.at >= window_start and (guard.counted_since is None or a.at > guard.counted_since)
    ]
    if len(counted) >= rule.breaker.max_actions:
        listed = ", ".join(f"{a.resource} at {_time(a.at)}" for a in counted[-5:])
        reason = (
            f"{len(counted)} actions within {rule.breaker.within_minutes} min (the limit is "
            f"{rule.breaker.max_actions}): {listed}"
        )
        return skip(f"the circuit breaker opened: {reason}", opened=Breaker(now, reason))
    under_way = guard.under_way()
    if len(under_way) >= rule.concurrency.max_resources:
        return skip(
            f"{len(under_way)} remediation(s) already under way, the most at once "
            f"(concurrency.max_resources {rule.concurrency.max_resources}): {', '.join(a.resource for a in under_way)}"
        )
    if asked.group and rule.concurrency.max_percent and asked.group_size:
        allowed = max(1, asked.group_size * rule.concurrency.max_percent // 100)
        in_group = guard.under_way(asked.group)
        if len(in_group) >= allowed:
            return skip(
                f"{len(in_group)} of {asked.group}'s {asked.group_size} instances already under way, the most at "
                f"once ({rule.concurrency.max_percent}% is {allowed})"
            )
    action = Action(asked.resource, asked.run_id, now, asked.group)
    reason = "would act (dry run)" if rule.dry_run else f"acting: {rule.action.kind}"
    decision = Decision(asked.resource, now, "act", reason, asked.run_id)
    acted = replace(guard, actions=(*guard.actions, action), decisions=_kept(guard.decisions, decision))
    return Outcome(decision, acted)


def finish(guard: Guard, run_id: str, outcome: str) -> Guard:
    """The action of `run_id` ended: it no longer counts towards the concurrency cap (it still counts for
    the cooldown and the breaker)."""
    return replace(
        guard, actions=tuple(replace(a, outcome=outcome) if a.run_id == run_id else a for a in guard.actions)
    )


def withdraw(guard: Guard, run_id: str, reason: str) -> Guard:
    """The action of `run_id` was not taken after all (its run was refused before it started): it counts for
    nothing, and the decision says why."""
    taken = [a for a in guard.actions if a.run_id == run_id]
    kept = tuple(a for a in guard.actions if a.run_id != run_id)
    if not taken:
        return guard
    decision = Decision(taken[0].resource, taken[0].at, "skip", f"not acted on: {reason}")
    return replace(guard, actions=kept, decisions=_kept(guard.decisions, decision))


def close_breaker(guard: Guard, now: datetime) -> Guard:
    """Close the breaker: the rule acts again, and the actions that opened it no longer count."""
    return replace(guard, breaker=None, counted_since=now)


def _pruned(rule: RemediationRule, guard: Guard, now: datetime) -> Guard:
    """Forget ended actions that neither a cooldown nor the breaker's window still needs."""
    horizon = now - timedelta(minutes=max(rule.cooldown_minutes, rule.breaker.within_minutes))
    lost_before = now - timedelta(minutes=rule.outcome_timeout_minutes) - LOST_AFTER
    actions = tuple(
        replace(a, outcome="unknown: its run never reported") if a.under_way and a.at < lost_before else a
        for a in guard.actions
    )
    return replace(guard, actions=tuple(a for a in actions if a.under_way or a.at >= horizon))


def _kept(decisions: tuple[Decision, ...], decision: Decision) -> tuple[Decision, ...]:
    return (*decisions, decision)[-DECISIONS_KEPT:]


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
