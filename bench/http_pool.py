"""The end-to-end driver's HTTP/1.1 client: a small pool of keep-alive connections that
writes one request and reads one response at a time each (``bench/e2e_driver.py`` says why
not a load tool's client)."""

from __future__ import annotations

import asyncio
import collections

from bench.e2e_stats import parse_head


class Stale(Exception):
    """A reused keep-alive connection the server had closed before our request: safe to retry
    (the Idempotency-Key makes a repeated POST harmless anyway)."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = False

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Write one request, read its response: (status, body, keep-alive)."""
        reused, self.used = self.used, True
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            if reused and (not isinstance(error, asyncio.IncompleteReadError) or not error.partial):
                raise Stale() from error
            raise
        status, headers = parse_head(head)
        keep = headers.get("connection", "").lower() != "close"
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                chunks.append((await self.reader.readexactly(size + 2))[:-2])
            body = b"".join(chunks)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body, keep = await self.reader.read(), False
        return status, body, keep

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections to one server, opened as needed up to ``size``; a request that
    finds them all busy waits for the first one freed (and starts late)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.idle: list[Connection] = []
        self.open = 0
        self.waiters: collections.deque[asyncio.Future[Connection | None]] = collections.deque()
        self.opened_total = 0
        self.peak = 0  # the most connections open at once

    async def acquire(self) -> Connection:
        if self.idle:
            return self.idle.pop()  # the most recently used: fewer connections stay warm
        if self.open >= self.size:
            waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over as we were cancelled
                    self._give_back(waiter.result())
                raise
            if handed is not None:
                return handed
            # handed a free slot (a connection was closed): open one in it
        else:
            self.open += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        except BaseException:
            self._give_back(None)
            raise
        self.opened_total += 1
        self.peak = max(self.peak, self.open)
        return Connection(reader, writer)

    def release(self, connection: Connection, reusable: bool) -> None:
        if not reusable:
            connection.close()
            self._give_back(None)
        else:
            self._give_back(connection)

    def _give_back(self, connection: Connection | None) -> None:
        """A connection (or, with None, the slot of a closed one) goes to the first waiter."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is None:
            self.open -= 1
        else:
            self.idle.append(connection)

    def close_all(self) -> None:
        for connection in self.idle:
            connection.close()
        self.open -= len(self.idle)
        self.idle.clear()


# --- the customers' sockets -------------------------------------------------------------------
