"""Whether a restaurant takes orders at a given moment, why not, and when it next opens.

The one rule every interface asks (the menu page, add to cart, checkout, the API's order
placement): pure functions of the restaurant's fields and the clock, no database, so it is
unit-tested on its own and costs nothing on the order placement path.

Opening hours are local times of the site's time zone (``settings.TIME_ZONE``). A range whose
end is not after its start passes midnight: ``18:00-02:00`` on Friday is open until 02:00 on
Saturday morning, and one whose end equals its start lasts 24 hours (``00:00-00:00``, "all
day"). Times are turned into instants day by day through ``zoneinfo``, so a range
keeps its wall-clock times across a DST change; every comparison is made in UTC.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

UTC = datetime.UTC
HH_MM = re.compile(r"\d{2}:\d{2}")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# How far ahead "next opening" is looked for: a restaurant closed longer says so without a time.
LOOKAHEAD_DAYS = 14
# 00:00-00:00: open around the clock (a range whose end equals its start lasts 24 hours).
ALL_DAY = "all day"


class Reason(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # closed by hand (``is_open`` off)
    OUTSIDE_HOURS = "outside_hours"
    EXCEPTION_DAY = "exception_day"  # a date with no hours, or outside its special hours
    BUSY = "busy"


@dataclass(frozen=True)
class TimeRange:
    opens: datetime.time
    closes: datetime.time

    @property
    def past_midnight(self) -> bool:
        return self.closes <= self.opens

    def __str__(self) -> str:
        if self.opens == self.closes == datetime.time(0, 0):
            return ALL_DAY
        return f"{self.opens:%H:%M}–{self.closes:%H:%M}"


@dataclass(frozen=True)
class Schedule:
    """Weekly ranges (Monday is 0) and dated exceptions; an empty schedule means no hours."""

    weekly: Mapping[int, Sequence[TimeRange]]
    exceptions: Mapping[datetime.date, Sequence[TimeRange]]

    @property
    def has_hours(self) -> bool:
        return bool(self.weekly) or bool(self.exceptions)

    def ranges_on(self, day: datetime.date) -> Sequence[TimeRange]:
        """The ranges that start on ``day``: its exception when it has one, else its weekday's."""
        if day in self.exceptions:
            return self.exceptions[day]
        if not self.weekly:
            return ()
        return self.weekly.get(day.weekday(), ())

    @classmethod
    def from_json(cls, weekly: Mapping[str, Any] | None, exceptions: Mapping[str, Any] | None) -> Schedule:
        """From the restaurant's JSON fields (already validated by the staff form)."""
        return cls(
            weekly={int(day): _ranges(ranges) for day, ranges in (weekly or {}).items()},
            exceptions={
                datetime.date.fromisoformat(day): _ranges(ranges) for day, ranges in (exceptions or {}).items()
            },
        )

    def weekly_json(self) -> dict[str, list[list[str]]]:
        return {str(day): _ranges_json(ranges) for day, ranges in sorted(self.weekly.items())}

    def exceptions_json(self) -> dict[str, list[list[str]]]:
        return {day.isoformat(): _ranges_json(ranges) for day, ranges in sorted(self.exceptions.items())}


def _ranges(raw: Sequence[Sequence[str]]) -> tuple[TimeRange, ...]:
    return tuple(TimeRange(datetime.time.fromisoformat(a), datetime.time.fromisoformat(b)) for a, b in raw)


def _ranges_json(ranges: Sequence[TimeRange]) -> list[list[str]]:
    return [[f"{r.opens:%H:%M}", f"{r.closes:%H:%M}"] for r in ranges]


def parse_ranges(text: str) -> tuple[TimeRange, ...]:
    """``"11:00-14:30, 18:00-23:00"`` into ranges; ``""`` or ``"closed"`` is none, ``"all day"`` is
    00:00-00:00. ValueError on junk."""
    text = text.strip()
    if not text or text.lower() == "closed":
        return ()
    if text.lower() == ALL_DAY:
        return (TimeRange(datetime.time(0, 0), datetime.time(0, 0)),)
    ranges = []
    for part in text.split(","):
        pieces = part.replace("–", "-").split("-")
        if len(pieces) != 2:
            raise ValueError(f"“{part.strip()}” is not a range like 11:00-14:30.")
        if not all(HH_MM.fullmatch(p.strip()) for p in pieces):
            raise ValueError(f"“{part.strip()}” has a time that is not HH:MM.")
        try:
            opens, closes = (datetime.time.fromisoformat(p.strip()) for p in pieces)
        except ValueError:
            raise ValueError(f"“{part.strip()}” has a time that does not exist.") from None
        ranges.append(TimeRange(opens, closes))
    return tuple(sorted(ranges, key=lambda r: r.opens))


def format_ranges(ranges: Sequence[TimeRange]) -> str:
    return ", ".join(str(r) for r in ranges) if ranges else "closed"


# --- overlapping ranges -----------------------------------------------------------------------

DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES


@dataclass(frozen=True)
class _Span:
    start: int  # minutes from the first day's midnight
    end: int  # exclusive: a range may end where the next starts
    day: Any  # the weekday or date it belongs to
    range: TimeRange


def _minutes(at: datetime.time) -> int:
    return at.hour * 60 + at.minute


def _span(r: TimeRange, day: Any, day_offset: int) -> _Span:
    start = day_offset * DAY_MINUTES + _minutes(r.opens)
    length = (_minutes(r.closes) - _minutes(r.opens)) % DAY_MINUTES or DAY_MINUTES  # equal: 24 hours
    return _Span(start, start + length, day, r)


def _clashes(spans: Sequence[_Span], cycle: int | None) -> Iterator[tuple[_Span, _Span]]:
    """Each pair that overlaps, as (the one that starts inside the other, the other). With a
    ``cycle`` (a week) the spans wrap around: Sunday night runs into Monday morning."""
    shifts = (-cycle, 0, cycle) if cycle else (0,)
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            for shift in shifts:
                b_start, b_end = b.start + shift, b.end + shift
                if a.start < b_end and b_start < a.end:
                    yield (b, a) if a.start <= b_start else (a, b)
                    break


def _clash_message(inner: _Span, outer: _Span, name: Callable[[Any], str]) -> str:
    if inner.day == outer.day:
        return f"{inner.range} overlaps {outer.range}."
    return f"{inner.range} overlaps {name(outer.day)}’s {outer.range}, which runs past midnight."


def weekly_overlaps(weekly: Mapping[int, Sequence[TimeRange]]) -> dict[int, list[str]]:
    """The weekdays (Monday is 0) whose ranges overlap another range, each with what it
    overlaps: two ranges of one day, or a range that passes midnight with the next day's
    (Sunday's with Monday's). Ranges that only touch (11:00-15:00, 15:00-22:00) are fine."""
    spans = [_span(r, day, day) for day, ranges in sorted(weekly.items()) for r in ranges]
    errors: dict[int, list[str]] = {}
    for inner, outer in _clashes(spans, WEEK_MINUTES):
        errors.setdefault(inner.day, []).append(_clash_message(inner, outer, lambda day: WEEKDAYS[day]))
    return errors


def exception_overlaps(schedule: Schedule) -> dict[datetime.date, list[str]]:
    """The exception dates whose ranges overlap: among themselves, or with the day before's
    (a range past midnight) or the day after's, whichever of its weekday or exception applies."""
    errors: dict[datetime.date, list[str]] = {}
    one_day = datetime.timedelta(days=1)
    for day in sorted(schedule.exceptions):
        spans = [
            _span(r, around, offset)
            for offset, around in ((-1, day - one_day), (0, day), (1, day + one_day))
            for r in schedule.ranges_on(around)
        ]
        for inner, outer in _clashes(spans, None):
            if day in (inner.day, outer.day):
                errors.setdefault(day, []).append(_clash_message(inner, outer, lambda d: d.isoformat()))
    return errors


@dataclass(frozen=True)
class Availability:
    """The answer: ``taking_orders``, else ``reason`` and ``message``; ``next_open`` when known."""

    taking_orders: bool
    reason: Reason
    message: str
    next_open: datetime.datetime | None = None
    today: tuple[TimeRange, ...] | None = None  # None: no opening hours set

    @property
    def today_text(self) -> str:
        if self.today is None:
            return ""
        return format_ranges(self.today)


def _instant(day: datetime.date, at: datetime.time, tz: ZoneInfo) -> datetime.datetime:
    # fold=0: a time that happens twice (autumn) means the first; one that does not happen
    # (spring) is read with the offset before the change, i.e. as the hour after it.
    return datetime.datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _intervals(
    schedule: Schedule, first: datetime.date, days: int, tz: ZoneInfo
) -> Iterator[tuple[datetime.datetime, datetime.datetime, datetime.date]]:
    """Every open interval (UTC start, UTC end, the day it starts) of ``days`` days from ``first``."""
    for offset in range(days):
        day = first + datetime.timedelta(days=offset)
        for r in schedule.ranges_on(day):
            end_day = day + datetime.timedelta(days=1) if r.past_midnight else day
            yield _instant(day, r.opens, tz), _instant(end_day, r.closes, tz), day


def _when(moment: datetime.datetime, now: datetime.datetime, tz: ZoneInfo) -> str:
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    if local.date() == today:
        return f"at {local:%H:%M}"
    if local.date() == today + datetime.timedelta(days=1):
        return f"tomorrow at {local:%H:%M}"
    return f"on {WEEKDAYS[local.weekday()]} at {local:%H:%M}"


def availability(
    *,
    now: datetime.datetime,
    tz: ZoneInfo,
    is_open: bool,
    busy: bool,
    busy_until: datetime.datetime | None,
    schedule: Schedule,
) -> Availability:
    """Does the restaurant take orders at ``now`` (aware), and if not, why and until when?

    Closed by hand wins over everything; then the hours (an exception date over its weekday);
    then busy mode, which ends by itself once ``busy_until`` has passed.
    """
    now = now.astimezone(UTC)
    local_today = now.astimezone(tz).date()
    today = tuple(schedule.ranges_on(local_today)) if schedule.has_hours else None
    if not is_open:
        return Availability(False, Reason.CLOSED, "is closed and takes no orders now.", None, today)

    if schedule.has_hours:
        # Yesterday's ranges may pass midnight into today.
        intervals = list(_intervals(schedule, local_today - datetime.timedelta(days=1), LOOKAHEAD_DAYS + 1, tz))
        if not any(start <= now < end for start, end, _ in intervals):
            next_open = min((start for start, _, _ in intervals if start > now), default=None)
            exception = local_today in schedule.exceptions
            reason = Reason.EXCEPTION_DAY if exception else Reason.OUTSIDE_HOURS
            what = "has special hours today" if exception and schedule.exceptions[local_today] else "is closed now"
            if exception and not schedule.exceptions[local_today]:
                what = "is closed all day today"
            opens = f" and opens {_when(next_open, now, tz)}" if next_open else ""
            return Availability(False, reason, f"{what}{opens}; it takes no orders until then.", next_open, today)

    if busy and (busy_until is None or now < busy_until.astimezone(UTC)):
        if busy_until is None:
            return Availability(False, Reason.BUSY, "is very busy and has paused new orders.", None, today)
        return Availability(
            False,
            Reason.BUSY,
            f"is very busy and takes no new orders until {busy_until.astimezone(tz):%H:%M}.",
            busy_until.astimezone(UTC),
            today,
        )
    return Availability(True, Reason.OPEN, "is open.", None, today)


# --- ordering ahead ----------------------------------------------------------------------------

# Slots start on the quarter hour, local time.
SLOT_MINUTES = 15


def _day_intervals(
    schedule: Schedule, day: datetime.date, tz: ZoneInfo
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """The open intervals (UTC) that can hold a moment of the local date ``day``: the day's own
    ranges and the day before's (one may pass midnight)."""
    return [(start, end) for start, end, _ in _intervals(schedule, day - datetime.timedelta(days=1), 2, tz)]


def _open_within(
    moment: datetime.datetime, schedule: Schedule, intervals: Sequence[tuple[datetime.datetime, datetime.datetime]]
) -> bool:
    """Within the opening hours at ``moment``, given its day's ``_day_intervals`` (no hours set: always)."""
    return not schedule.has_hours or any(start <= moment < end for start, end in intervals)


def _open_at(moment: datetime.datetime, schedule: Schedule, tz: ZoneInfo) -> bool:
    """Within the opening hours at ``moment`` (no hours set: always)."""
    return _open_within(moment, schedule, _day_intervals(schedule, moment.astimezone(tz).date(), tz))


def slots(
    *, schedule: Schedule, day: datetime.date, tz: ZoneInfo, earliest: datetime.datetime
) -> list[datetime.datetime]:
    """The times (UTC) an order may be placed ahead for on the local date ``day``: every quarter
    hour of that day's wall clock (a time that does not exist in spring is skipped, one that
    happens twice in autumn is offered once) within the opening hours (a range passing midnight
    from the day before counts, a closing time does not), not before ``earliest``."""
    # Every moment offered is on the local date ``day``: one list of that day's intervals serves
    # all its quarter hours, instead of one built per quarter hour (the checkout asks for two days).
    intervals = _day_intervals(schedule, day, tz)
    earliest = earliest.astimezone(UTC)
    found: list[datetime.datetime] = []
    for minutes in range(0, 24 * 60, SLOT_MINUTES):
        wall = datetime.time(minutes // 60, minutes % 60)
        moment = _instant(day, wall, tz)
        if moment.astimezone(tz).time() != wall:
            continue  # skipped by a spring change: 02:30 does not exist
        if moment >= earliest and _open_within(moment, schedule, intervals):
            found.append(moment)
    return found


def slot_problem(
    *,
    when: datetime.datetime,
    now: datetime.datetime,
    tz: ZoneInfo,
    schedule: Schedule,
    lead: datetime.timedelta,
    ahead: datetime.timedelta,
) -> str:
    """Why ``when`` is not a slot an order may be placed for ("" when it is): it must be on a
    quarter hour, at least ``lead`` (the kitchen's preparation time) and at most ``ahead`` from
    ``now``, and within the opening hours."""
    if when.tzinfo is None:
        return "The time must include its time zone."
    local = when.astimezone(tz)
    if local.minute % SLOT_MINUTES or local.second or local.microsecond:
        return f"Choose a time on the quarter hour (every {SLOT_MINUTES} minutes)."
    if when < now + lead:
        return f"Choose a time at least {int(lead.total_seconds() // 60)} minutes from now."
    if when > now + ahead:
        return f"Orders can be placed at most {ahead.days} days ahead."
    if not _open_at(when.astimezone(UTC), schedule, tz):
        return f"The restaurant is not open at {local:%H:%M} on {WEEKDAYS[local.weekday()]} {local:%d %b}."
    return ""
