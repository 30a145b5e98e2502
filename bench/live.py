"""Live benchmark: status changes from commit to the browser's socket, through the real chain
(``order_transition`` → outbox → relay → RabbitMQ → bridge → channels-redis → daphne →
WebSocket), fan-out to a kitchen's screens, and idle sockets per daphne process.

Real processes on the benchmark's own database, vhost and Redis prefixes: daphne (DEBUG off),
the outbox relay, the bridge; WebSocket clients (``bench/live_clients.py``) and the driver
(``bench/live_driver.py``) in processes of their own. Usage: ``make bench`` or
``python -m bench.live [--trackers N] [--seconds S] [--kitchen-sockets K] [--idle M]``;
small numbers for a quick look: ``--trackers 100 --seconds 5 --kitchen-sockets 100 --idle 1000``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

from bench import common
from bench.harness import Processes
from bench.live_control import ask_all, open_clients
from bench.live_data import (
    forget_previous_runs,
    layer_drops,
    purge_queues,
    seed_customers,
    seed_orders,
    seed_shop,
    seed_tokens,
)
from bench.live_hops import bridge_backlog, bridge_ready, hops, layer_settings, order_hops

# Redis keys of its own: never mixed with `make run` ("passline") or the tests ("passline-test").
PREFIX = "passline-bench-live"
HOST = "127.0.0.1"
# Settings read from the environment that shape the live path; shown with the figures.
# An order's life after payment, one change each: versions 2 to 7.
LIFE = [
    ("paid", "system"),
    ("accepted", "staff"),
    ("preparing", "staff"),
    ("ready", "staff"),
    ("out_for_delivery", "staff"),
    ("delivered", "staff"),
]
TARGETS = {"p50_ms": 25, "p99_ms": 100, "fanout_ms": 300, "idle_sockets": 10000}
SOCKETS_PER_CLIENT_PROCESS = 2500


def live_env() -> dict[str, str]:
    return common.bench_env(CHANNELS_PREFIX=PREFIX, CACHE_PREFIX=PREFIX, DEBUG="0")


def tracking(
    processes: Processes, ports: list[int], trackers: int, rate: float, seconds: float, per_process: int, settle: float
) -> dict[str, Any]:
    """Each tracker watches its own order; a driver moves the orders on at ``rate`` per second."""
    tag = uuid.uuid4().hex[:8]
    restaurant, dish, staff, _ = seed_shop(tag, "track")
    customers = seed_customers(tag, "track", trackers)
    tokens = seed_tokens(customers)
    orders = seed_orders(restaurant, dish, customers)
    targets = [(o.pk, f"/ws/orders/{o.pk}/", t) for o, t in zip(orders, tokens)]
    clients, opened = open_clients(processes, "track", "track", targets, ports, per_process, 600)
    try:
        if opened["opened"] < trackers:
            print(f"  trackers: only {opened['opened']} of {trackers} connected ({opened['errors']})")
        changes = min(len(LIFE), max(1, math.ceil(rate * seconds / trackers)))
        steps = [
            [o.pk, status, actor, None if actor == "system" else staff.pk]
            for status, actor in LIFE[:changes]
            for o in orders
        ]
        plan, out = processes.dir / "driver-plan.json", processes.dir / "driver-out.json"
        plan.write_text(json.dumps({"rate": rate, "steps": steps}))
        driver = processes.start(
            "driver", [sys.executable, "-m", "bench.live_driver", str(plan), str(out)], stdout=subprocess.DEVNULL
        )
        driver.wait(timeout=len(steps) / rate * 3 + 120)
        if driver.returncode != 0:
            raise SystemExit(f"the driver failed; see {processes.dir}/driver.log")
        driven = json.loads(out.read_text())
        expected = len(steps)
        # Whatever is not on the sockets ``settle`` seconds after the last commit counts as
        # not delivered live: the resume brings it.
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            if sum(c["updates"] for c in ask_all(clients, "count", "count", 30)) >= expected:
                break
            time.sleep(0.2)
        final = 1 + changes
        resumed = ask_all(clients, f"resume {final} 15", "resume", 60)
        seen = [row for report in ask_all(clients, "report", "report", 120) for row in report["seen"]]
    finally:
        for client in clients:
            client.quit()
    arrivals: dict[tuple[int, int], tuple[float, str]] = {}
    for order_id, version, at, phase in seen:
        key = (order_id, version)
        if key not in arrivals or arrivals[key][1] == "resume" and phase == "live":
            arrivals[key] = (at, phase)
    latencies, live, recovered, never = [], 0, 0, 0
    for order_id, version, committed in driven["commits"]:
        got = arrivals.get((order_id, version))
        if got is None:
            never += 1
        elif got[1] == "live":
            live += 1
            latencies.append((got[0] - committed) * 1000)
        else:
            recovered += 1
    live_arrivals = {key: at for key, (at, phase) in arrivals.items() if phase == "live"}
    return {
        "hops": hops(driven["commits"], live_arrivals),
        "trackers": trackers,
        "connected": opened["opened"],
        "connect_errors": opened["errors"],
        "connect_seconds": opened["seconds"],
        "changes": expected,
        "changes_per_order": changes,
        "driver_rate": driven["rate"],
        "driver_seconds": driven["seconds"],
        "driver_max_behind_ms": driven["max_behind_ms"],
        "p50_ms": round(common.percentile(latencies, 50), 1),
        "p90_ms": round(common.percentile(latencies, 90), 1),
        "p99_ms": round(common.percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "delivered_live": live,
        "recovered_by_resume": recovered,
        "never_received": never,
        "live_share_pct": round(100 * live / expected, 2) if expected else None,
        "resume_sent": sum(r["sent"] for r in resumed),
        "complete_after_resume": sum(r["complete"] for r in resumed),
    }


def fan_out(processes: Processes, ports: list[int], sockets: int, per_process: int, pause: float) -> dict[str, Any]:
    """One kitchen group of ``sockets`` screens; one order moved through its life, one change
    at a time; commit → ``order.update`` on the last screen."""
    from ordering.services import order_transition
    from ordering.status import Actor

    # The bridge may still be working through the tracking run's changes: measure on a quiet chain.
    common.wait_for(lambda: bridge_backlog() == 0, 600, "the bridge to catch up", 0.5)
    tag = uuid.uuid4().hex[:8]
    restaurant, dish, staff, token = seed_shop(tag, "kitchen")
    customer = seed_customers(tag, "kitchen", 1)[0]
    order = seed_orders(restaurant, dish, [customer])[0]
    targets = [(i, f"/ws/kitchen/{restaurant.pk}/", token) for i in range(sockets)]
    clients, opened = open_clients(
        processes, "kitchen", "kitchen", targets, ports, min(per_process, max(1, math.ceil(sockets / 2))), 600
    )
    reps: list[dict[str, Any]] = []
    commits: list[tuple[int, float]] = []
    try:
        if opened["opened"] < sockets:
            print(f"  kitchen: only {opened['opened']} of {sockets} connected ({opened['errors']})")
        for status, actor in LIFE:
            time.sleep(pause)  # the screens are idle again
            changed = order_transition(
                order_id=order.pk, to=status, actor_kind=Actor(actor), actor=None if actor == "system" else staff
            )
            committed = time.time()
            commits.append((changed.version, committed))
            answers = ask_all(clients, f"wait {order.pk} {changed.version} 15", "wait", 60)
            delays = sorted((at - committed) * 1000 for a in answers for at in a["arrivals"])
            reps.append(
                {
                    "status": status,
                    "received": len(delays),
                    "missing": sum(a["missing"] for a in answers),
                    "last_ms": round(delays[-1], 1) if delays else None,
                    "p50_ms": round(common.percentile(delays, 50), 1) if delays else None,
                    "first_ms": round(delays[0], 1) if delays else None,
                }
            )
    finally:
        for client in clients:
            client.quit()
    for rep, (sent, taken) in zip(reps, order_hops(order.pk, commits)):
        rep["relay_sent_ms"], rep["bridge_taken_ms"] = sent, taken
    complete = [r for r in reps if r["last_ms"] is not None]
    return {
        "sockets": sockets,
        "connected": opened["opened"],
        "connect_errors": opened["errors"],
        "connect_seconds": opened["seconds"],
        "repetitions": reps,
        "last_socket_median_ms": round(common.median([r["last_ms"] for r in complete]), 1) if complete else None,
        "p50_over_sockets_median_ms": round(common.median([r["p50_ms"] for r in complete]), 1) if complete else None,
        "missing": sum(r["missing"] for r in reps),
    }


def idle(processes: Processes, port: int, sockets: int, endpoint: str, hold: float) -> dict[str, Any]:
    """``sockets`` idle sockets on one fresh daphne: how many it holds, and its memory."""
    import psutil

    tag = uuid.uuid4().hex[:8]
    restaurant, dish, _, _ = seed_shop(tag, "idle")
    if endpoint == "orders":
        customers = seed_customers(tag, "idle", sockets)
        tokens = seed_tokens(customers)
        orders = seed_orders(restaurant, dish, customers)
        targets = [(o.pk, f"/ws/orders/{o.pk}/", t) for o, t in zip(orders, tokens)]
    else:
        targets = [(i, f"/ws/boards/{restaurant.pk}/", "") for i in range(sockets)]
    daphne = processes.daphne(port)
    server = psutil.Process(daphne.pid)
    time.sleep(2)
    rss_before = server.memory_info().rss
    # Ten handshakes in flight per client process: forty at once keep daphne's queue of
    # connects (each a few queries on its one database thread) under its 5 s handshake timeout.
    clients, opened = open_clients(
        processes,
        "idle",
        "idle" if endpoint == "boards" else "track",
        targets,
        [port],
        SOCKETS_PER_CLIENT_PROCESS,
        1800,
        concurrency=10,
    )
    try:
        time.sleep(hold)  # past daphne's 20 s ping: the sockets have answered a ping round
        rss_with = server.memory_info().rss
        established = sum(
            1
            for c in server.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
        )
        answers = ask_all(clients, "ping 120", "ping", 300)
        alive = daphne.poll() is None
    finally:
        for client in clients:
            client.quit()
    closed: dict[str, int] = {}
    for a in answers:
        for code, n in a["closed"].items():
            closed[code] = closed.get(code, 0) + n
    held = sum(a["answered"] for a in answers)
    return {
        "endpoint": f"/ws/{endpoint}/",
        "sockets": sockets,
        "connected": opened["opened"],
        "connect_errors": opened["errors"],
        "connect_seconds": opened["seconds"],
        "hold_seconds": hold,
        "established_at_server": established,
        "answered_ping": held,
        "closed_by_server": closed,
        "daphne_alive": alive,
        "rss_idle_mb": round(rss_before / 2**20, 1),
        "rss_with_sockets_mb": round(rss_with / 2**20, 1),
        "kb_per_socket": round((rss_with - rss_before) / 1024 / max(held, 1), 1),
    }


# --- the run -----------------------------------------------------------------------------------


def _ms(value: object, target: float) -> str:
    return f"{value} ms" + (
        f"   (target < {target:g} ms{'' if isinstance(value, (int, float)) and value < target else ', MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trackers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200, help="status changes per second")
    parser.add_argument(
        "--seconds", type=float, default=30, help="how long the steady rate lasts (at most six changes an order)"
    )
    parser.add_argument("--settle", type=float, default=10, help="seconds after the last change before the resume")
    parser.add_argument("--kitchen-sockets", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10000, help="idle sockets on one daphne")
    parser.add_argument("--idle-endpoint", choices=["orders", "boards"], default="orders")
    parser.add_argument("--idle-hold", type=float, default=30, help="seconds the idle sockets stay before the count")
    parser.add_argument("--daphnes", type=int, default=1, help="daphne processes for trackers and kitchen screens")
    parser.add_argument("--port", type=int, default=8470, help="first port of the benchmark's daphnes")
    parser.add_argument("--client-sockets", type=int, default=500, help="tracker sockets per client process")
    parser.add_argument("--skip", nargs="*", default=[], choices=["tracking", "fanout", "idle"])
    args = parser.parse_args()

    os.environ.update(CHANNELS_PREFIX=PREFIX, CACHE_PREFIX=PREFIX)
    common.prepare()
    from bus.topology import declare_topology

    declare_topology()
    forget_previous_runs()
    purge_queues()
    common.clean_redis(PREFIX)
    layer = layer_settings()
    print(f"Live benchmark: channel layer {json.dumps(layer['config'])}, env {json.dumps(layer['env']) or '{}'}")

    processes = Processes(live_env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the children on the way out
    figures: dict[str, Any] = {}
    try:
        ports = [args.port + i for i in range(args.daphnes)]
        servers = [processes.daphne(port) for port in ports]
        processes.manage("relay", "relay_outbox")
        processes.manage("bridge", "consume", "bridge.notification")
        common.wait_for(bridge_ready, 60, "the bridge", 0.2)
        phases = {
            "tracking": lambda: tracking(
                processes, ports, args.trackers, args.rate, args.seconds, args.client_sockets, args.settle
            ),
            "fan_out": lambda: fan_out(processes, ports, args.kitchen_sockets, args.client_sockets, pause=1.0),
            "idle": lambda: idle(processes, args.port + args.daphnes, args.idle, args.idle_endpoint, args.idle_hold),
        }
        for name, run in phases.items():
            if name.replace("_", "") in args.skip:
                continue
            if name == "idle":
                for server in servers:
                    processes.stop(server)  # the idle count has a daphne of its own
            try:
                figures[name] = run()
            except SystemExit as failure:  # one measure failing does not lose the others
                figures[name] = {"failed": str(failure)}
                print(f"  {name} failed: {failure}")
    finally:
        processes.stop_all()
        problems = processes.problems()
        dropped = layer_drops()
        common.clean_redis(PREFIX)
        purge_queues()
    figures["server_log_problems"] = problems
    figures["layer_dropped"] = dropped
    path = common.save(
        "live",
        figures,
        {
            "trackers": args.trackers,
            "rate": args.rate,
            "seconds": args.seconds,
            "settle": args.settle,
            "kitchen_sockets": args.kitchen_sockets,
            "idle_sockets": args.idle,
            "idle_endpoint": args.idle_endpoint,
            "daphnes": args.daphnes,
            "channel_layer": layer,
            "targets": TARGETS,
        },
    )
    print(
        "Live benchmark (commit → relay → RabbitMQ → bridge → Redis → daphne → WebSocket)\n"
        + common.table(_rows(figures))
        + f"\n  results: {path.relative_to(common.ROOT)}"
    )
    if problems:
        print(f"  server logs ({processes.dir}): {json.dumps(problems)}")


def _rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    t = figures.get("tracking")
    if t and "failed" not in t:
        rows += [
            (
                f"{t['connected']:,} trackers, {t['driver_rate']:g} changes/s",
                f"{t['changes']:,} changes in {t['driver_seconds']:g} s",
            ),
            ("  commit -> socket, p50", _ms(t["p50_ms"], TARGETS["p50_ms"])),
            ("  commit -> socket, p99", _ms(t["p99_ms"], TARGETS["p99_ms"]) + f"; max {t['max_ms']} ms"),
            (
                "  delivered live",
                f"{t['live_share_pct']} % ({t['delivered_live']:,})   (target 100 %"
                + ("" if t["delivered_live"] == t["changes"] else ", MISSED")
                + ")",
            ),
            (
                "  of which commit -> relay sent / -> bridge / bridge -> socket",
                " / ".join(
                    f"p50 {t['hops'][h]['p50_ms']} ms"
                    for h in ("commit_to_sent", "commit_to_bridge", "bridge_to_socket")
                ),
            ),
            (
                "  recovered by resume / never",
                f"{t['recovered_by_resume']:,} / {t['never_received']:,}   (target 0 never)",
            ),
        ]
    f = figures.get("fan_out")
    if f and "failed" not in f:
        rows += [
            (
                f"fan-out to {f['connected']:,} kitchen sockets, last",
                _ms(f["last_socket_median_ms"], TARGETS["fanout_ms"]) + " (median of 6 changes)",
            ),
            ("  p50 over sockets", f"{f['p50_over_sockets_median_ms']} ms; missing {f['missing']}"),
        ]
    i = figures.get("idle")
    if i and "failed" not in i:
        rows += [
            (
                f"idle sockets on one daphne ({i['endpoint']})",
                f"{i['answered_ping']:,} of {i['sockets']:,} held"
                f"   (target {TARGETS['idle_sockets']:,}{'' if i['answered_ping'] >= TARGETS['idle_sockets'] else ', MISSED'})",
            ),
            (
                "  daphne RSS",
                f"{i['rss_idle_mb']} MB idle, {i['rss_with_sockets_mb']} MB with them "
                f"({i['kb_per_socket']} KB a socket; a bare Channels app: ~420 MB)",
            ),
        ]
    return rows


if __name__ == "__main__":
    main()
