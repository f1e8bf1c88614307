"""Alarm events answered by remediation rules, on fakes: which rules match, which instances an alarm points
at, and what the guard makes of each (started, skipped and recorded, the breaker announced once, the
concurrency cap on a group-wide alarm, a start refused that gives its place back, a redelivery)."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsflow.errors import Busy
from opsflow.remediation.rules import RemediationRule
from opsflow.runs.requests import RunRequest
from opsflow.runs.start import StartedRun
from opsflow.store.remediations import InMemoryRemediationStore
from opsflow.store.runs import Requester, Run
from opsflow.triggers import remediation
from opsflow.workflows.remediate.request import RemediateRequest

ROOT = Path(__file__).resolve().parents[3]
HOME = ("123456789012", "us-east-1")
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def alarm_event(
    name: str = "web-status", metric: str = "StatusCheckFailed", event_id: str = "e-1", **dimensions: str
) -> dict[str, Any]:
    """The CloudWatch User Guide's example event, for another alarm and metric."""
    event = copy.deepcopy(json.loads((ROOT / "events/cloudwatch/alarm_state_change.json").read_text()))
    event["id"] = event_id
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
    event["detail"]["alarmName"] = name
    stat = event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]
    stat["name"] = metric
    stat["dimensions"] = dimensions or {"InstanceId": "i-1"}
    return event


class FakeLookups:
    def __init__(self, groups: dict[str, list[str]] | None = None, impaired: set[str] | None = None) -> None:
        self.groups = groups or {}
        self.impaired_ids = impaired or set()
        self.tags: dict[str, dict[str, str]] = {}
        self.stop_reasons: dict[str, str] = {}

    def alarm_tags(self, alarm_arn: str) -> dict[str, str]:
        return self.tags.get(alarm_arn, {})

    def group_of(self, instance_id: str) -> tuple[str | None, int | None]:
        for name, members in self.groups.items():
            if instance_id in members:
                return name, len(members)
        return None, None

    def group_instances(self, group: str) -> list[str]:
        return list(self.groups.get(group, []))

    def impaired(self, instance_ids: list[str]) -> list[str]:
        return [i for i in instance_ids if i in self.impaired_ids]

    def stop_reason(self, instance_id: str) -> str | None:
        return self.stop_reasons.get(instance_id)


class FakeStarter:
    def __init__(self, refuse: dict[str, Exception] | None = None) -> None:
        self.started: list[RemediateRequest] = []
        self.skipped: list[tuple[RemediateRequest, str]] = []
        self.refuse = refuse or {}

    def run_id_for(
        self, request: RunRequest, requester: Requester, request_hash: str, key: str | None
    ) -> str:
        return "remediate-" + hashlib.sha256(f"{requester.identity}|{key}".encode()).hexdigest()[:8]

    def _run(self, request: RunRequest, requester: Requester, key: str | None, status: str) -> StartedRun:
        run_id = self.run_id_for(request, requester, "", key)
        run = Run(run_id, request.workflow, request.target().key, status, requester, {}, "", "", "")
        return StartedRun(run=run, created=True)

    def start(
        self, request: RunRequest, requester: Requester, idempotency_key: str | None = None
    ) -> StartedRun:
        assert isinstance(request, RemediateRequest)
        if request.resource in self.refuse:
            raise self.refuse[request.resource]
        self.started.append(request)
        return self._run(request, requester, idempotency_key, "RUNNING")

    def skip(
        self, request: RunRequest, requester: Requester, reason: str, idempotency_key: str | None = None
    ) -> StartedRun:
        assert isinstance(request, RemediateRequest)
        self.skipped.append((request, reason))
        return self._run(request, requester, idempotency_key, "SKIPPED")


def store_with(**rule: Any) -> InMemoryRemediationStore:
    store = InMemoryRemediationStore()
    body = {
        "trigger": {"kind": "status_check"},
        "action": {"kind": "reboot"},
        "cooldown_minutes": 30,
        "concurrency": {"max_resources": 10},
        **rule,
    }
    store.put("web-reboot", RemediationRule.model_validate(body), "arn:aws:iam::123456789012:user/ops")
    return store


def answer(
    event: dict[str, Any],
    store: InMemoryRemediationStore,
    starter: FakeStarter,
    lookups: FakeLookups | None = None,
    now: datetime = T0,
    announced: list[str] | None = None,
) -> list[remediation.Answered]:
    def announce(stored: Any, outcome: Any, run_id: str) -> None:
        if announced is not None:
            announced.append(outcome.decision.reason)

    return remediation.answer(
        event,
        store,
        starter,
        lookups or FakeLookups(),
        HOME,
        now,
        already=lambda _run_id: False,
        announce=announce,
    )


def test_a_status_check_alarm_on_an_instance_starts_one_remediation_named_for_the_rule() -> None:
    starter = FakeStarter()
    [answered] = answer(alarm_event(InstanceId="i-1"), store_with(), starter)

    assert answered.verdict == "started"
    [request] = starter.started
    assert (request.rule, request.resource, request.action) == ("web-reboot", "i-1", "reboot")
    assert request.alarm_name == "web-status"
    assert request.helped_when == "status_checks_ok"
    assert request.cause.startswith("alarm web-status went to ALARM: Threshold Crossed")


def test_an_alarm_of_another_metric_or_an_ok_or_another_region_starts_nothing() -> None:
    starter = FakeStarter()
    store = store_with()
    assert answer(alarm_event(metric="CPUUtilization"), store, starter) == []
    ok = alarm_event()
    ok["detail"]["state"]["value"] = "OK"
    assert answer(ok, store, starter) == []
    away = alarm_event()
    away["region"] = "eu-west-1"
    assert answer(away, store, starter) == []
    assert starter.started == []


def test_a_system_check_rule_ignores_the_instance_check() -> None:
    starter = FakeStarter()
    store = store_with(trigger={"kind": "status_check", "check": "system"}, action={"kind": "stop_start"})
    assert answer(alarm_event(metric="StatusCheckFailed_Instance"), store, starter) == []
    [answered] = answer(alarm_event(metric="StatusCheckFailed_System", event_id="e-2"), store, starter)
    assert answered.verdict == "started"


@pytest.mark.parametrize(
    ("trigger", "matched"),
    [
        ({"kind": "alarm", "alarm_names": ["api-5xx"]}, True),
        ({"kind": "alarm", "alarm_names": ["web-5xx"]}, False),
        ({"kind": "alarm", "alarm_name_prefix": "api-"}, True),
        ({"kind": "alarm", "alarm_tags": {"team": "api"}}, True),
        ({"kind": "alarm", "alarm_tags": {"team": "web"}}, False),
    ],
)
def test_an_alarm_rule_matches_by_name_prefix_or_tags(trigger: dict[str, Any], matched: bool) -> None:
    lookups = FakeLookups()
    lookups.tags["arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx"] = {"team": "api"}
    starter = FakeStarter()
    answered = answer(
        alarm_event("api-5xx", metric="HTTPCode_Target_5XX_Count"),
        store_with(trigger=trigger),
        starter,
        lookups,
    )
    assert bool(answered) is matched
    if matched:
        assert starter.started[0].helped_when == "alarm_ok"


def test_within_the_cooldown_a_second_alarm_is_skipped_and_recorded() -> None:
    starter = FakeStarter()
    store = store_with()
    answer(alarm_event(event_id="e-1"), store, starter)
    store.change_guard(
        "web-reboot",
        lambda _rule, record: (remediation.guard.finish(record, record.actions[0].run_id, "helped"), None),
    )

    [again] = answer(alarm_event(event_id="e-2"), store, starter, now=T0 + timedelta(minutes=10))
    assert again.verdict == "skipped"
    assert again.reason.startswith("in its cooldown until 2026-12-03 09:30 UTC")
    [(request, reason)] = starter.skipped
    assert request.resource == "i-1"
    assert reason.startswith("not acted on: in its cooldown")
    assert len(starter.started) == 1


def test_a_storm_opens_the_breaker_once_and_nothing_more_is_acted_on() -> None:
    starter = FakeStarter()
    store = store_with(breaker={"max_actions": 3, "within_minutes": 60})
    announced: list[str] = []
    verdicts = [
        answer(alarm_event(event_id=f"e-{n}", InstanceId=f"i-{n}"), store, starter, announced=announced)[
            0
        ].verdict
        for n in range(6)
    ]
    assert verdicts == ["started", "started", "started", "skipped", "skipped", "skipped"]
    assert len(announced) == 1
    assert announced[0].startswith("the circuit breaker opened: 3 actions within 60 min")
    stored = store.get("web-reboot")
    assert stored is not None
    assert stored.guard.breaker is not None


def test_a_group_wide_alarm_acts_on_at_most_its_share_of_the_group() -> None:
    members = [f"i-{n}" for n in range(8)]
    lookups = FakeLookups(groups={"web": members}, impaired=set(members))
    starter = FakeStarter()
    store = store_with(concurrency={"max_resources": 10, "max_percent": 25})

    answered = answer(alarm_event(AutoScalingGroupName="web"), store, starter, lookups)
    assert [a.verdict for a in answered].count("started") == 2
    assert [a.verdict for a in answered].count("skipped") == 6
    assert all(r.group == "web" for r in starter.started)


def test_a_status_check_on_a_group_acts_only_on_its_impaired_instances() -> None:
    lookups = FakeLookups(groups={"web": ["i-1", "i-2", "i-3"]}, impaired={"i-2"})
    starter = FakeStarter()
    answer(alarm_event(AutoScalingGroupName="web"), store_with(), starter, lookups)
    assert [r.resource for r in starter.started] == ["i-2"]


def test_a_start_refused_because_another_run_holds_the_group_gives_its_place_back() -> None:
    starter = FakeStarter(refuse={"i-1": Busy("asg web is held by run ami-bake-1")})
    store = store_with(concurrency={"max_resources": 1})

    [refused] = answer(alarm_event(event_id="e-1", InstanceId="i-1"), store, starter)
    assert refused.verdict == "skipped"
    assert refused.reason == "asg web is held by run ami-bake-1"
    stored = store.get("web-reboot")
    assert stored is not None
    assert stored.guard.actions == ()

    # Its place under the cap was given back: another instance is acted on.
    [other] = answer(alarm_event(event_id="e-2", InstanceId="i-2"), store, starter)
    assert other.verdict == "started"


def test_a_redelivered_event_is_answered_once() -> None:
    starter = FakeStarter()
    store = store_with()
    seen: set[str] = set()

    def deliver() -> list[remediation.Answered]:
        answered = remediation.answer(
            alarm_event(event_id="e-1"),
            store,
            starter,
            FakeLookups(),
            HOME,
            T0,
            already=lambda run_id: run_id in seen,
        )
        seen.update(a.run_id for a in answered)
        return answered

    assert [a.verdict for a in deliver()] == ["started"]
    assert [a.verdict for a in deliver()] == ["replayed"]
    assert len(starter.started) == 1


def test_a_dry_run_rule_asks_for_a_dry_run() -> None:
    starter = FakeStarter()
    answer(alarm_event(), store_with(dry_run=True), starter)
    assert starter.started[0].dry_run


def tasks_impaired_event(cluster: str = "prod", service: str = "web") -> dict[str, Any]:
    """The ECS Developer Guide's service action event, for this service."""
    return {
        "version": "0",
        "id": "e-ecs-1",
        "detail-type": "ECS Service Action",
        "source": "aws.ecs",
        "account": HOME[0],
        "time": "2026-12-03T09:00:00Z",
        "region": HOME[1],
        "resources": [f"arn:aws:ecs:us-east-1:{HOME[0]}:service/{cluster}/{service}"],
        "detail": {
            "eventType": "WARN",
            "eventName": "SERVICE_TASK_START_IMPAIRED",
            "clusterArn": f"arn:aws:ecs:us-east-1:{HOME[0]}:cluster/{cluster}",
            "createdAt": "2026-12-03T09:00:00.000Z",
        },
    }


def instance_stopped_event(instance_id: str) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((ROOT / "events/ec2/instance_state_change.json").read_text()))
    event["detail"] = {"instance-id": instance_id, "state": "stopped"}
    return event


def test_a_service_that_cannot_start_its_tasks_is_redeployed_by_its_clusters_rule() -> None:
    store = store_with(
        trigger={"kind": "ecs_tasks_stopping", "cluster": "prod", "services": ["web"]},
        action={"kind": "ecs_redeploy"},
    )
    starter = FakeStarter()
    [answered] = answer(tasks_impaired_event(), store, starter)
    assert answered.verdict == "started"
    [request] = starter.started
    assert (request.resource_kind, request.resource, request.action) == ("ecs", "prod/web", "ecs_redeploy")
    assert "cannot start its tasks consistently" in request.cause
    assert answer(tasks_impaired_event(service="api"), store, FakeStarter()) == []
    assert answer(tasks_impaired_event(cluster="staging"), store, FakeStarter()) == []


def test_an_alarm_on_a_service_names_the_service_and_fills_in_the_runbook() -> None:
    store = store_with(
        trigger={"kind": "alarm", "alarm_names": ["web-5xx"]},
        action={
            "kind": "runbook",
            "document": "Team-RestartService",
            "parameters": {
                "Cluster": ["{{cluster}}"],
                "Service": ["{{service}}"],
                "Target": ["{{resource}}"],
            },
        },
    )
    starter = FakeStarter()
    [answered] = answer(
        alarm_event("web-5xx", "HTTPCode_Target_5XX_Count", ClusterName="prod", ServiceName="web"),
        store,
        starter,
    )
    assert answered.verdict == "started"
    [request] = starter.started
    assert request.runbook is not None
    assert request.runbook.parameters == {"Cluster": ["prod"], "Service": ["web"], "Target": ["prod/web"]}
    assert request.helped_when == "alarm_ok"


def test_an_instance_action_is_not_taken_on_a_service_and_says_why() -> None:
    store = store_with(trigger={"kind": "alarm", "alarm_names": ["web-5xx"]}, action={"kind": "reboot"})
    starter = FakeStarter()
    [answered] = answer(alarm_event("web-5xx", ClusterName="prod", ServiceName="web"), store, starter)
    assert answered.verdict == "skipped"
    assert answered.reason == "reboot acts on an instance, and the event names ECS service prod/web"
    assert starter.started == []


@pytest.mark.parametrize(
    ("reason", "answered"),
    [
        ("Server.InternalError", ["started"]),
        ("Client.InstanceInitiatedShutdown", ["started"]),
        ("Client.UserInitiatedShutdown", []),  # somebody (or an Opsflow run) asked for it
        ("Server.SpotInstanceTermination", []),
    ],
)
def test_an_instance_that_stopped_unasked_is_started_and_one_asked_to_stop_is_not(
    reason: str, answered: list[str]
) -> None:
    store = store_with(trigger={"kind": "instance_stopped"}, action={"kind": "stop_start"})
    lookups = FakeLookups(groups={"web": ["i-1", "i-2"]})
    lookups.stop_reasons["i-1"] = reason
    starter = FakeStarter()
    assert [a.verdict for a in answer(instance_stopped_event("i-1"), store, starter, lookups)] == answered
    if answered:
        assert starter.started[0].cause == f"instance i-1 stopped without anyone asking ({reason})"
        assert starter.started[0].group == "web"
