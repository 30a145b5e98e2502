"""The chaos soak's customers, a process of their own (no Django here): orders placed at a
steady rate through the JSON API, a WebSocket tracker on a share of them, a share cancelled,
and the outcome of every request, for the availability figure.

Usage: ``python -m bench.chaos_client PLAN.json``; the plan::

    {"bases": ["http://127.0.0.1:8001", "http://127.0.0.1:8002"],
     "customers": [{"token": "...", "id": 12}],
     "order": {"restaurant_id": 1, "items": [...], "delivery_address": "..."},
     "rate": 5, "seconds": 600, "track_every": 5, "cancel_every": 10, "seed": 1,
     "run_id": "ab12cd", "request_timeout": 10, "give_up_seconds": 120}

Each order is sent at its slot (open loop, one every 1/rate s, round-robin over the customers)
with an ``Idempotency-Key`` of its own, to the web servers in turn (one that refused a
connection is passed over for 5 s, as a load balancer's health check would). A request that
gets no answer (a refused or reset connection, a time-out) or a 5xx is sent again with the
same key after a back-off (0.25 s doubling to 4 s), for at most ``give_up_seconds``: what a
careful client does (docs/contract.md, Idempotency). Every attempt counts in ``requests``: ``ok`` (an answer
that does its job: 2xx, or 409 to a cancel of an order that has ended), ``error`` (any other
HTTP answer) or ``connection`` (no answer at all).

Every ``track_every``-th order gets a tracker on ``/ws/orders/{id}/`` once it is accepted, as
the order page opens one: it keeps the highest version seen (snapshot or ``order.update``) and,
when its socket drops, reconnects to either server (back-off 0.25 s doubling to 4 s) and sends
``resume`` after the version it last saw, as the page does. Every ``cancel_every``-th order is
cancelled 0-3 s after it is accepted (``POST /orders/{id}/cancel``): the refund path.

Lines on stdout: ``tick {...}`` every 10 s while sending; ``placed {...}`` once sending has
ended and every order has its answer or was given up (each order's key, id, first attempt and
answer times, attempts; the request counts; when requests failed); then one answer line per
command read on stdin: ``report`` (each tracker resumes and pings, then ``report {...}`` with
every tracker's last version and status), ``quit``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Origin

from bench.harness import raise_open_files
from bench.http_pool import Connection

ORIGIN = Origin("http://127.0.0.1")  # in ALLOWED_HOSTS, as a browser on the site would send it
ORDERS_PATH = "/api/v1/orders"
# A tracker refused for good: not authenticated, or not this customer's order.
REFUSED = (4401, 4403)
# A server that refused a connection is passed over this long.
DOWN_SECONDS = 5.0


def _say(kind: str, body: dict[str, Any]) -> None:
    sys.stdout.write(f"{kind} {json.dumps(body, separators=(',', ':'))}\n")
    sys.stdout.flush()


def _log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} chaos client: {message}\n")
    sys.stderr.flush()


def backoff(attempt: int) -> float:
    return min(4.0, 0.25 * 2**attempt) * random.uniform(0.8, 1.2)  # nosec B311 - jitter, not a secret


class Tracker:
    """One order page's socket: the highest version of the order it has seen, and its status."""

    def __init__(self, order_id: int, token: str, seq: int) -> None:
        self.order_id, self.token, self.seq = order_id, token, seq
        self.version, self.status = 0, ""
        self.ws: ClientConnection | None = None
        self.connects = self.drops = self.failed_connects = 0
        self.refused = ""
        self.pongs = 0
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None  # held here: the loop keeps only a weak reference

    def see(self, version: int, status: str) -> None:
        if version > self.version:
            self.version, self.status = version, status
        self.changed.set()

    def state(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "version": self.version,
            "status": self.status,
            "open": self.ws is not None,
            "connects": self.connects,
            "drops": self.drops,
            "failed_connects": self.failed_connects,
            "refused": self.refused,
        }


class Client:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.bases = [urlsplit(base) for base in plan["bases"]]
        self.customers = plan["customers"]
        self.body = json.dumps(plan["order"], separators=(",", ":")).encode()
        self.rate = float(plan["rate"])
        self.seconds = float(plan["seconds"])
        self.track_every = int(plan.get("track_every", 5))
        self.cancel_every = int(plan.get("cancel_every", 10))
        self.request_timeout = float(plan.get("request_timeout", 10))
        self.give_up = float(plan.get("give_up_seconds", 120))
        self.run_id = str(plan["run_id"])
        self.random = random.Random(plan.get("seed", 0))  # nosec B311 - a reproducible soak, not a secret
        self.turn = 0
        self.down_until: dict[str, float] = {}  # server → until when it is passed over
        self.requests: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.failures: list[tuple[float, str]] = []  # (time, what) of every request that failed
        self.orders: list[dict[str, Any]] = []
        self.cancels: list[dict[str, Any]] = []
        self.trackers: list[Tracker] = []
        self.stopping = False

    # --- HTTP -------------------------------------------------------------------------------------

    def _next_base(self) -> Any:
        """The next server in turn, passing over one that refused or dropped a connection in the
        last DOWN_SECONDS (while another is left), as a load balancer's passive health check
        does (nginx's max_fails=1 fail_timeout)."""
        now = time.monotonic()
        for _ in self.bases:
            self.turn += 1
            base = self.bases[self.turn % len(self.bases)]
            if self.down_until.get(base.netloc, 0) <= now:
                return base
        return base

    def _failed(self, base: Any) -> None:
        self.down_until[base.netloc] = time.monotonic() + DOWN_SECONDS

    async def request(
        self, path: str, token: str, body: bytes, key: str | None, *, ok: tuple[int, ...]
    ) -> tuple[int, dict[str, Any]]:
        """One POST to the next server, on a connection of its own: (status, JSON body); status 0
        when no answer came. Counted: ``ok`` are the statuses that do the request's job."""
        base = self._next_base()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {base.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
            + (f"Idempotency-Key: {key}\r\n" if key else "")
            + "\r\n"
        ).encode()
        writer = None
        try:
            async with asyncio.timeout(self.request_timeout):
                reader, writer = await asyncio.open_connection(base.hostname, base.port, limit=2**20)
                status, raw, _ = await Connection(reader, writer).exchange(head + body)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            what = "timeout" if isinstance(error, TimeoutError) else type(error).__name__
            self._count("connection", what, base.netloc)
            if not isinstance(error, TimeoutError):  # a slow server is not a dead one
                self._failed(base)
            return 0, {}
        finally:
            if writer is not None:
                writer.close()
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        code = (answer.get("error") or {}).get("code", "")
        self._count("ok" if status in ok else "error", f"{status} {code}".strip(), base.netloc)
        return status, answer

    def _count(self, outcome: str, what: str, server: str) -> None:
        self.requests[outcome] += 1
        self.statuses[what] += 1
        if outcome != "ok":
            self.failures.append((round(time.time(), 3), f"{what} {server}"))

    # --- orders -----------------------------------------------------------------------------------

    async def place(self, seq: int) -> None:
        customer = self.customers[seq % len(self.customers)]
        key = f"chaos-{self.run_id}-{seq}"
        order: dict[str, Any] = {"seq": seq, "key": key, "first_at": round(time.time(), 3), "attempts": 0}
        self.orders.append(order)
        deadline = time.monotonic() + self.give_up
        while True:
            order["attempts"] += 1
            status, answer = await self.request(ORDERS_PATH, customer["token"], self.body, key, ok=(201,))
            if status == 201 and "id" in answer:
                order.update(id=answer["id"], accepted_at=round(time.time(), 3), version=answer.get("version"))
                break
            if status and status < 500 and status != 429:  # a refusal: sending it again changes nothing
                order["refused"] = f"{status} {(answer.get('error') or {}).get('code', '')}"
                return
            if time.monotonic() > deadline:
                order["gave_up"] = status or "no answer"
                return
            await asyncio.sleep(backoff(order["attempts"] - 1))
        if seq % self.track_every == 0:
            tracker = Tracker(order["id"], customer["token"], seq)
            self.trackers.append(tracker)
            tracker.task = asyncio.ensure_future(self.track(tracker))
        if seq % self.cancel_every == self.cancel_every // 2:
            await asyncio.sleep(self.random.uniform(0, 3))
            await self.cancel(order, customer["token"])

    async def cancel(self, order: dict[str, Any], token: str) -> None:
        """Cancel an accepted order: 200, or 409 once it has ended (or a lost answer's retry
        finds it cancelled already)."""
        record: dict[str, Any] = {"id": order["id"], "at": round(time.time(), 3), "attempts": 0}
        self.cancels.append(record)
        deadline = time.monotonic() + self.give_up
        while True:
            record["attempts"] += 1
            status, answer = await self.request(f"{ORDERS_PATH}/{order['id']}/cancel", token, b"", None, ok=(200, 409))
            if status and (status < 500 and status != 429):
                record["status"] = status
                record["code"] = (answer.get("error") or {}).get("code", "")
                return
            if time.monotonic() > deadline:
                record["gave_up"] = status or "no answer"
                return
            await asyncio.sleep(backoff(record["attempts"] - 1))

    # --- trackers ---------------------------------------------------------------------------------

    async def track(self, tracker: Tracker) -> None:
        attempt = 0
        while not self.stopping:
            base = self._next_base()
            url = f"ws://{base.netloc}/ws/orders/{tracker.order_id}/"
            try:
                ws = await connect(
                    url,
                    origin=ORIGIN,
                    additional_headers={"Authorization": f"Bearer {tracker.token}"},
                    compression=None,
                    ping_interval=None,
                    open_timeout=10,
                    close_timeout=2,
                    max_queue=None,
                )
            except (OSError, TimeoutError, WebSocketException) as error:
                tracker.failed_connects += 1
                if isinstance(error, OSError):
                    self._failed(base)
                if isinstance(error, InvalidStatus) and error.response.status_code in (401, 403):
                    tracker.refused = f"HTTP {error.response.status_code}"
                    return
                await asyncio.sleep(backoff(attempt))
                attempt += 1
                continue
            resume_after = tracker.version
            try:
                async with asyncio.timeout(10):
                    first = json.loads(await ws.recv())
                if first.get("type") == "order.snapshot":
                    tracker.see(int(first["order"]["version"]), first["order"]["status"])
                if resume_after:
                    await ws.send(json.dumps({"type": "resume", "after_version": resume_after}))
                tracker.ws, attempt = ws, 0
                tracker.connects += 1
                async for raw in ws:
                    self.frame(tracker, raw)
            except ConnectionClosed as closed:
                if closed.rcvd is not None and closed.rcvd.code in REFUSED:
                    tracker.refused = f"closed {closed.rcvd.code}"
                    tracker.ws = None
                    return
            except (OSError, TimeoutError, ValueError, KeyError, TypeError, WebSocketException):
                pass
            tracker.ws = None
            if ws.transport is not None:
                ws.transport.abort()
            if self.stopping:
                return
            tracker.drops += 1
            await asyncio.sleep(backoff(attempt))
            attempt += 1

    @staticmethod
    def frame(tracker: Tracker, raw: str | bytes) -> None:
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "order.update" and frame.get("order_id") == tracker.order_id:
            tracker.see(int(frame["version"]), frame["status"])
        elif kind == "order.snapshot":
            tracker.see(int(frame["order"]["version"]), frame["order"]["status"])
        elif kind == "pong":
            tracker.pongs += 1
            tracker.changed.set()

    async def report(self, timeout: float) -> dict[str, Any]:
        """Every open tracker asks for what it may have missed and pings: once its pong is back,
        whatever the server had for it has arrived. Then every tracker's state."""
        before = {id(t): t.pongs for t in self.trackers}
        for tracker in self.trackers:
            if tracker.ws is not None:
                try:
                    await tracker.ws.send(json.dumps({"type": "resume", "after_version": tracker.version}))
                    await tracker.ws.send('{"type":"ping"}')
                except (ConnectionClosed, OSError):
                    pass
        deadline = time.monotonic() + timeout
        for tracker in self.trackers:
            while tracker.ws is not None and tracker.pongs == before[id(tracker)]:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                tracker.changed.clear()
                try:
                    await asyncio.wait_for(tracker.changed.wait(), left)
                except TimeoutError:
                    break
        return {"trackers": [t.state() for t in self.trackers]}

    # --- the run ----------------------------------------------------------------------------------

    async def run(self) -> None:
        total = int(self.rate * self.seconds)
        interval = 1 / self.rate
        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic() + 0.05
        next_tick = start + 10
        _log(f"{total} orders at {self.rate:g}/s over {self.seconds:g} s, on {len(self.bases)} servers")
        for seq in range(total):
            pause = start + seq * interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            task = asyncio.ensure_future(self.place(seq))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if time.monotonic() >= next_tick:
                next_tick += 10
                _say("tick", self.tick(seq + 1, len(tasks)))
        _log(f"sending ended; waiting for {len(tasks)} orders still in flight")
        if tasks:
            await asyncio.gather(*list(tasks), return_exceptions=True)
        _say(
            "placed",
            {
                "orders": self.orders,
                "cancels": self.cancels,
                "requests": dict(self.requests),
                "statuses": dict(self.statuses),
                "failures": self.failures,
            },
        )

    def tick(self, sent: int, in_flight: int) -> dict[str, Any]:
        return {
            "sent": sent,
            "in_flight": in_flight,
            "accepted": sum(1 for o in self.orders if "id" in o),
            "requests": dict(self.requests),
            "trackers_open": sum(1 for t in self.trackers if t.ws is not None),
            "trackers": len(self.trackers),
        }

    async def commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                return
            if line.startswith("report"):
                _say("report", await self.report(float(line.split()[1]) if " " in line else 10))

    async def close(self) -> None:
        self.stopping = True
        for tracker in self.trackers:
            if tracker.task is not None:
                tracker.task.cancel()
        sockets = [t.ws for t in self.trackers if t.ws is not None]
        await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True), 10)


async def _main(plan: dict[str, Any]) -> None:
    client = Client(plan)
    try:
        await client.run()
        await client.commands()
    finally:
        try:
            await client.close()
        except TimeoutError:
            pass


if __name__ == "__main__":
    with open(sys.argv[1]) as plan_file:
        plan = json.load(plan_file)
    raise_open_files(4096)
    asyncio.run(_main(plan))
