"""CloudWatch adapter: alarm states."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsflow.aws.errors import aws_call
from opsflow.errors import Refused

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


class CloudWatch:
    def __init__(self, client: CloudWatchClient) -> None:
        self._cw = client

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
