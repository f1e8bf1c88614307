"""CloudWatch alarm behaviours that moto 5.2.5 lacks or bends, emulated as CloudWatch documents them.

- Alarm state change events (User Guide, "Alarm events and EventBridge"): "CloudWatch sends events to
  Amazon EventBridge whenever a CloudWatch alarm ... changes alarm state", and "guarantees the delivery of
  alarm state change events" (durable: never dropped, see `aws_events`). Source `aws.cloudwatch`,
  detail-type `CloudWatch Alarm State Change`, the alarm ARN in `resources`; detail `alarmName`,
  `configuration` (`description`, and `metrics`: the alarm's metric as one `metricStat` with `metric`
  {`dimensions`, `name`, `namespace`}, `period` and `stat`, or its metric math queries with `id`,
  `expression`, `label`, `metricStat`, `returnData`; a composite alarm's `alarmRule`), `previousState` and
  `state`, each {`value`, `reason`, `reasonData` when there is any, `timestamp` as
  2019-10-02T17:04:40.989+0000}, as in the guide's examples. Only a change of state value is one:
  SetAlarmState to the state the alarm is in sends nothing. moto sends none.
- DescribeAlarmHistory (API Reference, DescribeAlarmHistory and AlarmHistoryItem; the AWS CLI's
  describe-alarm-history example): each change of state value is a `StateUpdate` item with AlarmName,
  AlarmType, Timestamp, HistorySummary "Alarm updated from OK to ALARM" and HistoryData
  {"version":"1.0","oldState":{"stateValue","stateReason","stateReasonData"},"newState":{...}}. Filters:
  AlarmName, AlarmTypes ("If you omit this parameter, only metric alarms are returned"), HistoryItemType,
  StartDate and EndDate; ScanBy TimestampDescending (newest first, the default) or TimestampAscending;
  MaxRecords (1 to 100) pages with NextToken. "CloudWatch retains the history of an alarm even if you delete
  the alarm." Configuration updates and actions are not recorded. moto raises NotImplementedError.
- Status check alarms (EC2 User Guide, "Create alarms that stop, terminate, reboot, or recover an instance";
  "Status check metrics": `StatusCheckFailed_System` and `StatusCheckFailed_Instance` are 0 (passed) or 1
  (failed), `StatusCheckFailed` 1 when either fails): moto evaluates no metric, so an alarm on one of them
  for an `InstanceId` follows the emulated instance's checks (`Ec2Emulation.impair`): ALARM once a check it
  covers is impaired, OK once they are all ok, unchanged while they initialize or the instance is not
  running, as the alarm's missing datapoints would leave it. Other metrics stay with `set_alarm_state`.
- PutMetricAlarm on an existing alarm (API Reference, PutMetricAlarm: "When updating an existing alarm, its
  StateValue is left unchanged"): the state is kept. moto puts the alarm back to OK.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from moto.cloudwatch.exceptions import CloudWatchException, ValidationError
from moto.cloudwatch.models import Alarm, CloudWatchBackend, MetricDataQuery
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from opsflow_local.emulation import aws_events

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
# Which of an instance's status checks each EC2 status check metric reports.
STATUS_CHECK_METRICS = {
    "StatusCheckFailed": ("system", "instance"),
    "StatusCheckFailed_System": ("system",),
    "StatusCheckFailed_Instance": ("instance",),
}
MAX_RECORDS = 100


@dataclass(frozen=True)
class _State:
    value: str
    reason: str
    reason_data: str | None
    timestamp: datetime

    @classmethod
    def of(cls, alarm: Alarm) -> _State:
        return cls(
            alarm.state_value, alarm.state_reason, alarm.state_reason_data, alarm.state_updated_timestamp
        )

    def for_event(self) -> dict[str, Any]:
        state: dict[str, Any] = {"value": self.value, "reason": self.reason}
        if _has_data(self.reason_data):
            state["reasonData"] = self.reason_data
        state["timestamp"] = _event_time(self.timestamp)
        return state

    def for_history(self) -> dict[str, Any]:
        state: dict[str, Any] = {"stateValue": self.value, "stateReason": self.reason}
        if _has_data(self.reason_data):
            # SetAlarmState refuses StateReasonData that is not JSON, as CloudWatch does.
            state["stateReasonData"] = json.loads(self.reason_data or "")
        return state


@dataclass(frozen=True)
class _HistoryItem:
    alarm_name: str
    alarm_type: str
    timestamp: datetime
    item_type: str
    summary: str
    data: str

    def result(self) -> dict[str, Any]:
        return {
            "AlarmName": self.alarm_name,
            "AlarmType": self.alarm_type,
            "Timestamp": self.timestamp,
            "HistoryItemType": self.item_type,
            "HistorySummary": self.summary,
            "HistoryData": self.data,
        }


@dataclass
class CloudWatchEmulation:
    """Alarm history, by account and region, kept while the emulation is installed."""

    _history: dict[tuple[str, str], list[_HistoryItem]] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def _state_changed(self, alarm: Alarm, previous: _State) -> None:
        account = alarm.alarm_arn.split(":")[4]
        current = _State.of(alarm)
        item = _HistoryItem(
            alarm_name=alarm.name,
            alarm_type=_alarm_type(alarm),
            timestamp=_aware(current.timestamp),
            item_type="StateUpdate",
            summary=f"Alarm updated from {previous.value} to {current.value}",
            data=json.dumps(
                {"version": "1.0", "oldState": previous.for_history(), "newState": current.for_history()},
                separators=(",", ":"),
            ),
        )
        with self._mutex:
            self._history.setdefault((account, alarm.region_name), []).append(item)
        aws_events.send(
            account,
            alarm.region_name,
            "aws.cloudwatch",
            ALARM_STATE_CHANGE,
            [alarm.alarm_arn],
            {
                "alarmName": alarm.name,
                "configuration": _configuration(alarm),
                "previousState": previous.for_event(),
                "state": current.for_event(),
            },
        )

    def follow_status_checks(
        self, account: str, region: str, instance_id: str, system: str, instance: str
    ) -> None:
        """Move the instance's status check alarms as their metric would, now that its checks are these."""
        from moto.cloudwatch.models import cloudwatch_backends

        statuses = {"system": system, "instance": instance}
        backend = cloudwatch_backends[account][region]
        for alarm in list(backend.alarms.values()):
            checks = STATUS_CHECK_METRICS.get(str(alarm.metric_name))
            dimensions = {d.name: d.value for d in alarm.dimensions or []}
            if alarm.namespace != "AWS/EC2" or checks is None or dimensions.get("InstanceId") != instance_id:
                continue
            failing = [c for c in checks if statuses[c] == "impaired"]
            if failing:
                state, value = "ALARM", 1.0
            elif all(statuses[c] == "ok" for c in checks):
                state, value = "OK", 0.0
            else:
                continue
            if alarm.state_value == state:
                continue
            reason = (
                f"Threshold Crossed: 1 datapoint [{value}] was "
                f"{'greater than or equal to' if failing else 'not greater than or equal to'} the threshold "
                f"({alarm.threshold})."
            )
            alarm.update_state(reason, json.dumps({"version": "1.0", "recentDatapoints": [value]}), state)

    def _describe_history(self, response: CloudWatchResponse) -> dict[str, Any]:
        name = response._get_param("AlarmName")
        types = set(response._get_param("AlarmTypes") or ["MetricAlarm"])
        item_type = response._get_param("HistoryItemType")
        start = response._get_param("StartDate")
        end = response._get_param("EndDate")
        scan_by = response._get_param("ScanBy") or "TimestampDescending"
        max_records = int(response._get_param("MaxRecords") or MAX_RECORDS)
        if not 1 <= max_records <= MAX_RECORDS:
            raise ValidationError(
                f"1 validation error detected: Value '{max_records}' at 'maxRecords' failed to satisfy "
                f"constraint: Member must have value between 1 and {MAX_RECORDS}"
            )
        with self._mutex:
            items = list(self._history.get((response.current_account, response.region), []))
        chosen = [
            item
            for item in items
            if (name is None or item.alarm_name == name)
            and item.alarm_type in types
            and (item_type is None or item.item_type == item_type)
            and (start is None or item.timestamp >= _aware(_timestamp(start)))
            and (end is None or item.timestamp <= _aware(_timestamp(end)))
        ]
        chosen.sort(
            key=lambda item: item.timestamp
        )  # stable: changes within one millisecond keep their order
        if scan_by != "TimestampAscending":
            chosen.reverse()
        offset = _offset(response._get_param("NextToken"))
        page = chosen[offset : offset + max_records]
        result: dict[str, Any] = {"AlarmHistoryItems": [item.result() for item in page]}
        if offset + max_records < len(chosen):
            result["NextToken"] = base64.urlsafe_b64encode(str(offset + max_records).encode()).decode()
        return result

    def install(self, stack: ExitStack) -> None:
        emulation = self
        original_update_state = Alarm.update_state
        original_put_metric_alarm = CloudWatchBackend.put_metric_alarm

        # Every change of state in moto's backend (SetAlarmState included) goes through here.
        def update_state(alarm: Alarm, reason: str, reason_data: str, state_value: str) -> None:
            previous = _State.of(alarm)
            original_update_state(alarm, reason, reason_data, state_value)
            if alarm.state_value != previous.value:
                emulation._state_changed(alarm, previous)

        def put_metric_alarm(backend: CloudWatchBackend, *args: Any, **kwargs: Any) -> Alarm:
            name = kwargs["name"] if "name" in kwargs else args[0]
            existing = backend.alarms.get(name)
            alarm: Alarm = original_put_metric_alarm(backend, *args, **kwargs)
            if existing is not None:
                alarm.state_value = existing.state_value
                alarm.state_reason = existing.state_reason
                alarm.state_reason_data = existing.state_reason_data
                alarm.state_updated_timestamp = existing.state_updated_timestamp
            return alarm

        def describe_alarm_history(response: CloudWatchResponse) -> ActionResult:
            return ActionResult(emulation._describe_history(response))

        stack.enter_context(mock.patch.object(Alarm, "update_state", update_state))
        stack.enter_context(mock.patch.object(CloudWatchBackend, "put_metric_alarm", put_metric_alarm))
        stack.enter_context(
            mock.patch.object(
                CloudWatchResponse, "describe_alarm_history", describe_alarm_history, create=True
            )
        )
        stack.callback(self._forget)

    def _forget(self) -> None:
        with self._mutex:
            self._history = {}


def _alarm_type(alarm: Alarm) -> str:
    return "CompositeAlarm" if alarm.rule is not None else "MetricAlarm"


def _configuration(alarm: Alarm) -> dict[str, Any]:
    configuration: dict[str, Any] = {}
    if alarm.description:
        configuration["description"] = alarm.description
    if alarm.rule is not None:
        configuration["alarmRule"] = alarm.rule
        return configuration
    if alarm.metric_data_queries:
        configuration["metrics"] = [_query(query) for query in alarm.metric_data_queries]
        return configuration
    configuration["metrics"] = [
        {
            # The guide's single-metric example names its one metric with a generated id; this one is
            # stable, so the events of one alarm agree.
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)),
            "metricStat": {
                "metric": {
                    "dimensions": {d.name: d.value for d in alarm.dimensions},
                    "name": alarm.metric_name,
                    "namespace": alarm.namespace,
                },
                "period": int(alarm.period),
                "stat": alarm.statistic or alarm.extended_statistic,
            },
            "returnData": True,
        }
    ]
    return configuration


def _query(query: MetricDataQuery) -> dict[str, Any]:
    metric: dict[str, Any] = {"id": query.id}
    if query.expression:
        metric["expression"] = query.expression
    if query.label:
        metric["label"] = query.label
    stat = query.metric_stat
    if stat is not None:
        metric["metricStat"] = {
            "metric": {
                "dimensions": {d.name: d.value for d in stat.metric.dimensions},
                "name": stat.metric.metric_name,
                "namespace": stat.metric.namespace,
            },
            "period": int(stat.period),
            "stat": stat.stat,
        }
    if query.period and stat is None:
        metric["period"] = int(query.period)
    metric["returnData"] = _truthy(query.return_data, default=True)
    return metric


def _truthy(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _has_data(reason_data: str | None) -> bool:
    return bool(reason_data) and reason_data != "{}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    text = str(value)
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _event_time(moment: datetime) -> str:
    moment = _aware(moment).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except ValueError:
        raise CloudWatchException("InvalidNextToken", "The service couldn't process the NextToken.") from None
