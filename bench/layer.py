"""Channel layer benchmark: the CPU a process spends receiving one group message, and the CPU
the sending process spends sending it, the layer's way (live/layer.py: one shielded BZPOPMIN a
message received; ``group_send_many``, the members and the send in two round trips) and
channels-redis's (a backup sorted set: an EVAL, the pop, a ZADD and a ZPOPMIN a message;
``group_send``: four round trips, with the script's whole text each time).

A sender process group-sends ``--messages`` small messages one at a time at a trickle (one
every 2 ms, as the bridge forwards updates to a daphne) to a group with one member in this
process, which receives them. The two ways run in turn, three times each (the machine drifts).
Usage: ``python -m bench.layer [--messages N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import Any

from bench import common


async def _send(count: int, group: str, library: bool) -> None:
    """Send ``count`` messages one at a time and print this process's CPU per message."""
    from live.layer import passline_layer

    layer = passline_layer()
    spent = 0.0
    for n in range(count):
        started = time.process_time()
        if library:
            await layer.group_send(group, {"type": "bench.x", "n": n})
        else:
            await layer.group_send_many([(group, {"type": "bench.x", "n": n})])
        spent += time.process_time() - started
        await asyncio.sleep(0.002)
    print(round(spent * 1000 / count, 3))


async def _receive(count: int, library: bool) -> tuple[float, float]:
    """Receive ``count`` messages from a sender process: this process's CPU per message, and
    the sender's."""
    from channels_redis.core import RedisChannelLayer

    from live.layer import passline_layer

    layer = passline_layer()
    if library:  # channels-redis's own receive, on this same layer
        layer._pop = lambda index, channel, timeout: RedisChannelLayer._brpop_with_clean(  # type: ignore[method-assign]
            layer, index, channel, timeout
        )
        layer._clean_receive_backup = lambda index, channel: RedisChannelLayer._clean_receive_backup(  # type: ignore[method-assign]
            layer, index, channel
        )
    channel = await layer.new_channel()
    group = f"bench-layer-{common.new_id()}"  # a group of its own: no member left by an earlier run
    await layer.group_add(group, channel)
    sender = subprocess.Popen(
        [sys.executable, "-m", "bench.layer", "--send", str(count), "--group", group, *(["--library"] * library)],
        cwd=common.ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = time.process_time()
        for _ in range(count):
            await layer.receive(channel)
        spent = time.process_time() - started
    finally:
        sent, _ = sender.communicate(timeout=120)
        await layer.group_discard(group, channel)
    return round(spent * 1000 / count, 3), float(sent.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--send", type=int, help=argparse.SUPPRESS)  # the sender process
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--library", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.send:
        common.prepare()  # (the sender inherits what it set: the bench's settings)
    import django

    django.setup()
    if args.send:
        asyncio.run(_send(args.send, args.group, args.library))
        return
    received: dict[str, list[float]] = {"layer": [], "channels_redis": []}
    sent: dict[str, list[float]] = {"layer": [], "channels_redis": []}
    for _ in range(3):
        for name in received:
            # A fresh layer for each run: no pop or pool left from the last.
            from channels.layers import channel_layers

            channel_layers.backends.clear()
            receiving, sending = asyncio.run(_receive(args.messages, library=name == "channels_redis"))
            received[name].append(receiving)
            sent[name].append(sending)
    median: dict[str, Any] = {name: sorted(values)[1] for name, values in received.items()}
    send_median: dict[str, Any] = {name: sorted(values)[1] for name, values in sent.items()}
    path = common.save(
        "layer",
        {
            "receive_cpu_ms_per_message": received,
            "median": median,
            "send_cpu_ms_per_message": sent,
            "send_median": send_median,
        },
        {"messages": args.messages},
    )
    rows = [
        ("receive, the layer's (one BZPOPMIN)", f"{median['layer']} ms"),
        ("receive, channels-redis's (a backup set)", f"{median['channels_redis']} ms"),
        ("group send, the layer's (group_send_many)", f"{send_median['layer']} ms"),
        ("group send, channels-redis's (group_send)", f"{send_median['channels_redis']} ms"),
    ]
    print(
        "Channel layer benchmark (CPU per message, receiving and sending process, medians of 3)\n"
        + common.table(rows)
        + f"\n  results: {path.relative_to(common.ROOT)}"
    )


if __name__ == "__main__":
    main()
