"""The guard's decisions on a rule's record alone: cooldown per resource, the breaker opening and staying
open, the concurrency caps, and what closing the breaker forgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opsflow.remediation import guard
from opsflow.remediation.guard import Asked, Guard
from opsflow.remediation.rules import RemediationRule

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def rule(**overrides: Any) -> RemediationRule:
    body: dict[str, Any] = {
        "trigger": {"kind": "status_check"},
        "action": {"kind": "reboot"},
        "cooldown_minutes": 30,
        "breaker": {"max_actions": 3, "within_minutes": 60},
        "concurrency": {"max_resources": 10},
        **overrides,
    }
    return RemediationRule.model_validate(body)


def ask(resource: str, run: str | None = None, **kwargs: Any) -> Asked:
    return Asked(resource, run or f"run-{resource}", **kwargs)


def acted(record: Guard, the_rule: RemediationRule, resource: str, at: datetime, **kwargs: Any) -> Guard:
    outcome = guard.decide(the_rule, record, ask(resource, **kwargs), at)
    assert outcome.decision.verdict == "act", outcome.decision.reason
    return guard.finish(outcome.guard, outcome.decision.run_id or "", "helped")


def test_a_resource_acted_on_is_skipped_within_its_cooldown_and_acted_on_after_it() -> None:
    the_rule = rule()
    record = acted(Guard(), the_rule, "i-1", T0)

    again = guard.decide(the_rule, record, ask("i-1", "run-2"), T0 + timedelta(minutes=29))
    assert again.decision.verdict == "skip"
    assert "cooldown until 2026-12-03 09:30 UTC" in again.decision.reason
    assert "(helped)" in again.decision.reason

    later = guard.decide(the_rule, again.guard, ask("i-1", "run-3"), T0 + timedelta(minutes=31))
    assert later.decision.verdict == "act"


def test_another_resource_is_not_held_by_ones_cooldown() -> None:
    the_rule = rule()
    record = acted(Guard(), the_rule, "i-1", T0)
    assert guard.decide(the_rule, record, ask("i-2"), T0 + timedelta(minutes=1)).decision.verdict == "act"


def test_a_resource_under_way_is_not_acted_on_twice() -> None:
    the_rule = rule()
    first = guard.decide(the_rule, Guard(), ask("i-1", "run-1"), T0)
    second = guard.decide(the_rule, first.guard, ask("i-1", "run-2"), T0)
    assert second.decision.verdict == "skip"
    assert second.decision.reason == "already being remediated by run run-1"


def test_the_breaker_opens_after_max_actions_within_the_window_and_stays_open() -> None:
    the_rule = rule(cooldown_minutes=1)
    record = Guard()
    for n, resource in enumerate(["i-1", "i-2", "i-3"]):
        record = acted(record, the_rule, resource, T0 + timedelta(minutes=n))

    fourth = guard.decide(the_rule, record, ask("i-4"), T0 + timedelta(minutes=5))
    assert fourth.decision.verdict == "skip"
    assert fourth.breaker_opened
    assert fourth.decision.reason.startswith(
        "the circuit breaker opened: 3 actions within 60 min (the limit is 3)"
    )
    assert "i-1 at 2026-12-03 09:00 UTC" in fourth.decision.reason

    # Open: nothing is acted on, even once the window has passed, and it is announced only once.
    much_later = guard.decide(the_rule, fourth.guard, ask("i-5"), T0 + timedelta(days=1))
    assert much_later.decision.verdict == "skip"
    assert not much_later.breaker_opened
    assert much_later.decision.reason.startswith("the circuit breaker is open since 2026-12-03 09:05 UTC")


def test_closing_the_breaker_forgets_the_actions_that_opened_it() -> None:
    the_rule = rule(cooldown_minutes=1)
    record = Guard()
    for n, resource in enumerate(["i-1", "i-2", "i-3"]):
        record = acted(record, the_rule, resource, T0 + timedelta(minutes=n))
    opened = guard.decide(the_rule, record, ask("i-4"), T0 + timedelta(minutes=5)).guard

    closed = guard.close_breaker(opened, T0 + timedelta(minutes=6))
    after = guard.decide(the_rule, closed, ask("i-4"), T0 + timedelta(minutes=7))
    assert after.decision.verdict == "act"


def test_actions_outside_the_window_do_not_count_for_the_breaker() -> None:
    the_rule = rule(cooldown_minutes=1)
    record = Guard()
    for n, resource in enumerate(["i-1", "i-2", "i-3"]):
        record = acted(record, the_rule, resource, T0 + timedelta(minutes=n))
    assert guard.decide(the_rule, record, ask("i-4"), T0 + timedelta(minutes=62)).decision.verdict == "act"


def test_no_more_resources_than_max_resources_are_under_way_at_once() -> None:
    the_rule = rule(concurrency={"max_resources": 2})
    record = Guard()
    for resource in ["i-1", "i-2"]:
        record = guard.decide(the_rule, record, ask(resource), T0).guard

    third = guard.decide(the_rule, record, ask("i-3"), T0)
    assert third.decision.verdict == "skip"
    assert "2 remediation(s) already under way" in third.decision.reason
    assert not third.breaker_opened

    freed = guard.finish(record, "run-i-1", "helped")
    assert guard.decide(the_rule, freed, ask("i-3"), T0).decision.verdict == "act"


def test_a_group_wide_event_touches_at_most_max_percent_of_the_group() -> None:
    the_rule = rule(concurrency={"max_resources": 10, "max_percent": 25})
    record = Guard()
    verdicts = []
    for n in range(8):
        outcome = guard.decide(the_rule, record, ask(f"i-{n}", group="web", group_size=8), T0)
        record = outcome.guard
        verdicts.append(outcome.decision.verdict)
    # 25% of 8 is 2.
    assert verdicts == ["act", "act", "skip", "skip", "skip", "skip", "skip", "skip"]
    assert "2 of web's 8 instances already under way" in record.decisions[-1].reason


def test_a_small_group_still_gets_one_at_a_time() -> None:
    the_rule = rule(concurrency={"max_resources": 10, "max_percent": 10})
    first = guard.decide(the_rule, Guard(), ask("i-1", group="jobs", group_size=3), T0)
    second = guard.decide(the_rule, first.guard, ask("i-2", group="jobs", group_size=3), T0)
    assert (first.decision.verdict, second.decision.verdict) == ("act", "skip")


def test_an_action_whose_run_never_reported_stops_holding_a_place() -> None:
    the_rule = rule(concurrency={"max_resources": 1}, outcome_timeout_minutes=15, cooldown_minutes=120)
    record = guard.decide(the_rule, Guard(), ask("i-1"), T0).guard
    assert guard.decide(the_rule, record, ask("i-2"), T0 + timedelta(minutes=30)).decision.verdict == "skip"

    later = guard.decide(the_rule, record, ask("i-2"), T0 + timedelta(minutes=76))
    assert later.decision.verdict == "act"
    [lost] = [a for a in later.guard.actions if a.resource == "i-1"]
    assert lost.outcome == "unknown: its run never reported"


def test_a_disabled_rule_or_a_dry_run_says_so() -> None:
    assert (
        guard.decide(rule(enabled=False), Guard(), ask("i-1"), T0).decision.reason == "the rule is disabled"
    )
    dry = guard.decide(rule(dry_run=True), Guard(), ask("i-1"), T0)
    assert (dry.decision.verdict, dry.decision.reason) == ("act", "would act (dry run)")


def test_the_record_keeps_only_the_latest_decisions() -> None:
    the_rule = rule(concurrency={"max_resources": 1})
    record = guard.decide(the_rule, Guard(), ask("i-0"), T0).guard
    for n in range(1, 80):
        record = guard.decide(the_rule, record, ask(f"i-{n}"), T0).guard
    assert len(record.decisions) == guard.DECISIONS_KEPT
    assert record.decisions[-1].resource == "i-79"
