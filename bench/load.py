"""Load benchmark: Passline as its users drive it, in production mode, from other processes.

The whole stack (``bench/stack.py``: DEBUG off, every worker of the Procfile, daphne; real
MariaDB, RabbitMQ and Redis, on the benchmark's own database, vhost and Redis prefix) is
driven by wrk (Debian's package; ``bench/wrk/orders.lua``) and by the end-to-end driver
(``bench/e2e_driver.py``), each in processes of their own. It measures:

* order placement over the JSON API (``POST /api/v1/orders``, each with its own
  Idempotency-Key, as one of many customers): orders per second and latency p50 / p95 / p99
  at 16, 64 and 256 concurrent clients; after each level, every order the API answered 201
  for must be in the database and be charged — the time the workers take to catch up is
  reported, and an order lost or left unpaid fails the run;
* at a steady rate (``--steady-rate``, below what the stack sustains; ``bench/steady.py``; the
  median of ``--steady-windows`` windows):
  CPU per order of every process and server, messages published and handled per order, a
  flame graph of every Python process, and every order paid exactly once;
* end to end, from the POST to the ``paid`` update on the customer's WebSocket: the highest
  rate with p99 under 1 s (the rate doubles from ``--search-start`` until one misses it, then
  the gap is halved until it is no wider than ``--search-step``, or the time budget is spent);
* the same placement under uvicorn (one process) and under N daphnes behind nginx;
* the web tier alone (one daphne, N daphnes behind nginx, one uvicorn): the workers stopped
  while wrk runs at 64 clients, then every order must still be charged once they go on;
* the resident memory of every process at the end.

Usage: ``make bench`` or ``python -m bench.load [--seconds 30] [--clients 16,64,256]
[--repeat 3] [--scale 2] [--steady-rate 20] [--skip placement steady e2e uvicorn scale web-alone
yardstick]``; each placement level reports the median of ``--repeat`` runs (three by default).
A quick run: ``--seconds 10 --warmup 3 --repeat 1 --clients 64 --skip uvicorn scale web-alone``.
The results and the summary (its targets: ``bench/summary.py``) go to
``bench/results/<date>-<HHMM>.json``; the run fails (exit status 1) when a measure failed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from bench import common, steady, summary, yardstick
from bench.harness import Processes, healthy
from bench.load_data import (
    TAG,
    caught_up,
    database_connections,
    drained,
    forget_previous_runs,
    fresh_vhost,
    purge_queues,
    seed,
    versions,
)
from bench.stack import PREFIX, Stack, procfile_workers, production_env
from scripts.supervise import web_processes

# The measures that run the web as make run does: WEB_PROCESSES daphnes on one shared socket.
SHARED = frozenset({"placement", "steady", "e2e"})

WRK_SCRIPT = common.ROOT / "bench" / "wrk" / "orders.lua"
E2E_P99_LIMIT_MS = 1000
# Reference points measured on this machine (the issue's): not ours, for the table.
REFERENCES = {
    "fastapi_64_orders_per_s": 430,
    "fastapi_64_p50_ms": 140,
    "fastapi_64_p99_ms": 326,
    "daphne_hello_world_requests_per_s": yardstick.REFERENCE_HELLO_REQUESTS_PER_S,
}


# --- data ----------------------------------------------------------------------------------------


# --- order placement (wrk) -----------------------------------------------------------------------


def wrk(processes: Processes, url: str, clients: int, seconds: float, data: dict[str, Any], tag: str) -> dict[str, Any]:
    binary = common.wrk_binary()
    tokens, body = processes.dir / "tokens.txt", processes.dir / "order.json"
    if not tokens.exists():  # the same customers and order for every run
        tokens.write_text("\n".join(data["tokens"]) + "\n")
        body.write_text(json.dumps(data["body"]))
    threads = min(clients, 2)  # two cores: one wrk thread each
    done = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{clients}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_SCRIPT),
            url,
            "--",
            str(tokens),
            str(body),
            tag,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    line = next((out for out in done.stdout.splitlines() if out.startswith("wrk-result ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}")
    result = json.loads(line.removeprefix("wrk-result "))
    seconds_run = result["duration_us"] / 1e6
    created = result["statuses"].get("201", 0)
    return {
        "clients": clients,
        "seconds": round(seconds_run, 1),
        "requests": result["requests"],
        "created": created,
        "orders_per_s": round(created / seconds_run, 1),
        "statuses": result["statuses"],
        "socket_errors": result["errors"],
        **{f"{k}_ms": round(v / 1000, 1) for k, v in result["latency_us"].items()},
    }


def placement(
    processes: Processes,
    url: str,
    data: dict[str, Any],
    levels: list[int],
    seconds: float,
    repeat: int,
    warmup: float,
    *,
    paused: Stack | None = None,
) -> dict[str, Any]:
    """wrk at each level; with ``paused``, the stack's workers are stopped during the load (the
    web tier alone) and do their part after it."""
    results: dict[str, Any] = {}
    for clients in levels:
        runs = []
        for attempt in range(repeat):
            tag = f"{TAG}-{clients}c-{attempt}-{common.new_id()[:6]}"
            with paused.workers_paused() if paused else contextlib.nullcontext():
                if warmup:
                    wrk(processes, url, clients, warmup, data, "warm-" + tag)
                run = wrk(processes, url, clients, seconds, data, tag)
                run["database_connections"] = database_connections()  # at the end of the load
            run.update(caught_up(tag, run["created"], timeout=600))
            # An order answered 201 but not in the database is lost. More in the database than
            # 201s: requests the server finished after wrk gave up on them (its time-out, 10 s).
            run["lost"] = max(0, run["created"] - run["in_database"])
            run["finished_after_client_gave_up"] = max(0, run["in_database"] - run["created"])
            runs.append(run)
            print(
                f"  {clients:>3} clients: {run['orders_per_s']:>7.1f} orders/s, p50 {run['p50_ms']} ms, "
                f"p95 {run['p95_ms']} ms, p99 {run['p99_ms']} ms; {run['created']:,} created, {run['paid']:,} paid "
                f"(+{run['catch_up_s']} s to catch up), {run['lost']} lost",
                flush=True,
            )
        best = sorted(runs, key=lambda r: r["orders_per_s"])[len(runs) // 2]  # the median run
        results[str(clients)] = {**best, "runs": runs if repeat > 1 else None}
    return results


# --- end to end (the driver) ---------------------------------------------------------------------


def e2e(processes: Processes, url: str, data: dict[str, Any], search: dict[str, Any]) -> dict[str, Any]:
    """The search for the highest rate with p99 under the limit (doubling, then halving the gap)."""
    customers = [{"token": t, "id": u.pk} for t, u in list(zip(data["tokens"], data["users"]))[:200]]
    plan = {
        "http": url,
        "ws": url.replace("http://", "ws://"),
        "customers": customers,
        "order": data["body"],
        "warmup_seconds": 3,
        "connections": 128,
        "rates": [],
        "search": search,
    }
    found = _drive(processes, "e2e-search", plan)
    return {
        "search": found["search"],
        "search_stop": found.get("search_stop"),
        "highest_rate_p99_under_limit": found["highest_rate_p99_under_limit"],
    }


def _drive(processes: Processes, name: str, plan: dict[str, Any]) -> dict[str, Any]:
    path = processes.dir / f"{name}-plan.json"
    path.write_text(json.dumps(plan))
    log = open(processes.dir / f"{name}.log", "ab")
    done = subprocess.run(
        [sys.executable, "-m", "bench.e2e_driver", str(path)],
        cwd=common.ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        timeout=3600,
    )
    summary = next((line for line in done.stdout.splitlines() if line.startswith("summary ")), None)
    if done.returncode != 0 or summary is None:
        raise SystemExit(f"the end-to-end driver failed ({done.returncode}); see {processes.dir}/{name}.log")
    for line in done.stdout.splitlines():
        if line.startswith("result "):
            r = json.loads(line.removeprefix("result "))
            print(
                f"  {r['phase']} {r['rate']}/s: e2e p50 {r['e2e_ms']['p50']} / p99 {r['e2e_ms']['p99']} ms, "
                f"POST p50 {r['post_ms']['p50']} ms; {r['paid']} of {r['sent']} paid",
                flush=True,
            )
    return json.loads(summary.removeprefix("summary "))


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="length of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before each measured run")
    parser.add_argument("--clients", default="16,64,256", help="concurrent API clients, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per level (the median run is reported)")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--steady-rate", type=float, default=20, help="orders/s of the steady-rate measure")
    parser.add_argument("--steady-seconds", type=float, default=30, help="its measured window")
    parser.add_argument("--steady-warmup", type=float, default=5, help="its orders before the window")
    parser.add_argument(
        "--steady-windows",
        type=int,
        default=3,
        help="measured windows at the steady rate; the CPU figures are the median window's",
    )
    parser.add_argument("--no-flames", action="store_true", help="no py-spy flame graphs in the steady window")
    parser.add_argument(
        "--flame-seconds", type=float, default=15, help="the flame graphs' window, after the measured one"
    )
    parser.add_argument("--flame-rate", type=int, default=100, help="py-spy's samples a second, each process")
    parser.add_argument("--search-start", type=float, default=5, help="first rate of the search (orders/s)")
    parser.add_argument("--search-step", type=float, default=5, help="the search's resolution (orders/s)")
    parser.add_argument("--search-max", type=float, default=1000)
    parser.add_argument(
        "--search-seconds",
        type=float,
        default=None,
        help="measured seconds per rate of the search (15, or --seconds when shorter)",
    )
    parser.add_argument("--search-budget", type=float, default=300, help="the longest the search may take (s)")
    parser.add_argument(
        "--web",
        type=int,
        default=None,
        help="web processes on one shared socket for placement, steady and e2e (default: as make run, "
        "WEB_PROCESSES or one per core)",
    )
    parser.add_argument("--scale", type=int, default=2, help="daphnes behind nginx for the scale-out measure")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["placement", "steady", "e2e", "uvicorn", "scale", "web-alone", "yardstick"],
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",") if c.strip()]

    os.environ.update(CHANNELS_PREFIX=PREFIX, CACHE_PREFIX=PREFIX)
    common.prepare()
    from bus.topology import declare_topology

    path = summary.results_path(datetime.now(UTC))
    flames = None if args.no_flames else path.with_name(path.stem + "-flames")
    figures: dict[str, Any] = {"targets": summary.TARGETS, "references": REFERENCES}
    # The machine first, with nothing else running: figures compare only within a run.
    if "yardstick" not in args.skip:
        figures["yardstick"] = yardstick.measure()
        print("Machine yardstick: " + yardstick.describe(figures["yardstick"]), flush=True)
    fresh_vhost()
    declare_topology()
    common.clean_redis(PREFIX)
    forget_previous_runs()
    data = seed(args.customers)
    processes = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = Stack(processes)
    print(f"Load benchmark: production mode, every worker of the Procfile; logs in {processes.dir}", flush=True)
    web = args.web or web_processes()
    try:
        stack.start_workers()

        plan = []
        if "placement" not in args.skip:
            plan.append(
                (
                    "placement",
                    "daphne",
                    web,
                    lambda url: placement(processes, url, data, levels, args.seconds, args.repeat, args.warmup),
                )
            )
        if "uvicorn" not in args.skip:
            plan.append(
                (
                    "placement_uvicorn",
                    "uvicorn",
                    1,
                    lambda url: placement(processes, url, data, [64], args.seconds, 1, args.warmup),
                )
            )
        if "scale" not in args.skip and args.scale > 1:
            plan.append(
                (
                    "placement_scaled",
                    "daphne",
                    args.scale,
                    lambda url: placement(processes, url, data, [64, 256], args.seconds, 1, args.warmup),
                )
            )
        if "web-alone" not in args.skip:
            # The web tier's own capacity: the workers stopped while wrk runs, every order charged after.
            servers = [("daphne", count) for count in sorted({1, args.scale})]
            if "uvicorn" not in args.skip:
                servers.append(("uvicorn", 1))
            for server, count in servers:
                plan.append(
                    (
                        f"placement_web_alone_{server}_x{count}",
                        server,
                        count,
                        lambda url: placement(processes, url, data, [64], args.seconds, 1, args.warmup, paused=stack),
                    )
                )
        if "steady" not in args.skip:
            plan.append(
                (
                    "steady",
                    "daphne",
                    web,
                    lambda url: steady.measure(
                        stack,
                        processes,
                        url,
                        data,
                        rate=args.steady_rate,
                        seconds=args.steady_seconds,
                        warmup=args.steady_warmup,
                        windows=args.steady_windows,
                        flames=flames,
                        flame_seconds=args.flame_seconds,
                        flame_rate=args.flame_rate,
                    ),
                )
            )
        if "e2e" not in args.skip:
            search = {
                "start": args.search_start,
                "step": args.search_step,
                "max": args.search_max,
                "p99_limit_ms": E2E_P99_LIMIT_MS,
                "budget_seconds": args.search_budget,
                "seconds": args.search_seconds or min(15.0, args.seconds),
            }
            plan.append(("e2e", "daphne", web, lambda url: e2e(processes, url, data, search)))
        for index, (name, server, count, what) in enumerate(plan):
            drained()
            # The default-sized measures run the web as make run does: its processes on one socket.
            url = stack.start_web(server=server, count=count, shared=name in SHARED)
            common.wait_for(functools.partial(healthy, url), 60, f"{name}: /healthz", 0.2)
            balancer = " behind nginx" if stack.nginx else " on one socket" if name in SHARED and count > 1 else ""
            print(f"{name}: {server} x{count}{balancer}", flush=True)
            started = stack.cpu_seconds()
            try:
                figures[name] = {**what(url), "web": stack.describe()}
            except SystemExit as failure:  # one measure failing does not lose the others
                figures[name] = {"failed": str(failure), "web": stack.describe()}
                print(f"  {name} failed: {failure}", flush=True)
            used = stack.cpu_seconds()
            figures[name]["cpu_seconds"] = {k: round(v - started.get(k, 0.0), 1) for k, v in used.items()}
            if index < len(plan) - 1:
                stack.stop_web()  # the last one's web servers are in the memory figures
        figures["memory_mb"] = stack.memory()
    finally:
        processes.stop_all()
        figures["server_log_problems"] = processes.problems()
        try:
            purge_queues()
            common.clean_redis(PREFIX)
        except Exception as error:  # noqa: BLE001 - the figures are saved whatever the clean-up met
            print(f"cleaning up after the run failed: {type(error).__name__} {error}", flush=True)
    settings = {
        "seconds": args.seconds,
        "warmup": args.warmup,
        "clients": levels,
        "repeat": args.repeat,
        "customers": args.customers,
        "scale": args.scale,
        "skipped": args.skip,
        "steady": {
            "rate": args.steady_rate,
            "seconds": args.steady_seconds,
            "warmup": args.steady_warmup,
            "windows": args.steady_windows,
            "flames": not args.no_flames,
            "flame_seconds": args.flame_seconds,
            "flame_rate": args.flame_rate,
        },
        "search": {
            "start": args.search_start,
            "step": args.search_step,
            "max": args.search_max,
            "seconds": args.search_seconds or min(15.0, args.seconds),
            "budget": args.search_budget,
        },
        "environment": {
            k: v
            for k, v in production_env().items()
            if k in ("PASSLINE_ENV", "DEBUG", "LOG_LEVEL", "DB_CONN_MAX_AGE", "CHANNELS_CAPACITY")
        },
        "workers": [name for name, _ in procfile_workers()],
        "versions": versions(),
    }
    totals = summary.build(figures)
    summary.save(path, figures, settings, totals)
    print("Load benchmark (production mode, every worker)\n" + common.table(summary.rows(figures)))
    print(
        "Summary (ratios to the yardstick of this run)\n"
        + summary.targets_table(totals)
        + f"\n  results: {path.relative_to(common.ROOT)}"
        + (f", flame graphs: {flames.relative_to(common.ROOT)}/" if totals["flamegraphs"] and flames else "")
    )
    if totals["failed"]:
        raise SystemExit(f"failed: {', '.join(totals['failed'])}")


if __name__ == "__main__":
    main()
