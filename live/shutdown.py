"""daphne going away: on SIGTERM every open live socket is closed with 1001 before the process ends.

daphne stops its reactor on SIGTERM at once and cancels the consumers, so a page would see its
socket drop (1006) with nothing said. Instead, once daphne's reactor runs, ``install()`` takes
over SIGTERM and SIGINT: the first closes every socket of this process with 1001 ("going away":
the pages reconnect at once, to another daphne or this one restarted, and resume from the
version they had), waits up to ``LIVE_GOING_AWAY_SECONDS`` for their close handshakes (each
consumer's ``disconnect()`` leaves its groups and gives back its connection slot as usual),
then stops the reactor. A socket opened meanwhile is refused with 1001 too. A second signal
stops at once.

daphne's WebSocket library lets an application close only with 1000 or 3000-4999 and raises
on anything else; ``install()`` lets it send the RFC 6455 codes a server means (1001 here, and
the consumers' 1009 and 1013), which it otherwise could not send at all.

The open sockets are this process's own registry (``opened`` / ``closed``, called by the
consumers); under another ASGI server (the benchmark's uvicorn) nothing is installed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import weakref
from types import FrameType
from typing import Any, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

# RFC 6455: the server is going away (a restart, a deploy).
CLOSE_GOING_AWAY = 1001
# Close codes of RFC 6455 (and IANA's registry) an endpoint may send that autobahn refuses an
# application: going away, policy violation, too big, internal error, restart, try again later.
SERVER_CLOSE_CODES = frozenset({1001, 1008, 1009, 1011, 1012, 1013, 1014})


class _Socket(Protocol):
    async def shut(self, code: int, reason: str = "") -> None: ...


_open: weakref.WeakSet[Any] = weakref.WeakSet()
_state = {"going_away": False}
_tasks: set[asyncio.Future[None]] = set()  # the closing task, kept from the garbage collector


def opened(socket: _Socket) -> None:
    _open.add(socket)


def closed(socket: _Socket) -> None:
    _open.discard(socket)


def going_away() -> bool:
    return _state["going_away"]


def open_count() -> int:
    return len(_open)


async def close_all(*, wait: float) -> int:
    """Close every open socket of the process with 1001; wait up to ``wait`` seconds for them to
    be gone. The number that were open."""
    _state["going_away"] = True
    sockets = list(_open)
    results = await asyncio.gather(
        *(socket.shut(CLOSE_GOING_AWAY, "server going away") for socket in sockets), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            logger.warning("a live socket could not be closed with 1001: %r", result)
    deadline = time.monotonic() + wait
    while _open and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return len(sockets)


def install() -> None:
    """Under daphne (its Twisted reactor is loaded), take over SIGTERM/SIGINT once it runs."""
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    _let_daphne_send_server_codes()
    reactor.callWhenRunning(_take_over_signals, reactor)


def _let_daphne_send_server_codes() -> None:
    from daphne.ws_protocol import WebSocketProtocol  # type: ignore[import-untyped]

    if getattr(WebSocketProtocol.serverClose, "passline", False):
        return
    close = WebSocketProtocol.serverClose

    def serverClose(self: Any, code: int | None = None) -> None:
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)  # the frame itself, as autobahn's own 1002s
        else:
            close(self, code)

    serverClose.passline = True  # type: ignore[attr-defined]
    WebSocketProtocol.serverClose = serverClose


def _take_over_signals(reactor: Any) -> None:
    # Only where daphne installed the reactor's own handlers (not a test server's thread).
    if not getattr(reactor, "_installSignalHandlers", False):
        return

    def stop() -> None:
        if reactor.running:
            reactor.stop()

    def go_away() -> None:
        async def closing() -> None:
            started = time.monotonic()
            try:
                count = await close_all(wait=settings.LIVE_GOING_AWAY_SECONDS)
                logger.info(
                    "daphne going away: closed its live sockets with 1001",
                    extra={"sockets": count, "left": open_count(), "ms": round((time.monotonic() - started) * 1000)},
                )
            finally:
                stop()

        _tasks.add(asyncio.ensure_future(closing()))

    def handle(signum: int, frame: FrameType | None) -> None:
        if going_away():
            reactor.callFromThread(stop)
            return
        _state["going_away"] = True
        logger.info("daphne stopping: closing %d live sockets with 1001", open_count())
        reactor.callFromThread(go_away)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
