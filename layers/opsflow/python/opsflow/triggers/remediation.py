"""Failure events, answered by remediation rules. An event names an alarm going to ALARM, an ECS service
that cannot start its tasks, or an instance that stopped unasked; each rule that matches it finds the
resources it points at, asks the rule's guard (cooldown, breaker, concurrency cap) about each, and starts a
remediation through the same starter, guard and audit record as every trigger, or records why it did not.
The requester is the rule; the event's id and the resource make the idempotency key, so an event delivered
twice starts one run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from aws_lambda_powertools import Logger

from opsflow.aws import clients
from opsflow.aws.autoscaling import GROUP_TAG, AutoScaling
from opsflow.aws.cloudwatch import CloudWatch
from opsflow.aws.ec2 import Ec2
from opsflow.aws.events import Events
from opsflow.aws.target import Target
from opsflow.errors import Busy, NotFound, NotOptedIn, OpsflowError, Refused
from opsflow.remediation import guard
from opsflow.remediation.guard import Asked, Outcome
from opsflow.remediation.rules import (
    INSTANCE_ACTIONS,
    STATUS_CHECK_METRICS,
    AlarmTrigger,
    InstanceStoppedTrigger,
    RemediationRule,
    Runbook,
    StatusCheckTrigger,
    TasksStoppingTrigger,
)
from opsflow.runs.requests import RunRequest
from opsflow.runs.start import StartedRun
from opsflow.store.remediations import RemediationStore, StoredRule
from opsflow.store.runs import Requester
from opsflow.workflows.remediate.request import RemediateRequest, RunbookCall

logger = Logger(service="opsflow-remediation", child=True)

ALARM_EVENT = "CloudWatch Alarm State Change"
# ECS Developer Guide, "Amazon ECS service action events".
SERVICE_ACTION_EVENT = "ECS Service Action"
TASK_START_IMPAIRED = "SERVICE_TASK_START_IMPAIRED"
# EC2 User Guide, "State change events for Amazon EC2 instances".
INSTANCE_STATE_EVENT = "EC2 Instance State-change Notification"
# Why an instance stopped (EC2 API Reference, StateReason): a stop someone asked for (StopInstances, the
# console, an Opsflow run), or a Spot interruption, which EC2 itself restarts if the request persists.
ASKED_FOR_STOPS = (
    "Client.UserInitiatedShutdown",
    "Server.SpotInstanceShutdown",
    "Server.SpotInstanceTermination",
)

ResourceKind = Literal["instance", "ecs"]


@dataclass(frozen=True)
class Aimed:
    """A resource an event points a rule at, with the group it belongs to and the group's size."""

    kind: ResourceKind
    resource: str
    group: str | None = None
    size: int | None = None
    # What the event alone does not say, for people: why an instance stopped.
    why: str = ""


@dataclass(frozen=True)
class AlarmFired:
    """A `CloudWatch Alarm State Change` event into ALARM, as the CloudWatch User Guide documents it."""

    event_id: str
    account: str
    region: str
    alarm_name: str
    alarm_arn: str
    reason: str
    namespace: str
    metric: str
    dimensions: dict[str, str]

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> AlarmFired | None:
        detail = event.get("detail") or {}
        if event.get("detail-type") != ALARM_EVENT or (detail.get("state") or {}).get("value") != "ALARM":
            return None
        metrics = (detail.get("configuration") or {}).get("metrics") or []
        # A metric alarm has one metric with a metricStat; a math alarm's first metricStat names the resource.
        stat: dict[str, Any] = next((m["metricStat"]["metric"] for m in metrics if "metricStat" in m), {})
        return cls(
            event_id=str(event.get("id", "")),
            account=str(event.get("account", "")),
            region=str(event.get("region", "")),
            alarm_name=str(detail.get("alarmName", "")),
            alarm_arn=str((event.get("resources") or [""])[0]),
            reason=str((detail.get("state") or {}).get("reason", "")),
            namespace=str(stat.get("namespace", "")),
            metric=str(stat.get("name", "")),
            dimensions={str(k): str(v) for k, v in (stat.get("dimensions") or {}).items()},
        )

    @property
    def cause(self) -> str:
        return f"alarm {self.alarm_name} went to ALARM: {self.reason}"


@dataclass(frozen=True)
class TasksImpaired:
    """An `ECS Service Action` event `SERVICE_TASK_START_IMPAIRED`: the service cannot keep its tasks
    running. `resources` holds the service's ARN, arn:aws:ecs:<region>:<account>:service/<cluster>/<name>."""

    event_id: str
    account: str
    region: str
    cluster: str
    service: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> TasksImpaired | None:
        detail = event.get("detail") or {}
        if event.get("detail-type") != SERVICE_ACTION_EVENT or detail.get("eventName") != TASK_START_IMPAIRED:
            return None
        arn = next((str(a) for a in event.get("resources") or [] if ":service/" in str(a)), "")
        cluster, _, service = arn.split(":service/", 1)[-1].partition("/")
        if not service:
            return None
        return cls(
            str(event.get("id", "")),
            str(event.get("account", "")),
            str(event.get("region", "")),
            cluster,
            service,
        )

    @property
    def cause(self) -> str:
        return f"ECS service {self.cluster}/{self.service} cannot start its tasks consistently ({TASK_START_IMPAIRED})"


@dataclass(frozen=True)
class InstanceStopped:
    """An `EC2 Instance State-change Notification` of an instance now `stopped`; whether anyone asked for it
    is read from the instance's StateReason."""

    event_id: str
    account: str
    region: str
    instance_id: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> InstanceStopped | None:
        detail = event.get("detail") or {}
        if event.get("detail-type") != INSTANCE_STATE_EVENT or detail.get("state") != "stopped":
            return None
        instance_id = str(detail.get("instance-id", ""))
        if not instance_id:
            return None
        return cls(
            str(event.get("id", "")), str(event.get("account", "")), str(event.get("region", "")), instance_id
        )

    @property
    def cause(self) -> str:
        return f"instance {self.instance_id} stopped without anyone asking"


Fired = AlarmFired | TasksImpaired | InstanceStopped


class Lookups(Protocol):
    """What matching an event needs to read, in the event's account and region."""

    def alarm_tags(self, alarm_arn: str) -> dict[str, str]: ...

    def group_of(self, instance_id: str) -> tuple[str | None, int | None]:
        """The instance's Auto Scaling group and the group's size, or (None, None)."""

    def group_instances(self, group: str) -> list[str]: ...

    def impaired(self, instance_ids: list[str]) -> list[str]:
        """Those of the instances that fail a status check now."""

    def stop_reason(self, instance_id: str) -> str | None:
        """The StateReason code of the instance's last state change; None if it is gone."""


class Starter(Protocol):
    def start(
        self, request: RunRequest, requester: Requester, idempotency_key: str | None = None
    ) -> StartedRun: ...

    def skip(
        self, request: RunRequest, requester: Requester, reason: str, idempotency_key: str | None = None
    ) -> StartedRun: ...

    def run_id_for(
        self, request: RunRequest, requester: Requester, request_hash: str, idempotency_key: str | None
    ) -> str: ...


@dataclass(frozen=True)
class Answered:
    rule: str
    resource: str
    verdict: str  # started | skipped | replayed
    run_id: str
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "resource": self.resource,
            "verdict": self.verdict,
            "run_id": self.run_id,
            "reason": self.reason,
        }


def matches(
    rule: RemediationRule, fired: Fired, home: tuple[str, str], tags: Callable[[], dict[str, str]]
) -> bool:
    """Whether the rule answers this event: its trigger, and its account and region."""
    account, region = rule.account or home[0], rule.region or home[1]
    if (fired.account or home[0], fired.region or home[1]) != (account, region):
        return False
    trigger = rule.trigger
    if isinstance(fired, TasksImpaired):
        return isinstance(trigger, TasksStoppingTrigger) and (
            trigger.cluster.split("/")[-1] == fired.cluster
            and (trigger.services is None or fired.service in trigger.services)
        )
    if isinstance(fired, InstanceStopped):
        return isinstance(trigger, InstanceStoppedTrigger)
    if isinstance(trigger, StatusCheckTrigger):
        return fired.namespace == "AWS/EC2" and fired.metric in STATUS_CHECK_METRICS[trigger.check]
    if isinstance(trigger, AlarmTrigger):
        if trigger.alarm_names is not None:
            return fired.alarm_name in trigger.alarm_names
        if trigger.alarm_name_prefix is not None:
            return fired.alarm_name.startswith(trigger.alarm_name_prefix)
        found = tags()
        return all(found.get(key) == value for key, value in (trigger.alarm_tags or {}).items())
    return False


def resources(rule: RemediationRule, fired: Fired, lookups: Lookups) -> list[Aimed]:
    """What the event points at: the instance of an `InstanceId` alarm, or, for an `AutoScalingGroupName`
    one, the group's instances (those failing a status check, for a status-check rule); the service of a
    `ClusterName` and `ServiceName` alarm or of an ECS event; the instance that stopped unasked."""
    if isinstance(fired, TasksImpaired):
        return [Aimed("ecs", f"{fired.cluster}/{fired.service}")]
    if isinstance(fired, InstanceStopped):
        reason = lookups.stop_reason(fired.instance_id)
        if reason is None or reason in ASKED_FOR_STOPS:
            return []
        return [Aimed("instance", fired.instance_id, *lookups.group_of(fired.instance_id), why=reason)]
    dimensions = fired.dimensions
    if "InstanceId" in dimensions:
        instance_id = dimensions["InstanceId"]
        return [Aimed("instance", instance_id, *lookups.group_of(instance_id))]
    if "ClusterName" in dimensions and "ServiceName" in dimensions:
        return [Aimed("ecs", f"{dimensions['ClusterName']}/{dimensions['ServiceName']}")]
    group = dimensions.get("AutoScalingGroupName")
    if group:
        members = lookups.group_instances(group)
        if isinstance(rule.trigger, StatusCheckTrigger):
            members = lookups.impaired(members)
        size = len(lookups.group_instances(group)) if members else 0
        return [Aimed("instance", instance_id, group, size) for instance_id in members]
    return []


def fired_by(event: dict[str, Any]) -> Fired | None:
    return (
        AlarmFired.from_event(event) or TasksImpaired.from_event(event) or InstanceStopped.from_event(event)
    )


def answer(
    event: dict[str, Any],
    store: RemediationStore,
    starter: Starter,
    lookups: Lookups,
    home: tuple[str, str],
    now: datetime,
    already: Callable[[str], bool],
    announce: Callable[[StoredRule, Outcome, str], None] | None = None,
) -> list[Answered]:
    """Answer one failure event; `already(run_id)` says whether a run of that id exists (a redelivery)."""
    fired = fired_by(event)
    if fired is None:
        return []
    tags_cache: dict[str, dict[str, str]] = {}

    def tags() -> dict[str, str]:
        assert isinstance(fired, AlarmFired)
        if fired.alarm_arn not in tags_cache:
            tags_cache[fired.alarm_arn] = lookups.alarm_tags(fired.alarm_arn)
        return tags_cache[fired.alarm_arn]

    answered: list[Answered] = []
    for stored in store.all():
        if not matches(stored.rule, fired, home, tags):
            continue
        for aimed in resources(stored.rule, fired, lookups):
            answered.append(_answer(stored, fired, aimed, store, starter, now, announce, already))
    return answered


def _suits(rule: RemediationRule, aimed: Aimed) -> str | None:
    """Why the rule's action cannot act on the resource, if it cannot."""
    if rule.action.kind in INSTANCE_ACTIONS and aimed.kind != "instance":
        return f"{rule.action.kind} acts on an instance, and the event names ECS service {aimed.resource}"
    if rule.action.kind == "ecs_redeploy" and aimed.kind != "ecs":
        return f"ecs_redeploy acts on an ECS service, and the event names instance {aimed.resource}"
    return None


def runbook_call(runbook: Runbook, aimed: Aimed) -> RunbookCall:
    """The rule's runbook with `{{resource}}` (and, for a service, `{{cluster}}` and `{{service}}`) filled in."""
    cluster, _, service = aimed.resource.partition("/") if aimed.kind == "ecs" else ("", "", "")
    names = {"{{resource}}": aimed.resource, "{{cluster}}": cluster, "{{service}}": service}

    def filled(value: str) -> str:
        for name, text in names.items():
            value = value.replace(name, text)
        return value

    return RunbookCall(
        document=runbook.document,
        document_version=runbook.document_version,
        parameters={key: [filled(v) for v in values] for key, values in runbook.parameters.items()},
    )


def _answer(
    stored: StoredRule,
    fired: Fired,
    aimed: Aimed,
    store: RemediationStore,
    starter: Starter,
    now: datetime,
    announce: Callable[[StoredRule, Outcome, str], None] | None,
    already: Callable[[str], bool],
) -> Answered:
    rule = stored.rule
    alarm_name = fired.alarm_name if isinstance(fired, AlarmFired) else None
    # The rule answered only an event of its own account and region (`matches`).
    request = RemediateRequest(
        workflow="remediate",
        rule=stored.name,
        resource_kind=aimed.kind,
        resource=aimed.resource,
        group=aimed.group,
        alarm_name=alarm_name,
        cause=(f"{fired.cause} ({aimed.why})" if aimed.why else fired.cause)[:1000],
        helped_when="alarm_ok" if isinstance(rule.trigger, AlarmTrigger) else "status_checks_ok",
        action=rule.action.kind,
        runbook=runbook_call(rule.action, aimed) if isinstance(rule.action, Runbook) else None,
        outcome_timeout_minutes=rule.outcome_timeout_minutes,
        dry_run=rule.dry_run,
        account=rule.account,
        region=rule.region,
    )
    requester = Requester(kind="remediation", identity=f"remediation rule {stored.name}")
    key = f"{fired.event_id}:{aimed.resource}"
    run_id = starter.run_id_for(request, requester, "", key)
    if already(run_id):
        return Answered(stored.name, aimed.resource, "replayed", run_id, "this event was answered already")
    unsuited = _suits(rule, aimed)
    if unsuited is not None:
        skipped = starter.skip(request, requester, f"not acted on: {unsuited}", key)
        return Answered(stored.name, aimed.resource, "skipped", skipped.run.run_id, unsuited)
    where = Target(aimed.kind, aimed.resource, request.account, request.region).key

    decided = store.change_guard(
        stored.name,
        lambda the_rule, record: _decided(
            the_rule, record, Asked(where, run_id, aimed.group, aimed.size), now
        ),
    )
    if decided.decision.verdict == "skip":
        if decided.breaker_opened and announce is not None:
            announce(stored, decided, run_id)
        skipped = starter.skip(request, requester, f"not acted on: {decided.decision.reason}", key)
        logger.info(
            "remediation skipped",
            extra={"rule": stored.name, "resource": aimed.resource, "why": decided.decision.reason},
        )
        return Answered(stored.name, aimed.resource, "skipped", skipped.run.run_id, decided.decision.reason)
    try:
        started = starter.start(request, requester, key)
    except (Busy, Refused, NotOptedIn, NotFound) as refused:
        # Not acted on after all: the place it took under the caps and in the breaker's count is given back.
        why = refused.message
        store.change_guard(stored.name, lambda _rule, record: (guard.withdraw(record, run_id, why), None))
        skipped = starter.skip(request, requester, f"not acted on: {why}", key)
        return Answered(stored.name, aimed.resource, "skipped", skipped.run.run_id, why)
    except OpsflowError:
        store.change_guard(
            stored.name,
            lambda _rule, record: (guard.withdraw(record, run_id, "the run could not start"), None),
        )
        raise
    if not started.created:
        return Answered(
            stored.name, aimed.resource, "replayed", started.run.run_id, "this event was answered already"
        )
    logger.info(
        "remediation started", extra={"rule": stored.name, "resource": aimed.resource, "run_id": run_id}
    )
    return Answered(stored.name, aimed.resource, "started", started.run.run_id, decided.decision.reason)


def _decided(
    rule: RemediationRule, record: guard.Guard, asked: Asked, now: datetime
) -> tuple[guard.Guard, Outcome]:
    outcome = guard.decide(rule, record, asked, now)
    return outcome.guard, outcome


class AwsLookups:
    """The reads matching an event needs, in the event's account and region (account None: the hub's)."""

    def __init__(self, account: str | None, region: str | None) -> None:
        self._ec2 = Ec2(clients.client_at("ec2", account, region))
        self._autoscaling = AutoScaling(clients.client_at("autoscaling", account, region))
        self._cloudwatch = CloudWatch(clients.client_at("cloudwatch", account, region))

    def alarm_tags(self, alarm_arn: str) -> dict[str, str]:
        return self._cloudwatch.alarm_tags(alarm_arn)

    def group_of(self, instance_id: str) -> tuple[str | None, int | None]:
        try:
            group = self._ec2.describe_instance(instance_id).tags.get(GROUP_TAG)
        except NotFound:
            return None, None
        return (group, len(self.group_instances(group))) if group else (None, None)

    def group_instances(self, group: str) -> list[str]:
        try:
            return self._autoscaling.describe_group(group).instance_ids
        except NotFound:
            return []

    def impaired(self, instance_ids: list[str]) -> list[str]:
        statuses = {instance_id: self._ec2.instance_status(instance_id) for instance_id in instance_ids}
        return [i for i, status in statuses.items() if status.state == "running" and not status.healthy]

    def stop_reason(self, instance_id: str) -> str | None:
        try:
            return self._ec2.describe_instance(instance_id).state_reason
        except NotFound:
            return None


def announce_breaker(events: Events, stored: StoredRule, outcome: Outcome, run_id: str) -> None:
    """One message when a rule's breaker opens: the team must look before it acts again."""
    reason = outcome.guard.breaker.reason if outcome.guard.breaker else outcome.decision.reason
    events.progress(
        run_id,
        "remediate",
        outcome.decision.resource,
        "breaker_opened",
        f"circuit breaker of rule {stored.name} opened: {reason}. It acts on nothing until closed "
        f"(DELETE /remediations/{stored.name}/breaker).",
        severity="warning",
    )
