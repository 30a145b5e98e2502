"""Bus benchmark: the relay's publish rate, and messages per second from outbox row to consumer ack.

Persistent messages, publisher confirms, ~1 KB payloads, MariaDB and RabbitMQ on this machine.
Runs on a database and a vhost of its own. Usage: ``make bench`` or
``python -m bench.bus [--messages N] [--consumers K]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench import common


def _rows(count: int, start: int = 0):
    from bench.consumers import BENCH_PING
    from bus.envelope import Envelope
    from bus.models import OutboxMessage

    padding = "x" * 900  # with the envelope, ~1 KB a message
    # Four messages an aggregate, like an order's placed / paid / accepted / ready.
    for seq in range(start, start + count):
        envelope = Envelope(
            type=BENCH_PING.name, version=1, payload={"seq": seq, "padding": padding}, correlation_id=common.new_id()
        )
        yield OutboxMessage(
            message_id=envelope.message_id,
            type=envelope.type,
            exchange=BENCH_PING.exchange,
            routing_key=BENCH_PING.routing_key,
            aggregate=f"bench:{seq // 4}",
            correlation_id=envelope.correlation_id,
            body=envelope.to_json().decode(),
            created_at=envelope.occurred_at,
            available_at=envelope.occurred_at,
        )


def _reset() -> None:
    import pika

    from bus.models import OutboxMessage, ProcessedMessage

    OutboxMessage.objects.all().delete()
    ProcessedMessage.objects.filter(consumer__startswith="bench.sink").delete()
    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    channel = connection.channel()
    for queue in ("bench.sink", "bench.sink_threaded", "audit.events"):
        channel.queue_purge(queue)
    connection.close()


def _insert(count: int) -> None:
    from bus.models import OutboxMessage

    rows = list(_rows(count))
    for start in range(0, len(rows), 2000):
        OutboxMessage.objects.bulk_create(rows[start : start + 2000])


def _consumers_on_queue(queue: str = "bench.sink") -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    finally:
        connection.close()


def relay_only(messages: int, batch_size: int) -> dict[str, float]:
    """Rows already committed; one relay publishes them; nobody consumes."""
    from django.db.models import Max, Min

    from bus.models import OutboxMessage

    _reset()
    _insert(messages)
    relay = common.spawn("relay_outbox", "--batch-size", str(batch_size))
    try:
        common.wait_for(lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(), 300, "the relay")
    finally:
        common.stop(relay)
    span = OutboxMessage.objects.aggregate(first=Min("sent_at"), last=Max("sent_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    # The first batch's own publishing time is not in the span: leave its rows out.
    return {"messages": messages, "seconds": round(seconds, 3), "per_second": round((messages - batch_size) / seconds)}


def end_to_end(messages: int, consumers: int, batch_size: int) -> dict[str, float]:
    """Rows committed in one go; relay and consumers running; outbox row to ack."""
    from django.db.models import Max, Min

    from bus.models import OutboxMessage, ProcessedMessage

    _reset()
    workers = [common.spawn("consume", "bench.sink") for _ in range(consumers)]
    relay = None
    try:
        common.wait_for(lambda: _consumers_on_queue() == consumers, 60, "the consumers")
        _insert(messages)
        started = time.time()
        relay = common.spawn("relay_outbox", "--batch-size", str(batch_size))
        done = ProcessedMessage.objects.filter(consumer="bench.sink")
        common.wait_for(lambda: done.count() >= messages, 600, "the consumers to finish", interval=0.1)
    finally:
        for process in [*workers, *([relay] if relay else [])]:
            common.stop(process)
    first_sent = OutboxMessage.objects.aggregate(first=Min("sent_at"))["first"]
    last_done = done.aggregate(last=Max("processed_at"))["last"]
    seconds = (last_done - first_sent).total_seconds()
    return {
        "messages": messages,
        "consumers": consumers,
        "seconds": round(seconds, 3),
        "per_second": round(messages / seconds),
        "wall_seconds_from_relay_start": round(time.time() - started, 1),
    }


def latency(rate: int, seconds: float, idle_interval: float, queue: str = "bench.sink") -> dict[str, Any]:
    """A steady trickle (``rate`` per second, one row a transaction as services write them):
    time from the row's commit to the consumer's commit, and the CPU each message cost the
    consumer (``queue``: the quick sink, or ``bench.sink_threaded``) and the relay."""
    import psutil
    from django.db import transaction

    from bench.consumers import BENCH_PING
    from bus.models import OutboxMessage, ProcessedMessage
    from bus.outbox import outbox_write

    _reset()
    worker = common.spawn("consume", queue)
    relay = common.spawn("relay_outbox", "--idle-interval", str(idle_interval))
    try:
        common.wait_for(lambda: _consumers_on_queue(queue) == 1, 60, "the consumer")
        cpu_before = {name: _cpu(psutil.Process(p.pid)) for name, p in (("consumer", worker), ("relay", relay))}
        total = int(rate * seconds)
        begin = time.monotonic()
        for seq in range(total):
            due = begin + seq / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with transaction.atomic():
                outbox_write(event=BENCH_PING, payload={"seq": seq, "padding": "x" * 900}, aggregate=f"bench:{seq}")
        done = ProcessedMessage.objects.filter(consumer=queue)
        common.wait_for(lambda: done.count() >= total, 120, "the trickle to drain", interval=0.1)
        cpu_ms = {
            name: round((_cpu(psutil.Process(p.pid)) - cpu_before[name]) * 1000 / total, 3)
            for name, p in (("consumer", worker), ("relay", relay))
        }
    finally:
        common.stop(worker)
        common.stop(relay)
    created = dict(OutboxMessage.objects.values_list("message_id", "created_at"))
    delays = [(at - created[mid]).total_seconds() * 1000 for mid, at in done.values_list("message_id", "processed_at")]
    return {
        "rate": rate,
        "consumer": queue,
        "relay_idle_interval_s": idle_interval,
        "messages": len(delays),
        "p50_ms": round(common.percentile(delays, 50), 1),
        "p99_ms": round(common.percentile(delays, 99), 1),
        "max_ms": round(max(delays), 1),
        # One message a transaction, one at a time: the fixed cost of a handling (the consumer's
        # CPU, its runner and the message's transaction, with a handler that does nothing).
        "consumer_cpu_ms_per_message": cpu_ms["consumer"],
        "relay_cpu_ms_per_message": cpu_ms["relay"],
    }


def _cpu(process: Any) -> float:
    """CPU seconds of a process and its children so far."""
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--consumers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--latency-rate", type=int, default=200)
    parser.add_argument("--idle-interval", type=float, default=0.01, help="the relay's poll interval when idle")
    parser.add_argument("--latency-only", action="store_true", help="only the trickle (latency and CPU per message)")
    args = parser.parse_args()
    common.prepare()
    from bus.topology import declare_topology

    declare_topology()
    if args.latency_only:
        runs = []
        for queue in ("bench.sink", "bench.sink_threaded") * 3:  # interleaved: the machine drifts
            runs.append(latency(args.latency_rate, 10, args.idle_interval, queue))
            print(json.dumps(runs[-1]))
        by_queue = {
            queue: sorted(run["consumer_cpu_ms_per_message"] for run in runs if run["consumer"] == queue)
            for queue in ("bench.sink", "bench.sink_threaded")
        }
        path = common.save(
            "bus-trickle",
            {"runs": runs, "consumer_cpu_ms_per_message_median": {q: v[len(v) // 2] for q, v in by_queue.items()}},
            {"rate": args.latency_rate, "seconds": 10, "payload_bytes": 1000},
        )
        print(f"quick sink, then on the handler thread (median CPU ms per message): {by_queue}; results: {path}")
        return
    figures: dict[str, Any] = {"relay_only": relay_only(args.messages, args.batch_size)}
    for count in args.consumers:
        figures[f"end_to_end_{count}_consumers"] = end_to_end(args.messages, count, args.batch_size)
    figures["latency"] = latency(args.latency_rate, 5, args.idle_interval)
    figures["latency_handler_thread"] = latency(args.latency_rate, 5, args.idle_interval, "bench.sink_threaded")
    path = common.save(
        "bus",
        figures,
        {"messages": args.messages, "batch_size": args.batch_size, "payload_bytes": 1000, "prefetch": 200},
    )
    rows = [("relay alone", f"{figures['relay_only']['per_second']:,} msg/s")]
    for count in args.consumers:
        rows.append(
            (f"outbox -> ack, {count} consumer(s)", f"{figures[f'end_to_end_{count}_consumers']['per_second']:,} msg/s")
        )
    lat = figures["latency"]
    rows.append((f"latency at {lat['rate']}/s", f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms"))
    threaded = figures["latency_handler_thread"]
    rows.append(
        (
            f"CPU per message at {lat['rate']}/s",
            f"consumer {lat['consumer_cpu_ms_per_message']} ms quick, "
            f"{threaded['consumer_cpu_ms_per_message']} ms on the handler thread; relay {lat['relay_cpu_ms_per_message']} ms",
        )
    )
    print(
        "Bus benchmark (persistent, confirmed, ~1 KB)\n"
        + common.table(rows)
        + f"\n  results: {path.relative_to(common.ROOT)}"
    )


if __name__ == "__main__":
    main()
