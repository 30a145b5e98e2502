"""End-to-end latency, a client process of its own (no Django here): from ``POST /api/v1/orders``
to the ``paid`` update of that order on the customer's ``/ws/me/`` socket.

Usage: ``python -m bench.e2e_driver PLAN.json``; the plan::

    {"http": "http://127.0.0.1:8000", "ws": "ws://127.0.0.1:8000",
     "customers": [{"token": "...", "id": 12}],
     "order": {"restaurant_id": 1, "items": [{"menu_item_id": 3, "quantity": 1}],
               "delivery_address": "1 Bench Street"},
     "warmup_seconds": 3, "seconds": 30, "rates": [100],
     "search": {"start": 100, "step": 50, "max": 1000, "p99_limit_ms": 1000, "seconds": 15}}

Optional keys: ``connections`` (the most keep-alive HTTP connections, 256), ``late_ms`` (a send
that starts more than this after its slot is late, 10), ``wait_seconds`` (how long to wait for
outstanding paid updates after a rate's sending ends, 10), ``request_timeout`` (one POST, from
its slot to its answer, 30), ``pause_seconds`` (between two rates, 1), ``run_id`` (the
Idempotency-Keys are ``e2e-<run_id>-<phase>-<rate>-<n>``; random by default) and, in
``search``, ``warmup_seconds`` (the plan's by default), ``drain_seconds`` (the pause after a
rate that missed, for its backlog to drain, 10) and ``budget_seconds`` (no rate starts that
would end the search later than this after its start; no limit by default).

The search (``bench.e2e_stats.next_search_rate``) doubles the rate from ``start`` while each
holds (every order paid, p99 within the limit, the schedule kept), then halves the gap between
the highest that held and the lowest that did not until it is no wider than ``step``.

One socket per customer is opened first; then each rate sends orders open-loop, one every
1/rate s on a fixed schedule whatever the earlier ones are doing, round-robin over the
customers. The first ``warmup_seconds`` of each rate are sent but not measured. t0 is taken
just before the request is written; the order's latency is the arrival of its first
``order.update`` frame with status ``paid`` minus t0 (one clock, ``time.perf_counter``, one
process). Frames are kept by order id and joined to the POST answers afterwards, as a frame
may come before the answer is read.

Prints ``window {"phase", "rate", "event": "start"}`` as the first measured order is due and
``window {..., "event": "end"}`` once the last one is sent (an orchestrator measures the
stack over that window), ``result {...}`` per rate and ``summary {...}`` at the end on stdout; progress on
stderr. Besides the figures the orchestrator reads, a result has ``payment_failed`` (orders
that ended so; not counted as missing), ``lateness_ms`` (how late the measured sends started),
``late_threshold_ms``, ``driver_cpu_pct`` (this process, over the rate's whole run),
``connections`` (the most HTTP connections open at once) and ``ws_drops`` (since the start);
the summary has ``search_stop`` ({"rate", "reason"} or null). ``sent`` counts every measured
slot, including sends that never got written (their errors say why). Exit status: 0 done, 1 a bad plan, 2 it cannot connect, 3 the global time limit.

Why not a load tool's own client: placement is driven by wrk (``bench/wrk/orders.lua``), but
this measure joins each POST to a frame on that customer's WebSocket, open-loop at a fixed
rate with a keep-alive pool and one socket per customer. wrk has no WebSocket; locust paces
each user (closed loop), not a fixed arrival rate; k6 has both (arrival-rate executors,
WebSockets) but is neither a Debian nor a PyPI package, so the set-up could not install it.
So the HTTP side here is a small keep-alive pool of its own (``Pool``), and the sockets are
the ``websockets`` library's.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import math
import resource
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Origin

from bench.e2e_stats import (
    Order,
    _number,
    next_search_rate,
    record_frame,
    schedule,
    stop_reason,
    summarize,
    time_budget,
)
from bench.harness import raise_open_files
from bench.http_pool import Pool, Stale

ORIGIN = Origin("http://127.0.0.1")  # in ALLOWED_HOSTS, as a browser on the site would send it
ORDERS_PATH = "/api/v1/orders"
CUSTOMER_SOCKET_PATH = "/ws/me/"

clock = time.perf_counter


class CannotConnect(Exception):
    """The server cannot be reached at all (HTTP or the customers' sockets)."""


def _say(kind: str, body: dict[str, Any]) -> None:
    sys.stdout.write(f"{kind} {json.dumps(body, separators=(',', ':'))}\n")
    sys.stdout.flush()


def _log(message: str) -> None:
    sys.stderr.write(f"e2e: {message}\n")
    sys.stderr.flush()


class Customer:
    def __init__(self, index: int, token: str, user_id: Any) -> None:
        self.index, self.token, self.user_id = index, token, user_id
        self.ws: ClientConnection | None = None
        self.drops = 0
        self.reconnects = 0


class Driver:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        http = urlsplit(plan["http"])
        if http.scheme != "http" or not http.hostname:
            raise ValueError(f"plan 'http' must be http://host[:port]: {plan['http']!r}")
        self.host, self.port = http.hostname, http.port or 80
        host_header = http.netloc
        self.path = http.path.rstrip("/") + ORDERS_PATH
        self.ws_url = plan["ws"].rstrip("/") + CUSTOMER_SOCKET_PATH
        self.customers = [Customer(i, c["token"], c.get("id")) for i, c in enumerate(plan["customers"])]
        if not self.customers:
            raise ValueError("plan has no customers")
        self.pool = Pool(self.host, self.port, int(plan.get("connections", 256)))
        self.late_after = float(plan.get("late_ms", 10)) / 1000
        self.wait_seconds = float(plan.get("wait_seconds", 10))
        self.request_timeout = float(plan.get("request_timeout", 30))
        self.pause_seconds = float(plan.get("pause_seconds", 1))
        body = json.dumps(plan["order"], separators=(",", ":")).encode()
        self.body = body
        # Everything but the Idempotency-Key is the same for all of one customer's orders.
        self.heads = [
            (
                f"POST {self.path} HTTP/1.1\r\nHost: {host_header}\r\n"
                f"Authorization: Bearer {c.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nIdempotency-Key: "
            ).encode()
            for c in self.customers
        ]
        self.run_id = str(plan.get("run_id") or uuid.uuid4().hex[:12])
        self.paid: dict[int, float] = {}
        self.failed: dict[int, float] = {}
        self.stopping = False
        self.readers: list[asyncio.Task[None]] = []

    # --- sockets ------------------------------------------------------------------------------

    async def _handshake(self, customer: Customer) -> None:
        """Open the customer's socket and see it answer an application ping: the consumer has
        joined the customer's group by then. A refused token is accepted and closed (4401)."""
        # No client-side keepalive (daphne pings and the library answers); no compression
        # (daphne does not offer it), as in bench/live_clients.py.
        ws = await connect(
            self.ws_url,
            origin=ORIGIN,
            additional_headers={"Authorization": f"Bearer {customer.token}"},
            compression=None,
            ping_interval=None,
            open_timeout=20,
            close_timeout=3,
            max_queue=None,
        )
        try:
            await ws.send('{"type":"ping"}')
            async with asyncio.timeout(20):
                while True:
                    raw = await ws.recv()
                    if '"pong"' in raw:
                        break
                    record_frame(raw, clock(), self.paid, self.failed)
        except BaseException:
            if ws.transport is not None:
                ws.transport.abort()
            raise
        customer.ws = ws

    async def open_sockets(self) -> None:
        gate = asyncio.Semaphore(50)
        failures: collections.Counter[str] = collections.Counter()

        async def open_one(customer: Customer) -> None:
            for attempt in range(3):
                async with gate:
                    try:
                        await self._handshake(customer)
                        return
                    except (TimeoutError, OSError, WebSocketException) as error:
                        if attempt == 2 or _refused(error):  # a refused token does not get better
                            failures[_describe(error)] += 1
                            return
                await asyncio.sleep(1 + attempt)

        started = clock()
        await asyncio.gather(*(open_one(c) for c in self.customers))
        if failures:
            raise CannotConnect(
                f"{sum(failures.values())} of {len(self.customers)} customer sockets "
                f"({self.ws_url}) could not be opened: {dict(failures)}"
            )
        self.readers = [asyncio.ensure_future(self._read(c)) for c in self.customers]
        _log(f"{len(self.customers)} customer sockets open in {clock() - started:.2f} s")

    async def _read(self, customer: Customer) -> None:
        paid, failed = self.paid, self.failed
        while not self.stopping:
            ws = customer.ws
            if ws is not None:
                try:
                    async for raw in ws:
                        try:
                            record_frame(raw, clock(), paid, failed)
                        except (ValueError, KeyError, TypeError) as error:  # a frame we do not understand
                            _log(f"customer {customer.user_id}: bad frame ({type(error).__name__} {error})")
                except ConnectionClosed:
                    pass
                customer.ws = None
                if self.stopping:
                    return
                customer.drops += 1
                _log(f"customer {customer.user_id}: socket dropped; reconnecting")
            # Updates sent while the socket is down are lost: those orders end up "missing".
            for attempt in itertools.count():
                if self.stopping:
                    return
                try:
                    await self._handshake(customer)
                    customer.reconnects += 1
                    break
                except (TimeoutError, OSError, WebSocketException) as error:
                    _log(f"customer {customer.user_id}: reconnect failed ({_describe(error)})")
                    if _refused(error):
                        return  # its remaining orders count as missing
                    await asyncio.sleep(min(5.0, 0.2 * 2**attempt))

    async def check_http(self) -> None:
        try:
            connection = await asyncio.wait_for(self.pool.acquire(), 20)
        except (TimeoutError, OSError) as error:
            raise CannotConnect(f"cannot connect to {self.plan['http']}: {_describe(error)}") from error
        self.pool.release(connection, True)

    # --- one rate -----------------------------------------------------------------------------

    async def _send(self, order: Order, key: bytes) -> None:
        request = self.heads[order.customer] + key + b"\r\n\r\n" + self.body
        try:
            async with asyncio.timeout(self.request_timeout):
                for attempt in range(3):
                    connection = await self.pool.acquire()
                    if order.t0 is None:
                        order.t0 = clock()
                    try:
                        status, body, keep = await connection.exchange(request)
                    except Stale:
                        self.pool.release(connection, False)
                        if attempt == 2:
                            raise
                        continue
                    except BaseException:
                        self.pool.release(connection, False)
                        raise
                    order.answered = clock()
                    self.pool.release(connection, keep)
                    break
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            Stale,
            TimeoutError,
        ) as error:
            order.error = _describe(error)
            return
        except asyncio.CancelledError:
            order.error = "unfinished"
            raise
        order.status = status
        if status == 201:
            try:
                order.order_id = json.loads(body)["id"]
            except (ValueError, KeyError, TypeError):
                order.error = "201 without an id"

    async def run_rate(self, rate: float, phase: str, warmup_seconds: float, seconds: float) -> dict[str, Any]:
        warm, measured = schedule(rate, warmup_seconds, seconds)
        total = warm + measured
        interval = 1 / rate
        customers = len(self.customers)
        prefix = f"e2e-{self.run_id}-{phase}-{rate:g}-".encode()
        orders: list[Order] = []
        tasks: set[asyncio.Task[None]] = set()
        _log(f"{phase} {rate:g}/s: {total} orders over {total * interval:.1f} s ({warm} warm-up)")
        cpu_before, wall_before = _cpu(), clock()
        self.pool.peak = self.pool.open
        start = clock() + 0.05
        next_progress = start + 5
        for seq in range(total):
            due = start + seq * interval
            pause = due - clock()
            if pause > 0:
                await asyncio.sleep(pause)
            if seq == warm:
                _say("window", {"phase": phase, "rate": _number(rate), "event": "start"})
            order = Order(seq, seq % customers, due, seq >= warm)
            orders.append(order)
            task = asyncio.ensure_future(self._send(order, prefix + str(seq).encode()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if due >= next_progress:
                next_progress += 5
                _log(
                    f"{phase} {rate:g}/s: {seq + 1}/{total} due, {len(tasks)} POSTs in flight, "
                    f"{self.pool.open} connections"
                )
        sending_ended = clock()
        _say("window", {"phase": phase, "rate": _number(rate), "event": "end"})
        # Outstanding answers and paid updates, for at most wait_seconds.
        waiting = [o for o in orders if o.measured]
        deadline = sending_ended + self.wait_seconds
        while clock() < deadline:
            waiting = [
                o
                for o in waiting
                if (o.answered is None and not o.error)
                or (o.order_id is not None and o.order_id not in self.paid and o.order_id not in self.failed)
            ]
            if not waiting and not tasks:
                break
            await asyncio.sleep(0.05)
        if tasks:
            _log(f"{phase} {rate:g}/s: {len(tasks)} POSTs unanswered after the wait; cancelled")
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*list(tasks), return_exceptions=True)
        cpu, wall = _cpu() - cpu_before, clock() - wall_before
        result = summarize(
            rate=_number(rate),
            phase=phase,
            seconds=seconds,
            orders=orders,
            paid=self.paid,
            failed=self.failed,
            late_after=self.late_after,
        )
        result.update(
            driver_cpu_pct=round(100 * cpu / wall, 1),
            connections=self.pool.peak,
            ws_drops=sum(c.drops for c in self.customers),
        )
        _log(
            f"{phase} {rate:g}/s: sent {result['sent']} paid {result['paid']} missing {result['missing']} "
            f"errors {result['errors']} e2e p50 {result['e2e_ms']['p50']} p99 {result['e2e_ms']['p99']} ms, "
            f"POST p50 {result['post_ms']['p50']} p99 {result['post_ms']['p99']} ms, "
            f"late {result['late_sends']}, achieved {result['achieved_rate']}/s, driver CPU {result['driver_cpu_pct']}%"
        )
        return result

    async def run(self) -> dict[str, Any]:
        await self.check_http()
        await self.open_sockets()
        plan = self.plan
        warmup = float(plan.get("warmup_seconds", 3))
        steady: list[dict[str, Any]] = []
        for rate in plan.get("rates", []):
            result = await self.run_rate(float(rate), "steady", warmup, float(plan.get("seconds", 30)))
            _say("result", result)
            steady.append(result)
            await asyncio.sleep(self.pause_seconds)
        searched: list[dict[str, Any]] = []
        highest: float | int | None = None
        stop: dict[str, Any] | None = None
        search = plan.get("search")
        if search:
            limit = float(search.get("p99_limit_ms", 1000))
            budget = float(search.get("budget_seconds", math.inf))
            search_warmup, seconds = float(search.get("warmup_seconds", warmup)), float(search.get("seconds", 15))
            started = clock()
            start, step, maximum = float(search["start"]), float(search.get("step", 50)), float(search.get("max", 1000))
            missed: float | None = None
            while (rate := next_search_rate(start, step, maximum, highest, missed)) is not None:
                if clock() - started + search_warmup + seconds > budget:
                    stop = {"rate": _number(rate), "reason": f"the search's time budget ({budget:g} s) is spent"}
                    _log(f"search stops before {rate:g}/s: {stop['reason']}")
                    break
                result = await self.run_rate(rate, "search", search_warmup, seconds)
                _say("result", result)
                searched.append(result)
                reason = stop_reason(result, limit)
                if reason is None:
                    highest = _number(rate)
                    await asyncio.sleep(self.pause_seconds)
                    continue
                missed = rate
                stop = {"rate": _number(rate), "reason": reason}
                _log(f"{rate:g}/s is not sustained: {reason}")
                # An overloaded rate leaves a backlog in the queues: let it drain before the next.
                await asyncio.sleep(max(self.pause_seconds, float(search.get("drain_seconds", 10))))
        return {"steady": steady, "highest_rate_p99_under_limit": highest, "search": searched, "search_stop": stop}

    async def close(self) -> None:
        self.stopping = True
        for task in self.readers:
            task.cancel()
        sockets = [c.ws for c in self.customers if c.ws is not None]
        await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True), 10)
        self.pool.close_all()


def _refused(error: BaseException) -> bool:
    """The server refuses this customer's token: HTTP 401/403, or accepted and closed 4401/4403."""
    if isinstance(error, InvalidStatus):
        return error.response.status_code in (401, 403)
    return isinstance(error, ConnectionClosed) and error.rcvd is not None and error.rcvd.code in (4401, 4403)


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionClosed):
        return f"closed {error.rcvd.code}" if error.rcvd else "closed without a close frame"
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(error, Stale):
        return "connection closed by the server"
    text = str(error)
    return type(error).__name__ + (
        f" {text[:80]}" if text and not isinstance(error, asyncio.IncompleteReadError) else ""
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _main(plan: dict[str, Any]) -> int:
    driver = Driver(plan)
    budget = time_budget(plan)
    try:
        async with asyncio.timeout(budget):
            summary = await driver.run()
    except CannotConnect as error:
        _log(f"cannot connect: {error}")
        return 2
    except TimeoutError:
        _log(f"gave up: the run took longer than its {budget:.0f} s budget")
        return 3
    finally:
        try:
            await driver.close()
        except (TimeoutError, OSError):
            pass
    _say("summary", summary)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m bench.e2e_driver PLAN.json\n")
        return 1
    try:
        with open(argv[1]) as plan_file:
            plan = json.load(plan_file)
        Driver(plan)  # validates the plan's shape before anything connects
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.stderr.write(f"e2e: bad plan {argv[1]}: {type(error).__name__} {error}\n")
        return 1
    raise_open_files(len(plan["customers"]) + int(plan.get("connections", 256)))
    return asyncio.run(_main(plan))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
