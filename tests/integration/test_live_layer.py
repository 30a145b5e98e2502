"""The channel layer (live/layer.py) on the real Redis: its receive (``_pop``: one blocking pop
a message, shielded so that a receive cancelled while its pop is answered loses nothing) and
its batch send (``group_send_many``: the members of every group in one round trip, every
message in one pipeline, each group's in order, full inboxes counted)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from redis.asyncio.client import Pipeline

from live.layer import GroupSender, PasslineChannelLayer, dropped_total


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


def test_a_batch_send_keeps_each_groups_order_in_a_shared_inbox_and_skips_groups_without_members():
    layer = get_channel_layer()
    assert isinstance(layer, PasslineChannelLayer)

    async def scenario() -> tuple[set[str], list[list[tuple[str, int]]]]:
        # two sockets of one process (one inbox key), each in its own group and both in a third
        a, b = await layer.new_channel(), await layer.new_channel()
        run = uuid.uuid4().hex  # groups of this run's own
        for group, channel in (("order-a", a), ("order-b", b), ("kitchen", a), ("kitchen", b)):
            await layer.group_add(f"{group}-{run}", channel)
        batch = [
            (f"{group}-{run}", {"type": "x", "group": group, "version": version})
            for version in (2, 3, 4)
            for group in ("order-a", "order-b", "kitchen", "nobody")
        ]
        had_members = {group.removesuffix(f"-{run}") for group in await layer.group_send_many(batch)}
        received = []
        for channel in (a, b):
            frames = [await asyncio.wait_for(layer.receive(channel), timeout=5) for _ in range(6)]
            received.append([(frame["group"], frame["version"]) for frame in frames])
        return had_members, received

    had_members, (a, b) = asyncio.run(scenario())
    assert had_members == {"order-a", "order-b", "kitchen"}
    assert a == [(g, v) for v in (2, 3, 4) for g in ("order-a", "kitchen")]
    assert b == [(g, v) for v in (2, 3, 4) for g in ("order-b", "kitchen")]


def test_a_batch_send_to_a_full_inbox_drops_and_counts_what_does_not_fit():
    layer = get_channel_layer()
    assert isinstance(layer, PasslineChannelLayer)
    sender = GroupSender()
    before = dropped_total()

    async def scenario() -> int:
        channel = await layer.new_channel()
        full = f"full-{uuid.uuid4().hex}"  # (no member left in it by an earlier run)
        await layer.group_add(full, channel)
        # the inbox holds the process's capacity, no more
        batch = [(full, {"type": "x", "n": n}) for n in range(layer.capacity + 3)]
        await asyncio.get_running_loop().run_in_executor(None, sender.send, batch)
        received = 0
        while True:
            try:
                await asyncio.wait_for(layer.receive(channel), timeout=1)
            except TimeoutError:
                return received
            received += 1

    assert asyncio.run(scenario()) == layer.capacity
    assert dropped_total() - before == 3


def test_a_send_to_members_read_before_goes_to_those_alone_in_one_round_trip():
    layer = get_channel_layer()
    assert isinstance(layer, PasslineChannelLayer)

    async def scenario() -> tuple[dict[str, list[str]], set[str], list[int], list[list[str]], bool]:
        run = uuid.uuid4().hex
        early, late = await layer.new_channel(), await layer.new_channel()
        await layer.group_add(f"order-{run}", early)
        # given: the members read (as the bridge reads them to decide what to send)
        members = await layer.group_members([f"order-{run}", f"nobody-{run}"])
        await layer.group_add(f"order-{run}", late)  # a socket that joins after the read
        sent: list[list[str]] = []  # each round trip's commands
        original = Pipeline.execute

        async def recording(pipe, *args, **kwargs):
            sent.append([str(command[0]).upper() for command, _ in pipe.command_stack])
            return await original(pipe, *args, **kwargs)

        Pipeline.execute = recording  # type: ignore[assignment]
        try:
            # when: the batch is sent to them
            batch = [(f"order-{run}", {"type": "x", "n": n}) for n in range(3)] + [(f"nobody-{run}", {"type": "x"})]
            had = await layer.group_send_many(batch, members)
        finally:
            Pipeline.execute = original  # type: ignore[method-assign]
        frames = [await asyncio.wait_for(layer.receive(early), timeout=5) for _ in range(3)]
        try:
            await asyncio.wait_for(layer.receive(late), timeout=0.5)
            late_got_one = True
        except TimeoutError:
            late_got_one = False
        stripped = {group.removesuffix(f"-{run}"): channels for group, channels in members.items()}
        return stripped, {g.removesuffix(f"-{run}") for g in had}, [f["n"] for f in frames], sent, late_got_one

    members, had, frames, sent, late_got_one = asyncio.run(scenario())
    # then: only the group with a member was read as having one, and only its members got the
    # messages, in order: one round trip of sends, the members not read again
    assert list(members) == ["order"] and len(members["order"]) == 1
    assert had == {"order"} and frames == [0, 1, 2]
    assert not late_got_one
    assert sent == [["EVALSHA"] * 3]
