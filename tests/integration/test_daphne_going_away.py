"""A daphne stopped with SIGTERM closes every open live socket with 1001 ("going away"), so the
pages reconnect at once instead of finding a dead connection: a real daphne subprocess, real
WebSocket clients, the test database and Redis."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets

from live.shutdown import CLOSE_GOING_AWAY
from ordering.services import api_token_issue
from tests.support import running_daphne


@dataclass
class Daphne:
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def daphne(transactional_db, tmp_path: Path) -> Iterator[Daphne]:
    log_path = tmp_path / "daphne.log"
    with running_daphne(log_path) as (port, proc):
        yield Daphne(port, proc, log_path)


def test_sigterm_closes_every_open_socket_with_going_away_then_exits(daphne, restaurant, customer):
    origin = f"http://127.0.0.1:{daphne.port}"
    sockets = {
        "board": (f"ws://127.0.0.1:{daphne.port}/ws/boards/{restaurant.pk}/", {"Origin": origin}),
        "menu": (f"ws://127.0.0.1:{daphne.port}/ws/menus/{restaurant.pk}/", {"Origin": origin}),
        "me": (
            f"ws://127.0.0.1:{daphne.port}/ws/me/",
            {"Authorization": f"Bearer {api_token_issue(user=customer)}"},
        ),
    }

    async def scenario() -> dict[str, int | None]:
        opened = {
            name: await websockets.connect(url, additional_headers=headers) for name, (url, headers) in sockets.items()
        }
        for socket in opened.values():  # each one live: it answers a ping
            await socket.send('{"type": "ping"}')
            while await asyncio.wait_for(socket.recv(), 10) != '{"type": "pong"}':
                pass
        # when: the process is asked to stop
        daphne.proc.terminate()
        codes: dict[str, int | None] = {}
        for name, socket in opened.items():
            try:
                while True:
                    await asyncio.wait_for(socket.recv(), 10)
            except websockets.ConnectionClosed as closed:
                codes[name] = closed.rcvd.code if closed.rcvd is not None else None
        return codes

    codes = asyncio.run(scenario())

    # then: every client was told "going away", and daphne exited cleanly after
    assert codes == dict.fromkeys(sockets, CLOSE_GOING_AWAY), daphne.log()[-3000:]
    assert daphne.proc.wait(timeout=15) == 0, daphne.log()[-3000:]
    assert "closed its live sockets with 1001" in daphne.log()
