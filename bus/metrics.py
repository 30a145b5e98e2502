"""The bus's metrics (Prometheus, multiprocess: see operations/multiprocess.py): per queue, what
the workers handled, what failed, was retried or dead-lettered, how long batches took and how
big they were; the relay's publishing. Queues are few and named in the code, so one series
each."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HANDLED = Counter(
    "passline_bus_messages_handled", "Messages handled and acked (duplicates included), by queue", ["queue"]
)
DUPLICATES = Counter(
    "passline_bus_messages_duplicate", "Messages that had been handled before (no second effect), by queue", ["queue"]
)
FAILED = Counter(
    "passline_bus_messages_failed",
    "Deliveries whose handling failed (to be retried or dead-lettered; undecodable ones too), by queue",
    ["queue"],
)
RETRIED = Counter("passline_bus_messages_retried", "Messages republished to a retry queue, by queue", ["queue"])
DEAD_LETTERED = Counter(
    "passline_bus_messages_dead_lettered",
    "Messages sent to the dead-letter exchange by the runner, by queue and why (exhausted: every "
    "attempt failed; permanent, malformed, undecodable, forbidden: at once)",
    ["queue", "reason"],
)
GIVEN_BACK = Counter(
    "passline_bus_messages_given_back",
    "Deliveries given back to their queue (a republish the broker refused, a raw consumer's failure)",
    ["queue"],
)
BATCH_SECONDS = Histogram(
    "passline_bus_handler_seconds",
    "Time to handle one batch of a queue: decoding, the handlers and their transaction",
    ["queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BATCH_SIZE = Histogram(
    "passline_bus_batch_size",
    "Messages per batch a worker handled together, by queue",
    ["queue"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)

RELAY_PUBLISHED = Counter("passline_relay_published", "Outbox messages the broker confirmed and the relay marked sent")
RELAY_FAILED = Counter(
    "passline_relay_failed", "Outbox messages the broker returned or refused (tried again later, with back-off)"
)
RELAY_CONFIRM_SECONDS = Histogram(
    "passline_relay_confirm_seconds",
    "From publishing a batch of outbox rows to the broker's confirm of its last message",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RELAY_BATCH_SIZE = Histogram(
    "passline_relay_batch_size", "Outbox rows per published batch", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500)
)


def batch(queue: str, size: int, seconds: float) -> None:
    BATCH_SIZE.labels(queue).observe(size)
    BATCH_SECONDS.labels(queue).observe(seconds)


def settled(queue: str, status: str, count: int = 1) -> None:
    """What handling came to: ``ok`` / ``duplicate`` (handled), ``retry`` / ``dead`` (failed)."""
    if status in {"ok", "duplicate"}:
        HANDLED.labels(queue).inc(count)
        if status == "duplicate":
            DUPLICATES.labels(queue).inc(count)
    else:
        FAILED.labels(queue).inc(count)


def dead_letter_reason(reason: str, error_code: str = "") -> str:
    """A dead letter's reason as a label: a word, never the text (which holds ids)."""
    if error_code == "forbidden":
        return "forbidden"
    head = reason.split(":", 1)[0]
    return head if head in {"permanent", "malformed", "undecodable"} else "exhausted"


def relayed(sent: int, failed: int, seconds: float) -> None:
    RELAY_PUBLISHED.inc(sent)
    if failed:
        RELAY_FAILED.inc(failed)
    RELAY_BATCH_SIZE.observe(sent + failed)
    RELAY_CONFIRM_SECONDS.observe(seconds)
