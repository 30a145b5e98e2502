"""Channel layer benchmark: the CPU a process spends receiving one group message, with the
layer's receive (live/layer.py: one shielded BZPOPMIN a message) and with channels-redis's own
(a backup sorted set: an EVAL, the pop, a ZADD and a ZPOPMIN a message).

A sender process group-sends ``--messages`` small messages at a trickle (one every 2 ms, as
updates reach a daphne) to a group with one member in this process, which receives them; the
figure is this process's CPU over the receiving, per message. The two receives run in turn,
three times each (the machine drifts). Usage: ``python -m bench.layer [--messages N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import Any

from bench import common


async def _send(count: int, group: str) -> None:
    from live.layer import passline_layer

    layer = passline_layer()
    for n in range(count):
        await layer.group_send(group, {"type": "bench.x", "n": n})
        await asyncio.sleep(0.002)


async def _receive(count: int, library: bool) -> float:
    from channels.layers import get_channel_layer
    from channels_redis.core import RedisChannelLayer

    from live.layer import PasslineChannelLayer

    layer = get_channel_layer()
    assert isinstance(layer, PasslineChannelLayer)
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
        [sys.executable, "-m", "bench.layer", "--send", str(count), "--group", group], cwd=common.ROOT
    )
    try:
        started = time.process_time()
        for _ in range(count):
            await layer.receive(channel)
        spent = time.process_time() - started
    finally:
        sender.wait(timeout=120)
        await layer.group_discard(group, channel)
    return round(spent * 1000 / count, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--send", type=int, help=argparse.SUPPRESS)  # the sender process
    parser.add_argument("--group", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.send:
        common.prepare()  # (the sender inherits what it set: the bench's settings)
    import django

    django.setup()
    if args.send:
        asyncio.run(_send(args.send, args.group))
        return
    runs: dict[str, list[float]] = {"layer": [], "channels_redis": []}
    for _ in range(3):
        for name in runs:
            # A fresh process's layer for each run: no pop or pool left from the last.
            from channels.layers import channel_layers

            channel_layers.backends.clear()
            runs[name].append(asyncio.run(_receive(args.messages, library=name == "channels_redis")))
    medians: dict[str, Any] = {name: sorted(values)[1] for name, values in runs.items()}
    path = common.save("layer", {"receive_cpu_ms_per_message": runs, "median": medians}, {"messages": args.messages})
    print(
        "Channel layer benchmark (receiving process's CPU per message, median of 3)\n"
        + common.table(
            [
                ("the layer's receive (one BZPOPMIN)", f"{medians['layer']} ms"),
                ("channels-redis's receive (backup set)", f"{medians['channels_redis']} ms"),
            ]
        )
        + f"\n  results: {path.relative_to(common.ROOT)}"
    )


if __name__ == "__main__":
    main()
