"""The steady-rate measure of the load benchmark: what one order costs the whole stack.

The end-to-end driver (``bench/e2e_driver.py``) sends orders at a fixed rate, below what the
stack sustains, on one daphne with every worker of the Procfile. Over exactly the driver's
measured window (it prints ``window`` lines as the window starts and ends; ``--steady-windows``
of them, three by default, each after its own warm-up, the CPU figures the median window's)
this measures:

* the CPU every process and server uses idle (no order for a few seconds before), for
  reference: it is part of the CPU per order, the more so at a low rate;
* the CPU (user + system) of every process of the stack and of MariaDB, RabbitMQ and Redis
  (``Stack.cpu_seconds``), divided by the orders placed in the window: CPU ms per order, per
  process and summed;
* the bus's traffic: rows the outbox gained (messages published) and rows the processed-message
  table gained (messages handled), per order, by message type and by consumer;
* MariaDB's statements per order, by kind (its global ``Com_*`` counters: selects, inserts,
  commits, savepoints, ``SET`` and the rest; ``Questions`` is every one a client sent), the
  server's own count, so like its CPU it holds whatever else the machine sent it meanwhile;
* a flame graph of every Python process of the stack (py-spy, recording all of them in
  parallel), ``<flames>/<process>.svg``: in a second window at the same rate right after the
  measured one, since a dozen profilers on two cores would spoil its CPU and latency figures
  (py-spy at 100 samples/s took ~0.7 of a core and tripled the e2e latency).

Every order of both windows (warm-ups included) must then end ``paid``, charged exactly once (one
charge in the wallet ledger), with its ``paid`` update seen on the customer's socket; if one
does not, the measure's figures carry ``failed`` and the run fails.

The servers are shared with whatever else runs on the machine: their CPU is the machine's,
not only the benchmark's (a test suite running meanwhile shows up in MariaDB's figure).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import common
from bench.harness import Processes
from bench.stack import Stack

PY_SPY = Path(sys.executable).parent / "py-spy"
IDLE_SECONDS = 5
# Tables whose new rows the window counts, by their auto-increment ids.
ORDERS, OUTBOX, PROCESSED = "ordering_order", "bus_outboxmessage", "bus_processedmessage"


def high_water() -> dict[str, int]:
    """The highest id of each counted table now."""
    from django.db import connection

    marks = {}
    with connection.cursor() as cursor:
        for table in (ORDERS, OUTBOX, PROCESSED):
            # Constant table and column names here and below (bandit B608).
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{table}`")  # nosec B608
            marks[table] = int(cursor.fetchone()[0])
    return marks


# MariaDB's counters of statements by kind (SHOW GLOBAL STATUS), what the window reads.
STATEMENT_COUNTERS = (
    "Questions",
    "Com_select",
    "Com_insert",
    "Com_insert_select",
    "Com_update",
    "Com_update_multi",
    "Com_delete",
    "Com_delete_multi",
    "Com_replace",
    "Com_begin",
    "Com_commit",
    "Com_rollback",
    "Com_savepoint",
    "Com_release_savepoint",
    "Com_rollback_to_savepoint",
    "Com_set_option",
    "Com_admin_commands",
)


def statement_counts() -> dict[str, int]:
    """MariaDB's statement counters now (the server's, every client's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS WHERE Variable_name IN %s", [STATEMENT_COUNTERS])
        return {name: int(value) for name, value in cursor.fetchall()}


def statements_per_order(before: dict[str, int], after: dict[str, int], orders: int) -> dict[str, float]:
    """Each counter's growth over the window per order, the largest first (``Questions``, every
    statement, is the total; a ping is an admin command, not a statement)."""
    if not orders:
        return {}
    grown = {name.removeprefix("Com_"): n for name, n in growth(before, after).items()}
    ordered = sorted(grown.items(), key=lambda kv: (kv[0] != "Questions", -kv[1]))
    return {name: round(n / orders, 2) for name, n in ordered if round(n / orders, 2) > 0}


def growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Each counter's growth from ``before`` to ``after``."""
    return {name: after.get(name, 0) - before.get(name, 0) for name in after}


def rows_between(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    """What the window added: orders, outbox rows by type, processed-message rows by consumer."""
    from django.db import connection

    def grouped(table: str, column: str) -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT `{column}`, COUNT(*) FROM `{table}` WHERE id > %s AND id <= %s "  # nosec B608
                f"GROUP BY `{column}` ORDER BY COUNT(*) DESC",
                [before[table], after[table]],
            )
            return {name: int(n) for name, n in cursor.fetchall()}

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM `{ORDERS}` WHERE id > %s AND id <= %s", [before[ORDERS], after[ORDERS]])  # nosec B608
        orders = int(cursor.fetchone()[0])
    return {
        "orders": orders,
        "messages_by_type": grouped(OUTBOX, "type"),
        "handlings_by_consumer": grouped(PROCESSED, "consumer"),
    }


def idle_cpu(stack: Stack, seconds: float) -> dict[str, float]:
    """CPU ms a second each process and server uses with no order coming: what the steady
    rate's CPU per order holds besides the orders' work (and what else the machine's servers
    were doing)."""
    before = stack.cpu_seconds()
    time.sleep(seconds)
    return {name: round(ms / seconds, 1) for name, ms in per_order(before, stack.cpu_seconds(), 1).items()}


def per_order(cpu_before: dict[str, float], cpu_after: dict[str, float], orders: int) -> dict[str, float]:
    """CPU ms per order of each process over the window, the costliest first."""
    if not orders:
        return {}
    used = {name: max(0.0, seconds - cpu_before.get(name, 0.0)) for name, seconds in cpu_after.items()}
    return {name: round(seconds * 1000 / orders, 2) for name, seconds in sorted(used.items(), key=lambda kv: -kv[1])}


# --- flame graphs ----------------------------------------------------------------------------------


def start_flames(stack: Stack, directory: Path, seconds: float, rate: int, log: Path) -> dict[str, subprocess.Popen]:
    """py-spy on every Python process of the stack (nginx is not one), recording in parallel,
    ``rate`` samples a second each."""
    directory.mkdir(parents=True, exist_ok=True)
    spies = {}
    with open(log, "ab") as output:
        for name, process in stack.named.items():
            if name == "nginx" or process.poll() is not None:
                continue
            spies[name] = subprocess.Popen(
                [
                    str(PY_SPY),
                    "record",
                    "--pid",
                    str(process.pid),
                    "--duration",
                    str(max(1, math.ceil(seconds))),
                    "--rate",
                    str(rate),
                    "--format",
                    "flamegraph",
                    "--output",
                    str(directory / f"{name}.svg"),
                    "--nonblocking",
                ],
                stdout=output,
                stderr=output,
            )
    return spies


def finish_flames(spies: dict[str, subprocess.Popen], directory: Path, timeout: float) -> dict[str, Any]:
    """Wait for every py-spy; the graphs written and the CPU py-spy itself used (not the stack's)."""
    cpu = 0.0
    deadline = time.monotonic() + timeout
    for spy in spies.values():
        # Reaped here, not by Popen, to read the child's own CPU time.
        while spy.returncode is None and time.monotonic() < deadline:
            pid, status, usage = os.wait4(spy.pid, os.WNOHANG)
            if pid:
                spy.returncode = os.waitstatus_to_exitcode(status)
                cpu += usage.ru_utime + usage.ru_stime
            else:
                time.sleep(0.1)
        if spy.returncode is None:
            spy.kill()
            spy.wait()
    written = {name: directory / f"{name}.svg" for name in spies if (directory / f"{name}.svg").is_file()}
    return {"written": written, "missing": sorted(set(spies) - set(written)), "py_spy_cpu_seconds": round(cpu, 1)}


# --- the measure -----------------------------------------------------------------------------------


def measure(
    stack: Stack,
    processes: Processes,
    url: str,
    data: dict[str, Any],
    *,
    rate: float,
    seconds: float,
    warmup: float,
    flames: Path | None,
    flame_seconds: float = 15,
    flame_rate: int = 100,
    windows: int = 1,
) -> dict[str, Any]:
    """The steady rate's figures. With ``windows`` > 1 the rate runs that many times, each with
    its warm-up and window of its own, and the CPU figures are the median window's (by CPU per
    order): on a shared machine one window can catch another tenant's burst, which a median of
    three leaves out; the counts (messages, handlings, statements) are the windows' together."""
    customers = [{"token": t, "id": u.pk} for t, u in list(zip(data["tokens"], data["users"]))[:200]]
    base = {
        "http": url,
        "ws": url.replace("http://", "ws://"),
        "customers": customers,
        "order": data["body"],
        "connections": 128,
        "rates": [rate],
        "warmup_seconds": warmup,
    }
    idle = idle_cpu(stack, IDLE_SECONDS)
    measured = [_window(stack, processes, base, seconds, index, windows) for index in range(max(1, windows))]
    middle = median_window([m["cpu_ms_per_order"] for m in measured])
    chosen = measured[middle]
    orders = sum(m["orders"] for m in measured)
    messages_by_type = summed_counts([m["messages_by_type"] for m in measured])
    handlings_by_consumer = summed_counts([m["handlings_by_consumer"] for m in measured])
    statements = summed_counts([m["statements"] for m in measured])
    result = chosen["settled"]["driver"]
    figures = {
        "rate": result["rate"],
        "seconds": chosen["seconds"],
        "windows": len(measured),
        "orders_in_window": chosen["orders"],
        "cpu_ms_per_order": chosen["cpu_ms_per_order"],
        "cpu_ms_per_order_by_process": chosen["by_process"],
        "cpu_ms_per_order_windows": [m["cpu_ms_per_order"] for m in measured],
        "messages_per_order": round(sum(messages_by_type.values()) / orders, 2) if orders else None,
        "handlings_per_order": round(sum(handlings_by_consumer.values()) / orders, 2) if orders else None,
        "statements_per_order": statements_per_order({}, statements, orders),
        "orders": orders,
        "messages_by_type": messages_by_type,
        "handlings_by_consumer": handlings_by_consumer,
        **chosen["settled"],
        "lost": sum(m["settled"]["lost"] for m in measured),
        "idle_cpu_ms_per_s": round(sum(idle.values()), 1),
        "idle_cpu_ms_per_s_by_process": idle,
    }
    figures["sustained"] = all(
        m["settled"]["driver"]["e2e_ms"]["p99"] is not None
        and m["settled"]["driver"]["e2e_ms"]["p99"] < 1000
        and m["settled"]["driver"]["achieved_rate"] >= 0.95 * m["settled"]["driver"]["rate"]
        for m in measured
    )
    problems = [
        problem if len(measured) == 1 else f"window {n + 1}: {problem}"
        for n, m in enumerate(measured)
        for problem in integrity_problems(m["settled"])
    ]
    if flames is not None:
        figures["flame_window"] = flame_window(stack, processes, base, flames, flame_seconds, flame_rate)
        figures["flamegraphs"] = figures["flame_window"].pop("written")
        problems += [f"flame window: {problem}" for problem in integrity_problems(figures["flame_window"])]
    if problems:
        figures["failed"] = "; ".join(problems)
    describe(figures)
    return figures


def median_window(cpu_ms_per_order: list[float | None]) -> int:
    """The index of the median window by CPU per order (the lower of the two middle ones when
    even; a window without orders counts as the costliest)."""
    ranked = sorted(range(len(cpu_ms_per_order)), key=lambda i: (cpu_ms_per_order[i] is None, cpu_ms_per_order[i] or 0))
    return ranked[(len(ranked) - 1) // 2]


def summed_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    """Counts by name, added over the windows, the largest first."""
    return dict(sum(map(Counter, counts), Counter()).most_common())


def _window(
    stack: Stack, processes: Processes, base: dict[str, Any], seconds: float, index: int, windows: int
) -> dict[str, Any]:
    """One warm-up and measured window at the steady rate: what it cost and added."""
    window: dict[str, Any] = {}

    def opened() -> None:
        window.update(
            cpu_before=stack.cpu_seconds(),
            rows_before=high_water(),
            statements_before=statement_counts(),
            started=time.monotonic(),
        )

    def closed() -> None:
        window.update(
            cpu_after=stack.cpu_seconds(),
            rows_after=high_water(),
            statements_after=statement_counts(),
            seconds=round(time.monotonic() - window["started"], 2),
        )

    run_id = common.new_id()[:12]
    name = "steady" if windows == 1 else f"steady-{index + 1}"
    result = drive(processes, name, {**base, "seconds": seconds, "run_id": run_id}, opened, closed)
    if "cpu_after" not in window:
        raise SystemExit(f"the end-to-end driver never ended its window; see {processes.dir}/{name}.log")
    added = rows_between(window["rows_before"], window["rows_after"])
    orders = added["orders"]
    by_process = per_order(window["cpu_before"], window["cpu_after"], orders)
    statements = growth(window["statements_before"], window["statements_after"])
    return {
        "seconds": window["seconds"],
        "orders": orders,
        "by_process": by_process,
        "cpu_ms_per_order": round(sum(by_process.values()), 1) if orders else None,
        "messages_by_type": added["messages_by_type"],
        "handlings_by_consumer": added["handlings_by_consumer"],
        "statements": statements,
        "settled": settled(run_id, result),
    }


def flame_window(
    stack: Stack, processes: Processes, base: dict[str, Any], flames: Path, seconds: float, rate: int
) -> dict[str, Any]:
    """The same rate again, a window of its own, with py-spy on every Python process: on two
    cores, a dozen profilers would spoil the measured window's CPU and latency."""
    spies: dict[str, subprocess.Popen] = {}
    run_id = common.new_id()[:12]
    result = drive(
        processes,
        "steady-flames",
        {**base, "seconds": seconds, "run_id": run_id},
        lambda: spies.update(start_flames(stack, flames, seconds, rate, processes.dir / "py-spy.log")),
        lambda: None,
    )
    graphs = finish_flames(spies, flames, seconds + 60)
    return {
        "seconds": seconds,
        "samples_per_s": rate,
        "py_spy_cpu_seconds": graphs["py_spy_cpu_seconds"],
        # Relative to the results file's folder, as the summary gives them.
        "written": {name: str(path.relative_to(flames.parent)) for name, path in graphs["written"].items()},
        "missing": graphs["missing"],
        **settled(run_id, result),
    }


def drive(processes: Processes, name: str, plan: dict[str, Any], opened: Any, closed: Any) -> dict[str, Any]:
    """Run the end-to-end driver on one steady rate, calling ``opened`` and ``closed`` as its
    measured window starts and ends; its result."""
    plan_path = processes.dir / f"{name}-plan.json"
    plan_path.write_text(json.dumps(plan))
    with open(processes.dir / f"{name}.log", "ab") as errors:
        driver = subprocess.Popen(
            [sys.executable, "-m", "bench.e2e_driver", str(plan_path)],
            cwd=common.ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    result: dict[str, Any] | None = None
    try:
        for line in driver.stdout or []:
            kind, _, body = line.partition(" ")
            if kind == "window":
                (opened if json.loads(body)["event"] == "start" else closed)()
            elif kind == "result":
                result = json.loads(body)
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    if result is None:
        raise SystemExit(f"the end-to-end driver failed ({driver.returncode}); see {processes.dir}/{name}.log")
    return result


def settled(run_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """How the driver's orders (warm-up included) ended, once the workers have caught up."""
    from bench.load_data import caught_up

    tag = f"e2e-{run_id}-steady-{result['rate']}"
    database = caught_up(tag, result["created"], timeout=600)
    return {
        "driver": result,
        "database": database,
        "charges": charges(tag),
        "lost": max(0, result["created"] - database["in_database"]),
    }


def charges(tag: str) -> dict[str, int]:
    """The run's orders by how many charges the wallet ledger holds for each."""
    from django.db.models import Count

    from billing.models import LedgerEntry
    from ordering.models import Order

    orders = Order.objects.filter(idempotency_key__startswith=f"{tag}-").values_list("id", flat=True)
    counted = (
        LedgerEntry.objects.filter(order_id__in=list(orders), kind=LedgerEntry.Kind.CHARGE)
        .values("order_id")
        .annotate(n=Count("id"))
    )
    by_count: dict[str, int] = {}
    charged = 0
    for row in counted:
        by_count[str(row["n"])] = by_count.get(str(row["n"]), 0) + 1
        charged += 1
    by_count["0"] = len(orders) - charged
    return by_count


def integrity_problems(figures: dict[str, Any]) -> list[str]:
    """Why the run's orders did not all end paid exactly once (nothing: they did)."""
    driver, database, charged = figures["driver"], figures["database"], figures["charges"]
    problems = []
    if figures["lost"]:
        problems.append(f"{figures['lost']} orders answered 201 are not in the database")
    if driver["errors"] or driver["created"] < driver["sent"]:
        problems.append(f"{driver['sent'] - driver['created']} of {driver['sent']} POSTs failed: {driver['errors']}")
    if database["paid"] != database["in_database"]:
        problems.append(
            f"{database['in_database'] - database['paid']} of {database['in_database']} orders not paid "
            f"({database['payment_failed']} failed, {database['still_pending']} still pending)"
        )
    if driver["paid"] != driver["created"]:
        problems.append(f"{driver['created'] - driver['paid']} paid updates never reached the customer's socket")
    wrong = {count: n for count, n in charged.items() if count != "1" and n}
    if wrong:
        problems.append("orders by charges in the ledger: " + ", ".join(f"{n} charged {c}x" for c, n in wrong.items()))
    return problems


def describe(figures: dict[str, Any]) -> None:
    driver = figures["driver"]
    print(
        f"  steady {figures['rate']}/s over {figures['seconds']} s: {figures['orders_in_window']} orders, "
        f"{figures['cpu_ms_per_order']} ms CPU per order"
        + (
            f" (the median of {figures['windows']} windows: {', '.join(map(str, figures['cpu_ms_per_order_windows']))})"
            if figures.get("windows", 1) > 1
            else ""
        )
        + f", {figures['messages_per_order']} messages and "
        f"{figures['handlings_per_order']} handlings per order; e2e p50 {driver['e2e_ms']['p50']} / "
        f"p99 {driver['e2e_ms']['p99']} ms; {figures['database']['paid']} of {figures['database']['in_database']} "
        f"paid; idle, the stack used {figures['idle_cpu_ms_per_s']} ms CPU a second"
        + (f"; FAILED: {figures['failed']}" if "failed" in figures else ""),
        flush=True,
    )
    flames = figures.get("flame_window")
    if flames:
        e2e = flames["driver"]["e2e_ms"]
        print(
            f"  flame graphs of {len(figures['flamegraphs'])} processes over {flames['seconds']:g} s more "
            f"(py-spy {flames['py_spy_cpu_seconds']} s CPU; e2e p50 {e2e['p50']} / p99 {e2e['p99']} ms meanwhile)"
            + (f", none of {', '.join(flames['missing'])}" if flames["missing"] else ""),
            flush=True,
        )
