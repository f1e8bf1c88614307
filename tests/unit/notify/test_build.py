"""Every documented example event in events/ becomes a message that a person can read, and renders
valid for Slack and Teams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsflow.notify import slack, teams
from opsflow.notify.build import build_message
from opsflow.notify.message import Status
from opsflow_local.template import Template

from .conftest import assert_valid_card, assert_valid_slack

ROOT = Path(__file__).resolve().parents[3]
# EventBridge events only: events/ also holds direct invocation payloads (codepipeline/job.json); EC2's events
# only end waits (opsflow.waits) or start remediations, and so do ECS's service actions: the runs' own events
# say what became of the image, the instance or the service.
EVENTS = sorted(
    path
    for path in (Path(__file__).resolve().parents[3] / "events").rglob("*.json")
    if "detail-type" in json.loads(path.read_text())
    and path.parent.name != "ec2"
    and not path.name.startswith("service_action_")
)


def load(name: str) -> dict[str, Any]:
    return dict(json.loads(next(p for p in EVENTS if p.as_posix().endswith(name)).read_text()))


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_documented_event_renders_for_slack_and_teams(
    path: Path, adaptive_card_schema: dict[str, Any]
) -> None:
    event = json.loads(path.read_text())
    message = build_message(event)
    assert message is not None, f"no message for {event['source']} {event['detail-type']}"
    assert message.title
    assert message.source
    assert "{" not in message.title, "raw JSON leaked into the title"
    assert_valid_slack(slack.payload(message))
    assert_valid_card(teams.payload(message), adaptive_card_schema)


def test_a_failed_ami_bake_names_the_failed_step_and_the_error() -> None:
    run = {
        "workflow": "ami_bake",
        "target": "asg:web",
        "requester": {"kind": "iam", "identity": "arn:aws:iam::123456789012:user/alice"},
        "error": {
            "step": "check_image",
            "error": "ImageFailed",
            "message": "ImageFailed: image ami-0abc ended failed: Snapshot of /dev/sdc failed",
            "rollback": {
                "undone": ["deregistered image ami-0abc", "deleted snapshot snap-1"],
                "problems": [],
            },
        },
    }
    message = build_message(load("stepfunctions/execution_failed.json"), run)
    assert message is not None
    assert message.status is Status.FAILED
    assert message.title == "AMI bake failed: web"
    assert ("Failed step", "check_image") in message.facts
    assert message.cause == "ImageFailed: image ami-0abc ended failed: Snapshot of /dev/sdc failed"
    assert "Rolled back (2 change(s))" in (message.next_step or "")
    assert ("Requested by", "arn:aws:iam::123456789012:user/alice") in message.facts
    rendered = json.dumps(slack.payload(message)) + json.dumps(teams.payload(message))
    assert "check_image" in rendered
    assert "Snapshot of /dev/sdc failed" in rendered


def test_links_point_at_the_console_of_the_events_region() -> None:
    message = build_message(load("ecs/deployment_failed.json"))
    assert message is not None
    event = load("ecs/deployment_failed.json")
    assert message.links[0].url.startswith(f"https://{event['region']}.console.aws.amazon.com/ecs/")


def test_an_alarm_says_its_state_and_why() -> None:
    message = build_message(load("cloudwatch/alarm_state_change.json"))
    assert message is not None
    assert message.status is Status.FAILED
    assert message.title.startswith("ALARM: ")
    assert message.cause


def test_a_run_starting_is_not_worth_a_message() -> None:
    event = load("stepfunctions/execution_succeeded.json")
    event["detail"]["status"] = "RUNNING"
    assert build_message(event) is None


def test_without_a_run_record_the_workflow_comes_from_the_state_machine_name() -> None:
    message = build_message(load("stepfunctions/execution_timed_out.json"))
    assert message is not None
    assert message.title == "AMI bake timed out: run ami-bake-3f0c9a1d2b4e5f60718293a4"


def own_alarm_event(logical_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The documented alarm state change event, for one of the alarms template.yaml deploys."""
    template = Template.load(ROOT / "template.yaml", "us-east-1")
    alarm = template.resolve(template.body["Resources"][logical_id]["Properties"])
    event = load("cloudwatch/alarm_state_change.json")
    event["detail"]["alarmName"] = alarm["AlarmName"]
    event["detail"]["configuration"]["description"] = alarm["AlarmDescription"]
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm['AlarmName']}"]
    return event, alarm


@pytest.mark.parametrize(
    "logical_id",
    [
        "RunEndedDeadLetterQueueAlarm",
        "NotifyDeadLetterQueueAlarm",
        "EcsBlueGreenStateMachineAlarm",
        "ApiFunctionAlarm",
    ],
)
def test_opsflow_own_alarms_say_what_broke_and_what_to_do(
    logical_id: str, adaptive_card_schema: dict[str, Any]
) -> None:
    event, alarm = own_alarm_event(logical_id)
    message = build_message(event)
    assert message is not None
    assert message.title == f"ALARM: {alarm['AlarmName']} (was OK)"
    assert message.status is Status.FAILED
    assert message.summary == alarm["AlarmDescription"]
    assert message.links[0].url.endswith(f"#alarmsV2:alarm/{alarm['AlarmName']}")
    assert_valid_slack(slack.payload(message))
    assert_valid_card(teams.payload(message), adaptive_card_schema)


def test_the_run_ended_alarm_says_how_to_redrive() -> None:
    event, _ = own_alarm_event("RunEndedDeadLetterQueueAlarm")
    message = build_message(event)
    assert message is not None
    assert message.title.startswith("ALARM: opsflow-run-ended-dead-letters")
    assert "traffic not be put back" in message.summary
    assert 'invoke the function with {"redrive": true}' in message.summary
    rendered = json.dumps(slack.payload(message))
    assert "redrive" in rendered
