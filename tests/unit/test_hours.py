"""The one rule of whether a restaurant takes orders now (ordering/hours.py), without a database."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from ordering.hours import Reason, Schedule, TimeRange, availability, format_ranges, parse_ranges

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-03-02 is a Monday.
MONDAY = datetime.date(2026, 3, 2)


def at(day: datetime.date, hour: int, minute: int = 0, tz: ZoneInfo = BERLIN) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=tz)


def schedule(weekly: dict[int, str] | None = None, exceptions: dict[datetime.date, str] | None = None) -> Schedule:
    return Schedule(
        weekly={day: parse_ranges(text) for day, text in (weekly or {}).items()},
        exceptions={day: parse_ranges(text) for day, text in (exceptions or {}).items()},
    )


def check(now: datetime.datetime, plan: Schedule, *, is_open=True, busy=False, busy_until=None):
    return availability(now=now, tz=BERLIN, is_open=is_open, busy=busy, busy_until=busy_until, schedule=plan)


LUNCH_AND_DINNER = schedule(dict.fromkeys(range(5), "11:00-14:30, 18:00-22:00"))


def test_no_hours_means_open_whenever_open_by_hand():
    state = check(at(MONDAY, 3), schedule())
    assert state.taking_orders and state.reason is Reason.OPEN and state.today is None


@pytest.mark.parametrize(
    ("hour", "minute", "open_"),
    [(10, 59, False), (11, 0, True), (14, 29, True), (14, 30, False), (18, 0, True), (22, 0, False)],
)
def test_weekday_ranges_include_their_start_and_exclude_their_end(hour, minute, open_):
    assert check(at(MONDAY, hour, minute), LUNCH_AND_DINNER).taking_orders is open_


def test_between_ranges_says_when_it_opens_again():
    state = check(at(MONDAY, 15), LUNCH_AND_DINNER)
    assert state.reason is Reason.OUTSIDE_HOURS
    assert state.next_open == at(MONDAY, 18).astimezone(datetime.UTC)
    assert "opens at 18:00" in state.message
    assert format_ranges(state.today or ()) == "11:00–14:30, 18:00–22:00"


def test_after_friday_night_it_opens_on_monday():
    friday = MONDAY + datetime.timedelta(days=4)
    state = check(at(friday, 23), LUNCH_AND_DINNER)
    assert state.next_open == at(MONDAY + datetime.timedelta(days=7), 11).astimezone(datetime.UTC)
    assert "on Monday at 11:00" in state.message


def test_a_range_past_midnight_is_open_the_next_morning_until_its_end():
    late = schedule({4: "18:00-02:00"})  # Friday night
    friday, saturday = MONDAY + datetime.timedelta(days=4), MONDAY + datetime.timedelta(days=5)
    assert check(at(friday, 23, 30), late).taking_orders
    assert check(at(saturday, 1, 59), late).taking_orders
    assert not check(at(saturday, 2, 0), late).taking_orders
    # Saturday itself has no hours of its own.
    assert not check(at(saturday, 19), late).taking_orders


def test_all_day_is_open_around_the_clock():
    plan = schedule(dict.fromkeys(range(7), "all day"))
    assert all(check(at(MONDAY, hour), plan).taking_orders for hour in range(24))
    assert str(plan.weekly[0][0]) == "all day"


def test_a_closed_date_wins_over_its_weekday():
    plan = schedule(dict.fromkeys(range(7), "all day"), {MONDAY: "closed"})
    state = check(at(MONDAY, 12), plan)
    assert state.reason is Reason.EXCEPTION_DAY and "closed all day today" in state.message
    assert state.next_open == at(MONDAY + datetime.timedelta(days=1), 0).astimezone(datetime.UTC)


def test_special_hours_of_a_date_replace_its_weekday_ranges():
    plan = schedule({0: "11:00-22:00"}, {MONDAY: "17:00-20:00"})
    assert not check(at(MONDAY, 12), plan).taking_orders
    assert check(at(MONDAY, 18), plan).taking_orders
    assert check(at(MONDAY, 12), plan).reason is Reason.EXCEPTION_DAY


def test_closed_by_hand_wins_over_hours():
    state = check(at(MONDAY, 12), LUNCH_AND_DINNER, is_open=False)
    assert state.reason is Reason.CLOSED and state.next_open is None


def test_busy_until_a_time_ends_by_itself():
    until = at(MONDAY, 12, 30)
    state = check(at(MONDAY, 12), LUNCH_AND_DINNER, busy=True, busy_until=until)
    assert state.reason is Reason.BUSY and "until 12:30" in state.message
    assert state.next_open == until
    assert check(at(MONDAY, 12, 30), LUNCH_AND_DINNER, busy=True, busy_until=until).taking_orders


def test_busy_without_an_end_lasts_until_resumed():
    state = check(at(MONDAY, 12), schedule(), busy=True)
    assert state.reason is Reason.BUSY and state.next_open is None


def test_outside_hours_is_reported_before_busy():
    assert check(at(MONDAY, 16), LUNCH_AND_DINNER, busy=True).reason is Reason.OUTSIDE_HOURS


def test_hours_keep_their_wall_clock_time_across_a_dst_change():
    # 2026-03-29: Berlin moves from +01:00 to +02:00 at 02:00.
    sunday, monday = datetime.date(2026, 3, 29), datetime.date(2026, 3, 30)
    plan = schedule({6: "11:00-22:00", 0: "11:00-22:00"})
    assert check(datetime.datetime(2026, 3, 29, 9, 0, tzinfo=datetime.UTC), plan).taking_orders  # 11:00 local
    assert not check(datetime.datetime(2026, 3, 29, 8, 59, tzinfo=datetime.UTC), plan).taking_orders
    state = check(at(sunday, 23), plan)
    assert state.next_open == datetime.datetime(2026, 3, 30, 9, 0, tzinfo=datetime.UTC)
    assert check(at(monday, 11), plan).taking_orders


def test_a_past_midnight_range_over_the_autumn_change_lasts_its_extra_hour():
    # 2026-10-25: Berlin falls back from +02:00 to +01:00 at 03:00; Saturday 22:00-04:00 is 7 h.
    plan = schedule({5: "22:00-04:00"})
    assert check(datetime.datetime(2026, 10, 25, 2, 30, tzinfo=datetime.UTC), plan).taking_orders  # 03:30 local
    assert not check(datetime.datetime(2026, 10, 25, 3, 0, tzinfo=datetime.UTC), plan).taking_orders  # 04:00


def test_the_rule_answers_for_any_aware_now_regardless_of_its_zone():
    new_york = at(MONDAY, 6, tz=ZoneInfo("America/New_York"))  # 12:00 in Berlin
    assert check(new_york, LUNCH_AND_DINNER).taking_orders


@pytest.mark.parametrize("text", ["11-14", "11:00", "11:00-25:00", "noon-late", "11:00-14:00-15:00"])
def test_junk_ranges_are_refused(text):
    with pytest.raises(ValueError):
        parse_ranges(text)


def test_ranges_parse_sorted_and_round_trip():
    ranges = parse_ranges("18:00-22:00, 11:00–14:30")
    assert ranges == (
        TimeRange(datetime.time(11), datetime.time(14, 30)),
        TimeRange(datetime.time(18), datetime.time(22)),
    )
    plan = Schedule(weekly={0: ranges}, exceptions={MONDAY: ()})
    assert Schedule.from_json(plan.weekly_json(), plan.exceptions_json()) == plan
