"""Hourly caps on what the site sends, counted in Redis so that every notifier process (and every
web process asking for a verification code) shares them.

A cap is a sliding window: a Redis sorted set per counted thing (a customer's emails, the whole
site's texts, the codes sent to one number, …), one member per message, scored by the time it
was counted. :func:`reserve` checks every cap named and counts the message in all of them, or in
none, in one Lua script (atomic, one round trip); a message counted once is not counted again
(a redelivered command), and :func:`release` takes it back when it was not sent after all.

Redis being away is an error, not a pass: a cap that cannot be counted does not let a message
through (the notifier retries it later; a web page asks to try again).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from redis.commands.core import Script

from bus.redis_hints import hint_client

# KEYS: the windows; ARGV: now (ms), window (ms), member, then each window's limit.
# Returns {0, 0} when counted in every window, else {index of the full window, ms until it has room}.
_RESERVE = """
local now, window, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {i, math.max(0, tonumber(oldest[2]) + window - now)}
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
return {0, 0}
"""
_script: Script | None = None


@dataclass(frozen=True)
class Cap:
    """One counted thing and how many messages it may have had in the window."""

    name: str  # "sms:customer:7", "email:site", "verify:sms:to:<digest>"
    limit: int
    what: str  # for people: "texts to this customer"


@dataclass(frozen=True)
class Full:
    """The cap that had no room, and in how many seconds it will have some."""

    cap: Cap
    retry_after: int

    @property
    def reason(self) -> str:
        return f"hourly cap reached: {self.cap.limit} {self.cap.what}"


def window_seconds() -> int:
    return int(settings.NOTIFY_CAP_WINDOW_SECONDS)


def key(name: str) -> str:
    return f"{settings.REDIS_PREFIX}:notify-cap:{name}"


def address_digest(address: str) -> str:
    """An address as it appears in a cap's name (not the address itself: Redis keys are logged
    and listed more freely than rows)."""
    return hashlib.sha256(address.encode()).hexdigest()[:32]


def reserve(caps: list[Cap], member: str) -> Full | None:
    """Count ``member`` in every cap, or, if one of them is full, in none and say which."""
    global _script
    if not caps:
        return None
    if _script is None:
        _script = hint_client().register_script(_RESERVE)
    window = window_seconds() * 1000
    full, wait_ms = _script(
        keys=[key(cap.name) for cap in caps],
        args=[int(time.time() * 1000), window, member, *(cap.limit for cap in caps)],
        client=hint_client(),
    )
    if int(full) == 0:
        return None
    return Full(cap=caps[int(full) - 1], retry_after=max(1, -(-int(wait_ms) // 1000)))


def release(caps: list[Cap], member: str) -> None:
    """Take ``member`` back out of the caps (it was not sent after all)."""
    if caps:
        pipe = hint_client().pipeline()
        for cap in caps:
            pipe.zrem(key(cap.name), member)
        pipe.execute()
