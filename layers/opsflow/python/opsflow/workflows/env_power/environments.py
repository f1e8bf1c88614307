"""Environments: their schedules, keep-alives and previews. What a schedule does when it fires is
`opsflow.triggers.scheduler`.

Schedules are EventBridge Scheduler schedules created from the environments table (`PUT
/environments/{name}`) rather than declared in the template: teams add and change environments
without a deployment, each gets its own IANA time zone, and the same validated model serves the
schedules, the preview and the decision at fire time. Each environment has two daily schedules
(stop and start) that fire every day; holidays, working days, dated exceptions and keep-alives are
decided when they fire (`opsflow.workflows.env_power.calendar.decide`), since a cron expression cannot say "except on
public holidays in Bavaria".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from opsflow.aws.scheduler import Scheduler
from opsflow.errors import Refused
from opsflow.store.capacity import CapacityStore
from opsflow.store.environments import Environment, EnvironmentStore, KeepAlive
from opsflow.workflows.env_power.calendar import (
    ACTIONS,
    Action,
    EnvironmentSchedule,
    dst_warnings,
    next_acting,
    upcoming,
)

# Context attributes EventBridge Scheduler fills in when it invokes the target.
SCHEDULER_CONTEXT = {
    "schedule_arn": "<aws.scheduler.schedule-arn>",
    "scheduled_time": "<aws.scheduler.scheduled-time>",
}
MAX_KEEP_ALIVE = timedelta(days=31)
UPCOMING_DAYS = 7


class KeepAliveRequest(BaseModel):
    """Keep an environment up: the nightly stops until `until` are skipped, then it stops as usual."""

    # Built when first used: only the keep-alive route and command validate one.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    until: AwareDatetime = Field(
        description="When the keep-alive ends, with its UTC offset: 2026-11-25T09:00:00+01:00"
    )
    reason: str = Field(default="", max_length=256, description="Why, for the audit trail and notifications.")


@dataclass(frozen=True)
class ScheduleTarget:
    """What the schedules invoke, the role EventBridge Scheduler assumes to do it, and the queue for the
    fires it could not deliver."""

    function_arn: str
    role_arn: str
    dead_letter_arn: str | None = None


def schedule_name(environment: str, action: Action) -> str:
    return f"{environment}-{action}"


def configure(
    name: str,
    schedule: EnvironmentSchedule,
    by: str,
    store: EnvironmentStore,
    scheduler: Scheduler,
    target: ScheduleTarget,
) -> Environment:
    """Store the schedule, then create or update its two EventBridge Scheduler schedules. The table is
    written first, so a schedule that fires always finds the configuration it belongs to."""
    environment = store.put_schedule(name, schedule, by)
    for action in ACTIONS:
        scheduler.put_schedule(
            schedule_name(name, action),
            expression=schedule.scheduler_expression(action),
            timezone=schedule.timezone,
            target_arn=target.function_arn,
            role_arn=target.role_arn,
            dead_letter_arn=target.dead_letter_arn,
            input_json=json.dumps(
                {
                    "request": {"workflow": "env_power", "environment": name, "action": action},
                    **SCHEDULER_CONTEXT,
                }
            ),
            description=f"Opsflow: {action} environment {name} at {schedule.local_time(action):%H:%M} "
            f"{schedule.timezone} (holidays and keep-alives are decided when it fires)",
        )
    return environment


def keep_alive(
    name: str, request: KeepAliveRequest, by: str, store: EnvironmentStore, now: datetime
) -> Environment:
    if request.until <= now:
        raise Refused(f"until ({request.until.isoformat()}) is in the past; give a time in the future")
    if request.until - now > MAX_KEEP_ALIVE:
        raise Refused(
            "a keep-alive lasts at most 31 days; for longer, add off-days to the schedule or remove the "
            "environment's opt-in tag"
        )
    return store.set_keep_alive(name, KeepAlive(until=request.until, by=by, reason=request.reason))


def describe(environment: Environment, capacity: CapacityStore, now: datetime) -> dict[str, Any]:
    """An environment as the API shows it: schedule, keep-alive, whether it is down, what comes next."""
    saved = capacity.unrestored(environment.name)
    view: dict[str, Any] = {
        "environment": environment.name,
        "state": (
            {"down": True, "since": saved.saved_at, "saved_by": saved.run_id, "saved": saved.counts()}
            if saved
            else {"down": False}
        ),
        "schedule": environment.schedule.model_dump(mode="json") if environment.schedule else None,
        "keep_alive": _keep_alive_view(environment.keep_alive, now),
        "updated_at": environment.updated_at,
        "updated_by": environment.updated_by,
    }
    schedule = environment.schedule
    if schedule is None:
        view["message"] = (
            f"{environment.name} has no schedule; PUT /environments/{environment.name} sets one."
        )
        return view
    until = keep_alive_until(environment.keep_alive, now)
    view["next"] = {action: _occurrence(schedule, action, now, until) for action in ACTIONS}
    view["upcoming"] = [
        {
            "action": o.action,
            "at": _local(o.at),
            "acts": o.decision.act,
            "reason": o.decision.reason,
        }
        for o in upcoming(schedule, now, until, days=UPCOMING_DAYS)
    ]
    view["warnings"] = dst_warnings(schedule, now.astimezone(schedule.zone).date())
    return view


def _occurrence(
    schedule: EnvironmentSchedule, action: Action, now: datetime, until: datetime | None
) -> dict[str, Any] | None:
    occurrence = next_acting(schedule, action, now, until)
    if occurrence is None:
        return None
    return {
        "at": _local(occurrence.at),
        "in": _duration(occurrence.at - now),
        "reason": occurrence.decision.reason,
    }


def _keep_alive_view(keep: KeepAlive | None, now: datetime) -> dict[str, Any] | None:
    if keep is None:
        return None
    return {"until": keep.until.isoformat(), "by": keep.by, "reason": keep.reason, "active": keep.until > now}


def keep_alive_until(keep: KeepAlive | None, now: datetime) -> datetime | None:
    """When an active keep-alive ends, or None."""
    # An expired keep-alive simply no longer applies: nothing has to delete it.
    return keep.until if keep is not None and keep.until > now else None


def _local(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes") + f" ({moment.tzname()})"


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"]
    return " ".join(parts)
