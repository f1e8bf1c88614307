"""The CloudWatch emulation against the CloudWatch User Guide ("Alarm events and EventBridge") and API
Reference (DescribeAlarmHistory, AlarmHistoryItem, PutMetricAlarm, SetAlarmState), and the AWS CLI's
describe-alarm-history example."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from opsflow_local.emulation.aws_events import AwsEvents
from opsflow_local.emulation.cloudwatch import CloudWatchEmulation

from .bus import Rule, rule

ALARM_EVENTS = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000"


@pytest.fixture
def events() -> Iterator[AwsEvents]:
    recorder = AwsEvents()
    with ExitStack() as stack:
        CloudWatchEmulation().install(stack)
        stack.enter_context(mock_aws())
        recorder.install(stack)
        yield recorder


@pytest.fixture
def alarm_rule(events: AwsEvents) -> Rule:
    return rule("alarm-events", ALARM_EVENTS)


def cloudwatch() -> Any:
    return boto3.client("cloudwatch", region_name="us-east-1")


def cpu_alarm(name: str = "ServerCpuTooHigh", threshold: float = 50.0) -> None:
    """The guide's single-metric example alarm."""
    cloudwatch().put_metric_alarm(
        AlarmName=name,
        AlarmDescription="Goes into alarm when server CPU utilization is too high!",
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "InstanceId", "Value": "i-12345678901234567"}],
        Statistic="Average",
        Period=300,
        EvaluationPeriods=1,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
    )


def set_state(value: str, reason: str, name: str = "ServerCpuTooHigh", data: str | None = None) -> None:
    extra = {"StateReasonData": data} if data else {}
    cloudwatch().set_alarm_state(AlarmName=name, StateValue=value, StateReason=reason, **extra)


def history(**filters: Any) -> list[dict[str, Any]]:
    return list(cloudwatch().describe_alarm_history(**filters)["AlarmHistoryItems"])


def test_a_change_of_state_sends_the_documented_alarm_state_change_event(alarm_rule: Rule) -> None:
    """The single-metric example: source aws.cloudwatch, resources [alarm ARN], detail alarmName,
    configuration {description, metrics: [{id, metricStat {metric {dimensions, name, namespace}, period,
    stat}, returnData}]}, previousState and state {value, reason, reasonData, timestamp}."""
    cpu_alarm()
    set_state(
        "ALARM", "Threshold Crossed", data='{"version":"1.0","recentDatapoints":[99.5],"threshold":50.0}'
    )

    [event] = alarm_rule.received(1)

    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        [ALARM_ARN],
    )
    detail = event["detail"]
    assert detail["alarmName"] == "ServerCpuTooHigh"
    assert (
        detail["configuration"]["description"] == "Goes into alarm when server CPU utilization is too high!"
    )
    [metric] = detail["configuration"]["metrics"]
    assert metric["id"]
    assert metric["metricStat"] == {
        "metric": {
            "dimensions": {"InstanceId": "i-12345678901234567"},
            "name": "CPUUtilization",
            "namespace": "AWS/EC2",
        },
        "period": 300,
        "stat": "Average",
    }
    assert metric["returnData"] is True
    assert (detail["previousState"]["value"], detail["state"]["value"]) == ("OK", "ALARM")
    assert detail["state"]["reason"] == "Threshold Crossed"
    assert json.loads(detail["state"]["reasonData"])["recentDatapoints"] == [99.5]
    assert re.fullmatch(TIMESTAMP, detail["state"]["timestamp"])
    assert re.fullmatch(TIMESTAMP, detail["previousState"]["timestamp"])


def test_setting_the_state_an_alarm_is_in_sends_nothing(alarm_rule: Rule, events: AwsEvents) -> None:
    """Events are sent when an alarm "changes alarm state": only a new state value is a change."""
    cpu_alarm()
    set_state("ALARM", "hot")
    set_state("ALARM", "still hot")
    set_state("OK", "cool")

    received = alarm_rule.received(2)
    assert [(e["detail"]["previousState"]["value"], e["detail"]["state"]["value"]) for e in received] == [
        ("OK", "ALARM"),
        ("ALARM", "OK"),
    ]
    assert received[1]["detail"]["previousState"]["reason"] == "still hot"
    assert alarm_rule.nothing_more()
    assert len(events.sent) == 2


def test_a_metric_math_alarm_describes_its_queries(alarm_rule: Rule) -> None:
    """The metric math example: configuration.metrics holds each query, an expression with id, label and
    returnData, and metricStat queries."""
    cloudwatch().put_metric_alarm(
        AlarmName="TotalNetworkTrafficTooHigh",
        AlarmDescription="Goes into alarm if total network traffic exceeds 10Kb",
        EvaluationPeriods=1,
        Threshold=10000.0,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[
            {
                "Id": "e1",
                "Expression": "SUM(METRICS())",
                "Label": "Total Network Traffic",
                "ReturnData": True,
            },
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/EC2",
                        "MetricName": "NetworkIn",
                        "Dimensions": [{"Name": "InstanceId", "Value": "i-12345678901234567"}],
                    },
                    "Period": 300,
                    "Stat": "Maximum",
                },
                "ReturnData": False,
            },
        ],
    )
    set_state("ALARM", "Threshold Crossed", name="TotalNetworkTrafficTooHigh")

    [event] = alarm_rule.received(1)

    assert event["detail"]["configuration"]["metrics"] == [
        {"expression": "SUM(METRICS())", "id": "e1", "label": "Total Network Traffic", "returnData": True},
        {
            "id": "m1",
            "metricStat": {
                "metric": {
                    "dimensions": {"InstanceId": "i-12345678901234567"},
                    "name": "NetworkIn",
                    "namespace": "AWS/EC2",
                },
                "period": 300,
                "stat": "Maximum",
            },
            "returnData": False,
        },
    ]


def test_alarm_history_lists_each_state_update_newest_first(events: AwsEvents) -> None:
    """DescribeAlarmHistory with HistoryItemType StateUpdate, as in the CLI example: AlarmName, AlarmType,
    Timestamp, HistoryItemType, HistorySummary "Alarm updated from OK to ALARM" and HistoryData with version,
    oldState and newState {stateValue, stateReason, stateReasonData}. ScanBy defaults to
    TimestampDescending."""
    cpu_alarm()
    set_state("ALARM", "testing purposes", data='{"version":"1.0","threshold":50.0}')
    set_state("ALARM", "no change")
    set_state("OK", "Threshold Crossed: back under")

    items = history(AlarmName="ServerCpuTooHigh", HistoryItemType="StateUpdate")

    assert [i["HistorySummary"] for i in items] == [
        "Alarm updated from ALARM to OK",
        "Alarm updated from OK to ALARM",
    ]
    assert {(i["AlarmName"], i["AlarmType"], i["HistoryItemType"]) for i in items} == {
        ("ServerCpuTooHigh", "MetricAlarm", "StateUpdate")
    }
    assert items[0]["Timestamp"] >= items[1]["Timestamp"]
    newest = json.loads(items[0]["HistoryData"])
    assert newest == {
        "version": "1.0",
        "oldState": {"stateValue": "ALARM", "stateReason": "no change"},
        "newState": {"stateValue": "OK", "stateReason": "Threshold Crossed: back under"},
    }
    oldest = json.loads(items[1]["HistoryData"])
    assert oldest["newState"] == {
        "stateValue": "ALARM",
        "stateReason": "testing purposes",
        "stateReasonData": {"version": "1.0", "threshold": 50.0},
    }
    ascending = history(AlarmName="ServerCpuTooHigh", ScanBy="TimestampAscending")
    assert [i["HistorySummary"] for i in ascending] == [i["HistorySummary"] for i in reversed(items)]


def test_alarm_history_filters_by_name_type_and_dates(events: AwsEvents) -> None:
    """AlarmName, HistoryItemType, StartDate and EndDate narrow the items; without AlarmTypes only metric
    alarms are returned; MaxRecords pages with NextToken."""
    cpu_alarm()
    cpu_alarm("DiskFull")
    set_state("ALARM", "hot")
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    set_state("ALARM", "full", name="DiskFull")
    set_state("OK", "cool")

    assert len(history()) == 3
    assert [i["AlarmName"] for i in history(AlarmName="DiskFull")] == ["DiskFull"]
    assert history(HistoryItemType="ConfigurationUpdate") == []
    assert history(AlarmTypes=["CompositeAlarm"]) == []
    assert [i["HistorySummary"] for i in history(AlarmName="ServerCpuTooHigh", EndDate=between)] == [
        "Alarm updated from OK to ALARM"
    ]
    assert [i["AlarmName"] for i in history(StartDate=between)] == ["ServerCpuTooHigh", "DiskFull"]
    assert history(StartDate=datetime.now(UTC) + timedelta(hours=1)) == []

    first = cloudwatch().describe_alarm_history(MaxRecords=2)
    second = cloudwatch().describe_alarm_history(MaxRecords=2, NextToken=first["NextToken"])
    assert len(first["AlarmHistoryItems"]) == 2
    assert len(second["AlarmHistoryItems"]) == 1
    assert "NextToken" not in second
    with pytest.raises(ClientError) as error:
        cloudwatch().describe_alarm_history(NextToken="not-a-token")
    assert error.value.response["Error"]["Code"] == "InvalidNextToken"


def test_history_outlives_the_alarm(events: AwsEvents) -> None:
    """ "CloudWatch retains the history of an alarm even if you delete the alarm." """
    cpu_alarm()
    set_state("ALARM", "hot")
    cloudwatch().delete_alarms(AlarmNames=["ServerCpuTooHigh"])
    assert [i["HistorySummary"] for i in history(AlarmName="ServerCpuTooHigh")] == [
        "Alarm updated from OK to ALARM"
    ]


def test_updating_an_alarm_leaves_its_state_unchanged(alarm_rule: Rule) -> None:
    """PutMetricAlarm: "When updating an existing alarm, its StateValue is left unchanged"."""
    cpu_alarm()
    set_state("ALARM", "hot")
    alarm_rule.received(1)

    cpu_alarm(threshold=80.0)

    [alarm] = cloudwatch().describe_alarms(AlarmNames=["ServerCpuTooHigh"])["MetricAlarms"]
    assert (alarm["StateValue"], alarm["StateReason"], alarm["Threshold"]) == ("ALARM", "hot", 80.0)
    assert alarm_rule.nothing_more()
