"""The machine's yardstick: how fast the machine a benchmark ran on was, that day.

Machines of the same kind differ, and one machine differs from day to day (neighbours on the
host): figures of different runs compare only against a figure of the machine measured in the
same run. Two of them, before the load benchmark starts its stack:

* **hello world on daphne**: ``bench/hello.py`` (a startproject-style Django application, one
  view, no database) on one daphne process, wrk at 64 connections, the median of three 10 s
  runs — the issue's own reference point, :data:`REFERENCE_HELLO_REQUESTS_PER_S` (the one
  place the figure is written: results save it, docs/performance.md quotes it);
* **a pure-Python loop** on one core (the best of five), for the interpreter's speed alone.

Usage: ``python -m bench.yardstick`` (the load benchmark runs it first).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.stack import HOST, free_port, port_open

# Requests/s of a hello-world Django view on one daphne process on the machine the issue's
# figures were measured on.
REFERENCE_HELLO_REQUESTS_PER_S = "600-650"


def python_loop_ms(rounds: int = 5) -> float:
    """Milliseconds for a fixed loop of integer arithmetic, the best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def _wrk(url: str, seconds: float) -> float:
    binary = common.wrk_binary()
    done = subprocess.run([binary, "-t2", "-c64", f"-d{seconds:g}s", url], capture_output=True, text=True,
                          timeout=seconds + 60)
    found = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    if done.returncode != 0 or found is None or "Non-2xx" in done.stdout:
        raise SystemExit(f"wrk on the hello-world app failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return float(found.group(1))


def hello_world_requests_per_s(runs: int = 3, seconds: float = 10) -> dict[str, Any]:
    port = free_port()
    daphne = str(Path(sys.executable).parent / "daphne")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    process = subprocess.Popen([daphne, "-b", HOST, "-p", str(port), "bench.hello:application"], cwd=common.ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://{HOST}:{port}/"

        def answers() -> bool:
            if process.poll() is not None:
                raise SystemExit("daphne with the hello-world app exited")
            return port_open(port)

        common.wait_for(answers, 60, "daphne with the hello-world app", 0.1)
        _wrk(url, 2)  # warm-up
        measured = [_wrk(url, seconds) for _ in range(runs)]
    finally:
        common.stop(process)
    return {"requests_per_s": round(statistics.median(measured)), "runs": [round(r) for r in measured],
            "connections": 64, "seconds": seconds, "reference_requests_per_s": REFERENCE_HELLO_REQUESTS_PER_S}


def measure() -> dict[str, Any]:
    return {"python_loop_ms": python_loop_ms(), "hello_world_daphne": hello_world_requests_per_s()}


def describe(figures: dict[str, Any]) -> str:
    hello = figures["hello_world_daphne"]
    return (f"hello world on one daphne {hello['requests_per_s']:,} requests/s (reference "
            f"{hello['reference_requests_per_s']}), a pure-Python loop {figures['python_loop_ms']} ms")


if __name__ == "__main__":
    print("Machine yardstick: " + describe(measure()))
