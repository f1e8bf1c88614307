"""EventBridge Scheduler as a trigger: what an environment's daily stop or start does when it fires,
and the daily check that stops again the databases AWS started after seven days stopped.

Each fire starts a run through the same guard and audit record as the API, or records why the calendar
(`opsflow.workflows.env_power.calendar.decide`) skipped it. The schedules themselves are configured in
`opsflow.workflows.env_power.environments`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opsflow.errors import Busy, NotFound, NotOptedIn, Refused
from opsflow.runs.requests import parse_run_request
from opsflow.runs.start import StartedRun
from opsflow.store.capacity import UNFINISHED_STOP, CapacityStore
from opsflow.store.environments import EnvironmentStore
from opsflow.store.runs import Requester
from opsflow.workflows.env_power.calendar import ACTIONS, Action, decide
from opsflow.workflows.env_power.environments import keep_alive_until
from opsflow.workflows.env_power.request import EnvPowerRequest

if TYPE_CHECKING:
    from opsflow.workflows.env_power.inventory import PowerAws


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
    if environment.schedule.targets:
        request = request.model_copy(update={"targets": environment.schedule.targets})
    until = keep_alive_until(environment.keep_alive, fire.scheduled_time)
    action: Action = "stop" if request.action == "stop" else "start"
    decision = decide(environment.schedule, action, fire.scheduled_time, until)
    if not decision.act:
        reason = decision.reason
        if until is not None and environment.keep_alive is not None and action == "stop":
            keep = environment.keep_alive
            reason += f" (keep-alive set by {keep.by}" + (f": {keep.reason})" if keep.reason else ")")
        return skip(request, fire.requester, reason, fire.idempotency_key)
    if request.action == "stop" and not request.targets:
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
    # Imported here: a schedule's fire needs no workflow code, only the daily check does.
    from opsflow.workflows.env_power.inventory import databases_up_again

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
