"""What every benchmark shares to run its processes: the children of a run with their logs,
ports, and the open-file limit a process with thousands of sockets needs."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common

HOST = "127.0.0.1"


class Processes:
    """Every child of the run, with its log; all of them are stopped when the run ends."""

    def __init__(self, env: Callable[[], dict[str, str]] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="passline-bench-"))
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.env = env or common.bench_env

    def start(self, name: str, args: list[str], **popen: Any) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "ab")
        popen.setdefault("stdout", log)
        popen.setdefault("env", self.env())
        process = subprocess.Popen(args, cwd=common.ROOT, stderr=log, **popen)
        self.children.append((name, process))
        return process

    def daphne(self, port: int) -> subprocess.Popen:
        daphne = str(Path(sys.executable).parent / "daphne")
        process = self.start(
            f"daphne-{port}",
            [daphne, "-b", HOST, "-p", str(port), "passline.asgi:application"],
            preexec_fn=raise_open_files,
        )
        common.wait_for(lambda: port_open(port) or process.poll() is not None, 60, f"daphne on port {port}", 0.1)
        if process.poll() is not None:
            raise SystemExit(f"daphne on port {port} exited; see {self.dir}/daphne-{port}.log")
        return process

    def manage(self, name: str, *args: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, "manage.py", *args], stdout=subprocess.DEVNULL)

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.children):
            self.stop(process)

    def problems(self) -> dict[str, dict[str, int]]:
        """Lines in the servers' logs that say the layer or a process struggled."""
        patterns = ("Too many connections", "TimeoutError", "Traceback", "over capacity", "ERROR", "CRITICAL")
        found: dict[str, dict[str, int]] = {}
        for log in sorted(self.dir.glob("*.log")):
            text = log.read_text(errors="replace")
            counts = {p: text.count(p) for p in patterns if p in text}
            if counts:
                found[log.stem] = counts
        return found


def raise_open_files(needed: int | None = None) -> None:
    """One socket a file: raise the soft limit to what ``needed`` sockets take (and some), or
    to the hard limit. Also a ``preexec_fn`` for a child (daphne with 10,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if needed is None else min(hard, needed + 256)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def healthy(url: str) -> bool:
    """Whether the web server at ``url`` answers /healthz with a 200."""
    try:
        # A server the benchmark started itself: http on loopback (bandit B310).
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:  # nosec B310
            return answer.status == 200
    except OSError:
        return False


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]
