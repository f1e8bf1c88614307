"""Environments: their schedules, keep-alives and previews, and what a schedule does when it fires.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from opsflow.aws.scheduler import Scheduler
from opsflow.errors import Busy, NotFound, NotOptedIn, Refused
from opsflow.runs.requests import parse_run_request
from opsflow.runs.start import StartedRun
from opsflow.store.capacity import UNFINISHED_STOP, CapacityStore
from opsflow.store.environments import Environment, EnvironmentStore, KeepAlive
from opsflow.store.runs import Requester
from opsflow.workflows.env_power.calendar import (
    ACTIONS,
    Action,
    EnvironmentSchedule,
    decide,
    dst_warnings,
    next_acting,
    upcoming,
)
from opsflow.workflows.env_power.request import EnvPowerRequest

if TYPE_CHECKING:
    from opsflow.workflows.env_power.steps import PowerAws

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
    until = _active_until(environment.keep_alive, now)
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


def _active_until(keep: KeepAlive | None, now: datetime) -> datetime | None:
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


# When a schedule fires --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduledFire:
    request: EnvPowerRequest
    schedule_arn: str
    scheduled_time: datetime

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ScheduledFire:
        request = parse_run_request(event.get("request"))
        if not isinstance(request, EnvPowerRequest) or request.action not in ACTIONS:
            raise Refused("an environment's schedules start env_power stop and start runs only")
        scheduled = datetime.fromisoformat(str(event["scheduled_time"]).replace("Z", "+00:00"))
        return cls(request=request, schedule_arn=str(event["schedule_arn"]), scheduled_time=scheduled)

    @property
    def requester(self) -> Requester:
        return Requester(kind="schedule", identity=self.schedule_arn)

    @property
    def idempotency_key(self) -> str:
        # EventBridge Scheduler delivers at least once: a repeated delivery of one fire is the same run.
        return f"{self.schedule_arn}@{self.scheduled_time.astimezone(UTC).isoformat()}"


def on_fire(
    fire: ScheduledFire,
    environments: EnvironmentStore,
    capacity: CapacityStore,
    start: Callable[[EnvPowerRequest, Requester, str], StartedRun],
    skip: Callable[[EnvPowerRequest, Requester, str, str], StartedRun],
    run_status: Callable[[str], str | None],
) -> StartedRun:
    """Start the run the schedule asks for, or record why not. A busy environment raises Busy, so
    Lambda's retries of the asynchronous invocation try again a minute or two later."""
    request = fire.request
    environment = environments.get(request.environment)
    if environment is None or environment.schedule is None:
        raise NotFound(
            f"environment {request.environment} has no schedule in the environments table; delete schedule "
            f"{fire.schedule_arn} or PUT /environments/{request.environment} again"
        )
    until = _active_until(environment.keep_alive, fire.scheduled_time)
    action: Action = "stop" if request.action == "stop" else "start"
    decision = decide(environment.schedule, action, fire.scheduled_time, until)
    if not decision.act:
        reason = decision.reason
        if until is not None and environment.keep_alive is not None and action == "stop":
            keep = environment.keep_alive
            reason += f" (keep-alive set by {keep.by}" + (f": {keep.reason})" if keep.reason else ")")
        return skip(request, fire.requester, reason, fire.idempotency_key)
    if request.action == "stop":
        saved = capacity.unrestored(request.environment)
        # A stop that saved but did not finish is not "down": this stop finishes its work.
        if saved is not None and run_status(saved.run_id) not in UNFINISHED_STOP:
            reason = f"already down since {saved.saved_at} (run {saved.run_id}); nothing to stop"
            return skip(request, fire.requester, reason, fire.idempotency_key)
    try:
        return start(request, fire.requester, fire.idempotency_key)
    except (Refused, NotOptedIn) as refused:
        # Retrying would not help: record why this fire did nothing, and let the next one try again.
        return skip(request, fire.requester, f"not started: {refused.message}", fire.idempotency_key)


# The daily database check --------------------------------------------------------------------------


def recheck_databases(
    fire: DailyCheck,
    capacity: CapacityStore,
    aws: PowerAws,
    start: Callable[[EnvPowerRequest, Requester, str], StartedRun],
) -> list[StartedRun]:
    """For every environment that is down, start a run that stops again the saved databases AWS has
    started after seven days stopped. Environments whose databases are all still stopped get no run."""
    # Imported here: the API and Chatbot load this module for schedules and keep-alives, and need no workflow.
    from opsflow.workflows.env_power.steps import databases_up_again

    started = []
    for name in capacity.down_environments():
        saved = capacity.unrestored(name)
        if saved is None or not databases_up_again(saved, aws):
            continue
        request = EnvPowerRequest(workflow="env_power", environment=name, action="restop_databases")
        try:
            started.append(start(request, fire.requester, f"{fire.idempotency_key}#{name}"))
        except (Busy, Refused, NotOptedIn):
            continue  # tomorrow's check tries again; a run on the environment explains itself
    return started


@dataclass(frozen=True)
class DailyCheck:
    schedule_arn: str
    scheduled_time: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> DailyCheck:
        return cls(schedule_arn=str(event["schedule_arn"]), scheduled_time=str(event["scheduled_time"]))

    @property
    def requester(self) -> Requester:
        return Requester(kind="schedule", identity=self.schedule_arn)

    @property
    def idempotency_key(self) -> str:
        return f"{self.schedule_arn}@{self.scheduled_time}"
