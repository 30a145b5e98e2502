"""The arithmetic of the dashboard's figures: days, minutes, means, money. Pure, no database."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

CENT = Decimal("0.01")
MINUTE = datetime.timedelta(minutes=1)
# The orders-per-minute chart: this many whole minutes, the current (partial) one last.
SERIES_MINUTES = 60
# The current rate: orders placed in this window, up to now.
RATE_WINDOW = datetime.timedelta(seconds=60)


def day_bounds(now: datetime.datetime, zone: datetime.tzinfo | str) -> tuple[datetime.datetime, datetime.datetime]:
    """Today in ``zone`` as [start, end): local midnight to the next local midnight (23 or 25
    hours long on the days the clocks change), as aware datetimes."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    local = now.astimezone(tz)
    start = datetime.datetime.combine(local.date(), datetime.time(), tzinfo=tz)
    end = datetime.datetime.combine(local.date() + datetime.timedelta(days=1), datetime.time(), tzinfo=tz)
    return start, end


def minute_floor(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(second=0, microsecond=0)


def series_start(now: datetime.datetime) -> datetime.datetime:
    """The first minute of the chart: ``SERIES_MINUTES - 1`` whole minutes before the current one."""
    return minute_floor(now) - (SERIES_MINUTES - 1) * MINUTE


def per_minute(counts: Mapping[datetime.datetime, int], now: datetime.datetime) -> list[int]:
    """Counts by minute (keys: aware minute starts) as the chart's ``SERIES_MINUTES`` values,
    oldest first; minutes without a key are 0, keys outside the window are left out."""
    start = series_start(now)
    by_minute = {minute_floor(key.astimezone(datetime.UTC)): value for key, value in counts.items()}
    return [by_minute.get((start + i * MINUTE).astimezone(datetime.UTC), 0) for i in range(SERIES_MINUTES)]


def mean_seconds(total: datetime.timedelta | None, count: int) -> int | None:
    """The mean of ``count`` durations adding up to ``total``, in whole seconds (half up);
    None without any. Integer microseconds throughout: no float rounding."""
    if not count or total is None:
        return None
    micros = (total.days * 86_400 + total.seconds) * 1_000_000 + total.microseconds
    return int((Decimal(micros) / count / 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def money(value: Decimal | None) -> Decimal:
    """An amount to the cent; nothing is zero."""
    return (value or Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)


def duration_label(seconds: int | None) -> str:
    """``754`` -> ``12:34`` (minutes:seconds), ``3754`` -> ``1:02:34``; empty for None."""
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
