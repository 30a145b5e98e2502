"""Rate limits shared by every web process, and the password-guessing lockout's hooks.

**Throttles.** django-ninja's throttling interface (``throttle=`` on the API, a router or an
operation), with a sliding window kept in the Redis of ``settings.CACHES["default"]``, so every
daphne process counts against the same limit. ninja's stock ``SimpleRateThrottle`` reads the
history, decides, then writes it back: two processes (or two threads) deciding at the same
instant both pass, and a burst of parallel requests goes through whole. Here the decision is
one Lua script on the Redis server (trim the window, count, add), so the limit holds under
concurrency. Rates come from ``settings.PASSLINE_RATE_LIMITS`` at each request (so
``override_settings`` lowers them in a test); a throttle built with ``rate=`` uses that instead.

**Client address.** ``client_ip`` is the one definition of "who is calling" for the throttles,
the site's form limits and django-axes: ``REMOTE_ADDR`` as daphne sets it (behind the proxy,
daphne's ``--proxy-headers`` puts the proxy's ``X-Forwarded-For`` there), never a header read
here, so a client cannot pick its own bucket. An IPv6 client counts by its /64, which one
subscriber typically holds whole.

**Lockout.** ``client_ip`` and ``lockout_response`` are django-axes' hooks
(``AXES_CLIENT_IP_CALLABLE``, ``AXES_LOCKOUT_CALLABLE``); see docs/security.md.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from ninja.throttling import BaseThrottle, SimpleRateThrottle
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
RATE_LIMITED_CODE = "rate_limited"
LOCKED_OUT_CODE = "too_many_attempts"
# Every address that is not an IP address (a misconfigured proxy header) is one shared client:
# limited together, never unlimited.
# An identifier, never an address anything binds to (bandit B104).
UNKNOWN_CLIENT = "0.0.0.0"  # nosec B104

# For each bucket: trim its window, count what is left, and add this request if it fits;
# atomically, on the Redis server's clock, every bucket of a request in one call. Returns, per
# bucket, 0 when allowed, else the milliseconds until a slot frees. ARGV: a limit and a window
# (ms) per key, then the request's member.
_SLIDING_WINDOWS = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local member = ARGV[#ARGV]
local waits = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
    waits[i] = 0
  else
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    waits[i] = math.max(1, tonumber(oldest[2]) + window - now)
  end
end
return waits
"""


def client_ip(request: HttpRequest) -> str:
    """The caller's address as daphne reports it: IPv4 as is, IPv6 as its /64 network."""
    raw = str(request.META.get("REMOTE_ADDR") or "").strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return UNKNOWN_CLIENT
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address)
    return str(address)


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/min"`` -> (10, 60), in ninja's rate syntax: a count, then s, m, h or d (or sec, min,
    hour, day), optionally with a multiple ("5/10m": five per ten minutes)."""
    count, _, per = rate.strip().partition("/")
    for unit, seconds in sorted(SimpleRateThrottle._PERIODS.items(), key=lambda item: -len(item[0])):
        if per.endswith(unit):
            multiple = per[: -len(unit)]
            if count.isdigit() and int(count) > 0 and (not multiple or multiple.isdigit()):
                return int(count), int(multiple or 1) * seconds
    raise ValueError(f"Invalid rate {rate!r}: use a count and a period, e.g. 10/min or 5/10m.")


def rate_for(scope: str) -> str:
    try:
        return str(settings.PASSLINE_RATE_LIMITS[scope])
    except KeyError:
        raise KeyError(f"settings.PASSLINE_RATE_LIMITS has no rate for {scope!r}") from None


def hit(bucket: str, rate: str) -> float | None:
    """Count one request against ``bucket`` at ``rate``; None when it is allowed, else the
    seconds until it would be. Redis being unreachable lets the request through (and logs):
    the limits protect capacity, and the site without Redis is degraded already."""
    return hit_many([(bucket, rate)])[0]


def hit_many(buckets: list[tuple[str, str]]) -> list[float | None]:
    """:func:`hit` for several ``(bucket, rate)`` at once, in one call to Redis: each bucket
    counts the request if it has room, whatever the others say (as separate hits would)."""
    if not buckets:
        return []
    cache: Any = caches["default"]
    keys, args = [], []
    for bucket, rate in buckets:
        limit, window = parse_rate(rate)
        keys.append(cache.make_and_validate_key(f"ratelimit:{bucket}"))
        args += [limit, window * 1000]
    try:
        client = cache._cache.get_client(keys[0], write=True)
        script = client.register_script(_SLIDING_WINDOWS)  # EVALSHA, loading the script when missing
        waits = script(keys=keys, args=[*args, secrets.token_hex(8)])
    except RedisError:
        logger.exception("rate limits %s not checked: Redis unavailable", ", ".join(b for b, _ in buckets))
        return [None] * len(buckets)
    return [None if not wait_ms else int(wait_ms) / 1000 for wait_ms in waits]


def retry_after(seconds: float | None) -> str:
    """The ``Retry-After`` value: whole seconds, at least one (RFC 9110 delta-seconds)."""
    return str(max(1, math.ceil(seconds or 1)))


class _Throttle(SimpleRateThrottle):
    """A ninja throttle on the shared sliding window; subclasses say whose bucket it is.

    Throttles listed together (:func:`together`) are one group: the first of them asked about
    a request counts it in every bucket of the group in one call to Redis and leaves each
    other member its verdict on the request; a member asked without one counts on its own."""

    by = ""

    def __init__(self, scope: str, rate: str | None = None) -> None:
        self.scope = scope
        self.fixed_rate = rate
        if rate is not None:
            parse_rate(rate)
        # The instance serves every thread of the process: the wait belongs to the request.
        self._local = threading.local()
        self.group: list[_Throttle] = [self]

    def ident(self, request: HttpRequest) -> str | None:
        raise NotImplementedError

    def bucket(self, request: HttpRequest) -> tuple[str, str] | None:
        """This request's ``(bucket, rate)``; None when it is not counted here."""
        ident = self.ident(request)
        if ident is None:
            return None
        scope = str(self.scope)
        return f"{scope}:{self.by}:{ident}", self.fixed_rate or rate_for(scope)

    def allow_request(self, request: HttpRequest) -> bool:
        verdicts: dict[int, float | None] = request.__dict__.setdefault("_passline_throttled", {})
        if self is self.group[0] or id(self) not in verdicts:
            members = self.group if self is self.group[0] else [self]
            counted = [(member, member.bucket(request)) for member in members]
            waits = iter(hit_many([bucket for _, bucket in counted if bucket is not None]))
            for member, bucket in counted:
                verdicts[id(member)] = None if bucket is None else next(waits)
        self._local.wait = verdicts.pop(id(self))
        return self._local.wait is None

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scope!r})"


def together(*throttles: _Throttle) -> list[BaseThrottle]:
    """An operation's throttles, counted in one call to Redis per request (ninja asks them in
    this order). Each throttle belongs to one list."""
    for throttle in throttles:
        if len(throttle.group) > 1:
            raise ValueError(f"{throttle!r} is in a list already")
        throttle.group = list(throttles)
    return list(throttles)


class UserThrottle(_Throttle):
    """Per signed-in account (bearer token or session); an anonymous request is not counted here."""

    by = "user"

    def ident(self, request: HttpRequest) -> str | None:
        user = getattr(request, "auth", None)
        pk = getattr(user, "pk", None)
        return None if pk is None else str(pk)


class IpThrottle(_Throttle):
    """Per client address (``client_ip``), signed in or not."""

    by = "ip"

    def ident(self, request: HttpRequest) -> str | None:
        return client_ip(request)


# --- ready-made lists for ``throttle=`` ---------------------------------------------------
# An operation's ``throttle=`` replaces the API's default, so each list includes it (throttles
# of its own: each throttle is in one list).


def _default() -> list[_Throttle]:
    return [UserThrottle("api_user"), IpThrottle("api_ip")]


DEFAULT: list[BaseThrottle] = together(*_default())
# Token issue: password guessing from one address across many usernames (axes locks one
# username per address; this caps the spraying).
LOGIN: list[BaseThrottle] = together(*_default(), IpThrottle("login"))
REGISTER: list[BaseThrottle] = together(*_default(), IpThrottle("register"))
ORDERS: list[BaseThrottle] = together(*_default(), UserThrottle("orders"), IpThrottle("orders_ip"))
# Wallet top-ups and any other route that moves a customer's money in.
MONEY: list[BaseThrottle] = together(*_default(), UserThrottle("money"), IpThrottle("money_ip"))


# --- the site's forms -----------------------------------------------------------------------


@dataclass(frozen=True)
class Limited:
    """A form submission over its limit: what to tell the person and when to come back."""

    seconds: float
    source: str = "your network"

    @property
    def retry_after(self) -> str:
        return retry_after(self.seconds)

    @property
    def message(self) -> str:
        minutes = math.ceil(self.seconds / 60)
        when = f"{minutes} minute{'s' if minutes != 1 else ''}" if self.seconds >= 60 else "a minute"
        return f"Too many attempts from {self.source}. Please try again in {when}."


def site_limit(request: HttpRequest, scope: str, *, user: Any = None, ident: str | None = None) -> Limited | None:
    """Count one submission of a site form against ``scope``; a ``Limited`` when over the rate
    in ``PASSLINE_RATE_LIMITS``. Per client address by default, per account with ``user``: the
    same buckets as the API's ``IpThrottle(scope)`` and ``UserThrottle(scope)``, so the site and
    the API share one allowance. ``ident`` counts per anything else (e.g. an email address)."""
    if ident is not None:
        bucket = f"{scope}:key:{ident}"
    elif user is not None:
        bucket = f"{scope}:user:{user.pk}"
    else:
        bucket = f"{scope}:ip:{client_ip(request)}"
    wait = hit(bucket, rate_for(scope))
    return None if wait is None else Limited(wait, "your account" if user is not None else "your network")


# --- django-axes hooks ------------------------------------------------------------------------


def lockout_response(request: HttpRequest, *args: Any) -> HttpResponse:
    """What a locked-out login attempt gets (axes calls this with varying arguments, unused):
    the API's error shape under /api/, the login form with the reason on the site, a page on
    the admin. Always 429 with ``Retry-After``: the lock lifts by itself after the cool-off."""
    seconds = settings.AXES_COOLOFF_TIME.total_seconds()
    minutes = max(1, math.ceil(seconds / 60))
    message = (
        f"Too many failed sign-in attempts for this account from your network. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or reset your password."
    )
    response: HttpResponse
    if request.path.startswith(API_PREFIX):
        response = JsonResponse({"error": {"code": LOCKED_OUT_CODE, "message": message}}, status=429)
    elif request.path.startswith("/admin/"):
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    else:
        form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
        next_url = request.POST.get("next") or request.GET.get("next") or ""
        context = {"form": form, "locked_out": message, "next": next_url}
        response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = retry_after(seconds)
    return response
