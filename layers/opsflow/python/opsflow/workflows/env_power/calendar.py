"""The environment schedule calendar: when the nightly stop and the morning start fire, and whether they act.

Each environment has two EventBridge Scheduler schedules, a daily cron for "stop" and one for "start", both
created with ``ScheduleExpressionTimezone`` set to the environment's IANA time zone. They fire every day; the
function they invoke asks :func:`decide` whether to act on that day.

Daylight saving time follows EventBridge Scheduler's documented behaviour (User Guide, "Daylight saving
time"):

    "When the time shifts forward in Spring, your schedule invocation gets skipped if the cron expression
    falls on a non-existent date and time. When the time shifts back in the Fall, your schedule runs only
    once and doesn't repeat its invocation."

So a local time that does not exist on a day gives no fire that day, and a local time that happens twice
gives one fire, at its first occurrence (``fold=0``).

Datetimes are compared as instants (in UTC): Python compares two datetimes that share a tzinfo by wall time
alone, which ignores ``fold`` and gets the repeated hour wrong.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from opsflow.workflows.env_power.request import MAX_PLACES, Place

if TYPE_CHECKING:
    import holidays

Action = Literal["stop", "start"]
Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]

WEEKDAYS: tuple[Weekday, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ACTIONS: tuple[Action, ...] = ("stop", "start")
_DAY = timedelta(days=1)
_SUBDIVISIONS_SHOWN = 20
_CLOCK_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")

# Built when first used, not at import: most functions load these models with the environments store, and
# most of their invocations read no environment.
_SCHEDULE_CONFIG = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)
# Dates arrive as JSON strings ("2026-12-24"); the models are otherwise strict.
_Dates = Annotated[list[Annotated[date, Strict(False)]], Field(max_length=366)]


class HolidayCalendar(BaseModel):
    """The public holidays of a country, or of one of its subdivisions, from the ``holidays`` package."""

    model_config = _SCHEDULE_CONFIG

    country: str = Field(description="ISO 3166-1 alpha-2 code, e.g. DE.")
    subdivision: str | None = Field(default=None, description="A subdivision of the country, e.g. BY.")

    @field_validator("country")
    @classmethod
    def _supported_country(cls, value: str) -> str:
        if len(value) != 2 or value not in _supported_countries():
            raise ValueError(f"unknown country {value!r}; use an ISO 3166-1 alpha-2 code such as DE or US")
        return value

    @model_validator(mode="after")
    def _supported_subdivision(self) -> HolidayCalendar:
        if self.subdivision is None:
            return self
        valid = _supported_countries()[self.country]
        if self.subdivision not in valid:
            if not valid:
                raise ValueError(f"{self.country} has no subdivisions; leave subdivision out")
            shown = ", ".join(valid[:_SUBDIVISIONS_SHOWN])
            more = f" and {len(valid) - _SUBDIVISIONS_SHOWN} more" if len(valid) > _SUBDIVISIONS_SHOWN else ""
            raise ValueError(
                f"unknown subdivision {self.subdivision!r} of {self.country}; use one of {shown}{more}"
            )
        return self

    def label(self) -> str:
        return self.country if self.subdivision is None else f"{self.country}-{self.subdivision}"

    def holiday_name(self, day: date) -> str | None:
        name = _public_holidays(self.country, self.subdivision, day.year).get(day)
        return name if isinstance(name, str) else None


# The holidays package is imported when a calendar is first read, not with this module: most functions load
# this module (through the environments store) and most of their invocations read no calendar.
@functools.cache
def _supported_countries() -> dict[str, list[str]]:
    """Country codes and each country's subdivisions."""
    import holidays

    return holidays.list_supported_countries()


@functools.lru_cache(maxsize=64)
def _public_holidays(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    import holidays

    # Without a language, holidays picks one from the process locale; names in notes must not depend on it.
    return holidays.country_holidays(country, subdiv=subdivision, years=year, language="en_US")


class EnvironmentSchedule(BaseModel):
    """When an environment stops every night and starts on working mornings, in its own time zone."""

    model_config = _SCHEDULE_CONFIG

    timezone: str = Field(description="IANA time zone name, e.g. Europe/Berlin.")
    stop_at: str = Field(description="Local time of the nightly stop, HH:MM (24-hour).")
    start_at: str = Field(description="Local time of the morning start, HH:MM (24-hour).")
    weekdays: Annotated[list[Weekday], Field(min_length=1, max_length=7)] = Field(
        default_factory=lambda: list(WEEKDAYS[:5]), description="The days the environment runs."
    )
    holidays: HolidayCalendar | None = Field(
        default=None, description="Public holidays the environment is off."
    )
    off_days: _Dates = Field(default_factory=list, description="Extra days off, in the local calendar.")
    on_days: _Dates = Field(default_factory=list, description="Extra working days, in the local calendar.")
    targets: Annotated[list[Place] | None, Field(min_length=1, max_length=MAX_PLACES)] = Field(
        default=None,
        description="The accounts and regions the environment spans ({account, region}; each registered with "
        "PUT /accounts): its stop and start cover them all, each on its own. Default: the hub's own.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
        return value

    @field_validator("stop_at", "start_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if _CLOCK_TIME.fullmatch(value) is None:
            raise ValueError(f"{value!r} is not a 24-hour time HH:MM, e.g. 02:30 or 19:00")
        return value

    @field_validator("weekdays")
    @classmethod
    def _distinct_weekdays(cls, value: list[Weekday]) -> list[Weekday]:
        repeated = sorted({day for day in value if value.count(day) > 1}, key=WEEKDAYS.index)
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentSchedule:
        if self.stop_at == self.start_at:
            raise ValueError("stop_at and start_at must differ")
        both = sorted(set(self.on_days) & set(self.off_days))
        if both:
            raise ValueError(
                f"a date cannot be both an off-day and an on-day: {', '.join(d.isoformat() for d in both)}"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_time(self, action: Action) -> time:
        hours, minutes = (self.stop_at if action == "stop" else self.start_at).split(":")
        return time(int(hours), int(minutes))

    def scheduler_expression(self, action: Action) -> str:
        at = self.local_time(action)
        return f"cron({at.minute} {at.hour} * * ? *)"

    def is_working_day(self, day: date) -> bool:
        if day in self.on_days:
            return True
        if day in self.off_days or self._holiday_name(day) is not None:
            return False
        return WEEKDAYS[day.weekday()] in self.weekdays

    def day_note(self, day: date) -> str:
        if day in self.on_days:
            return f"{day.isoformat()} is an extra on-day"
        if day in self.off_days:
            return f"{day.isoformat()} is an extra off-day"
        holiday = self._holiday_name(day)
        if holiday is not None and self.holidays is not None:
            return f"{day.isoformat()} is a public holiday in {self.holidays.label()} ({holiday})"
        # Named from a table: strftime's %A follows the process locale.
        name = DAY_NAMES[day.weekday()]
        if WEEKDAYS[day.weekday()] in self.weekdays:
            return f"{name} is a working day"
        return f"{name} is not a working day"

    def _holiday_name(self, day: date) -> str | None:
        return None if self.holidays is None else self.holidays.holiday_name(day)


def _instant(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


def _local_date(schedule: EnvironmentSchedule, moment: datetime) -> date:
    return _instant(moment).astimezone(schedule.zone).date()


def fire_time(schedule: EnvironmentSchedule, action: Action, day: date) -> datetime | None:
    """When the daily cron fires on a local calendar day: None if its time does not exist that day."""
    zone = schedule.zone
    wall = datetime.combine(day, schedule.local_time(action))
    first = wall.replace(tzinfo=zone, fold=0)
    # A wall time in the spring-forward gap does not survive the round trip through UTC.
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return first


def fire_times(schedule: EnvironmentSchedule, action: Action, after: datetime) -> Iterator[datetime]:
    """Every fire strictly after ``after``, in ascending order, without end."""
    threshold = _instant(after)
    for day in _days_from(_local_date(schedule, after)):
        fire = fire_time(schedule, action, day)
        if fire is not None and _instant(fire) > threshold:
            yield fire


def _days_from(first: date) -> Iterator[date]:
    day = first
    while True:
        yield day
        if day == date.max:
            return
        day += _DAY


@dataclass(frozen=True)
class Decision:
    act: bool
    reason: str


def decide(
    schedule: EnvironmentSchedule,
    action: Action,
    fired_at: datetime,
    keep_alive_until: datetime | None = None,
) -> Decision:
    """Whether a fire of the stop or start schedule should act."""
    if action == "start":
        day = _local_date(schedule, fired_at)
        note = schedule.day_note(day)
        if schedule.is_working_day(day):
            return Decision(True, f"{note}, so the environment starts")
        return Decision(False, f"{note}, so the environment stays stopped")
    if keep_alive_until is None:
        return Decision(True, "the environment stops every night, working day or not")
    until = _instant(keep_alive_until).astimezone(schedule.zone).strftime("%Y-%m-%d %H:%M %Z")
    if _instant(fired_at) < _instant(keep_alive_until):
        return Decision(False, f"the environment is kept alive until {until}, so it is not stopped")
    return Decision(True, f"the keep-alive ended at {until}, so the environment stops")


@dataclass(frozen=True)
class Occurrence:
    action: Action
    at: datetime
    decision: Decision


def upcoming(
    schedule: EnvironmentSchedule,
    after: datetime,
    keep_alive_until: datetime | None = None,
    days: int = 14,
) -> list[Occurrence]:
    """Every stop and start fire after ``after``, through the end of the ``days``-th local day after it."""
    if days < 0:
        raise ValueError("days must not be negative")
    last_day = _local_date(schedule, after) + timedelta(days=days)
    fires = heapq.merge(
        *(zip(fire_times(schedule, action, after), itertools.repeat(action)) for action in ACTIONS),
        key=lambda pair: _instant(pair[0]),
    )
    return [
        Occurrence(action, fire, decide(schedule, action, fire, keep_alive_until))
        for fire, action in itertools.takewhile(lambda pair: pair[0].date() <= last_day, fires)
    ]


def next_acting(
    schedule: EnvironmentSchedule,
    action: Action,
    after: datetime,
    keep_alive_until: datetime | None = None,
    horizon_days: int = 400,
) -> Occurrence | None:
    """The first fire strictly after ``after`` that acts, looking at most ``horizon_days`` local days ahead."""
    last_day = _local_date(schedule, after) + timedelta(days=horizon_days)
    for fire in fire_times(schedule, action, after):
        if fire.date() > last_day:
            return None
        decision = decide(schedule, action, fire, keep_alive_until)
        if decision.act:
            return Occurrence(action, fire, decision)
    return None


def dst_warnings(schedule: EnvironmentSchedule, start: date, days: int = 366) -> list[str]:
    """The days in ``[start, start + days)`` on which a clock change skips or could repeat a fire."""
    actions = sorted(ACTIONS, key=schedule.local_time)
    warnings: list[str] = []
    for day in (start + timedelta(days=offset) for offset in range(days)):
        for action in actions:
            at = f"{schedule.local_time(action):%H:%M}"
            fire = fire_time(schedule, action, day)
            if fire is None:
                warnings.append(
                    f"{action} at {at} does not exist on {day.isoformat()} in {schedule.timezone} "
                    f"(clocks go forward): EventBridge Scheduler skips that day's {action}"
                )
            elif fire.utcoffset() != fire.replace(fold=1).utcoffset():
                warnings.append(
                    f"{action} at {at} happens twice on {day.isoformat()} in {schedule.timezone} (clocks go back): "
                    f"EventBridge Scheduler {action}s once, at the first {at} ({fire.tzname()})"
                )
    return warnings
