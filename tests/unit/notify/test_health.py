"""AWS Health messages: an EC2 instance Opsflow manages is named by its group and environment, from a
lookup of its tags (a fake here; ec2:DescribeInstances in the notify function)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from opsflow.notify import slack, teams
from opsflow.notify.build import build_message
from opsflow.notify.channels import parse_channels
from opsflow.notify.delivery import HttpResponse
from opsflow.notify.health import health_event
from opsflow.notify.message import Message, Severity, Status
from opsflow.notify.notifier import Notifier
from opsflow.notify.wiring import instance_tags

from .conftest import assert_valid_card, assert_valid_slack

EVENTS = Path(__file__).resolve().parents[3] / "events"
INSTANCE = "i-1234567890abcdef0"
MANAGED = {"opsflow:managed": "true", "opsflow:environment": "prod", "aws:autoscaling:groupName": "web"}


def retirement() -> dict[str, Any]:
    return dict(json.loads((EVENTS / "health/ec2_instance_retirement_scheduled.json").read_text()))


class Tags:
    """A fake lookup: the tags it is given, and the calls it was asked."""

    def __init__(self, tags: Mapping[str, Mapping[str, str]]) -> None:
        self.tags = tags
        self.asked: list[tuple[str, str, list[str]]] = []

    def __call__(
        self, account: str, region: str, instance_ids: Sequence[str]
    ) -> Mapping[str, Mapping[str, str]]:
        self.asked.append((account, region, list(instance_ids)))
        return {instance: self.tags[instance] for instance in instance_ids if instance in self.tags}


def built(event: dict[str, Any], tags: Tags | None = None) -> Message:
    message = build_message(event, instance_tags=tags)
    assert message is not None
    return message


def test_a_managed_instances_retirement_names_its_group_and_environment(
    adaptive_card_schema: dict[str, Any],
) -> None:
    tags = Tags({INSTANCE: MANAGED})
    message = built(retirement(), tags)
    assert tags.asked == [("123456789012", "us-east-1", [INSTANCE])]
    assert message.title == "AWS Health: EC2 instance retirement scheduled for group web (environment prod)"
    assert (message.status, message.severity) == (Status.WARNING, Severity.WARNING)
    assert ("Affected", f"{INSTANCE} (group web, environment prod): pending") in message.facts
    assert ("Category", "scheduled change") in message.facts
    assert ("Start", "Thu, 27 Aug 2026 13:19:03 GMT") in message.facts
    assert ("Event type", "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED") in message.facts
    assert message.summary == "A description of the event will be provided here"
    assert message.environment == "prod"  # a channel's `environments` routes it
    assert message.next_step is not None
    assert "ASG refresh of web" in message.next_step
    assert [link.label for link in message.links] == ["Open in AWS Health", "Open group web"]
    assert message.links[0].url.startswith("https://health.aws.amazon.com/health/home#/account/event-log?")
    slack_payload, teams_payload = slack.payload(message), teams.payload(message)
    assert_valid_slack(slack_payload)
    assert_valid_card(teams_payload, adaptive_card_schema)
    assert "group web" in json.dumps(slack_payload)
    assert "group web" in json.dumps(teams_payload)


@pytest.mark.parametrize(
    "tags",
    [
        {"aws:autoscaling:groupName": "web", "opsflow:environment": "prod"},  # not opted in
        {**MANAGED, "opsflow:managed": "yes"},  # opted in with another value
    ],
)
def test_an_instance_opsflow_does_not_manage_is_named_by_its_id_only(tags: dict[str, str]) -> None:
    message = built(retirement(), Tags({INSTANCE: tags}))
    assert message.title == f"AWS Health: EC2 instance retirement scheduled for {INSTANCE}"
    assert ("Affected", f"{INSTANCE}: pending") in message.facts
    assert message.environment is None
    assert message.next_step is None
    assert message.links[1].label == f"Open {INSTANCE}"


def test_without_a_lookup_the_instance_is_named_as_the_event_names_it() -> None:
    message = health_event(retirement())
    assert message.title == f"AWS Health: EC2 instance retirement scheduled for {INSTANCE}"


def test_instances_named_by_id_are_looked_up_in_the_events_account_and_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_ACCOUNT_ID", "123456789012")
    event = retirement()
    event["detail"]["affectedAccount"] = "222222222222"
    event["detail"]["eventRegion"] = "eu-west-1"
    event["detail"]["affectedEntities"] = [
        {"entityValue": "i-0aaaaaaaaaaaaaaaa"},
        {"entityValue": "i-0bbbbbbbbbbbbbbbb"},
        {"entityValue": "vol-0ccccccccccccccc"},
    ]
    tags = Tags({"i-0aaaaaaaaaaaaaaaa": {**MANAGED, "aws:autoscaling:groupName": "api"}})
    message = built(event, tags)
    assert tags.asked == [("222222222222", "eu-west-1", ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"])]
    assert message.title == (
        "AWS Health: EC2 instance retirement scheduled for group api (environment prod)"
        " in 222222222222/eu-west-1"
    )
    assert ("Account", "222222222222") in message.facts
    affected = dict(message.facts)["Affected"]
    assert affected.splitlines() == [
        "i-0aaaaaaaaaaaaaaaa (group api, environment prod)",
        "i-0bbbbbbbbbbbbbbbb",
        "vol-0ccccccccccccccc",
    ]


def test_a_closed_event_reads_as_resolved() -> None:
    event = retirement()
    event["detail"]["statusCode"] = "closed"
    message = built(event, Tags({INSTANCE: MANAGED}))
    assert (message.status, message.severity) == (Status.SUCCEEDED, Severity.INFO)
    assert "(closed)" in message.title
    assert message.next_step is None


def test_a_public_issue_without_entities_is_a_warning_naming_the_service() -> None:
    event = retirement()
    detail = event["detail"]
    detail.update(
        eventTypeCode="AWS_EC2_OPERATIONAL_ISSUE",
        eventTypeCategory="issue",
        eventScopeCode="PUBLIC",
        affectedEntities=[],
    )
    del detail["actionability"]
    message = built(event, Tags({}))
    assert message.title == "AWS Health: EC2 operational issue"
    assert (message.status, message.severity) == (Status.WARNING, Severity.WARNING)
    assert not any(label == "Affected" for label, _ in message.facts)


def test_an_account_notification_is_information() -> None:
    event = retirement()
    event["detail"].update(eventTypeCategory="accountNotification", actionability="INFORMATIONAL")
    message = built(event)
    assert (message.status, message.severity) == (Status.INFO, Severity.INFO)


def test_the_notifier_hands_the_health_builder_its_lookup() -> None:
    received: list[dict[str, Any]] = []

    def post(url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        received.append(json.loads(body))
        return HttpResponse(200, {}, "ok")

    prod_only = parse_channels(
        json.dumps([{"name": "prod", "platform": "slack", "webhook_secret": "s", "environments": ["prod"]}])
    )
    notifier = Notifier(
        channels=prod_only,
        secret=lambda channel: "https://hooks.example/prod",
        dead_letters=None,  # type: ignore[arg-type]  # nothing is parked when delivery succeeds
        instance_tags=Tags({INSTANCE: MANAGED}),
        post=post,
    )
    assert [outcome["outcome"] for outcome in notifier.notify(retirement())] == ["delivered"]
    assert "group web (environment prod)" in received[0]["text"]


# The lookup the notify function wires -------------------------------------------------------------


@pytest.mark.usefixtures("mocked_aws")
def test_the_lookup_reads_instance_tags_and_skips_what_it_cannot_find(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_ACCOUNT_ID", "123456789012")
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in MANAGED.items()]}
        ],
    )["Instances"][0]["InstanceId"]
    found = instance_tags("123456789012", "eu-west-1", [instance, "i-0ffffffffffffffff"])
    assert dict(found) == {instance: MANAGED}
    # Another account is looked up there, through its spoke role: the hub's instance is not in it.
    assert instance_tags("222222222222", "eu-west-1", [instance]) == {}
