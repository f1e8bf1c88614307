"""AWS Health events (AWS Health User Guide, "Reference: AWS Health events Amazon EventBridge schema"): the
service, the event type, its category, when it starts, the entities it affects and AWS's description.

An EC2 instance that Opsflow manages (it carries the opt-in tag) is named by its Auto Scaling group and
environment, read from its tags. The builder does not call AWS: it is handed `instance_tags`, a lookup the
notify function wires (ec2:DescribeInstances), and a test a fake."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from opsflow.aws.autoscaling import GROUP_TAG
from opsflow.notify.message import Link, Message, Severity, Status
from opsflow.notify.where import console, elsewhere, where_facts
from opsflow.runs.config import OptIn, environment_tag_key

HEALTH_EVENT = ("aws.health", "AWS Health Event")

InstanceTags = Callable[[str, str, Sequence[str]], Mapping[str, Mapping[str, str]]]
"""(account, region, instance ids) -> the tags of each instance found; one not found is left out."""

_CATEGORIES = {
    "issue": "issue",
    "scheduledChange": "scheduled change",
    "accountNotification": "account notification",
    "investigation": "investigation",
}
_SHOWN_ENTITIES = 10


def no_instance_tags(
    account: str, region: str, instance_ids: Sequence[str]
) -> Mapping[str, Mapping[str, str]]:
    return {}


def health_event(
    event: dict[str, Any], run: dict[str, Any] | None = None, instance_tags: InstanceTags = no_instance_tags
) -> Message:
    detail = event["detail"]
    account = str(detail.get("affectedAccount") or event.get("account") or "")
    region = str(detail.get("eventRegion") or event.get("region") or "us-east-1")
    service = str(detail.get("service", ""))
    code = str(detail.get("eventTypeCode", ""))
    category = str(detail.get("eventTypeCategory", ""))
    closed = detail.get("statusCode") == "closed"
    what = code.removeprefix("AWS_").removeprefix(f"{service}_").replace("_", " ").lower() or "event"
    entities = [
        entity
        for entity in detail.get("affectedEntities") or []
        if isinstance(entity, dict) and entity.get("entityValue")
    ]
    managed = _managed_instances(entities, account, region, instance_tags)
    groups = sorted({instance["group"] for instance in managed.values() if instance.get("group")})
    environments = sorted(
        {instance["environment"] for instance in managed.values() if instance.get("environment")}
    )
    status, severity = _status(category, closed, str(detail.get("actionability", "")))
    facts = [
        ("Category", _CATEGORIES.get(category, category or "?")),
        ("Event type", code),
        ("Region", region),
        ("Start", str(detail.get("startTime") or "?")),
    ]
    if detail.get("endTime"):
        facts.append(("End", str(detail["endTime"])))
    if detail.get("statusCode"):
        facts.append(("Status", str(detail["statusCode"])))
    if detail.get("actionability"):
        facts.append(("Action", str(detail["actionability"]).replace("_", " ").lower()))
    if entities:
        facts.append(("Affected", _affected(entities, managed)))
    facts += [fact for fact in where_facts(account, region) if fact[0] != "Region"]
    subject = ""
    if groups:
        subject = f" for group{'s' if len(groups) > 1 else ''} {', '.join(groups)}"
    if environments:
        shown = f"environment{'s' if len(environments) > 1 else ''} {', '.join(environments)}"
        subject = f"{subject} ({shown})" if subject else f" for {shown}"
    if not subject and entities:
        first = _instance_id(str(entities[0]["entityValue"])) or str(entities[0]["entityValue"])
        subject = f" for {first}" + (f" and {len(entities) - 1} more" if len(entities) > 1 else "")
    next_step = None
    if groups and category == "scheduledChange" and not closed:
        next_step = (
            f"Before {detail.get('startTime') or 'it starts'}, replace the affected instances: "
            f"an ASG refresh of {', '.join(groups)} does."
        )
    return Message(
        title=f"AWS Health: {service} {what}{' (closed)' if closed else ''}{subject}"
        f"{elsewhere(account or None, region)}",
        status=status,
        severity=severity,
        summary=_description(detail),
        facts=tuple(facts),
        next_step=next_step,
        links=_links(detail, region, groups, entities),
        source="AWS Health",
        environment=environments[0] if len(environments) == 1 else None,
    )


def _status(category: str, closed: bool, actionability: str) -> tuple[Status, Severity]:
    if closed:
        return Status.SUCCEEDED, Severity.INFO
    if category in {"issue", "scheduledChange"} and actionability != "INFORMATIONAL":
        return Status.WARNING, Severity.WARNING
    if actionability == "ACTION_REQUIRED":
        return Status.WARNING, Severity.WARNING
    return Status.INFO, Severity.INFO


def _instance_id(value: str) -> str | None:
    """`i-0abc` or `arn:aws:ec2:us-east-1:123456789012:instance/i-0abc` -> `i-0abc`; else None."""
    name = value.rpartition(":instance/")[2] if value.startswith("arn:") else value
    return name if name.startswith("i-") and "/" not in name else None


def _managed_instances(
    entities: list[dict[str, Any]], account: str, region: str, instance_tags: InstanceTags
) -> dict[str, dict[str, str]]:
    """Each affected instance that carries the opt-in tag: its group and environment, by instance id."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for entity in entities:
        value = str(entity["entityValue"])
        instance = _instance_id(value)
        if not instance:
            continue
        where = (account, region)
        if value.startswith("arn:"):
            parts = value.split(":")
            where = (parts[4] or account, parts[3] or region)
        wanted.setdefault(where, []).append(instance)
    opt_in, environment_tag = OptIn.from_env(), environment_tag_key()
    managed: dict[str, dict[str, str]] = {}
    for (in_account, in_region), instances in wanted.items():
        for instance, tags in instance_tags(in_account, in_region, instances).items():
            if opt_in.allows(dict(tags)):
                managed[instance] = {
                    "group": tags.get(GROUP_TAG, ""),
                    "environment": tags.get(environment_tag, ""),
                }
    return managed


def _affected(entities: list[dict[str, Any]], managed: dict[str, dict[str, str]]) -> str:
    lines = []
    for entity in entities[:_SHOWN_ENTITIES]:
        value = str(entity["entityValue"])
        instance = _instance_id(value)
        known = managed.get(instance or "")
        if known:
            parts = [
                f"group {known['group']}" if known.get("group") else "",
                f"environment {known['environment']}" if known.get("environment") else "",
            ]
            line = f"{instance} ({', '.join(part for part in parts if part) or 'managed by Opsflow'})"
        else:
            line = instance or value
        if entity.get("status"):
            line += f": {str(entity['status']).lower()}"
        lines.append(line)
    if len(entities) > _SHOWN_ENTITIES:
        lines.append(f"and {len(entities) - _SHOWN_ENTITIES} more")
    return "\n".join(lines)


def _description(detail: dict[str, Any]) -> str:
    descriptions = [row for row in detail.get("eventDescription") or [] if isinstance(row, dict)]
    chosen = next((row for row in descriptions if row.get("language") == "en_US"), None) or (
        descriptions[0] if descriptions else {}
    )
    return str(chosen.get("latestDescription") or "")


def _links(
    detail: dict[str, Any],
    region: str,
    groups: list[str],
    entities: list[dict[str, Any]],
) -> tuple[Link, ...]:
    links = []
    if detail.get("eventArn"):
        links.append(
            Link(
                "Open in AWS Health",
                "https://health.aws.amazon.com/health/home#/account/event-log"
                f"?eventID={quote(str(detail['eventArn']), safe='')}",
            )
        )
    for group in groups[:2]:
        links.append(
            Link(
                f"Open group {group}",
                console(region, f"ec2/home?region={region}#AutoScalingGroupDetails:id={quote(group)}"),
            )
        )
    if not groups:
        instance = next(
            (found for entity in entities if (found := _instance_id(str(entity["entityValue"])))), None
        )
        if instance:
            links.append(
                Link(
                    f"Open {instance}",
                    console(region, f"ec2/home?region={region}#InstanceDetails:instanceId={instance}"),
                )
            )
    return tuple(links)
