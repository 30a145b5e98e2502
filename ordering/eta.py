"""When an order should be ready: the restaurant's measured preparation time and the order's
estimate from it.

Pure data and functions, no database: :func:`ordering.selectors.restaurant_prep_time` reads
the measurements, the functions here do the arithmetic, so unit tests can hit every case.
"""

from __future__ import annotations

import datetime
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ordering.status import OrderStatus

# Below this many measured orders a median says little; the restaurant's own figure is better.
MIN_SAMPLES = 5

S = OrderStatus
# Waiting for the kitchen: the estimate counts from an acceptance still to come.
WAITING_FOR_KITCHEN: frozenset[OrderStatus] = frozenset({S.PAID})
# In the kitchen: the estimate counts from the acceptance.
IN_KITCHEN: frozenset[OrderStatus] = frozenset({S.ACCEPTED, S.PREPARING})
# Past ready: no estimate, the actual ready time instead.
PAST_READY: frozenset[OrderStatus] = frozenset({S.READY, S.OUT_FOR_DELIVERY, S.DELIVERED})
ESTIMATED: frozenset[OrderStatus] = WAITING_FOR_KITCHEN | IN_KITCHEN


@dataclass(frozen=True)
class PrepTime:
    """Minutes from accepting an order to having it ready, and where the figure comes from."""

    minutes: int
    samples: int  # orders it was measured from; 0 when it is the restaurant's own estimate

    @property
    def measured(self) -> bool:
        return self.samples > 0

    @property
    def duration(self) -> datetime.timedelta:
        return datetime.timedelta(minutes=self.minutes)

    @property
    def source(self) -> str:
        if self.measured:
            return f"Measured from the restaurant's last {self.samples} order{'s' if self.samples != 1 else ''}"
        return "The restaurant's own estimate"


def prep_time_from(
    durations: Sequence[datetime.timedelta], *, fallback_minutes: int, min_samples: int = MIN_SAMPLES
) -> PrepTime:
    """The median of ``durations`` in whole minutes (at least one), or ``fallback_minutes``
    when fewer than ``min_samples`` of them make sense."""
    # A negative duration is a clock or data error, not a fast kitchen.
    seconds = [d.total_seconds() for d in durations if d >= datetime.timedelta(0)]
    if len(seconds) < min_samples:
        return PrepTime(minutes=fallback_minutes, samples=0)
    # Half a minute rounds up: a customer minds a late order more than an early one.
    median_minutes = math.floor(statistics.median(seconds) / 60 + 0.5)
    return PrepTime(minutes=max(1, median_minutes), samples=len(seconds))


class ReadyKind(StrEnum):
    AFTER_ACCEPT = "after-accept"  # paid: ready about N min after the kitchen accepts
    EXPECTED = "expected"  # in the kitchen: ready around a time still ahead
    DUE = "due"  # in the kitchen and past the expected time: any minute now
    READY = "ready"  # no estimate: the time it actually was ready


@dataclass(frozen=True)
class ReadyTime:
    kind: ReadyKind
    at: datetime.datetime | None = None  # expected (EXPECTED) or actual (READY) ready time
    prep: PrepTime | None = None  # what an estimate is based on

    @property
    def is_estimate(self) -> bool:
        return self.kind != ReadyKind.READY


def ready_time(
    *,
    status: OrderStatus | str,
    accepted_at: datetime.datetime | None,
    ready_at: datetime.datetime | None,
    prep: PrepTime | None,
    now: datetime.datetime,
) -> ReadyTime | None:
    """What the order page says about when the order is ready, or None when it says nothing
    (awaiting payment, an exit, or missing facts). ``prep`` is read only for ESTIMATED statuses."""
    status = OrderStatus(status)
    if status in PAST_READY:
        return ReadyTime(ReadyKind.READY, at=ready_at) if ready_at is not None else None
    if status not in ESTIMATED or prep is None:
        return None
    if status in WAITING_FOR_KITCHEN:
        return ReadyTime(ReadyKind.AFTER_ACCEPT, prep=prep)
    if accepted_at is None:
        return None
    expected = accepted_at + prep.duration
    if expected <= now:
        # Never show a time in the past as a promise.
        return ReadyTime(ReadyKind.DUE, prep=prep)
    return ReadyTime(ReadyKind.EXPECTED, at=expected, prep=prep)
