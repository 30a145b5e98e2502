"""The channel layer's receive (live/layer.py ``_pop``): one blocking pop a message, shielded
so that a receive cancelled while its pop is answered (a socket closing while it leads its
process's receive) loses nothing, on the real Redis."""

from __future__ import annotations

import asyncio
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from live.layer import PasslineChannelLayer


def test_a_receive_cancelled_as_its_pop_is_answered_leaves_the_message_to_the_next_receive():
    layer = get_channel_layer()
    assert isinstance(layer, PasslineChannelLayer)

    async def scenario() -> dict:
        channel = await layer.new_channel()
        leading = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.3)  # the blocking pop is in flight
        # The message goes in from another thread (its own event loop and connection) while this
        # loop is held, so Redis pops it and answers before the loop reads the answer; then the
        # receive is cancelled.
        other = threading.Thread(target=async_to_sync(layer.send), args=(channel, {"type": "x", "n": 1}))
        other.start()
        other.join()
        time.sleep(0.2)  # (the loop is held: the pop's answer waits unread)
        leading.cancel()
        await asyncio.gather(leading, return_exceptions=True)
        return await asyncio.wait_for(layer.receive(channel), timeout=10)

    assert asyncio.run(scenario()) == {"type": "x", "n": 1}


def test_each_message_costs_one_round_trip_to_redis():
    layer = get_channel_layer()
    assert isinstance(layer, PasslineChannelLayer)

    async def scenario() -> list[str]:
        channel = await layer.new_channel()
        for n in range(3):
            await layer.send(channel, {"type": "x", "n": n})
        sent: list[str] = []
        connection = layer.connection(layer.consistent_hash(channel))
        original = connection.execute_command

        async def counting(*args, **kwargs):
            sent.append(str(args[0]))
            return await original(*args, **kwargs)

        connection.execute_command = counting
        try:
            received = [await layer.receive(channel) for _ in range(3)]
        finally:
            connection.execute_command = original
        assert [m["n"] for m in received] == [0, 1, 2]
        return [name for name in sent if name.upper() != "INFO"]  # the restart check, every 5 s

    assert asyncio.run(scenario()) == ["BZPOPMIN"] * 3
