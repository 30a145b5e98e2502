"""The channel layer: channels-redis, sized per process, and counting what it drops.

channels-redis counts ``capacity`` per Redis key, and all the sockets of one daphne process
share one inbox key (``<prefix>specific.<process>!``): the limit bounds a whole process's
backlog, not one socket's. It is also applied by the *sending* process (the bridge), with the
sender's own setting. Here each process writes its capacity into its channel names, so the
limit on a daphne's inbox is the daphne's ``CHANNELS_CAPACITY`` whoever sends to it.

A message over capacity is dropped, by design: pages recover from the database by version. The
library says so only in an INFO line; this layer logs a WARNING (``live.dropped``, with the
group and the count) and adds the count to the Redis counter ``<prefix>:live:dropped``, which
``dropped_total()`` reads (benchmarks, alerts). A drop from a socket's in-process buffer (a
consumer that stopped reading) is logged and counted the same way.

Each message is taken from a process's inbox by one blocking pop, shielded from the receive's
cancellation (``_pop``), instead of channels-redis's four round trips through a backup set.

Redis dropping its clients, restarting or stalling is survived, not passed on to a socket. A
command on a connection Redis has closed is retried on a new one (a pool hands out such a
connection until it is used). The process's one blocking pop, which channels-redis runs in
whichever socket's receive happens to lead, would end that socket with 1011 on any Redis error;
here it waits for Redis to answer again and then hands every socket of the process a
``live.reconnected`` message: group memberships may be gone (a restart keeps nothing) and group
messages were lost meanwhile, so each socket joins its groups again and catches up from the
database (live/consumers.py).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import BoundedQueue, RedisChannelLayer
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from bus import redis_clients
from live import metrics as live_metrics

logger = logging.getLogger(__name__)

# channels-redis 4.3's group_send reports its drops with exactly this INFO line, and nothing else.
OVER_CAPACITY = "%s of %s channels over capacity in group %s"
DROPPED_KEY = ":live:dropped"
# "<uuid hex>-c<capacity>!": the capacity a process declares in its channel names.
_DECLARED_CAPACITY = re.compile(r"-c(\d+)!")

# What every socket of the process is told once Redis answers again after an error.
RECONNECTED = {"type": "live.reconnected"}
# A command that fails on a dropped connection is tried again on a new one: twice, 50 ms apart
# at first (a restart takes longer; then the caller hears of it).
COMMAND_RETRY = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)

# Most seconds between two tries to reach Redis again after it was lost.
LOST_RETRY_MAX_SECONDS = 1.0

# Seconds between two looks at which Redis server the process's inbox is on (a restart).
SERVER_CHECK_SECONDS = 5.0


# channels-redis's group send script, with the expired messages dropped in it instead of in a
# round trip before: per inbox key, a message if it has room, else counted as over capacity.
GROUP_SEND_SCRIPT = """
local over_capacity = 0
local now = tonumber(ARGV[#ARGV - 1])
local expiry = tonumber(ARGV[#ARGV])
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


class RedisRestarted(RedisError):
    """The Redis server is another one than before: everything it held is gone."""


_over_capacity: ContextVar[list[int] | None] = ContextVar("live_layer_over_capacity", default=None)


class _CatchOverCapacity(logging.Filter):
    """Take channels-redis's over-capacity line out of the log into the running group_send."""

    def filter(self, record: logging.LogRecord) -> bool:
        sink = _over_capacity.get()
        if sink is not None and record.msg == OVER_CAPACITY and isinstance(record.args, tuple) and record.args:
            sink.append(int(str(record.args[0])))
            return False
        return True


_core_logger = logging.getLogger("channels_redis.core")
_core_logger.addFilter(_CatchOverCapacity())
# The line is emitted at INFO: below that level the filter would never see it. It is the
# module's only INFO line, and the filter swallows it.
_core_logger.setLevel(logging.INFO)


class _CountingQueue(BoundedQueue):
    """A socket's in-process buffer (drops its oldest message when full), reporting each drop."""

    def __init__(self, maxsize: int, on_drop: Callable[[], None]) -> None:
        super().__init__(maxsize)
        self.on_drop = on_drop

    def put_nowait(self, item: Any) -> None:
        if self.full():
            self.on_drop()
        super().put_nowait(item)


class PasslineChannelLayer(RedisChannelLayer):
    """RedisChannelLayer with per-process capacity, a blocking connection pool and counted drops."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_prefix: str = f"{self.client_prefix}-c{self.capacity}"
        self.receive_buffer: collections.defaultdict[str, _CountingQueue] = collections.defaultdict(
            functools.partial(_CountingQueue, self.capacity, self._dropped_in_process)
        )
        self.dropped_key = f"{self.prefix}{DROPPED_KEY}"
        self._counting: set[asyncio.Task[None]] = set()
        # This process's channels that joined a group, to tell them when Redis is back.
        self._members: dict[str, set[str]] = {}
        # Per shard: the run id of the Redis server last seen, and when to look again.
        self._server_ids: dict[int, str] = {}
        self._next_server_check: dict[int, float] = {}
        # Per channel: the blocking pop in flight, which outlives a receive cancelled meanwhile.
        self._pops: dict[str, asyncio.Future[Any]] = {}

    def create_pool(self, index: int) -> ConnectionPool:
        # A burst (a thousand sockets joining at once) waits for a free connection instead of
        # failing with "Too many connections", as the default pool does. A hosts entry in
        # channels-redis's Sentinel form (sentinels, master_name) gets such a pool too, on the
        # master of the moment (bus/redis_clients.py).
        host = dict(self.hosts[index])
        host.setdefault("retry", COMMAND_RETRY)
        return redis_clients.async_pool(host)

    def get_capacity(self, channel: str) -> int:
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        declared = _DECLARED_CAPACITY.search(channel)
        return int(declared[1]) if declared else self.capacity

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        self._members.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        groups = self._members.get(channel, set())
        groups.discard(group)
        if not groups:
            self._members.pop(channel, None)
        await super().group_discard(group, channel)

    async def receive_single(self, channel: str) -> tuple[Any, dict[str, Any]]:
        """The blocking pop on the process's inbox; on a Redis error it waits for Redis and then
        returns ``live.reconnected`` for every socket of the process instead of failing one."""
        if "!" not in channel:
            return await super().receive_single(channel)
        index = self.consistent_hash(channel)
        try:
            return await super().receive_single(channel)
        except RedisError as error:
            logger.warning("live.redis_lost: %r; the process's sockets wait for Redis", error)
        delay = 0.1
        while True:
            await asyncio.sleep(delay)
            try:
                self._server_ids[index] = await self._server_id(index)
                break
            except RedisError as error:
                logger.debug("Redis still away: %r", error)
                # At most a second between looks: a Sentinel failover's new master is found
                # within a second of its promotion (a look costs one connection attempt).
                delay = min(delay * 2, LOST_RETRY_MAX_SECONDS)
        listeners = sorted(set(self.receive_buffer) | set(self._members))
        logger.warning("live.redis_back: %s socket(s) rejoin their groups and catch up", len(listeners))
        return listeners, dict(RECONNECTED)

    async def _brpop_with_clean(self, index: int, channel: str, timeout: int) -> Any:
        # A command that failed on a dropped connection is retried on a new one, so a Redis that
        # restarted in between (every group and inbox gone) may never show as an error: before
        # a pop, at most every SERVER_CHECK_SECONDS, compare the server's run id with the last
        # one seen. The blocking pop lasts ``timeout`` (5 s), so a restart is noticed within about
        # two of them, before anything is popped from the new server.
        now = time.monotonic()
        if now >= self._next_server_check.get(index, 0.0):
            self._next_server_check[index] = now + SERVER_CHECK_SECONDS
            server_id = await self._server_id(index)
            seen = self._server_ids.setdefault(index, server_id)
            if seen != server_id:
                self._server_ids[index] = server_id
                raise RedisRestarted(f"Redis restarted (run id {seen[:8]} -> {server_id[:8]})")
        return await self._pop(index, channel, timeout)

    async def _pop(self, index: int, channel: str, timeout: int) -> Any:
        """The next message of ``channel`` by one BZPOPMIN, shielded from the receive's cancellation.

        channels-redis pops into a backup sorted set and clears it afterwards (an EVAL, the pop,
        a ZADD and a ZPOPMIN: four round trips a message), so a receive cancelled between the
        pop and its reply (a socket closing while it leads the process's receive) loses nothing.
        Here the pop runs as a task of its own, which a cancelled receive leaves running; the
        next receive of the channel awaits that same pop. One round trip a message, nothing lost
        to a cancellation (a process that dies loses its inbox either way: its channel names die
        with it)."""
        loop = asyncio.get_running_loop()
        pop = self._pops.get(channel)
        if pop is None or pop.get_loop() is not loop:
            pop = self._pops[channel] = asyncio.ensure_future(self.connection(index).bzpopmin(channel, timeout=timeout))
        try:
            result = await asyncio.shield(pop)
        except asyncio.CancelledError:
            if pop.cancelled():  # the loop is closing: nobody takes this pop
                self._pops.pop(channel, None)
            raise  # the pop goes on: the channel's next receive takes its message
        except BaseException:
            self._pops.pop(channel, None)
            raise
        self._pops.pop(channel, None)
        return None if result is None else result[1]

    async def _clean_receive_backup(self, index: int, channel: str) -> None:
        """Nothing to clean: :meth:`_pop` keeps no backup."""

    async def _server_id(self, index: int) -> str:
        return str((await self.connection(index).info("server"))["run_id"])

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        sink: list[int] = []
        token = _over_capacity.set(sink)
        try:
            await super().group_send(group, message)
        finally:
            _over_capacity.reset(token)
        if sink:
            await self._over_capacity(group, message, sum(sink))

    async def _over_capacity(self, group: str, message: dict[str, Any], dropped: int) -> None:
        # One count per process inbox that was full: all its sockets in the group missed it.
        logger.warning(
            "live.dropped: %s process inbox(es) over capacity in group %s",
            dropped,
            group,
            extra={"group": group, "dropped": dropped, "message_type": message.get("type"), "where": "inbox"},
        )
        live_metrics.dropped("inbox", dropped)
        await self._count(dropped)

    async def group_members(self, groups: Iterable[str]) -> dict[str, list[str]]:
        """The channels in each of ``groups`` now, for the groups that have any: one round trip
        per Redis shard (members past the group expiry are dropped first, as channels-redis
        drops them before a send)."""
        by_shard: dict[int, list[str]] = {}
        for group in sorted(set(groups)):
            by_shard.setdefault(self.consistent_hash(group), []).append(group)
        stale = int(time.time()) - self.group_expiry
        members: dict[str, list[str]] = {}
        for index, shard_groups in by_shard.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in shard_groups:
                pipe.zremrangebyscore(self._group_key(group), min=0, max=stale)
                pipe.zrange(self._group_key(group), 0, -1)
            found = (await pipe.execute())[1::2]
            members.update(
                (group, [name.decode() for name in names]) for group, names in zip(shard_groups, found) if names
            )
        return members

    async def group_send_many(
        self, messages: list[tuple[str, dict[str, Any]]], members: Mapping[str, list[str]] | None = None
    ) -> set[str]:
        """Send ``(group, message)`` pairs, each group's in the order given, and say which of the
        groups had a member: the members of every group in one round trip per Redis shard
        (:meth:`group_members`; none when the caller read them already, ``members``), then every
        message in one pipeline per shard of inboxes, by a stored script that also drops expired
        messages and counts full inboxes (channels-redis's ``group_send`` takes four round trips
        a group, and sends its script's whole text each time). Capacity, expiry and drop
        accounting are the library's and :meth:`group_send`'s.

        Members read before the send (by the caller, or here) is channels-redis's own race: a
        socket that joins in between misses this message, and reads its snapshot after joining.
        """
        if members is None:
            members = await self.group_members(group for group, _ in messages)
        pipes: dict[int, Any] = {}
        sent: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        now = time.time()
        for position, (group, message) in enumerate(messages):
            if group not in members:
                continue
            keys_by_shard, key_message, key_capacity = self._map_channel_keys_to_connection(members[group], message)
            # An inbox is a sorted set popped lowest score first: each message a later score than
            # the one before it (10 µs apart), or equal scores would pop in random order.
            score = now + position * 1e-5
            for index, keys in keys_by_shard.items():
                if index not in pipes:
                    pipes[index] = self.connection(index).pipeline(transaction=False)
                args = [key_message[key] for key in keys] + [key_capacity[key] for key in keys] + [score, self.expiry]
                await self._group_send_script(keys=keys, args=args, client=pipes[index])  # (queued)
                sent.setdefault(index, []).append((group, message))
        for index, pipe in pipes.items():
            for (group, message), over in zip(sent[index], await pipe.execute()):
                if over:
                    await self._over_capacity(group, message, int(over))
        return {group for group, _ in messages if group in members}

    @functools.cached_property
    def _group_send_script(self) -> Any:
        # Bound to no connection in particular: every call names its pipeline.
        return self.connection(0).register_script(GROUP_SEND_SCRIPT)

    def _dropped_in_process(self) -> None:
        logger.warning(
            "live.dropped: a socket's buffer is full (%s), its oldest message dropped",
            self.capacity,
            extra={"dropped": 1, "where": "buffer"},
        )
        live_metrics.dropped("buffer")
        task = asyncio.get_running_loop().create_task(self._count(1))
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    async def _count(self, dropped: int) -> None:
        await self.connection(self.consistent_hash(self.dropped_key)).incrby(self.dropped_key, dropped)

    async def dropped(self) -> int:
        """Messages dropped so far, by every process on this prefix."""
        value = await self.connection(self.consistent_hash(self.dropped_key)).get(self.dropped_key)
        return int(value or 0)


def passline_layer(alias: str = "default") -> PasslineChannelLayer:
    """The channel layer of ``alias``: settings.CHANNEL_LAYERS names this class for every one."""
    layer = get_channel_layer(alias)
    if not isinstance(layer, PasslineChannelLayer):
        raise ImproperlyConfigured(f"CHANNEL_LAYERS[{alias!r}] is {type(layer).__name__}, not PasslineChannelLayer")
    return layer


def dropped_total(alias: str = "default") -> int:
    """The layer's drop counter, from synchronous code (a benchmark, a health check)."""
    return async_to_sync(passline_layer(alias).dropped)()


class GroupSender:
    """Sends group messages from synchronous code (the bridge) through one long-lived event loop.

    ``async_to_sync(layer.group_send)`` starts an event loop in a new thread for every call,
    and channels-redis keeps its connection pool per loop, so every call also opened and
    closed a Redis connection: ~2 ms a send. Here one loop thread lives as long as the
    process and its pool is reused: a batch's sends go out together in one pipeline
    (:meth:`PasslineChannelLayer.group_send_many`), each group's in order (a page should see
    version 3 before 4).
    """

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="group-sender", daemon=True).start()
                self._loop = loop
            return self._loop

    def members(self, groups: Iterable[str], timeout: float = 10.0) -> dict[str, list[str]]:
        """The channels in each of ``groups`` now, for those that have any: for a caller that
        decides what to send by who is there, and then sends with ``members=`` (one round trip
        instead of two)."""
        groups = list(groups)
        if not groups:
            return {}
        return asyncio.run_coroutine_threadsafe(
            passline_layer(self.alias).group_members(groups), self._running_loop()
        ).result(timeout)

    def send(
        self,
        messages: list[tuple[str, dict[str, Any]]],
        timeout: float = 30.0,
        members: Mapping[str, list[str]] | None = None,
    ) -> set[str]:
        """Send ``(group, message)`` pairs, to the groups' ``members`` if read already (:meth:`members`),
        else to those they have now; say which groups had a member. Raises if any send fails
        (the caller retries them all).

        Groups without members are passed over (a socket that joins afterwards reads its
        snapshot after joining, which already holds what was committed before).
        """
        if not messages:
            return set()
        layer = passline_layer(self.alias)
        return asyncio.run_coroutine_threadsafe(layer.group_send_many(messages, members), self._running_loop()).result(
            timeout
        )
