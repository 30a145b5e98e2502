"""The chaos soak (``make chaos``): Passline under a steady stream of orders while processes and
servers are killed, stalled and cut off at random, then audited for what was lost, duplicated or
left behind. docs/reliability.md ("Chaos soak") says how to read its table.

It starts its own servers, so the machine's shared ones are never taken down: a RabbitMQ
cluster (``tests/servers/rabbit_cluster.py``, ``--broker-nodes``, three by default) and a Redis
(``tests/private_redis.py``); MariaDB is the machine's, with a database of the soak's own
(``test_<database>_chaos``), whose connections are dropped (KILL) rather than the server
stopped. On them, the whole application as the Procfile runs it (``bench/stack.py``:
production settings, every worker) behind two daphnes, which the customers use in turn.

* The customers (``bench/chaos_client.py``, a process of its own) place ``--rate`` orders a
  second through the JSON API for ``--minutes`` (``CHAOS_MINUTES``, 10 by default), retrying
  with the same Idempotency-Key when a request gets no answer or a 5xx, keep a WebSocket
  tracker on every ``--track-every``-th order and cancel every ``--cancel-every``-th one.
* The fault scheduler (``bench/chaos_faults.py``, seeded by ``--seed``, printed) injects one
  fault 20-40 s (``--interval``) after the last one was undone, of the kinds in ``--faults``
  (every kind by default).
* Then the faults stop, the soak waits (at most ``--settle-seconds``) until nothing is left to
  do and every tracker shows what the database holds, and audits (``bench/chaos_audit.py``).

Prints a table and writes ``bench/results/<date>-chaos.json`` (its ``summary`` holds the
table's figures). Exit status 1 when an order was lost or duplicated, something did not
converge, or the audit found any other problem. Every server and process it started is
stopped on the way out, on Ctrl-C and on failure too.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common
from bench.chaos_faults import KINDS, Scheduler
from bench.harness import Processes, healthy
from bench.stack import Stack

PREFIX = "passline-chaos"
# Every kind of fault, broker-node kills included (the processes fail over to the surviving nodes
# of RABBITMQ_URLS); --faults narrows it.
DEFAULT_FAULTS = KINDS


def chaos_database() -> str:
    """The soak's own database, inside the application user's grant on ``test_<database>*``."""
    return os.environ.get("CHAOS_DB_NAME") or common.BENCH_DB.removesuffix("_bench") + "_chaos"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--minutes", type=float, default=float(os.environ.get("CHAOS_MINUTES") or 10), help="length of the soak"
    )
    parser.add_argument("--rate", type=float, default=5, help="orders placed a second")
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="the fault schedule's seed (random by default)")
    parser.add_argument(
        "--faults",
        default=",".join(DEFAULT_FAULTS),
        help=f"kinds of fault, comma-separated, of {', '.join(KINDS)} (all but broker by default)",
    )
    parser.add_argument("--interval", default="20,40", help="seconds between faults: low,high")
    parser.add_argument("--broker-nodes", type=int, default=3, help="RabbitMQ nodes in the private cluster")
    parser.add_argument("--track-every", type=int, default=5, help="every n-th order gets a WebSocket tracker")
    parser.add_argument("--cancel-every", type=int, default=10, help="every n-th order is cancelled")
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=2.0,
        help="an order paid later than this after its first attempt is slow (convergence times)",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="the results file (bench/results/<date>-chaos.json by default)"
    )
    parser.add_argument(
        "--settle-seconds", type=float, default=300, help="the longest the system may take to converge at the end"
    )
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.faults.split(",") if k.strip())
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}: choose from {', '.join(KINDS)}")
    args.kinds = kinds
    low, _, high = args.interval.partition(",")
    args.interval_s = (float(low), float(high or low))
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    return args


# --- set-up -----------------------------------------------------------------------------------------


def prepare_django(**env: str) -> None:
    """This process on the soak's database (as its owner, to create it), Django set up."""
    common.one_run_at_a_time()
    common.BENCH_DB = chaos_database()
    os.environ.update(common.bench_env(CHANNELS_PREFIX=PREFIX, CACHE_PREFIX=PREFIX, **env))
    sys.path.insert(0, str(common.ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "passline.settings")
    import django

    common._create_database()
    django.setup()


def use_private_redis(url: str) -> None:
    """This process's own Redis clients (the relay's nudge after an outbox write) on it too."""
    from django.conf import settings

    from bus import redis_hints

    settings.REDIS_URL = url
    settings.CACHES["default"]["LOCATION"] = url.rsplit("/", 1)[0] + "/1"
    redis_hints._client = None


def stack_env(redis_url: str, broker_urls: list[str]) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "CACHE_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "RABBITMQ_URL": broker_urls[0],
        "RABBITMQ_URLS": ",".join(broker_urls),
        "CHANNELS_PREFIX": PREFIX,
        "CACHE_PREFIX": PREFIX,
    }


def stack_database() -> dict[str, Any]:
    """MySQLdb.connect arguments of the user the stack's processes connect as, on the soak's
    database: the benchmark's, whose grant covers the test databases (the application's own
    user may use only the checkout's database)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": int(db["PORT"] or 3306),
        "user": db["USER"],
        "password": db["PASSWORD"],
        "database": db["NAME"],
    }


# --- the customers' process ---------------------------------------------------------------------------


class Customers:
    """``bench/chaos_client.py`` in a process of its own, its lines read on a thread."""

    def __init__(self, processes: Processes, plan: dict[str, Any]) -> None:
        path = processes.dir / "chaos-plan.json"
        path.write_text(json.dumps(plan))
        log = open(processes.dir / "chaos-client.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.chaos_client", str(path)],
            cwd=common.ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        processes.children.append(("chaos-client", self.process))
        self.lines: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        threading.Thread(target=self._read, name="chaos-client-reader", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            kind, _, body = line.partition(" ")
            try:
                self.lines.put((kind, json.loads(body)))
            except ValueError:
                continue
        self.lines.put(None)

    def next(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        """The next line (kind, body); ("", {}) when none came in ``timeout``; None at the end."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return "", {}

    def ask(self, command: str, timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next(deadline - time.monotonic())
            if line is None:
                raise SystemExit("the customers' process ended unexpectedly")
            if line[0] == command.split()[0]:
                return line[1]
        raise SystemExit(f"the customers' process did not answer {command!r} in {timeout:g} s")

    def quit(self) -> None:
        """Close the trackers and end the process (killed when it takes more than 15 s)."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def wait_placed(customers: Customers, scheduler: Scheduler, soak_ends: float) -> dict[str, Any]:
    """Progress lines until the soak's time is up (then the faults stop) and the customers have
    every answer."""
    next_progress = time.monotonic() + 60
    faults_on = True
    while True:
        if faults_on and time.monotonic() >= soak_ends:
            print("Time is up: no more faults; the one under way is undone", flush=True)
            scheduler.stop()
            faults_on = False
        line = customers.next(1.0)
        if line is None:
            raise SystemExit("the customers' process ended without its results; see its log")
        kind, body = line
        if kind == "placed":
            if faults_on:
                scheduler.stop()
            return body
        if kind == "tick" and time.monotonic() >= next_progress:
            next_progress += 60
            requests = body["requests"]
            print(
                f"  {time.strftime('%H:%M:%S')} {body['sent']} orders sent, {body['accepted']} accepted, "
                f"{body['in_flight']} in flight; requests {requests}; trackers {body['trackers_open']}"
                f"/{body['trackers']} open",
                flush=True,
            )


def trackers_converged(customers: Customers, restaurant_id: int, timeout: float) -> tuple[list[dict[str, Any]], float]:
    """Ask the trackers for their state until each matches the database (or the time is up)."""
    from bench.chaos_audit import database_orders

    started = time.monotonic()
    while True:
        trackers = customers.ask("report 10", 60)["trackers"]
        orders = database_orders(restaurant_id)
        behind = [
            t
            for t in trackers
            if t["order_id"] not in orders
            or (t["version"], t["status"]) != (orders[t["order_id"]]["version"], orders[t["order_id"]]["status"])
        ]
        if not behind or time.monotonic() - started > timeout:
            return trackers, round(time.monotonic() - started, 1)
        time.sleep(1)


# --- the table --------------------------------------------------------------------------------------------


def summarize(
    args: argparse.Namespace,
    faults: dict[str, Any],
    placed: dict[str, Any],
    audit: dict[str, Any],
    converged: dict[str, Any],
    settle: dict[str, Any],
) -> dict[str, Any]:
    requests = placed["requests"]
    total = sum(requests.values())
    worst = converged["worst_s"]
    unconverged = audit["unconverged"] + (audit["trackers"] - audit["trackers_converged"])
    if not settle["settled"] or worst is None:
        unconverged = max(1, unconverged)
    return {
        "minutes": args.minutes,
        "rate": args.rate,
        "seed": args.seed,
        "faults_injected": faults["injected"],
        "faults_by_kind": faults["by_kind"],
        "orders": audit["orders_sent"],
        "accepted": audit["accepted"],
        "given_up": audit["given_up"],
        "lost": audit["lost"],
        "duplicated": audit["duplicated"],
        "unconverged": unconverged,
        "trackers": audit["trackers"],
        "trackers_converged": audit["trackers_converged"],
        "worst_convergence_s": worst,
        "slow_s": converged["slow_s"],
        "before_faults_p50_s": converged["before_faults_p50_s"],
        "before_faults_p99_s": converged["before_faults_p99_s"],
        "settle_s": settle["seconds"],
        "requests": total,
        "requests_failed": total - requests.get("ok", 0),
        "availability": round(requests.get("ok", 0) / total, 5) if total else None,
        "dead_letters": sum(d["count"] for d in audit["dead_letters"]),
        "processes_exited_by_themselves": len(faults["exited_by_themselves"]),
        "problems": len(audit["problems"]) + len(faults["errors"]),
        "passed": not (audit["problems"] or faults["errors"] or unconverged),
    }


def rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(summary["faults_by_kind"].items()))
    availability = summary["availability"]
    return [
        ("length", f"{summary['minutes']:g} min at {summary['rate']:g} orders/s (seed {summary['seed']})"),
        ("faults injected", f"{summary['faults_injected']} ({kinds or 'none'})"),
        ("orders", f"{summary['orders']} sent, {summary['accepted']} accepted, {summary['given_up']} given up"),
        ("lost", str(summary["lost"])),
        ("duplicated", str(summary["duplicated"])),
        ("unconverged", str(summary["unconverged"])),
        ("trackers converged", f"{summary['trackers_converged']} of {summary['trackers']}"),
        (
            "worst convergence",
            "never"
            if summary["worst_convergence_s"] is None
            else f"{summary['worst_convergence_s']:g} s"
            f" (until no order is paid more than {summary['slow_s']:g} s after its first attempt)",
        ),
        (
            "paid before faults",
            f"p50 {summary['before_faults_p50_s']} s, p99 {summary['before_faults_p99_s']} s after the first attempt",
        ),
        ("settled after faults", f"{summary['settle_s']:g} s"),
        (
            "availability",
            "-"
            if availability is None
            else f"{100 * availability:.2f} % of {summary['requests']} requests ({summary['requests_failed']} failed)",
        ),
        ("dead letters", str(summary["dead_letters"])),
        ("exited by themselves", str(summary["processes_exited_by_themselves"])),
        ("result", "PASSED" if summary["passed"] else f"FAILED ({summary['problems']} problems)"),
    ]


def save(summary: dict[str, Any], details: dict[str, Any], settings: dict[str, Any], path: Path | None) -> Path:
    now = datetime.now(UTC)
    path = path or common.RESULTS / f"{now:%Y-%m-%d}-chaos.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "chaos",
        "at": now.isoformat(),
        "summary": summary,
        "machine": common.machine(),
        "settings": settings,
        **details,
    }
    path.write_text(json.dumps(document, indent=2, default=str))
    return path


# --- the run --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(
        f"Chaos soak: {args.minutes:g} min, {args.rate:g} orders/s, faults {', '.join(args.kinds) or 'none'} "
        f"every {args.interval_s[0]:g}-{args.interval_s[1]:g} s, seed {args.seed}",
        flush=True,
    )
    prepare_django()
    from django.db import connection

    from bench.chaos_audit import audit, convergence, wait_settled
    from bench.load_data import seed
    from tests.private_redis import PrivateRedis
    from tests.servers.rabbit_cluster import RabbitCluster

    processes = Processes()
    redis = PrivateRedis()
    cluster = RabbitCluster(size=args.broker_nodes)
    scheduler: Scheduler | None = None
    customers: Customers | None = None
    try:
        print(f"Starting a private Redis and a {args.broker_nodes}-node RabbitMQ cluster", flush=True)
        redis.start()
        cluster.start()
        use_private_redis(redis.url(0))
        stack = Stack(processes, **stack_env(redis.url(0), cluster.urls))
        print(f"Starting every process of the Procfile and two daphnes; logs in {processes.dir}", flush=True)
        stack.start_workers()
        data = seed(args.customers)
        stack.start_web(count=2, nginx=False)
        bases = [f"http://127.0.0.1:{port}" for port in stack.ports]
        for base in bases:
            common.wait_for(lambda base=base: healthy(base), 60, f"{base}/healthz", 0.2)

        started = time.time()
        plan = {
            "bases": bases,
            "customers": [{"token": t, "id": u.pk} for t, u in zip(data["tokens"], data["users"])],
            "order": data["body"],
            "rate": args.rate,
            "seconds": args.minutes * 60,
            "track_every": args.track_every,
            "cancel_every": args.cancel_every,
            "seed": args.seed,
            "run_id": common.new_id()[:10],
        }
        customers = Customers(processes, plan)
        scheduler = Scheduler(
            stack=stack,
            redis=redis,
            brokers=cluster,
            database=stack_database(),
            seed=args.seed,
            kinds=args.kinds,
            interval=args.interval_s,
            started=started,
        )
        print(f"Soak started at {time.strftime('%H:%M:%S')}; faults as they happen:", flush=True)
        scheduler.start()
        placed = wait_placed(customers, scheduler, time.monotonic() + args.minutes * 60)
        faults_ended = time.time()
        # This thread's own connection may have been dropped with the stack's by a fault.
        connection.close()
        scheduler.check()  # a process that died meanwhile is started again first

        print("Waiting for the system to converge", flush=True)
        done, seconds, left = wait_settled(data["restaurant"].pk, args.settle_seconds)
        trackers, tracker_seconds = trackers_converged(
            customers, data["restaurant"].pk, max(10.0, args.settle_seconds - seconds)
        )
        settle = {"settled": done, "seconds": round(time.time() - faults_ended, 1), "left": left}
        if not done:
            print(f"  not settled after {seconds:g} s: {left}", flush=True)
        faults = scheduler.report()
        found = audit(data["restaurant"].pk, [u.pk for u in data["users"]], placed, trackers, started)
        converged = convergence(faults["faults"], placed, data["restaurant"].pk, faults_ended, args.slow_seconds)
        summary = summarize(args, faults, placed, found, converged, settle)
    finally:
        # Each step whatever the others met: nothing this soak started is left running.
        # The watchdog first: it must not start again what a Ctrl-C to the whole group stopped.
        steps = [scheduler.close if scheduler else None, customers.quit if customers else None]
        for step in [
            *steps,
            processes.stop_all,
            redis.stop,
            functools.partial(shutil.rmtree, redis.dir, True),
            cluster.shutdown,
        ]:
            try:
                if step is not None:
                    step()
            except BaseException as error:  # noqa: BLE001 - a Ctrl-C in the clean-up must not stop it
                print(f"cleaning up: {step!r} failed: {type(error).__name__} {error}")
        log_problems = processes.problems()

    settings = {
        "minutes": args.minutes,
        "rate": args.rate,
        "customers": args.customers,
        "seed": args.seed,
        "faults": list(args.kinds),
        "interval_s": list(args.interval_s),
        "broker_nodes": args.broker_nodes,
        "web_servers": 2,
        "track_every": args.track_every,
        "cancel_every": args.cancel_every,
        "settle_seconds": args.settle_seconds,
        "slow_seconds": args.slow_seconds,
    }
    details = {
        "faults": {**faults, "faults": converged["faults"]},
        "convergence": {k: v for k, v in converged.items() if k != "faults"},
        "settle": {**settle, "trackers_s": tracker_seconds},
        "audit": found,
        "requests": {"by_outcome": placed["requests"], "by_answer": placed["statuses"]},
        "server_log_problems": log_problems,
    }
    path = save(summary, details, settings, args.output)
    print("Faults (convergence: until every order it held up was paid)")
    for fault in converged["faults"]:
        took = "never" if fault["convergence_s"] is None else f"{fault['convergence_s']:g} s"
        print(
            f"  +{fault['at_s']:6.1f} s  {fault['kind']:<6} {fault['target']:<16} down {fault['down_s']:5.1f} s  "
            f"converged {took:>7}  {fault['slow_orders']:>3} slow orders  {fault['failed_requests']:>3} failed requests"
        )
    print("Chaos soak\n" + common.table(rows(summary)))
    for problem in found["problems"] + faults["errors"]:
        print(f"  problem: {problem}")
    for letter in found["dead_letters"]:
        print(f"  dead letter x{letter['count']}: {letter['queue']} {letter['type']}: {letter['reason']}")
    shown = path.relative_to(common.ROOT) if path.is_relative_to(common.ROOT) else path
    print(f"  results: {shown}; logs: {processes.dir}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
