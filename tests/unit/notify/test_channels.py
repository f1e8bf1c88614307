"""Routing: `projects`, `applications` and `repositories` pick CodeBuild, CodeDeploy and ECR messages as
`pipelines` picks CodePipeline's; `min_severity` applies to every message, whatever its source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsflow.notify.build import build_message
from opsflow.notify.channels import Channel, parse_channels, routes
from opsflow.notify.message import Message

EVENTS = Path(__file__).resolve().parents[3] / "events"


def message(name: str, **detail: Any) -> Message:
    event = json.loads((EVENTS / name).read_text())
    event["detail"].update(detail)
    built = build_message(event)
    assert built is not None
    return built


def channel(**filters: Any) -> Channel:
    [parsed] = parse_channels(
        json.dumps([{"name": "c", "platform": "slack", "webhook_secret": "s", **filters}])
    )
    return parsed


BUILD = "codebuild/build_succeeded.json"
DEPLOYMENT = "codedeploy/deployment_succeeded.json"
PUSH = "ecr/image_push.json"
SCAN = "ecr/image_scan.json"
ALARM = "cloudwatch/alarm_state_change.json"
PIPELINE = "codepipeline/pipeline_failed.json"


@pytest.mark.parametrize(
    ("filters", "wanted", "unwanted"),
    [
        ({"projects": ["my-sample-project"]}, [BUILD], [DEPLOYMENT, PUSH, SCAN, ALARM, PIPELINE]),
        ({"applications": ["myApplication"]}, [DEPLOYMENT], [BUILD, PUSH, SCAN, ALARM, PIPELINE]),
        ({"repositories": ["my-repository-name"]}, [PUSH, SCAN], [BUILD, DEPLOYMENT, ALARM, PIPELINE]),
        ({"pipelines": ["my-pipeline"]}, [], [BUILD, DEPLOYMENT, PUSH, SCAN, ALARM]),
    ],
)
def test_each_filter_picks_the_messages_about_what_it_names(
    filters: dict[str, Any], wanted: list[str], unwanted: list[str]
) -> None:
    picky = channel(**filters)
    assert [name for name in wanted if picky.wants(message(name))] == wanted
    assert [name for name in unwanted if picky.wants(message(name))] == []


def test_a_filter_naming_another_project_lets_none_of_this_ones_through() -> None:
    assert not channel(projects=["web-build"]).wants(message(BUILD))
    assert channel(projects=["web-build", "my-sample-project"]).wants(message(BUILD))
    assert not channel(applications=["web"]).wants(message(DEPLOYMENT))
    assert not channel(repositories=["web"]).wants(message(SCAN))


def test_min_severity_applies_to_every_source() -> None:
    oncall = channel(min_severity="critical")
    assert oncall.wants(message(SCAN))  # 10 critical findings
    assert oncall.wants(message(DEPLOYMENT, state="FAILURE"))
    assert oncall.wants(message(BUILD, **{"build-status": "FAILED"}))
    for quiet in (
        message(BUILD),
        message(DEPLOYMENT),
        message(PUSH),
        message(BUILD, **{"build-status": "STOPPED"}),
    ):
        assert not oncall.wants(quiet)
    warnings = channel(min_severity="warning")
    assert warnings.wants(message(SCAN, **{"finding-severity-counts": {"HIGH": 1}}))
    assert not warnings.wants(message(SCAN, **{"finding-severity-counts": {"LOW": 1}}))


def test_filters_combine() -> None:
    both = channel(repositories=["my-repository-name"], min_severity="critical")
    assert both.wants(message(SCAN))
    assert not both.wants(message(PUSH))


def test_a_channel_without_filters_gets_every_source() -> None:
    names = [BUILD, DEPLOYMENT, PUSH, SCAN, "health/ec2_instance_retirement_scheduled.json"]
    everything = channel()
    assert all(routes(message(name), [everything]) == [everything] for name in names)
