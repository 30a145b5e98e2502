"""The live sockets' metrics (Prometheus, multiprocess: see operations/multiprocess.py): open
sockets by kind, frames sent, and group messages the channel layer dropped (live/layer.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# livesum: the open sockets of every live web process added up; a process that ends takes its
# own out (operations/multiprocess.py).
CONNECTIONS = Gauge(
    "passline_live_connections",
    "Open WebSocket connections, by kind (order, customer, kitchen, menu, board, dashboard)",
    ["kind"],
    multiprocess_mode="livesum",
)
FRAMES_SENT = Counter("passline_live_frames_sent", "Frames sent to WebSocket clients, by kind of socket", ["kind"])
FRAMES_DROPPED = Counter(
    "passline_live_frames_dropped",
    "Group messages the channel layer dropped: a process inbox over capacity (counted by the sender, "
    "once per full inbox) or a socket's own buffer full",
    ["where"],
)


def kind_of(consumer: object) -> str:
    """``OrderConsumer`` -> ``order``: the kind of socket a consumer class serves."""
    return type(consumer).__name__.removesuffix("Consumer").lower() or "other"


def opened(consumer: object) -> str:
    kind = kind_of(consumer)
    CONNECTIONS.labels(kind).inc()
    return kind


def closed(kind: str) -> None:
    CONNECTIONS.labels(kind).dec()


def frame_sent(kind: str) -> None:
    FRAMES_SENT.labels(kind).inc()


def dropped(where: str, count: int = 1) -> None:
    FRAMES_DROPPED.labels(where).inc(count)
