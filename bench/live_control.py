"""The live benchmark's WebSocket client processes (``bench.live_clients``): a plan in, one
answer line per command out, many sockets each."""

from __future__ import annotations

import json
import math
import queue
import subprocess
import sys
import threading
import time
from typing import Any

from bench.harness import HOST, Processes


class ClientProcess:
    """A ``bench.live_clients`` process: a plan in, one answer line per command out."""

    def __init__(self, processes: Processes, name: str, plan: dict[str, Any]) -> None:
        path = processes.dir / f"{name}.json"
        path.write_text(json.dumps(plan))
        self.process = processes.start(
            name, [sys.executable, "-m", "bench.live_clients", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.decode())
        self.lines.put("")

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()

    def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"a client process gave no {kind!r} within {timeout:g} s") from None
            if not line:
                raise SystemExit(f"a client process exited before {kind!r}")
            head, _, body = line.partition(" ")
            if head == kind:
                return json.loads(body)

    def quit(self) -> None:
        try:
            self.send("quit")
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


def ask_all(clients: list[ClientProcess], command: str, kind: str, timeout: float) -> list[dict[str, Any]]:
    for client in clients:
        client.send(command)
    return [client.expect(kind, timeout) for client in clients]


def open_clients(
    processes: Processes,
    name: str,
    mode: str,
    targets: list[tuple[int, str, str]],
    ports: list[int],
    per_process: int,
    timeout: float,
    concurrency: int = 20,
) -> tuple[list[ClientProcess], dict[str, Any]]:
    """Spread the sockets over client processes (and over the daphne ports); wait for all to open."""
    count = max(1, math.ceil(len(targets) / per_process))
    clients = []
    for index in range(count):
        mine = targets[index::count]
        port = ports[index % len(ports)]
        clients.append(
            ClientProcess(
                processes,
                f"{name}-{index}",
                {"mode": mode, "base": f"ws://{HOST}:{port}", "targets": mine, "connect_concurrency": concurrency},
            )
        )
    started = time.monotonic()
    ready = [client.expect("ready", timeout) for client in clients]
    errors: dict[str, int] = {}
    for r in ready:
        for error, n in r["errors"].items():
            errors[error] = errors.get(error, 0) + n
    return clients, {
        "opened": sum(r["opened"] for r in ready),
        "failed": sum(r["failed"] for r in ready),
        "handshake_retries": sum(r["retries"] for r in ready),
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
    }
