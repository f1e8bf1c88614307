from __future__ import annotations

import functools
import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from opsflow.workflows.env_power import calendar as schedules
from opsflow.workflows.env_power.calendar import (
    WEEKDAYS,
    EnvironmentSchedule,
    HolidayCalendar,
    Weekday,
    decide,
    dst_warnings,
    fire_time,
    fire_times,
    next_acting,
    upcoming,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
BAVARIA = {"country": "DE", "subdivision": "BY"}


def schedule(**fields: Any) -> EnvironmentSchedule:
    return EnvironmentSchedule.model_validate(
        {"timezone": "Europe/Berlin", "stop_at": "19:00", "start_at": "07:00", **fields}
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def in_utc(moment: datetime | None) -> datetime | None:
    # Python never finds an ambiguous local time equal to a datetime in another zone (PEP 495).
    return None if moment is None else moment.astimezone(UTC)


def start_on(env: EnvironmentSchedule, day: date) -> schedules.Decision:
    fire = fire_time(env, "start", day)
    assert fire is not None
    return decide(env, "start", fire)


# --- Daylight saving time: golden cases -------------------------------------------------------------------


def test_spring_forward_skips_the_missing_time() -> None:
    env = schedule(stop_at="02:30")
    assert fire_time(env, "stop", date(2027, 3, 28)) is None
    after = datetime(2027, 3, 27, 3, 0, tzinfo=BERLIN)
    assert list(itertools.islice(fire_times(env, "stop", after), 2)) == [
        utc(2027, 3, 29, 0, 30),
        utc(2027, 3, 30, 0, 30),
    ]
    nxt = next(fire_times(env, "stop", after))
    assert (nxt.date(), nxt.time(), nxt.tzname()) == (date(2027, 3, 29), time(2, 30), "CEST")


def test_fall_back_fires_once_at_the_first_occurrence() -> None:
    env = schedule(stop_at="02:30")
    fire = fire_time(env, "stop", date(2026, 10, 25))
    assert in_utc(fire) == utc(2026, 10, 25, 0, 30)
    assert fire is not None
    assert fire.tzinfo is BERLIN
    assert fire.tzname() == "CEST"
    fires = itertools.islice(fire_times(env, "stop", datetime(2026, 10, 24, 12, tzinfo=UTC)), 2)
    assert [in_utc(f) for f in fires] == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_after_the_fall_back_fire_the_repeated_hour_does_not_fire_again() -> None:
    env = schedule(stop_at="02:30")
    # The second 02:15 of the day (01:15Z) follows the 02:30 CEST fire (00:30Z), although its wall time
    # is earlier: comparing wall times would yield the fire a second time.
    second_quarter_past_two = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN)
    assert next(fire_times(env, "stop", second_quarter_past_two)) == utc(2026, 10, 26, 1, 30)


def test_new_york_spring_forward_and_fall_back() -> None:
    env = schedule(timezone="America/New_York", stop_at="02:30", start_at="01:30")
    assert fire_time(env, "stop", date(2027, 3, 14)) is None
    assert fire_time(env, "stop", date(2027, 3, 15)) == utc(2027, 3, 15, 6, 30)
    assert in_utc(fire_time(env, "start", date(2026, 11, 1))) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, not EST


def test_lord_howe_half_hour_shift() -> None:
    env = schedule(timezone="Australia/Lord_Howe", stop_at="02:15", start_at="01:45")
    assert fire_time(env, "stop", date(2026, 10, 4)) is None
    assert in_utc(fire_time(env, "start", date(2027, 4, 4))) == utc(2027, 4, 3, 14, 45)


def test_dst_warnings_name_the_day_and_what_the_scheduler_does() -> None:
    env = schedule(stop_at="02:30", start_at="07:00")
    assert dst_warnings(env, date(2026, 6, 1)) == [
        "stop at 02:30 happens twice on 2026-10-25 in Europe/Berlin (clocks go back): "
        "EventBridge Scheduler stops once, at the first 02:30 (CEST)",
        "stop at 02:30 does not exist on 2027-03-28 in Europe/Berlin (clocks go forward): "
        "EventBridge Scheduler skips that day's stop",
    ]
    assert dst_warnings(env, date(2026, 10, 26), days=153) == []
    assert dst_warnings(schedule(), date(2026, 1, 1)) == []


def test_dst_warnings_for_a_start() -> None:
    env = schedule(timezone="America/New_York", start_at="01:15")
    assert dst_warnings(env, date(2026, 11, 1), days=1) == [
        "start at 01:15 happens twice on 2026-11-01 in America/New_York (clocks go back): "
        "EventBridge Scheduler starts once, at the first 01:15 (EDT)"
    ]


# --- Working days -------------------------------------------------------------------------------------------


def test_weekdays_default_to_monday_to_friday() -> None:
    env = schedule()
    assert env.weekdays == ["MON", "TUE", "WED", "THU", "FRI"]
    assert [env.is_working_day(date(2026, 11, 23) + timedelta(days=n)) for n in range(7)] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(("day", "name"), [(date(2026, 11, 28), "Saturday"), (date(2026, 11, 29), "Sunday")])
def test_start_is_skipped_at_the_weekend(day: date, name: str) -> None:
    decision = start_on(schedule(), day)
    assert decision.act is False
    assert decision.reason.startswith(f"{name} is not a working day")


def test_start_acts_on_a_working_day() -> None:
    decision = start_on(schedule(), date(2026, 11, 24))
    assert decision.act is True
    assert decision.reason.startswith("Tuesday is a working day")


def test_custom_weekdays() -> None:
    env = schedule(weekdays=["SUN", "MON"])
    assert start_on(env, date(2026, 11, 29)).act is True
    assert start_on(env, date(2026, 11, 24)).act is False


def test_public_holiday_skips_the_start_and_names_the_holiday() -> None:
    env = schedule(holidays=BAVARIA)
    decision = start_on(env, date(2026, 12, 25))
    assert decision.act is False
    assert decision.reason.startswith("2026-12-25 is a public holiday in DE-BY (Christmas Day)")


def test_holidays_depend_on_the_subdivision() -> None:
    epiphany = date(2026, 1, 6)  # a Tuesday
    assert schedule(holidays=BAVARIA).is_working_day(epiphany) is False
    assert schedule(holidays={"country": "DE", "subdivision": "BE"}).is_working_day(epiphany) is True
    assert schedule(holidays={"country": "DE"}).day_note(epiphany) == "Tuesday is a working day"


def test_holiday_names_do_not_follow_the_process_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.setenv(variable, "de_DE.UTF-8")
    schedules._public_holidays.cache_clear()
    try:
        note = schedule(holidays=BAVARIA).day_note(date(2026, 12, 26))
    finally:
        schedules._public_holidays.cache_clear()
    assert note == "2026-12-26 is a public holiday in DE-BY (Second Day of Christmas)"


def test_extra_on_day_and_off_day() -> None:
    env = schedule(on_days=["2026-11-28"], off_days=["2026-11-25"], holidays=BAVARIA)
    saturday = start_on(env, date(2026, 11, 28))
    assert saturday.act is True
    assert saturday.reason.startswith("2026-11-28 is an extra on-day")
    wednesday = start_on(env, date(2026, 11, 25))
    assert wednesday.act is False
    assert wednesday.reason.startswith("2026-11-25 is an extra off-day")


def test_on_day_overrides_a_public_holiday() -> None:
    env = schedule(holidays=BAVARIA, on_days=["2026-12-25"])
    assert env.is_working_day(date(2026, 12, 25)) is True
    assert env.day_note(date(2026, 12, 25)) == "2026-12-25 is an extra on-day"


def test_dates_are_accepted_as_json_strings() -> None:
    env = EnvironmentSchedule.model_validate_json(
        '{"timezone": "UTC", "stop_at": "19:00", "start_at": "07:00", "off_days": ["2026-12-24"]}'
    )
    assert env.off_days == [date(2026, 12, 24)]


def test_a_date_cannot_be_both_off_and_on() -> None:
    with pytest.raises(ValidationError, match="cannot be both an off-day and an on-day: 2026-12-24"):
        schedule(off_days=["2026-12-24", "2026-12-31"], on_days=["2026-12-24"])


def test_off_and_on_days_are_bounded() -> None:
    many = [(date(2026, 1, 1) + timedelta(days=n)).isoformat() for n in range(367)]
    with pytest.raises(ValidationError, match="at most 366"):
        schedule(off_days=many)


# --- Keep-alive ---------------------------------------------------------------------------------------------


def test_keep_alive_skips_the_stop_until_it_expires() -> None:
    env = schedule()
    until = datetime(2026, 11, 25, 9, 0, tzinfo=BERLIN)
    before = decide(env, "stop", datetime(2026, 11, 24, 19, 0, tzinfo=BERLIN), until)
    assert before.act is False
    assert "kept alive until 2026-11-25 09:00 CET" in before.reason
    after = decide(env, "stop", datetime(2026, 11, 25, 19, 0, tzinfo=BERLIN), until)
    assert after.act is True
    assert "2026-11-25 09:00 CET" in after.reason
    acting = next_acting(env, "stop", datetime(2026, 11, 24, 12, tzinfo=BERLIN), until)
    assert acting is not None
    assert acting.at == datetime(2026, 11, 25, 19, 0, tzinfo=BERLIN)


def test_keep_alive_ending_exactly_at_the_fire_lets_it_stop() -> None:
    fired_at = datetime(2026, 11, 25, 19, 0, tzinfo=BERLIN)
    assert decide(schedule(), "stop", fired_at, keep_alive_until=fired_at.astimezone(UTC)).act is True


def test_keep_alive_is_compared_as_instants_in_the_repeated_hour() -> None:
    env = schedule(stop_at="02:30")
    fired_at = fire_time(env, "stop", date(2026, 10, 25))  # 02:30 CEST, 00:30Z
    assert fired_at is not None
    # 02:15 CET (01:15Z) comes after the fire, although its wall time is earlier.
    until = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN)
    decision = decide(env, "stop", fired_at, until)
    assert decision.act is False
    assert "kept alive until 2026-10-25 02:15 CET" in decision.reason


def test_keep_alive_is_shown_in_the_environment_time_zone() -> None:
    decision = decide(schedule(), "stop", utc(2026, 11, 24, 18), keep_alive_until=utc(2026, 11, 25, 8))
    assert "kept alive until 2026-11-25 09:00 CET" in decision.reason


def test_keep_alive_does_not_affect_the_start() -> None:
    env = schedule()
    until = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    assert decide(env, "start", datetime(2026, 11, 25, 7, 0, tzinfo=BERLIN), until).act is True
    assert decide(env, "start", datetime(2026, 11, 28, 7, 0, tzinfo=BERLIN), until).act is False


def test_stop_acts_every_night_including_days_off() -> None:
    env = schedule(holidays=BAVARIA, off_days=["2026-12-24"])
    for day in (date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 28)):
        fire = fire_time(env, "stop", day)
        assert fire is not None
        assert decide(env, "stop", fire).act is True


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        decide(schedule(), "start", datetime(2026, 11, 24, 7))
    with pytest.raises(ValueError, match="no time zone"):
        next(fire_times(schedule(), "stop", datetime(2026, 11, 24, 7)))


# --- Preview ------------------------------------------------------------------------------------------------


def test_upcoming_previews_the_christmas_week() -> None:
    env = schedule(holidays=BAVARIA, off_days=["2026-12-24"])
    preview = upcoming(env, datetime(2026, 12, 23, 12, tzinfo=BERLIN), days=5)
    assert [(o.action, o.at.isoformat(), o.decision.act) for o in preview] == [
        ("stop", "2026-12-23T19:00:00+01:00", True),
        ("start", "2026-12-24T07:00:00+01:00", False),
        ("stop", "2026-12-24T19:00:00+01:00", True),
        ("start", "2026-12-25T07:00:00+01:00", False),
        ("stop", "2026-12-25T19:00:00+01:00", True),
        ("start", "2026-12-26T07:00:00+01:00", False),
        ("stop", "2026-12-26T19:00:00+01:00", True),
        ("start", "2026-12-27T07:00:00+01:00", False),
        ("stop", "2026-12-27T19:00:00+01:00", True),
        ("start", "2026-12-28T07:00:00+01:00", True),
        ("stop", "2026-12-28T19:00:00+01:00", True),
    ]
    assert "Second Day of Christmas" in preview[5].decision.reason


def test_next_acting_start_skips_days_off() -> None:
    env = schedule(holidays=BAVARIA, off_days=["2026-12-24"])
    acting = next_acting(env, "start", datetime(2026, 12, 23, 12, tzinfo=BERLIN))
    assert acting is not None
    assert (acting.action, acting.at) == ("start", datetime(2026, 12, 28, 7, tzinfo=BERLIN))
    assert acting.decision.reason.startswith("Monday is a working day")


def test_next_acting_gives_up_at_the_horizon() -> None:
    env = schedule(weekdays=["SAT"], off_days=["2026-11-28"])
    assert next_acting(env, "start", utc(2026, 11, 23), horizon_days=6) is None
    assert next_acting(env, "start", utc(2026, 11, 23), horizon_days=13) is not None


# --- Validation and expressions -----------------------------------------------------------------------------


def test_scheduler_expression_and_local_time() -> None:
    env = schedule(stop_at="02:30", start_at="07:05")
    assert env.scheduler_expression("stop") == "cron(30 2 * * ? *)"
    assert env.scheduler_expression("start") == "cron(5 7 * * ? *)"
    assert env.local_time("stop") == time(2, 30)
    assert env.local_time("start") == time(7, 5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"timezone": "Europe/Berln"},
            "unknown time zone 'Europe/Berln'; use an IANA name such as Europe/Berlin",
        ),
        ({"timezone": "../etc/passwd"}, "unknown time zone"),
        ({"stop_at": "25:00"}, "'25:00' is not a 24-hour time HH:MM"),
        ({"start_at": "7:00"}, "is not a 24-hour time HH:MM"),
        ({"start_at": "07:60"}, "is not a 24-hour time HH:MM"),
        ({"start_at": "19:00"}, "stop_at and start_at must differ"),
        ({"weekdays": []}, "at least 1 item"),
        ({"weekdays": ["MON", "TUE", "MON"]}, "lists MON more than once"),
        ({"weekdays": ["MONDAY"]}, "'MON'"),
        ({"holidays": {"country": "XX"}}, "unknown country 'XX'; use an ISO 3166-1 alpha-2 code such as DE"),
        ({"holidays": {"country": "DEU"}}, "unknown country 'DEU'"),
        (
            {"holidays": {"country": "DE", "subdivision": "XX"}},
            "unknown subdivision 'XX' of DE; use one of BB, BE",
        ),
        ({"holidays": {"country": "AF", "subdivision": "X"}}, "AF has no subdivisions"),
        ({"colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_validation_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        schedule(**fields)


def test_long_subdivision_lists_are_shortened() -> None:
    with pytest.raises(ValidationError) as caught:
        HolidayCalendar(country="US", subdivision="ZZ")
    assert "AK, AL" in str(caught.value)
    assert "more" in str(caught.value)
    assert "WY" not in str(caught.value)


def test_models_are_frozen() -> None:
    env = schedule()
    with pytest.raises(ValidationError):
        env.stop_at = "20:00"


# --- Properties ---------------------------------------------------------------------------------------------

ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
    "America/Sao_Paulo",
    "Pacific/Chatham",
)
FIRST_DAY, LAST_DAY = date(2020, 1, 1), date(2035, 12, 31)


@functools.cache
def _zone_profile(name: str) -> tuple[frozenset[timedelta], tuple[date, ...]]:
    """Every UTC offset the zone uses in 2020-2035, and the days around its clock changes."""
    zone = ZoneInfo(name)
    offsets: set[timedelta] = set()
    changes: list[date] = []
    previous = None
    day = FIRST_DAY - timedelta(days=1)
    while day <= LAST_DAY + timedelta(days=1):
        offset = datetime.combine(day, time(12), tzinfo=zone).utcoffset()
        assert offset is not None
        offsets.add(offset)
        if previous is not None and offset != previous:
            changes.extend([day - timedelta(days=1), day])
        previous = offset
        day += timedelta(days=1)
    return frozenset(offsets), tuple(changes)


def instants_at(name: str, day: date, at: time) -> list[datetime]:
    """Oracle: every UTC instant whose wall clock in the zone reads `at` on `day`, found by trying offsets."""
    wall = datetime.combine(day, at)
    offsets, _ = _zone_profile(name)
    found = {
        (wall - offset).replace(tzinfo=UTC)
        for offset in offsets
        if (wall - offset).replace(tzinfo=UTC).astimezone(ZoneInfo(name)).replace(tzinfo=None) == wall
    }
    return sorted(found)


def _days_for(name: str) -> st.SearchStrategy[date]:
    changes = _zone_profile(name)[1]
    arbitrary = st.dates(FIRST_DAY, LAST_DAY)
    return st.one_of(arbitrary, st.sampled_from(changes)) if changes else arbitrary


zones_and_days = st.sampled_from(ZONES).flatmap(lambda name: st.tuples(st.just(name), _days_for(name)))
# Clocks change between midnight and 04:00 in these zones; weight those hours so the tests meet the edges.
wall_times = st.one_of(
    st.builds(time, st.integers(0, 23), st.integers(0, 59)),
    st.builds(time, st.integers(0, 3), st.integers(0, 59)),
)


def env_at(name: str, stop_at: time, **fields: Any) -> EnvironmentSchedule:
    start_at = time((stop_at.hour + 12) % 24, stop_at.minute)
    return EnvironmentSchedule.model_validate(
        {"timezone": name, "stop_at": f"{stop_at:%H:%M}", "start_at": f"{start_at:%H:%M}", **fields}
    )


@settings(max_examples=200, deadline=None)
@given(zones_and_days, wall_times)
def test_fire_time_exists_iff_the_wall_time_exists(zone_and_day: tuple[str, date], at: time) -> None:
    name, day = zone_and_day
    env = env_at(name, at)
    fire = fire_time(env, "stop", day)
    instants = instants_at(name, day, at)
    assert (fire is None) == (not instants)
    if fire is not None:
        assert fire.tzinfo == ZoneInfo(name)
        assert (fire.date(), fire.time()) == (day, at)
        assert fire.astimezone(UTC) == instants[0]


@settings(max_examples=100, deadline=None)
@given(zones_and_days, wall_times, st.integers(0, 24 * 60 - 1))
def test_fire_times_fire_once_a_day_except_when_the_time_does_not_exist(
    zone_and_day: tuple[str, date], at: time, minute_of_day: int
) -> None:
    name, day = zone_and_day
    env = env_at(name, at)
    after = datetime.combine(day, time()).replace(tzinfo=UTC) + timedelta(minutes=minute_of_day)
    first_day = after.astimezone(ZoneInfo(name)).date()
    last_day = first_day + timedelta(days=20)
    fires = list(itertools.takewhile(lambda f: f.date() <= last_day, fire_times(env, "stop", after)))
    instants = [f.astimezone(UTC) for f in fires]
    assert instants == sorted(set(instants))
    assert [f.date() for f in fires] == sorted({f.date() for f in fires})
    expected = [
        found[0]
        for offset in range(-1, 21)
        if (found := instants_at(name, first_day + timedelta(days=offset), at)) and found[0] > after
    ]
    assert instants == expected


weekday_sets = st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
calendars = st.sampled_from([None, {"country": "DE", "subdivision": "BY"}, {"country": "US"}])
extra_days = st.lists(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=20, unique=True)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ZONES),
    weekday_sets,
    calendars,
    extra_days,
    extra_days,
    st.dates(date(2026, 1, 1), date(2026, 12, 31)),
)
def test_start_acts_iff_working_day(
    name: str,
    weekdays: list[Weekday],
    calendar: dict[str, str] | None,
    on_days: list[date],
    off_days: list[date],
    day: date,
) -> None:
    off_days = [d for d in off_days if d not in on_days]
    env = env_at(name, time(7), weekdays=weekdays, holidays=calendar, on_days=on_days, off_days=off_days)
    fired_at = fire_time(env, "start", day)
    assert fired_at is not None
    decision = decide(env, "start", fired_at)
    assert decision.act == env.is_working_day(day)
    assert decision.reason.startswith(env.day_note(day))
    if day in on_days:
        assert decision.act is True
    elif day in off_days:
        assert decision.act is False
    elif calendar is None:
        assert decision.act == (WEEKDAYS[day.weekday()] in weekdays)


@settings(max_examples=100, deadline=None)
@given(zones_and_days, wall_times, wall_times, st.integers(0, 24 * 60 - 1), st.integers(0, 10))
def test_upcoming_is_every_fire_in_time_order(
    zone_and_day: tuple[str, date], stop_at: time, start_at: time, minute_of_day: int, days: int
) -> None:
    assume(stop_at != start_at)
    name, day = zone_and_day
    env = EnvironmentSchedule(
        timezone=name, stop_at=f"{stop_at:%H:%M}", start_at=f"{start_at:%H:%M}", weekdays=["MON", "WED"]
    )
    after = datetime.combine(day, time()).replace(tzinfo=UTC) + timedelta(minutes=minute_of_day)
    keep_alive_until = after + timedelta(days=2)
    preview = upcoming(env, after, keep_alive_until, days=days)
    instants = [o.at.astimezone(UTC) for o in preview]
    assert instants == sorted(set(instants))
    assert all(i > after for i in instants)
    last_day = after.astimezone(ZoneInfo(name)).date() + timedelta(days=days)
    for action in ("stop", "start"):
        expected = list(itertools.takewhile(lambda f: f.date() <= last_day, fire_times(env, action, after)))
        assert [o.at for o in preview if o.action == action] == expected
    for occurrence in preview:
        assert occurrence.decision == decide(env, occurrence.action, occurrence.at, keep_alive_until)


@settings(max_examples=50, deadline=None)
@given(zones_and_days, wall_times)
def test_dst_warnings_are_the_days_without_exactly_one_instant(
    zone_and_day: tuple[str, date], at: time
) -> None:
    name, day = zone_and_day
    env = env_at(name, at)
    start = day - timedelta(days=3)
    warned = [w for w in dst_warnings(env, start, days=7) if w.startswith("stop ")]
    odd_days = [
        start + timedelta(days=n)
        for n in range(7)
        if len(instants_at(name, start + timedelta(days=n), at)) != 1
    ]
    assert len(warned) == len(odd_days)
    assert all(d.isoformat() in w for d, w in zip(odd_days, warned, strict=True))


def test_an_over_long_time_zone_is_refused_like_any_unknown_one() -> None:
    # ZoneInfo raises OSError (file name too long) rather than ZoneInfoNotFoundError for these.
    with pytest.raises(ValidationError, match="unknown time zone"):
        EnvironmentSchedule(timezone="Europe/" + "x" * 300, stop_at="20:00", start_at="07:00")
