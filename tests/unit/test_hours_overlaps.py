"""Overlapping opening hours are found (ordering/hours.py), without a database."""

from __future__ import annotations

import datetime

import pytest

from ordering.hours import Schedule, exception_overlaps, parse_ranges, weekly_overlaps

# 2026-03-02 is a Monday.
MONDAY = datetime.date(2026, 3, 2)


def week(**days: str) -> dict[int, tuple]:
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return {names.index(name): parse_ranges(text) for name, text in days.items()}


@pytest.mark.parametrize(
    "plan",
    [
        {"mon": "11:00-14:30, 18:00-22:00"},
        {"mon": "11:00-15:00, 15:00-22:00"},  # touching is fine
        {"mon": "18:00-02:00", "tue": "02:00-10:00"},  # past midnight, ends as Tuesday's starts
        {"mon": "all day", "tue": "all day", "sun": "all day"},
        {"fri": "18:00-02:00", "sat": "11:00-14:00"},
        {"sun": "20:00-01:00", "mon": "01:00-02:00"},
    ],
)
def test_ranges_that_do_not_overlap_pass(plan):
    assert weekly_overlaps(week(**plan)) == {}


def test_two_ranges_of_one_day_that_overlap_are_named_on_that_day():
    assert weekly_overlaps(week(mon="11:00-15:00, 14:00-18:00")) == {0: ["14:00–18:00 overlaps 11:00–15:00."]}


def test_a_range_inside_another_overlaps():
    assert weekly_overlaps(week(wed="10:00-22:00, 12:00-13:00")) == {2: ["12:00–13:00 overlaps 10:00–22:00."]}


def test_all_day_overlaps_any_other_range_of_its_day():
    assert list(weekly_overlaps(week(mon="00:00-00:00, 11:00-12:00"))) == [0]


def test_a_past_midnight_range_overlapping_the_next_morning_is_named_on_the_next_day():
    errors = weekly_overlaps(week(fri="18:00-02:00", sat="01:00-04:00"))

    assert errors == {5: ["01:00–04:00 overlaps Friday’s 18:00–02:00, which runs past midnight."]}


def test_sunday_night_runs_into_monday_morning():
    errors = weekly_overlaps(week(sun="22:00-03:00", mon="02:00-10:00"))

    assert errors == {0: ["02:00–10:00 overlaps Sunday’s 22:00–03:00, which runs past midnight."]}


def test_a_day_all_day_runs_into_nothing_but_a_range_past_midnight_into_it_overlaps():
    assert list(weekly_overlaps(week(mon="20:00-01:00", tue="all day"))) == [1]


def test_an_exception_overlapping_itself_or_its_neighbours():
    plan = Schedule(
        weekly=week(mon="18:00-02:00", wed="00:00-06:00"),
        exceptions={
            MONDAY + datetime.timedelta(days=1): parse_ranges("01:00-03:00"),  # Tuesday, in Monday's night
            MONDAY + datetime.timedelta(days=3): parse_ranges("10:00-12:00, 11:00-13:00"),
        },
    )

    errors = exception_overlaps(plan)

    assert errors == {
        MONDAY + datetime.timedelta(days=1): [
            "01:00–03:00 overlaps 2026-03-02’s 18:00–02:00, which runs past midnight."
        ],
        MONDAY + datetime.timedelta(days=3): ["11:00–13:00 overlaps 10:00–12:00."],
    }


def test_an_exception_past_midnight_into_the_next_days_hours():
    plan = Schedule(
        weekly=week(wed="00:00-06:00"), exceptions={MONDAY + datetime.timedelta(days=1): parse_ranges("22:00-01:00")}
    )

    assert list(exception_overlaps(plan)) == [MONDAY + datetime.timedelta(days=1)]


def test_a_closed_exception_overlaps_nothing():
    plan = Schedule(weekly=week(mon="18:00-02:00", tue="01:00-05:00"), exceptions={MONDAY: ()})

    assert exception_overlaps(plan) == {}
