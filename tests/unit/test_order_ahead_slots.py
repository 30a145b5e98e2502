"""Ordering ahead (ordering/hours.py): the quarter hours offered for a day, and why a chosen
time is refused. Pure: no database."""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ordering.hours import Schedule, TimeRange, availability, slot_problem, slots
from tests.unit.test_hours import BERLIN, MONDAY, at, schedule

UTC = datetime.UTC
EARLY = at(MONDAY, 0)
FRIDAY_NIGHTS = schedule({4: "18:00-01:00"})  # Friday evenings, past midnight into Saturday


def local(moments: list[datetime.datetime]) -> list[str]:
    return [f"{moment.astimezone(BERLIN):%a %H:%M}" for moment in moments]


def test_quarter_hours_within_the_ranges_a_closing_time_excluded() -> None:
    lunch = schedule({0: "11:00-12:00"})
    assert local(slots(schedule=lunch, day=MONDAY, tz=BERLIN, earliest=EARLY)) == [
        "Mon 11:00",
        "Mon 11:15",
        "Mon 11:30",
        "Mon 11:45",
    ]


def test_nothing_before_the_earliest_time() -> None:
    lunch = schedule({0: "11:00-12:00"})
    assert local(slots(schedule=lunch, day=MONDAY, tz=BERLIN, earliest=at(MONDAY, 11, 20))) == [
        "Mon 11:30",
        "Mon 11:45",
    ]


def test_a_range_past_midnight_gives_the_next_mornings_slots_on_that_day() -> None:
    friday, saturday = MONDAY + datetime.timedelta(days=4), MONDAY + datetime.timedelta(days=5)
    assert local(slots(schedule=FRIDAY_NIGHTS, day=friday, tz=BERLIN, earliest=EARLY))[:2] == ["Fri 18:00", "Fri 18:15"]
    assert local(slots(schedule=FRIDAY_NIGHTS, day=friday, tz=BERLIN, earliest=EARLY))[-1] == "Fri 23:45"
    assert local(slots(schedule=FRIDAY_NIGHTS, day=saturday, tz=BERLIN, earliest=EARLY)) == [
        "Sat 00:00",
        "Sat 00:15",
        "Sat 00:30",
        "Sat 00:45",
    ]


def test_no_hours_means_every_quarter_hour_and_a_closed_date_none() -> None:
    assert len(slots(schedule=schedule(), day=MONDAY, tz=BERLIN, earliest=EARLY)) == 96
    closed = schedule({0: "00:00-00:00"}, {MONDAY: ""})
    assert slots(schedule=closed, day=MONDAY, tz=BERLIN, earliest=EARLY) == []


def test_dst_days_have_their_wall_clock_quarter_hours_once_each() -> None:
    spring, autumn = datetime.date(2026, 3, 29), datetime.date(2026, 10, 25)  # Sundays of the changes
    around = schedule({6: "00:00-00:00"})
    spring_slots = local(slots(schedule=around, day=spring, tz=BERLIN, earliest=at(spring, 0)))
    assert len(spring_slots) == 92 and "Sun 02:30" not in spring_slots  # 02:00-03:00 does not exist
    autumn_slots = slots(schedule=around, day=autumn, tz=BERLIN, earliest=at(autumn, 0))
    assert len(autumn_slots) == 96 and len(set(autumn_slots)) == 96
    assert all(b > a for a, b in zip(autumn_slots, autumn_slots[1:], strict=False))


QUARTER = datetime.timedelta(minutes=15)
SPRING, AUTUMN = datetime.date(2026, 3, 29), datetime.date(2026, 10, 25)  # Sundays of the changes
quarter_hours = st.builds(datetime.time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
ranges = st.lists(st.builds(TimeRange, quarter_hours, quarter_hours), max_size=3).map(tuple)
days = st.sampled_from([MONDAY, SPRING, AUTUMN]).flatmap(
    lambda change: st.integers(-1, 1).map(lambda offset: change + datetime.timedelta(days=offset))
)


@settings(max_examples=150, deadline=None)
@given(
    weekly=st.dictionaries(st.integers(0, 6), ranges, max_size=7),
    exception=st.one_of(st.none(), ranges),
    day=days,
    exception_offset=st.integers(-1, 1),
)
def test_a_day_offers_exactly_the_quarter_hours_the_restaurant_takes_orders_at(
    weekly, exception, day, exception_offset
) -> None:
    # given any hours (ranges past midnight, overlapping, all day), perhaps an exception on the
    # day, the day before or after, and a day around a DST change
    exceptions = {} if exception is None else {day + datetime.timedelta(days=exception_offset): exception}
    plan = Schedule(weekly=weekly, exceptions=exceptions)
    # when
    offered = slots(schedule=plan, day=day, tz=BERLIN, earliest=at(day, 0))
    # then it is every quarter hour of that local day (a wall time twice in autumn: the first)
    # at which the rule of "open now" says open
    expected, seen = [], set()
    moment = at(day, 0).astimezone(datetime.UTC)
    while moment < at(day + datetime.timedelta(days=1), 0):
        wall = moment.astimezone(BERLIN).time()
        open_now = availability(now=moment, tz=BERLIN, is_open=True, busy=False, busy_until=None, schedule=plan)
        if wall not in seen and open_now.taking_orders:
            expected.append(moment)
        seen.add(wall)
        moment += QUARTER
    assert offered == expected


def problem(when: datetime.datetime, plan=None, now: datetime.datetime | None = None) -> str:
    return slot_problem(
        when=when,
        now=now or at(MONDAY, 9),
        tz=BERLIN,
        schedule=plan or schedule({0: "11:00-14:00"}),
        lead=datetime.timedelta(minutes=20),
        ahead=datetime.timedelta(days=7),
    )


def test_a_time_must_be_a_quarter_hour_far_enough_ahead_and_open() -> None:
    assert problem(at(MONDAY, 11, 30)) == ""
    assert "quarter hour" in problem(at(MONDAY, 11, 20))
    assert "at least 20 minutes" in problem(at(MONDAY, 11, 15), now=at(MONDAY, 11, 0))
    assert "not open at 15:00" in problem(at(MONDAY, 15, 0))
    assert "at most 7 days ahead" in problem(at(MONDAY + datetime.timedelta(days=14), 11, 0))
    assert "time zone" in problem(datetime.datetime(2026, 3, 2, 11, 30))  # noqa: DTZ001 - naive on purpose
    # the same instant written in UTC is the same slot
    assert problem(at(MONDAY, 11, 30).astimezone(UTC)) == ""
