"""What a fired schedule does, with in-memory stores: start, or record why not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opsflow.errors import Busy, NotFound
from opsflow.runs.start import StartedRun
from opsflow.store.capacity import InMemoryCapacityStore, SavedCapacity
from opsflow.store.environments import InMemoryEnvironmentStore, KeepAlive
from opsflow.store.runs import RUNNING, SKIPPED, Requester, Run
from opsflow.triggers.scheduler import ScheduledFire, on_fire
from opsflow.workflows.env_power.calendar import EnvironmentSchedule
from opsflow.workflows.env_power.request import EnvPowerRequest

SCHEDULE = EnvironmentSchedule(timezone="Europe/Berlin", stop_at="20:00", start_at="07:00")
ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/opsflow/qa-stop"


def a_fire(action: str, at: str) -> ScheduledFire:
    return ScheduledFire.from_event(
        {
            "request": {"workflow": "env_power", "environment": "qa", "action": action},
            "schedule_arn": ARN,
            "scheduled_time": at,
        }
    )


class Triggers:
    def __init__(self, busy: bool = False) -> None:
        self.started: list[tuple[EnvPowerRequest, str]] = []
        self.skipped: list[str] = []
        self.busy = busy

    def start(self, request: EnvPowerRequest, requester: Requester, key: str) -> StartedRun:
        if self.busy:
            raise Busy("environment qa is busy with run env-power-1")
        self.started.append((request, key))
        return StartedRun(_run(RUNNING, requester), created=True)

    def skip(self, request: EnvPowerRequest, requester: Requester, reason: str, key: str) -> StartedRun:
        self.skipped.append(reason)
        return StartedRun(_run(SKIPPED, requester), created=True)


def _run(status: str, requester: Requester) -> Run:
    return Run("env-power-2", "env_power", "env:qa", status, requester, {}, "h", "t", "t")


def test_a_weekday_stop_starts_a_run_keyed_on_the_fire() -> None:
    environments = InMemoryEnvironmentStore()
    environments.put_schedule("qa", SCHEDULE, "alice")
    triggers = Triggers()

    on_fire(
        a_fire("stop", "2026-11-24T19:00:00Z"),
        environments,
        InMemoryCapacityStore(),
        triggers.start,
        triggers.skip,
        lambda _: "SUCCEEDED",
    )

    assert [key for _, key in triggers.started] == [f"{ARN}@2026-11-24T19:00:00+00:00"]


def test_a_stop_while_down_or_kept_alive_is_recorded_as_skipped() -> None:
    environments = InMemoryEnvironmentStore()
    environments.put_schedule("qa", SCHEDULE, "alice")
    capacity = InMemoryCapacityStore()
    capacity.save(SavedCapacity(environment="qa", run_id="env-power-1", saved_at="2026-11-23T19:00:00Z"))
    triggers = Triggers()

    on_fire(
        a_fire("stop", "2026-11-24T19:00:00Z"),
        environments,
        capacity,
        triggers.start,
        triggers.skip,
        lambda _: "SUCCEEDED",
    )
    environments.set_keep_alive("qa", KeepAlive(datetime(2026, 11, 26, tzinfo=UTC), "bob", "demo"))
    on_fire(
        a_fire("stop", "2026-11-25T19:00:00Z"),
        environments,
        InMemoryCapacityStore(),
        triggers.start,
        triggers.skip,
        lambda _: "SUCCEEDED",
    )

    assert triggers.started == []
    assert "already down since 2026-11-23T19:00:00Z (run env-power-1)" in triggers.skipped[0]
    assert "kept alive until" in triggers.skipped[1]


def test_a_busy_environment_raises_so_the_invocation_is_retried() -> None:
    environments = InMemoryEnvironmentStore()
    environments.put_schedule("qa", SCHEDULE, "alice")
    triggers = Triggers(busy=True)

    with pytest.raises(Busy):
        on_fire(
            a_fire("start", "2026-11-24T06:00:00Z"),
            environments,
            InMemoryCapacityStore(),
            triggers.start,
            triggers.skip,
            lambda _: "SUCCEEDED",
        )
    assert triggers.skipped == []


def test_a_stop_whose_saving_run_did_not_finish_is_started_again() -> None:
    environments = InMemoryEnvironmentStore()
    environments.put_schedule("qa", SCHEDULE, "alice")
    capacity = InMemoryCapacityStore()
    capacity.save(SavedCapacity(environment="qa", run_id="env-power-1", saved_at="2026-11-23T19:00:00Z"))
    triggers = Triggers()

    on_fire(
        a_fire("stop", "2026-11-24T19:00:00Z"),
        environments,
        capacity,
        triggers.start,
        triggers.skip,
        {"env-power-1": "ABORTED"}.get,
    )

    assert len(triggers.started) == 1


def test_a_schedule_without_its_configuration_says_how_to_fix_it() -> None:
    triggers = Triggers()

    with pytest.raises(NotFound, match="PUT /environments/qa"):
        on_fire(
            a_fire("stop", "2026-11-24T19:00:00Z"),
            InMemoryEnvironmentStore(),
            InMemoryCapacityStore(),
            triggers.start,
            triggers.skip,
            lambda _: "SUCCEEDED",
        )
