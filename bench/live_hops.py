"""What the live benchmark reads besides its sockets: each change's hops (commit → relay sent →
bridge → socket), whether the bridge is consuming and its backlog, and the channel layer's
settings the run used."""

from __future__ import annotations

import json
import os
from typing import Any

from bench import common

PASSED_THROUGH = ("CHANNELS_", "REDIS_URL", "DB_CONN_MAX_AGE")


def hops(commits: list[list[Any]], arrivals: dict[tuple[int, int], float]) -> dict[str, Any]:
    """Where the time goes, per change: commit → marked sent by the relay (after the broker's
    confirm) → taken by the bridge (its transaction's start) → on the socket."""
    from bus.models import OutboxMessage, ProcessedMessage

    committed = {(o, v): at for o, v, at in commits}
    rows = OutboxMessage.objects.filter(
        type="order.status_changed", aggregate__in={f"order:{o}" for o, _, _ in commits}
    )
    sent: dict[str, tuple[tuple[int, int], float]] = {}
    for message_id, body, sent_at in rows.values_list("message_id", "body", "sent_at"):
        payload = json.loads(body)["payload"]
        if sent_at is not None:
            sent[message_id] = ((payload["order_id"], payload["version"]), sent_at.timestamp())
    taken = dict(
        ProcessedMessage.objects.filter(consumer="bridge.notification", message_id__in=list(sent)).values_list(
            "message_id", "processed_at"
        )
    )
    relay, to_bridge, bridge_to_socket = [], [], []
    for message_id, (key, sent_time) in sent.items():
        if key not in committed:
            continue
        relay.append((sent_time - committed[key]) * 1000)
        if message_id in taken:
            bridged = taken[message_id].timestamp()
            to_bridge.append((bridged - committed[key]) * 1000)
            if key in arrivals:
                bridge_to_socket.append((arrivals[key] - bridged) * 1000)

    def summary(values: list[float]) -> dict[str, float]:
        return {"p50_ms": round(common.percentile(values, 50), 1), "p99_ms": round(common.percentile(values, 99), 1)}

    return {
        "commit_to_sent": summary(relay),
        "commit_to_bridge": summary(to_bridge),
        "bridge_to_socket": summary(bridge_to_socket),
    }


def order_hops(order_id: int, commits: list[tuple[int, float]]) -> list[tuple[float | None, float | None]]:
    """Per (version, commit time) of one order: ms to the relay's sent mark and to the bridge."""
    from bus.models import OutboxMessage, ProcessedMessage

    rows = {
        json.loads(body)["payload"]["version"]: (message_id, sent_at)
        for message_id, body, sent_at in OutboxMessage.objects.filter(
            type="order.status_changed", aggregate=f"order:{order_id}"
        ).values_list("message_id", "body", "sent_at")
    }
    taken = dict(
        ProcessedMessage.objects.filter(
            consumer="bridge.notification", message_id__in=[m for m, _ in rows.values()]
        ).values_list("message_id", "processed_at")
    )
    hops: list[tuple[float | None, float | None]] = []
    for version, committed in commits:
        message_id, sent_at = rows.get(version, (None, None))
        bridged = taken.get(message_id) if message_id is not None else None
        hops.append(
            (
                round((sent_at.timestamp() - committed) * 1000, 1) if sent_at else None,
                round((bridged.timestamp() - committed) * 1000, 1) if bridged else None,
            )
        )
    return hops


def bridge_ready() -> bool:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    try:
        return connection.channel().queue_declare("bridge.notification", passive=True).method.consumer_count >= 1
    finally:
        connection.close()


def bridge_backlog() -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    try:
        return connection.channel().queue_declare("bridge.notification", passive=True).method.message_count
    finally:
        connection.close()


def layer_settings() -> dict[str, Any]:
    from django.conf import settings

    layer = settings.CHANNEL_LAYERS["default"]
    return {
        "backend": layer["BACKEND"],
        "config": dict(layer.get("CONFIG", {})),
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(PASSED_THROUGH)},
    }
