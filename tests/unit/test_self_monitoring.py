"""Opsflow watches itself: template.yaml gives every function a log group with a retention and an alarm on
its errors and throttles, every state machine an alarm on failed or timed-out executions, and every
dead-letter queue an alarm once it holds a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsflow_local.template import Template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(ROOT / "template.yaml", "us-east-1")


def watched(template: Template) -> list[dict[str, Any]]:
    """Each alarm's metrics, resolved: (namespace, metric name, dimensions)."""
    found = []
    for alarm in template.resources("AWS::CloudWatch::Alarm").values():
        properties = template.resolve(alarm["Properties"])
        stats = [
            query["MetricStat"]["Metric"] for query in properties.get("Metrics", []) if "MetricStat" in query
        ]
        if "MetricName" in properties:
            stats.append({key: properties[key] for key in ("Namespace", "MetricName", "Dimensions")})
        found.extend(stats)
    return found


def dimension(template: Template, metric: dict[str, Any]) -> str:
    (only,) = metric["Dimensions"]
    return str(only["Value"])


def test_every_function_has_a_log_group_with_a_retention(template: Template) -> None:
    groups = {
        template.resolve(group["Properties"]["LogGroupName"]): group["Properties"]
        for group in template.resources("AWS::Logs::LogGroup").values()
        if "LogGroupName" in group["Properties"]
    }
    for logical_id in template.resources("AWS::Serverless::Function"):
        properties = groups[f"/aws/lambda/{template.physical_name(logical_id)}"]
        assert template.resolve(properties["RetentionInDays"]) == 90


def test_every_function_has_an_alarm_on_its_errors_and_throttles(template: Template) -> None:
    metrics = watched(template)
    for logical_id in template.resources("AWS::Serverless::Function"):
        name = template.physical_name(logical_id)
        on_it = {
            m["MetricName"]
            for m in metrics
            if m["Namespace"] == "AWS/Lambda" and dimension(template, m) == name
        }
        assert on_it == {"Errors", "Throttles"}, logical_id


def test_every_state_machine_has_an_alarm_on_failed_and_timed_out_executions(template: Template) -> None:
    metrics = watched(template)
    for logical_id in template.resources("AWS::Serverless::StateMachine"):
        arn = template.arn(logical_id)
        on_it = {
            m["MetricName"]
            for m in metrics
            if m["Namespace"] == "AWS/States" and dimension(template, m) == arn
        }
        assert on_it == {"ExecutionsFailed", "ExecutionsTimedOut"}, logical_id


def test_every_dead_letter_queue_has_an_alarm_once_it_holds_a_message(template: Template) -> None:
    metrics = watched(template)
    for logical_id in template.resources("AWS::SQS::Queue"):
        name = template.physical_name(logical_id)
        assert any(
            m["Namespace"] == "AWS/SQS"
            and m["MetricName"] == "ApproximateNumberOfMessagesVisible"
            and dimension(template, m) == name
            for m in metrics
        ), logical_id
