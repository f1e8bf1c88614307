"""CloudWatch adapter: alarm states, and the state changes an alarm went through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from opsflow.aws.errors import aws_call
from opsflow.errors import Refused

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


@dataclass(frozen=True)
class AlarmStateChange:
    alarm: str
    at: datetime
    summary: str  # "Alarm updated from OK to ALARM"


class CloudWatch:
    def __init__(self, client: CloudWatchClient) -> None:
        self._cw = client

    def alarm_tags(self, alarm_arn: str) -> dict[str, str]:
        with aws_call("ListTagsForResource"):
            tags = self._cw.list_tags_for_resource(ResourceARN=alarm_arn).get("Tags", [])
        return {str(t["Key"]): str(t["Value"]) for t in tags}

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        """State (OK, ALARM, INSUFFICIENT_DATA) of each named metric or composite alarm that exists."""
        if not names:
            return {}
        states: dict[str, str] = {}
        with aws_call("DescribeAlarms"):
            for page in self._cw.get_paginator("describe_alarms").paginate(
                AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            ):
                for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    states[alarm["AlarmName"]] = alarm["StateValue"]
        return states

    def firing(self, names: list[str]) -> dict[str, str]:
        """The named alarms in ALARM now, each with the reason CloudWatch gives."""
        if not names:
            return {}
        reasons: dict[str, str] = {}
        with aws_call("DescribeAlarms"):
            for page in self._cw.get_paginator("describe_alarms").paginate(
                AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            ):
                for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    if alarm["StateValue"] == "ALARM":
                        reasons[alarm["AlarmName"]] = str(alarm.get("StateReason", ""))
        return reasons

    def went_to_alarm(self, names: list[str], since: datetime, until: datetime) -> list[AlarmStateChange]:
        """Each change of the named alarms into ALARM between `since` and `until`, from their history: a change
        there and back again between two looks at their state shows only here."""
        changes: list[AlarmStateChange] = []
        for name in names:
            with aws_call("DescribeAlarmHistory"):
                for page in self._cw.get_paginator("describe_alarm_history").paginate(
                    AlarmName=name,
                    AlarmTypes=["MetricAlarm", "CompositeAlarm"],
                    HistoryItemType="StateUpdate",
                    StartDate=since,
                    EndDate=until,
                ):
                    changes.extend(
                        AlarmStateChange(name, item["Timestamp"], str(item.get("HistorySummary", "")))
                        for item in page.get("AlarmHistoryItems", [])
                        if str(item.get("HistorySummary", "")).endswith("to ALARM")
                    )
        return sorted(changes, key=lambda change: change.at)


def ensure_quiet(names: list[str], cloudwatch: CloudWatch, what_fails: str) -> None:
    """Refuse to start watching alarms that do not exist, or that are in ALARM already (`what_fails`: what
    such an alarm would do at once, e.g. "the refresh would fail at once")."""
    states = cloudwatch.alarm_states(names)
    missing = [name for name in names if name not in states]
    if missing:
        raise Refused(f"alarm(s) {', '.join(missing)} do not exist; name existing CloudWatch alarms to watch")
    firing = [name for name in names if states[name] == "ALARM"]
    if firing:
        raise Refused(f"alarm(s) {', '.join(firing)} are in ALARM already; {what_fails}")
