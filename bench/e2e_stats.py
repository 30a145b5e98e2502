"""The end-to-end driver's pure parts, unit-tested without a server: percentiles, the open-loop
schedule, lateness, the rate search, joining frames to orders, a rate's summary, the time budget,
and reading an HTTP response head."""

from __future__ import annotations

import collections
import json
import math
from typing import Any

PAID, PAYMENT_FAILED = "paid", "payment_failed"


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least ``p`` % of the values at or below it."""
    if not ordered:
        return None
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


def distribution_ms(seconds: list[float]) -> dict[str, float | None]:
    ordered = sorted(seconds)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "p50": ms(percentile(ordered, 50)),
        "p90": ms(percentile(ordered, 90)),
        "p99": ms(percentile(ordered, 99)),
        "max": ms(ordered[-1] if ordered else None),
    }


def schedule(rate: float, warmup_seconds: float, seconds: float) -> tuple[int, int]:
    """(warm-up orders, measured orders) of one rate: slot ``i`` is due at ``start + i / rate``."""
    return round(warmup_seconds * rate), round(seconds * rate)


def is_late(due: float, t0: float | None, late_after: float) -> bool:
    """A send is late when it started more than ``late_after`` s after its slot, or never."""
    return t0 is None or t0 - due > late_after


def achieved_rate(first_due: float, starts: list[float], interval: float, seconds: float) -> float:
    """Measured sends per second: the sends that started, over the measured window stretched to
    the last start (plus one interval) if sending fell behind the schedule."""
    if not starts or seconds <= 0:
        return 0.0
    span = max(seconds, max(starts) + interval - first_due)
    return len(starts) / span


def stop_reason(result: dict[str, Any], p99_limit_ms: float) -> str | None:
    """Why the search stops at this rate, or None when the rate is sustained."""
    p99 = result["e2e_ms"]["p99"]
    if result["paid"] < result["sent"]:
        return f"paid {result['paid']} < sent {result['sent']}"
    if p99 is None or p99 > p99_limit_ms:
        return f"p99 {p99} ms > {p99_limit_ms:g} ms"
    if result["achieved_rate"] < 0.95 * result["rate"]:
        return f"achieved {result['achieved_rate']}/s < 95% of {result['rate']}/s"
    return None


def next_search_rate(
    start: float, step: float, maximum: float, sustained: float | None, missed: float | None
) -> float | None:
    """The search's next rate, or None when it is done.

    ``sustained`` is the highest rate measured so far that held (None: none yet), ``missed``
    the lowest that did not. While every rate holds, the rate doubles from ``start`` (up to
    ``maximum``); after the first miss, the gap between the two is halved, on a grid of
    ``step``, until it is no wider than ``step``. So the limit is found to within ``step`` in
    about log2(limit / start) + log2(limit / step) rates, however far it is from ``start``."""
    if missed is None:
        if sustained is None:
            return start if start <= maximum else None
        if sustained >= maximum:
            return None
        return min(maximum, sustained * 2)
    low = sustained if sustained is not None else 0.0
    if step <= 0 or missed - low <= step:
        return None
    half = math.floor((missed - low) / 2 / step + 1e-9) * step
    rate = low + max(step, half)
    return rate if rate < missed else None


def search_rate_bound(start: float, step: float, maximum: float) -> int:
    """The most rates :func:`next_search_rate` can ask for, for a time budget."""
    if start > maximum:
        return 0
    doublings = math.ceil(math.log2(maximum / start)) + 1 if start > 0 else 1
    halvings = math.ceil(math.log2(max(maximum, step) / step)) + 1 if step > 0 else 0
    return doublings + halvings


def record_frame(raw: str | bytes, at: float, paid: dict[int, float], failed: dict[int, float]) -> None:
    """Keep the arrival of the first ``paid`` / ``payment_failed`` update of each order."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    if "order.update" not in raw:  # notifications and the rest, without parsing them
        return
    frame = json.loads(raw)
    if frame.get("type") != "order.update":
        return
    status = frame.get("status")
    if status == PAID:
        paid.setdefault(frame["order_id"], at)
    elif status == PAYMENT_FAILED:
        failed.setdefault(frame["order_id"], at)


class Order:
    """One scheduled order: its slot, when it was written and answered, and what came back."""

    __slots__ = ("seq", "customer", "due", "measured", "t0", "answered", "status", "order_id", "error")

    def __init__(self, seq: int, customer: int, due: float, measured: bool) -> None:
        self.seq, self.customer, self.due, self.measured = seq, customer, due, measured
        self.t0: float | None = None
        self.answered: float | None = None
        self.status: int | None = None
        self.order_id: int | None = None
        self.error = ""


def summarize(
    *,
    rate: float,
    phase: str,
    seconds: float,
    orders: list[Order],
    paid: dict[int, float],
    failed: dict[int, float],
    late_after: float,
) -> dict[str, Any]:
    """One rate's figures over its measured orders, joining the frames to the POST answers."""
    measured = [o for o in orders if o.measured]
    errors: collections.Counter[str] = collections.Counter()
    e2e: list[float] = []
    post: list[float] = []
    lateness: list[float] = []
    created = paid_count = missing = payment_failed = late = 0
    for o in measured:
        if is_late(o.due, o.t0, late_after):
            late += 1
        if o.t0 is not None:
            lateness.append(max(0.0, o.t0 - o.due))
        if o.t0 is not None and o.answered is not None:
            post.append(o.answered - o.t0)
        if o.error:
            errors[o.error] += 1
        elif o.status != 201:
            errors[str(o.status)] += 1
        if o.order_id is None:
            continue
        created += 1
        arrival = paid.get(o.order_id)
        if arrival is not None and o.t0 is not None:
            paid_count += 1
            e2e.append(arrival - o.t0)
        elif o.order_id in failed:
            payment_failed += 1
        else:
            missing += 1
    first_due = measured[0].due if measured else 0.0
    starts = [o.t0 for o in measured if o.t0 is not None]
    return {
        "rate": rate,
        "phase": phase,
        "seconds": _number(seconds),
        "sent": len(measured),
        "created": created,
        "paid": paid_count,
        "missing": missing,
        "payment_failed": payment_failed,
        "errors": dict(errors),
        "achieved_rate": round(achieved_rate(first_due, starts, 1 / rate, seconds), 2),
        "late_sends": late,
        "late_threshold_ms": round(late_after * 1000, 3),
        "lateness_ms": distribution_ms(lateness),
        "e2e_ms": distribution_ms(e2e),
        "post_ms": distribution_ms(post),
    }


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and (lower-cased) headers of an HTTP/1.1 response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


# --- HTTP/1.1 keep-alive client ---------------------------------------------------------------


def time_budget(plan: dict[str, Any]) -> float:
    """The longest the whole run may take: connecting, every rate's sending, wait and pause."""
    per_rate_slack = float(plan.get("wait_seconds", 10)) + float(plan.get("pause_seconds", 1)) + 15
    warmup = float(plan.get("warmup_seconds", 3))
    total = 120.0 + len(plan.get("rates", [])) * (warmup + float(plan.get("seconds", 30)) + per_rate_slack)
    search = plan.get("search")
    if search:
        rates = search_rate_bound(float(search["start"]), float(search.get("step", 50)), float(search.get("max", 1000)))
        total += rates * (
            float(search.get("warmup_seconds", warmup))
            + float(search.get("seconds", 15))
            + float(search.get("drain_seconds", 10))
            + per_rate_slack
        )
    return total


def _number(value: float) -> float | int:
    """100.0 as 100 in the output, as the plan wrote it."""
    return int(value) if float(value).is_integer() else value
