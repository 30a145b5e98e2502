"""Limits on what one client may cost the live sockets: the size of a frame it sends, how many
frames a second one socket may send, and how many sockets one address may hold open at once.

The frame size and the message rate are the socket's own business (``LiveConsumer`` checks
both before a frame is decoded). The connection cap is shared by every web process through
Redis: one sorted set per client address, a member per open socket scored with the moment its
lease ends. A socket renews its lease while it lives (live/consumers.py, every
``LIVE_AUTH_CHECK_SECONDS``) and gives its slot back when it closes; a process that dies
without closing its sockets leaves slots that lapse with their lease, so a crash never locks
an address out for good. Taking a slot is one Lua script: the count and the add are atomic
across processes, and the time is Redis's own, so web hosts with skewed clocks agree.

The address is the one daphne resolves (``scope["client"]``): behind the proxy, run daphne with
``--proxy-headers`` and have the proxy set ``X-Forwarded-For`` to the address it saw, not append
to what the client sent. IPv6 clients are counted per /64, the block one subscriber gets.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from live.layer import passline_layer

# Close codes of the limits (live/protocol.py documents them).
CLOSE_TOO_BIG = 1009  # RFC 6455: a message too big to process
CLOSE_TOO_MANY = 4429  # too many frames on this socket, or too many sockets from this address

_TAKE = """
local now = redis.call('TIME')
local at = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', at)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], at + tonumber(ARGV[1]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return 1
"""

_RENEW = """
local now = redis.call('TIME')
local at = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZADD', KEYS[1], at + tonumber(ARGV[1]), ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return 1
"""


@dataclass(frozen=True)
class Limits:
    """The socket limits in force, read from the settings when a socket connects."""

    max_frame_bytes: int
    message_rate: float
    message_burst: int
    max_sockets_per_address: int
    check_seconds: float
    recheck_seconds: float

    @property
    def slot_seconds(self) -> float:
        """How long a slot outlives its socket's last renewal: three missed renewals."""
        return max(3 * self.check_seconds, 5.0)

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_frame_bytes=settings.LIVE_MAX_FRAME_BYTES,
            message_rate=settings.LIVE_MESSAGE_RATE,
            message_burst=settings.LIVE_MESSAGE_BURST,
            max_sockets_per_address=settings.LIVE_MAX_SOCKETS_PER_ADDRESS,
            check_seconds=settings.LIVE_AUTH_CHECK_SECONDS,
            recheck_seconds=settings.LIVE_AUTH_RECHECK_SECONDS,
        )


def frame_size(text: str | None, data: bytes | None) -> int:
    """A received frame's payload in bytes (UTF-8 for text), without encoding a short one."""
    if data is not None:
        return len(data)
    if text is None:
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass
class TokenBucket:
    """``rate`` frames a second on average, ``burst`` at once; ``take()`` is False when empty."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    at: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.at = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def address_key(client: Any) -> str | None:
    """What the connection cap counts a client by: its IPv4 address, or its IPv6 /64; None when
    the server does not know the address (a Unix socket without the proxy's header)."""
    if not client:
        return None
    host = str(client[0])
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100] or None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def _slots_key(address: str) -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:live:sockets:{address}"


def _connection(key: str) -> Any:
    layer = passline_layer()
    return layer.connection(layer.consistent_hash(key))


async def take_slot(address: str, member: str, *, cap: int, lease: float) -> bool:
    """Count a socket against its address: False when the address holds ``cap`` already."""
    key = _slots_key(address)
    return bool(await _connection(key).eval(_TAKE, 1, key, math.ceil(lease), cap, member))


async def renew_slot(address: str, member: str, *, lease: float) -> None:
    key = _slots_key(address)
    await _connection(key).eval(_RENEW, 1, key, math.ceil(lease), member)


async def release_slot(address: str, member: str) -> None:
    key = _slots_key(address)
    await _connection(key).zrem(key, member)


async def slots_taken(address: str) -> int:
    """Sockets counted against ``address`` now (for tests and the operator)."""
    key = _slots_key(address)
    return int(await _connection(key).zcount(key, time.time(), "+inf"))
