"""Circuit breakers around the calls that leave Passline: the payment provider, the SMS
provider and the mail server (pybreaker).

Each outbound call goes through :func:`guarded` with the name of its breaker (``payment``,
``sms``, ``email``) and of its operation. The call itself carries its timeout (each adapter
passes its setting to its client: ``PAYMENT_PROVIDER_TIMEOUT``, ``SMS_TIMEOUT``,
``EMAIL_TIMEOUT``); a timeout, a connection error or a 5xx is a failure, and after
``BREAKER_FAIL_MAX`` consecutive failures the breaker opens: every call fails fast with
:class:`BreakerOpen` without reaching the provider. After ``BREAKER_RESET_TIMEOUT`` seconds
the next call is let through (half-open); its success closes the breaker, its failure opens it
again for another pause. An answer that says no (a declined card, a number that cannot take
texts: the exceptions in ``refusals``) is the provider working, and counts as a success.

The state lives in Redis (pybreaker's ``CircuitRedisStorage``, keys under
``<REDIS_PREFIX>:breaker:<name>:``), so every process of every machine shares each breaker:
the failures one worker saw spare the others (and the web) the same timeouts. Each thread has
its own breaker object on that shared state, so a slow call does not hold other threads' calls
behind pybreaker's lock. Redis away: the breaker counts as closed (calls go through).

Metrics (prometheus_client): ``passline_breaker_open{breaker}`` (1 open, 0 closed or
half-open), ``passline_provider_call_seconds{provider,operation}`` and
``passline_provider_call_failures_total{provider,operation,reason}`` (reason ``timeout``,
``error``, or ``open`` for a call refused by the open breaker). :func:`breaker_states` gives
every breaker's state, for the operations page.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pybreaker
import redis
from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

from bus import redis_clients

logger = logging.getLogger(__name__)

T = TypeVar("T")

PAYMENT = "payment"
SMS = "sms"
EMAIL = "email"
BREAKERS = (PAYMENT, SMS, EMAIL)

CLOSED = pybreaker.STATE_CLOSED
OPEN = pybreaker.STATE_OPEN
HALF_OPEN = pybreaker.STATE_HALF_OPEN

BREAKER_OPEN = Gauge(
    "passline_breaker_open",
    "1 while the circuit breaker of an outbound call is open (calls fail fast), else 0",
    ["breaker"],
    # The state is shared in Redis: whichever process looked last saw the truth.
    multiprocess_mode="mostrecent",
)
CALL_SECONDS = Histogram(
    "passline_provider_call_seconds",
    "Time of the calls that reached an outside provider",
    ["provider", "operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CALL_FAILURES = Counter(
    "passline_provider_call_failures",
    "Outbound calls that failed: timeout, error (connection, 5xx), or open (refused by the open breaker)",
    ["provider", "operation", "reason"],
)


class BreakerOpen(Exception):
    """The breaker of an outbound call is open: the call was not made. ``retry_after``: seconds
    until the breaker lets a trial call through."""

    def __init__(self, breaker: str, retry_after: int):
        super().__init__(f"the {breaker} breaker is open: calls fail fast for {retry_after} s more")
        self.breaker = breaker
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Refused:
    """An answer of the provider that says no, carried through the breaker as a success."""

    error: Exception


_local = threading.local()
_client_lock = threading.Lock()
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    with _client_lock:
        if _client is None:
            # Short timeouts: a breaker must never be slower than the call it guards.
            _client = redis_clients.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        return _client


def namespace(name: str) -> str:
    return f"{settings.REDIS_PREFIX}:breaker:{name}"


class _Gauge(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        _set_gauge(cb.name or "", new_state.name)
        if old_state is not None and old_state.name != new_state.name:
            log = logger.warning if new_state.name == OPEN else logger.info
            log("breaker %s: %s -> %s", cb.name, old_state.name, new_state.name, extra={"breaker": cb.name})


def _set_gauge(name: str, state: str) -> None:
    BREAKER_OPEN.labels(name).set(1 if state == OPEN else 0)


def breaker(name: str) -> pybreaker.CircuitBreaker:
    """This thread's breaker object for ``name``, on the state every process shares."""
    if name not in BREAKERS:
        raise ValueError(f"unknown breaker {name!r}; known: {', '.join(BREAKERS)}")
    cache: dict[tuple[str, str], pybreaker.CircuitBreaker] = _local.__dict__.setdefault("breakers", {})
    key = (name, settings.REDIS_PREFIX)
    found = cache.get(key)
    if found is None or found.fail_max != settings.BREAKER_FAIL_MAX or found.reset_timeout != _reset_timeout():
        storage = pybreaker.CircuitRedisStorage(CLOSED, _redis(), namespace=namespace(name))
        found = pybreaker.CircuitBreaker(
            name=name,
            fail_max=settings.BREAKER_FAIL_MAX,
            reset_timeout=_reset_timeout(),
            state_storage=storage,
            listeners=[_Gauge()],
            # The call that trips the breaker raises its own error (a timeout, a 503): only a call
            # refused without reaching the provider raises CircuitBreakerError.
            throw_new_error_on_trip=False,
        )
        cache[key] = found
    return found


def _reset_timeout() -> float:
    return float(settings.BREAKER_RESET_TIMEOUT)


def guarded(name: str, operation: str, call: Callable[[], T], *, refusals: tuple[type[Exception], ...] = ()) -> T:
    """``call()`` through the breaker ``name``: its result, or its exception (a refusal in
    ``refusals`` is re-raised but counts as the provider working), or :class:`BreakerOpen` when
    the breaker is open and the call was not made."""
    try:
        cb = breaker(name)
    except redis.RedisError as error:
        # No shared state to read: the breaker counts as closed, the call is made.
        logger.warning("breaker %s: Redis unavailable (%s); calling without it", name, error)
        return call()

    def attempt() -> T | _Refused:
        try:
            return call()
        except refusals as error:
            return _Refused(error)

    started = time.monotonic()
    try:
        result = cb.call(attempt)
    except pybreaker.CircuitBreakerError:
        CALL_FAILURES.labels(name, operation, "open").inc()
        _set_gauge(name, OPEN)
        raise BreakerOpen(name, retry_after(name)) from None
    except Exception as error:
        CALL_SECONDS.labels(name, operation).observe(time.monotonic() - started)
        CALL_FAILURES.labels(name, operation, "timeout" if is_timeout(error) else "error").inc()
        logger.warning("%s %s failed: %s", name, operation, error, extra={"breaker": name, "operation": operation})
        raise
    CALL_SECONDS.labels(name, operation).observe(time.monotonic() - started)
    if isinstance(result, _Refused):
        raise result.error
    return result


def is_timeout(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a timeout."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (TimeoutError, socket.timeout)):
            return True
        seen = seen.__cause__
    return False


def state(name: str) -> str:
    """``closed``, ``open`` (calls fail fast now) or ``half-open`` (the next call is a trial;
    also an open breaker whose pause is over). Redis away: ``closed``."""
    try:
        current = breaker(name)._state_storage.state
    except redis.RedisError:
        return CLOSED
    if current == OPEN and retry_after(name) <= 0:
        current = HALF_OPEN
    _set_gauge(name, current)
    return current


def is_open(name: str) -> bool:
    """Whether calls through ``name`` fail fast right now (the pause is not over)."""
    return state(name) == OPEN


def retry_after(name: str) -> int:
    """Seconds until an open breaker lets a trial call through (0 when it is not open)."""
    try:
        storage = breaker(name)._state_storage
    except redis.RedisError:
        return 0
    opened_at = storage.opened_at
    if storage.state != OPEN or opened_at is None:
        return 0
    left = opened_at.timestamp() + _reset_timeout() - datetime.now(UTC).timestamp()
    return max(0, int(left + 0.999))


def breaker_states() -> dict[str, str]:
    """Every breaker's state, by name (the operations page shows them)."""
    return {name: state(name) for name in BREAKERS}


def reset(name: str) -> None:
    """Close ``name`` and forget its failures: for an operator who knows the provider is back
    (``manage.py shell -c "from passline.breakers import reset; reset('payment')"``)."""
    cb = breaker(name)
    cb.close()
    _set_gauge(name, CLOSED)


def forget_all() -> None:
    """Delete every breaker's shared state (all closed, no failures counted): for a fresh start
    (the test suite's), never while the stack is running."""
    try:
        keys = list(_redis().scan_iter(match=f"{settings.REDIS_PREFIX}:breaker:*"))
        if keys:
            _redis().delete(*keys)
    except redis.RedisError as error:
        logger.warning("breakers not reset: %s", error)
    _local.__dict__.pop("breakers", None)
