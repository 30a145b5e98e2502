"""The load benchmark's results: one file per run, its ``summary`` and the tables it prints.

Every target is a ratio to the hello-world yardstick measured in the same run
(``bench/yardstick.py``), so runs on different machines and days compare:

* CPU per order (the steady-rate measure, every process and server summed) at most
  :data:`TARGETS` ``cpu_ratio`` times the yardstick's CPU per request;
* the highest end-to-end rate with p99 < 1 s at least ``e2e_ratio`` times its requests/s;
* placement at 64 clients at least ``placement_64_ratio`` times its requests/s, with a p99 at
  most ``placement_p99_ratio`` times its p99 at 64 connections.

``bench/results/<date>-<HHMM>.json`` holds the date, machine, versions, settings, every
figure of the run (whatever was skipped) and the ``summary`` (``python -m bench.compare``
puts two side by side); the flame graphs go to ``<date>-<HHMM>-flames/`` beside it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common, yardstick

# The targets, the only place they are written: (the summary's ratio, "max" or "min", bound).
TARGETS: dict[str, tuple[str, float]] = {
    "cpu_ratio": ("max", 3.0),
    "e2e_ratio": ("min", 0.35),
    "placement_64_ratio": ("min", 1.0),
    "placement_p99_ratio": ("max", 2.0),
}
TITLES = {
    "cpu_ratio": "CPU per order / yardstick CPU per request",
    "e2e_ratio": "e2e orders/s (p99 < 1 s) / yardstick requests/s",
    "placement_64_ratio": "placement orders/s at 64 / yardstick requests/s",
    "placement_p99_ratio": "placement p99 at 64 / yardstick p99 at 64",
}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def lost(figures: dict[str, Any]) -> int:
    """Orders answered 201 that never reached the database, over every measure of the run."""
    total = 0
    for name, block in figures.items():
        if not isinstance(block, dict):
            continue
        if name == "steady":
            total += block.get("lost", 0) + (block.get("flame_window") or {}).get("lost", 0)
        elif name.startswith("placement"):
            for level, run in block.items():
                if level.isdigit():
                    total += sum(r.get("lost", 0) for r in (run.get("runs") or [run]))
    return total


def build(figures: dict[str, Any]) -> dict[str, Any]:
    """The run's ``summary``: the figures runs are compared by, None where a measure was skipped."""
    hello = (figures.get("yardstick") or {}).get("hello_world_daphne") or {}
    placement = (figures.get("placement") or {}).get("64") or {}
    steady = figures.get("steady") or {}
    e2e = figures.get("e2e") or {}
    summary: dict[str, Any] = {
        "yardstick_requests_per_s": hello.get("requests_per_s"),
        "yardstick_cpu_ms_per_request": hello.get("cpu_ms_per_request"),
        "yardstick_64_p99_ms": hello.get("p99_ms"),
        "placement_64_orders_per_s": placement.get("orders_per_s"),
        "placement_64_p99_ms": placement.get("p99_ms"),
        # The web processes of placement, steady and e2e (one socket, as make run starts them).
        "web_processes": ((figures.get("placement") or {}).get("web") or {}).get("web_processes"),
        "e2e_max_orders_per_s_p99_under_1s": e2e.get("highest_rate_p99_under_limit"),
        "e2e_search_stop": (e2e.get("search_stop") or {}).get("reason"),
        "steady_rate_orders_per_s": steady.get("rate"),
        "steady_rate_sustained": steady.get("sustained"),
        "cpu_ms_per_order": steady.get("cpu_ms_per_order"),
        "cpu_ms_per_order_by_process": steady.get("cpu_ms_per_order_by_process"),
        # Each steady window's CPU per order (cpu_ms_per_order is their median): the run's spread.
        "cpu_ms_per_order_windows": steady.get("cpu_ms_per_order_windows") or [],
        "idle_cpu_ms_per_s": steady.get("idle_cpu_ms_per_s"),
        "messages_per_order": steady.get("messages_per_order"),
        "handlings_per_order": steady.get("handlings_per_order"),
        # MariaDB's statements per order by kind; "Questions" is all of them.
        "statements_per_order": steady.get("statements_per_order") or {},
        "lost": lost(figures),
        "failed": sorted(name for name, block in figures.items() if isinstance(block, dict) and "failed" in block),
        "flamegraphs": steady.get("flamegraphs") or {},  # relative to the results file's folder
    }
    summary["placement_64_ratio"] = ratio(summary["placement_64_orders_per_s"], summary["yardstick_requests_per_s"])
    summary["placement_p99_ratio"] = ratio(summary["placement_64_p99_ms"], summary["yardstick_64_p99_ms"])
    summary["e2e_ratio"] = ratio(summary["e2e_max_orders_per_s_p99_under_1s"], summary["yardstick_requests_per_s"])
    summary["cpu_ratio"] = ratio(summary["cpu_ms_per_order"], summary["yardstick_cpu_ms_per_request"])
    return summary


def verdict(name: str, value: float | None) -> str:
    kind, bound = TARGETS[name]
    if value is None:
        return "not measured"
    return "met" if (value <= bound if kind == "max" else value >= bound) else "MISSED"


def targets_table(summary: dict[str, Any]) -> str:
    rows = [
        (
            "yardstick (hello world, one daphne)",
            f"{summary['yardstick_requests_per_s']} requests/s, {summary['yardstick_cpu_ms_per_request']} ms CPU "
            f"per request, p99 {summary['yardstick_64_p99_ms']} ms at 64",
        )
    ]
    for name, (kind, bound) in TARGETS.items():
        value = summary.get(name)
        shown = "-" if value is None else f"{value:.2f}"
        rows.append(
            (TITLES[name], f"{shown:>6}  (target {'≤' if kind == 'max' else '≥'} {bound:g}): {verdict(name, value)}")
        )
    rows.append(
        ("placement at 64", f"{summary['placement_64_orders_per_s']} orders/s, p99 {summary['placement_64_p99_ms']} ms")
    )
    rows.append(
        (
            "e2e, highest rate with p99 < 1 s",
            f"{summary['e2e_max_orders_per_s_p99_under_1s']} orders/s"
            + (f" (stopped: {summary['e2e_search_stop']})" if summary["e2e_search_stop"] else ""),
        )
    )
    sustained = "" if summary["steady_rate_sustained"] in (True, None) else " — NOT sustained (p99 ≥ 1 s or behind)"
    rows.append(
        (
            f"steady {summary['steady_rate_orders_per_s']} orders/s{sustained}",
            f"{summary['cpu_ms_per_order']} ms CPU, {summary['messages_per_order']} messages, "
            f"{summary['handlings_per_order']} handlings per order",
        )
    )
    if summary.get("idle_cpu_ms_per_s") is not None:
        rows.append(
            (
                "  of which idle (the stack with no order)",
                f"{summary['idle_cpu_ms_per_s'] / summary['steady_rate_orders_per_s']:.1f} ms per order "
                f"({summary['idle_cpu_ms_per_s']} ms CPU a second)",
            )
        )
    for process, ms in (summary["cpu_ms_per_order_by_process"] or {}).items():
        rows.append((f"  CPU ms per order, {process}", f"{ms:g}"))
    rows.append(("lost orders", str(summary["lost"])))
    if summary["failed"]:
        rows.append(("FAILED measures", ", ".join(summary["failed"])))
    return common.table(rows)


# --- the results file ----------------------------------------------------------------------------


def results_path(now: datetime) -> Path:
    """``bench/results/<date>-<HHMM>.json``, the run's (a second run in the same minute: ``-2``)."""
    stem = now.strftime("%Y-%m-%d-%H%M")
    path, n = common.RESULTS / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = common.RESULTS / f"{stem}-{n}.json"
    return path


def save(path: Path, figures: dict[str, Any], settings: dict[str, Any], summary: dict[str, Any]) -> Path:
    """The run's figures, with the day's bus, billing and live figures when they exist."""
    now = datetime.now(UTC)
    others = {}
    for name in ("bus", "billing", "live"):
        other = common.RESULTS / f"{now.strftime('%Y-%m-%d')}-{name}.json"
        if other.is_file():
            others[name] = json.loads(other.read_text())
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "benchmark": "make bench",
                "at": now.isoformat(),
                "machine": common.machine(),
                "settings": settings,
                "summary": summary,
                "load": figures,
                **others,
            },
            indent=2,
            default=str,
        )
    )
    return path


# --- the detail table ----------------------------------------------------------------------------


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if "yardstick" in figures:
        out.append(("machine yardstick", yardstick.describe(figures["yardstick"])))
    alone = sorted(name for name in figures if name.startswith("placement_web_alone_"))
    for name, title in (
        ("placement", "daphne x1"),
        ("placement_uvicorn", "uvicorn x1"),
        ("placement_scaled", "daphne behind nginx"),
        *((name, "web alone, " + name.removeprefix("placement_web_alone_").replace("_", " ")) for name in alone),
    ):
        block = figures.get(name)
        if not block:
            continue
        if "failed" in block:
            out.append((f"placement, {title}", f"FAILED: {block['failed']}"))
            continue
        if name == "placement_scaled":
            title = f"daphne x{block['web']['web_processes']} behind nginx"
        elif name == "placement":
            title = f"daphne x{block.get('web', {}).get('web_processes', 1)}"
        for level, run in block.items():
            if not level.isdigit():
                continue
            out.append(
                (
                    f"POST /orders, {title}, {level} clients",
                    f"{run['orders_per_s']:,.0f} orders/s  p50 {run['p50_ms']} / p95 {run['p95_ms']} / "
                    f"p99 {run['p99_ms']} ms",
                )
            )
            out.append(
                (
                    "  created / paid / lost",
                    f"{run['created']:,} / {run['paid']:,} / {run['lost']}"
                    f"  (workers caught up {run['catch_up_s']} s after)",
                )
            )
    block = figures.get("steady")
    if block:
        driver = block.get("driver") or {}
        e2e = driver.get("e2e_ms") or {}
        out.append(
            (
                f"POST -> paid on the socket, steady {block.get('rate')} orders/s",
                f"p50 {e2e.get('p50')} / p99 {e2e.get('p99')} ms"
                + (f"  FAILED: {block['failed']}" if "failed" in block else ""),
            )
        )
        if block.get("messages_by_type"):
            out.append(
                ("  messages by type (window)", ", ".join(f"{k} {v}" for k, v in block["messages_by_type"].items()))
            )
            out.append(
                ("  handlings by consumer", ", ".join(f"{k} {v}" for k, v in block["handlings_by_consumer"].items()))
            )
    block = figures.get("e2e")
    if block and "failed" not in block:
        for rate in block.get("search", []):
            out.append(
                (
                    f"  search {rate['rate']} orders/s",
                    f"p50 {rate['e2e_ms']['p50']} / p99 {rate['e2e_ms']['p99']} ms"
                    f", {rate['paid']} of {rate['sent']} paid",
                )
            )
    elif block:
        out.append(("POST -> paid on the socket (search)", f"FAILED: {block['failed']}"))
    for name in ("placement", "placement_scaled"):
        block = figures.get(name) or {}
        # The CPU is the whole measure's: every run of every level, not only the median ones.
        orders = sum(
            sum(r.get("in_database", 0) for r in (run.get("runs") or [run]))
            for level, run in block.items()
            if level.isdigit()
        )
        cpu = block.get("cpu_seconds") or {}
        if orders and cpu:
            per_order = sorted(((k, v * 1000 / orders) for k, v in cpu.items()), key=lambda kv: -kv[1])
            out.append(
                (
                    f"CPU per order ({name})",
                    f"{sum(v for _, v in per_order):.0f} ms: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in per_order if v >= 0.5),
                )
            )
    memory = figures.get("memory_mb") or {}
    if memory:
        out.append(("resident memory at the end", ", ".join(f"{k} {v:g}" for k, v in memory.items()) + " MiB"))
    return out
