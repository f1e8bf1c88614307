"""CloudWatch adapter: alarm states."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsflow.aws.errors import aws_call

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
