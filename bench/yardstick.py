"""The machine's yardstick: how fast the machine a benchmark ran on was, that day.

Machines of the same kind differ, and one machine differs from day to day (neighbours on the
host): figures of different runs compare only against a figure of the machine measured in the
same run. Two of them, before the load benchmark starts its stack:

* **hello world on daphne**: ``bench/hello.py`` (a startproject-style Django application, one
  view, no database) on one daphne process, wrk at 64 connections, the median of three 10 s
  runs: its requests/s, its latency p50 / p99 and the daphne's CPU per request (user + system
  over the three runs, divided by their requests) — the issue's own reference point, :data:`REFERENCE_HELLO_REQUESTS_PER_S` (the one
  place the figure is written: results save it, docs/performance.md quotes it);
* **a pure-Python loop** on one core (the best of five), for the interpreter's speed alone.

Usage: ``python -m bench.yardstick`` (the load benchmark runs it first).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.harness import HOST, free_port, port_open

# Requests/s of a hello-world Django view on one daphne process on the machine the issue's
# figures were measured on.
REFERENCE_HELLO_REQUESTS_PER_S = "600-650"
CONNECTIONS = 64


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


def _milliseconds(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests, requests/s and the latency percentiles of wrk's ``--latency`` report."""
    found = re.search(r"Requests/sec:\s*([\d.]+)", output)
    requests = re.search(r"(\d+) requests in", output)
    if found is None or requests is None:
        raise ValueError("not a wrk report")
    figures = {"requests_per_s": float(found.group(1)), "requests": int(requests.group(1))}
    for percent, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE):
        figures[f"p{percent}_ms"] = round(_milliseconds(value, unit), 2)
    return figures


def _wrk(url: str, seconds: float) -> dict[str, float]:
    binary = common.wrk_binary()
    done = subprocess.run(
        [binary, "-t2", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if done.returncode != 0 or "Non-2xx" in done.stdout or "Requests/sec" not in done.stdout:
        raise SystemExit(f"wrk on the hello-world app failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return parse_wrk(done.stdout)


def hello_world(runs: int = 3, seconds: float = 10) -> dict[str, Any]:
    """Requests/s (the median run), the daphne's CPU per request (over every measured run) and
    its latency p50 / p99 (the median run's) at 64 connections."""
    import psutil

    port = free_port()
    daphne = str(Path(sys.executable).parent / "daphne")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    process = subprocess.Popen(
        [daphne, "-b", HOST, "-p", str(port), "bench.hello:application"],
        cwd=common.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://{HOST}:{port}/"

        def answers() -> bool:
            if process.poll() is not None:
                raise SystemExit("daphne with the hello-world app exited")
            return port_open(port)

        common.wait_for(answers, 60, "daphne with the hello-world app", 0.1)
        _wrk(url, 2)  # warm-up
        server = psutil.Process(process.pid)
        before = sum(server.cpu_times()[:2])
        measured = [_wrk(url, seconds) for _ in range(runs)]
        cpu = sum(server.cpu_times()[:2]) - before
    finally:
        common.stop(process)
    median = sorted(measured, key=lambda run: run["requests_per_s"])[len(measured) // 2]
    requests = sum(run["requests"] for run in measured)
    return {
        "requests_per_s": round(median["requests_per_s"]),
        "runs": [round(r["requests_per_s"]) for r in measured],
        "cpu_ms_per_request": round(cpu * 1000 / requests, 3) if requests else None,
        "p50_ms": median.get("p50_ms"),
        "p99_ms": median.get("p99_ms"),
        "connections": CONNECTIONS,
        "seconds": seconds,
        "reference_requests_per_s": REFERENCE_HELLO_REQUESTS_PER_S,
    }


def measure() -> dict[str, Any]:
    return {"python_loop_ms": python_loop_ms(), "hello_world_daphne": hello_world()}


def describe(figures: dict[str, Any]) -> str:
    hello = figures["hello_world_daphne"]
    return (
        f"hello world on one daphne {hello['requests_per_s']:,} requests/s (reference "
        f"{hello['reference_requests_per_s']}), {hello.get('cpu_ms_per_request')} ms CPU per request, "
        f"p50 {hello.get('p50_ms')} / p99 {hello.get('p99_ms')} ms at {hello['connections']} connections; "
        f"a pure-Python loop {figures['python_loop_ms']} ms"
    )


if __name__ == "__main__":
    print("Machine yardstick: " + describe(measure()))
