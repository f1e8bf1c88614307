"""EventBridge Scheduler fires schedules; moto 5.2.5 only stores them.

What a fire does, as the EventBridge Scheduler User Guide documents it ("Templated targets",
"Adding context attributes"): the target is invoked with the schedule's `Input`, in which the
context attributes `<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>`,
`<aws.scheduler.execution-id>` and `<aws.scheduler.attempt-number>` are replaced by their values
(the scheduled time in UTC, ISO 8601 with a Z). A disabled schedule does not fire. Lambda targets
are invoked asynchronously; here the invocation is synchronous so a test can await its result.

Scheduler evaluates a schedule's expression in its `ScheduleExpressionTimezone`; which local times
fire on daylight-saving days is `opsflow.workflows.env_power.calendar` (tested there); this module fires a schedule at
the instant a test or the demo asks for, as Scheduler would at that instant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


class ScheduleDisabled(RuntimeError):
    pass


class ScheduleTargetDenied(RuntimeError):
    """Scheduler could not assume the schedule's role, or the role may not invoke the target."""


class SchedulerEmulation:
    def __init__(
        self, client: Callable[[str], Any], invoke: Callable[[str, str, dict[str, Any]], Any]
    ) -> None:
        """invoke(role_arn, function_name, payload): the target invoked with the schedule's role."""
        self._client = client
        self._invoke = invoke

    def fire(self, name: str, at: datetime, group: str | None = None) -> Any:
        """Invoke the target of schedule `name` as Scheduler does at instant `at`; returns what the
        target returned. `group` defaults to the only group that holds a schedule of that name."""
        scheduler = self._client("scheduler")
        group = group or self._group_of(name)
        schedule = scheduler.get_schedule(Name=name, GroupName=group)
        if schedule.get("State") == "DISABLED":
            raise ScheduleDisabled(f"schedule {group}/{name} is disabled")
        target = schedule["Target"]
        payload = _with_context(
            target.get("Input", "{}"),
            {
                "<aws.scheduler.schedule-arn>": schedule["Arn"],
                "<aws.scheduler.scheduled-time>": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "<aws.scheduler.execution-id>": str(uuid.uuid4()),
                "<aws.scheduler.attempt-number>": "1",
            },
        )
        function_name = target["Arn"].rsplit(":", 1)[-1]
        return self._invoke(target["RoleArn"], function_name, json.loads(payload))

    def _group_of(self, name: str) -> str:
        scheduler = self._client("scheduler")
        groups = [
            g["Name"]
            for g in scheduler.list_schedule_groups()["ScheduleGroups"]
            if any(s["Name"] == name for s in scheduler.list_schedules(GroupName=g["Name"])["Schedules"])
        ]
        if len(groups) != 1:
            raise LookupError(f"schedule {name} is in {len(groups)} groups ({groups}); name the group")
        return groups[0]


def _with_context(template: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template
