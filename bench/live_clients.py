"""WebSocket clients of the live benchmark, in a process of their own (no Django here).

Started by ``bench/live.py`` with the path of a JSON plan; talks to it by lines: it
prints ``ready {...}`` once its sockets are open, then answers each command read from stdin
(``count``, ``resume``, ``wait``, ``ping``, ``report``, ``quit``) with one line
``<command> {...}``. Arrival times are ``time.time()`` taken as the frame is read, the same
clock as the driver's commit times (one machine).

Modes: ``track`` (each socket watches one order and records every ``order.update``),
``kitchen`` (many sockets on one kitchen; records ``order.update`` frames, ignores the rest)
and ``idle`` (sockets that only stay open, answering the server's pings).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Origin

from bench.harness import raise_open_files

ORIGIN = Origin("http://127.0.0.1")  # in ALLOWED_HOSTS, as a browser on the site would send it


def _say(kind: str, body: dict[str, Any]) -> None:
    sys.stdout.write(f"{kind} {json.dumps(body, separators=(',', ':'))}\n")
    sys.stdout.flush()


class Socket:
    """One client socket and what it saw."""

    def __init__(self, url: str, token: str, key: int) -> None:
        self.url, self.token, self.key = url, token, key
        self.ws: ClientConnection | None = None
        self.error = ""
        self.closed = ""
        self.last_live = 0  # the last version seen before the resume
        self.last_seen = 0
        self.seen: list[tuple[int, int, float, str]] = []  # (order id, version, arrival, "live"/"resume")
        self.pongs = 0
        self.changed = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None  # held here: the event loop keeps only a weak reference


class Clients:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.mode: str = plan["mode"]
        self.sockets = [Socket(plan["base"] + path, token, key) for key, path, token in plan["targets"]]
        self.connect_concurrency: int = plan.get("connect_concurrency", 50)
        self.phase = "live"
        self.retries = 0

    async def open_all(self) -> None:
        gate = asyncio.Semaphore(self.connect_concurrency)
        started = time.monotonic()
        await asyncio.gather(*(self._open(s, gate) for s in self.sockets))
        opened = [s for s in self.sockets if s.ws is not None]
        errors: dict[str, int] = {}
        for s in self.sockets:
            if s.error:
                errors[s.error] = errors.get(s.error, 0) + 1
        _say(
            "ready",
            {
                "opened": len(opened),
                "failed": len(self.sockets) - len(opened),
                "errors": errors,
                "retries": self.retries,
                "seconds": round(time.monotonic() - started, 2),
            },
        )

    async def _open(self, s: Socket, gate: asyncio.Semaphore) -> None:
        # A refused handshake (daphne drops one the application has not accepted within its
        # 5 s handshake timeout) is tried again, as the pages' own reconnect would.
        for attempt in range(3):
            async with gate:
                try:
                    await self._handshake(s)
                    break
                except (TimeoutError, OSError, WebSocketException) as error:
                    rcvd = getattr(error, "rcvd", None)
                    s.error = type(error).__name__ + (f" {rcvd.code}" if rcvd else "")
                    s.ws = None
                    self.retries += 1
            await asyncio.sleep(1 + attempt)
        if s.ws is not None:
            s.error = ""
            s.reader = asyncio.ensure_future(self._read(s))

    async def _handshake(self, s: Socket) -> None:
        # No client-side keepalive (daphne pings and the library answers); no compression
        # (daphne does not offer it): the frames are what a page gets.
        s.ws = await connect(
            s.url,
            origin=ORIGIN,
            additional_headers={"Authorization": f"Bearer {s.token}"},
            compression=None,
            ping_interval=None,
            open_timeout=120,
            close_timeout=5,
            max_queue=None,
        )
        if self.mode != "idle":
            first = json.loads(await asyncio.wait_for(s.ws.recv(), 60))
            if self.mode == "track":
                s.last_seen = s.last_live = first["order"]["version"]

    async def _read(self, s: Socket) -> None:
        assert s.ws is not None
        try:
            async for raw in s.ws:
                at = time.time()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "order.update":
                    version = frame["version"]
                    s.seen.append((frame["order_id"], version, at, self.phase))
                    if self.phase == "live":
                        s.last_live = max(s.last_live, version)
                    s.last_seen = max(s.last_seen, version)
                    s.changed.set()
                elif kind == "pong":
                    s.pongs += 1
                    s.changed.set()
        except ConnectionClosed as closed:
            s.closed = str(closed.rcvd.code) if closed.rcvd else "no close frame"
        s.ws = None
        s.changed.set()

    # --- commands ---------------------------------------------------------------------------

    def count(self) -> dict[str, Any]:
        return {
            "updates": sum(len(s.seen) for s in self.sockets),
            "open": sum(1 for s in self.sockets if s.ws is not None),
        }

    async def resume(self, final_version: int, timeout: float) -> dict[str, Any]:
        """Every tracker asks for what came after the last version it saw live; waits until
        each has ``final_version`` (or the time is up)."""
        self.phase = "resume"
        sent = 0
        for s in self.sockets:
            if s.ws is not None:
                await s.ws.send(json.dumps({"type": "resume", "after_version": s.last_live}))
                sent += 1
        await self._until(lambda s: s.last_seen >= final_version, timeout)
        return {"sent": sent, "complete": sum(1 for s in self.sockets if s.last_seen >= final_version)}

    async def wait(self, order_id: int, version: int, timeout: float) -> dict[str, Any]:
        """Arrival time of ``order.update`` (order_id, version) on each socket."""

        def has(s: Socket) -> bool:
            return any(o == order_id and v == version for o, v, _, _ in s.seen)

        await self._until(has, timeout)
        arrivals = [at for s in self.sockets for o, v, at, _ in s.seen if o == order_id and v == version]
        return {"arrivals": arrivals, "missing": len(self.sockets) - len(arrivals)}

    async def ping(self, timeout: float) -> dict[str, Any]:
        """Ask every socket for an application-level pong: the ones that answer are held."""
        before = {id(s): s.pongs for s in self.sockets}
        for s in self.sockets:
            if s.ws is not None:
                try:
                    await s.ws.send('{"type":"ping"}')
                except ConnectionClosed:
                    pass
        await self._until(lambda s: s.pongs > before[id(s)], timeout)
        closed: dict[str, int] = {}
        for s in self.sockets:
            if s.closed:
                closed[s.closed] = closed.get(s.closed, 0) + 1
        return {
            "answered": sum(1 for s in self.sockets if s.pongs > before[id(s)]),
            "open": sum(1 for s in self.sockets if s.ws is not None),
            "closed": closed,
        }

    def report(self) -> dict[str, Any]:
        return {
            "seen": [[o, v, at, phase] for s in self.sockets for o, v, at, phase in s.seen],
            "closed": [s.closed for s in self.sockets if s.closed],
        }

    async def _until(self, done, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for s in self.sockets:
            while not done(s) and s.ws is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                s.changed.clear()
                try:
                    await asyncio.wait_for(s.changed.wait(), left)
                except TimeoutError:
                    return

    async def close_all(self) -> None:
        await asyncio.gather(*(s.ws.close() for s in self.sockets if s.ws is not None), return_exceptions=True)


async def _commands(clients: Clients) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "quit":
            await clients.close_all()
            return
        command, *args = line.split()
        if command == "count":
            _say(command, clients.count())
        elif command == "resume":
            _say(command, await clients.resume(int(args[0]), float(args[1])))
        elif command == "wait":
            _say(command, await clients.wait(int(args[0]), int(args[1]), float(args[2])))
        elif command == "ping":
            _say(command, await clients.ping(float(args[0])))
        elif command == "report":
            _say(command, clients.report())


async def _main(plan: dict[str, Any]) -> None:
    clients = Clients(plan)
    await clients.open_all()
    await _commands(clients)


if __name__ == "__main__":
    with open(sys.argv[1]) as plan_file:  # a file: 10,000 tokens do not fit in one argument
        plan = json.load(plan_file)
    raise_open_files(len(plan["targets"]))
    asyncio.run(_main(plan))
