"""Two revisions of the code measured in turn: ``python -m bench.ab A B [--rounds 3] [-- LOAD ARGS]``.

On this machine two load runs of the same code differ by up to a quarter in CPU per order
(docs/performance.md), so one run of each revision cannot show a change smaller than that.
This checks both revisions out (``git worktree``, detached, in a temporary folder, with this
checkout's ``.venv`` and ``.env``), then runs the load benchmark's steady-rate measure in each
in turn, A B B A A B …, so that a slow spell of the machine falls on both, each run with its
own yardstick and on a database of its own side (``BENCH_DB_NAME``: a revision with other
migrations never meets the other's tables). It prints, per side, the median and the range of
the CPU per order (ms, and in yardstick requests), of each process's share, and of MariaDB's
statements per order, with B / A of the medians; and writes every run's summary to
``bench/results/<date>-ab.json``.

The load arguments default to the steady rate alone (``--skip placement e2e uvicorn scale
web-alone --no-flames --steady-rate 25 --steady-seconds 20``, the yardstick kept); anything
after ``--`` replaces them. Both sides run on this checkout's virtualenv: revisions whose
requirements differ are not comparable this way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import common

DEFAULT_LOAD_ARGS = [
    "--skip",
    "placement",
    "e2e",
    "uvicorn",
    "scale",
    "web-alone",
    "--no-flames",
    "--steady-rate",
    "25",
    "--steady-seconds",
    "20",
]


def turns(rounds: int) -> list[str]:
    """The order the sides run in: A B, then B A, then A B …, so neither always goes first."""
    order: list[str] = []
    for n in range(rounds):
        order += ["A", "B"] if n % 2 == 0 else ["B", "A"]
    return order


def figures_of(summary: dict[str, Any]) -> dict[str, float]:
    """What a run's summary gives for the comparison, flat: CPU per order (ms and in yardstick
    requests), each process's ms, statements per order."""
    flat: dict[str, float] = {}
    if summary.get("cpu_ms_per_order") is not None:
        flat["cpu_ms_per_order"] = float(summary["cpu_ms_per_order"])
    if summary.get("cpu_ratio") is not None:
        flat["cpu_in_yardstick_requests"] = float(summary["cpu_ratio"])
    for process, ms in (summary.get("cpu_ms_per_order_by_process") or {}).items():
        # The web processes share one socket, and which takes more of the load varies from run
        # to run: compared together.
        name = "cpu_ms, web" if process.startswith("web-") else f"cpu_ms, {process}"
        flat[name] = round(flat.get(name, 0.0) + float(ms), 2)
    statements = (summary.get("statements_per_order") or {}).get("Questions")
    if statements is not None:
        flat["statements_per_order"] = float(statements)
    return flat


def compared(runs: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    """Per figure: each side's median, lowest and highest, and B / A of the medians."""
    names: list[str] = []
    for side in ("A", "B"):
        for run in runs[side]:
            names += [name for name in run if name not in names]
    rows = []
    for name in names:
        row: dict[str, Any] = {"figure": name}
        for side in ("A", "B"):
            values = [run[name] for run in runs[side] if name in run]
            row[side] = (
                {"median": statistics.median(values), "low": min(values), "high": max(values)} if values else None
            )
        if row["A"] and row["B"] and row["A"]["median"]:
            row["b_over_a"] = round(row["B"]["median"] / row["A"]["median"], 3)
        rows.append(row)
    return rows


@contextmanager
def checked_out(revision: str, where: Path) -> Iterator[Path]:
    """``revision`` in a detached worktree at ``where``, sharing this checkout's virtualenv and
    settings; removed afterwards."""
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(where), revision], cwd=common.ROOT, check=True)
    try:
        (where / ".venv").symlink_to(common.ROOT / ".venv")
        if (common.ROOT / ".env").exists():
            shutil.copyfile(common.ROOT / ".env", where / ".env")
        yield where
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=common.ROOT, check=False)


def run_once(tree: Path, side: str, load_args: list[str]) -> dict[str, Any]:
    """One load benchmark in ``tree``; its results file's summary."""
    env = {**os.environ, "BENCH_DB_NAME": f"{common.BENCH_DB}_{side.lower()}"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", *load_args],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if "results: " in line]
    if done.returncode != 0 or not lines:
        sys.stdout.write(done.stdout)
        raise SystemExit(f"side {side}: the load benchmark failed ({done.returncode})")
    path = Path(lines[-1].split("results: ", 1)[1].split(",", 1)[0].strip())
    results = json.loads((path if path.is_absolute() else tree / path).read_text())
    return dict(results["summary"])


def main(argv: list[str]) -> int:
    cut = argv.index("--") if "--" in argv else len(argv)
    own, rest = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="revision A (a commit, branch or tag)")
    parser.add_argument("b", help="revision B")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side")
    args = parser.parse_args(own)
    load_args = rest or DEFAULT_LOAD_ARGS
    revisions = {"A": args.a, "B": args.b}
    summaries: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    with (
        tempfile.TemporaryDirectory(prefix="passline-ab-") as tmp,
        checked_out(args.a, Path(tmp) / "a") as tree_a,
        checked_out(args.b, Path(tmp) / "b") as tree_b,
    ):
        trees = {"A": tree_a, "B": tree_b}
        for n, side in enumerate(turns(args.rounds), 1):
            print(f"run {n} of {2 * args.rounds}: {side} ({revisions[side]})", flush=True)
            summaries[side].append(run_once(trees[side], side, load_args))
    rows = compared({side: [figures_of(s) for s in summaries[side]] for side in ("A", "B")})
    print_table(rows, revisions)
    path = common.save(
        "ab",
        {"revisions": revisions, "compared": rows, "summaries": summaries},
        {"rounds": args.rounds, "load_args": load_args},
    )
    print(f"results: {path.relative_to(common.ROOT)}")
    return 0


def print_table(rows: list[dict[str, Any]], revisions: dict[str, str]) -> None:
    def cell(side: dict[str, float] | None) -> str:
        return "-" if side is None else f"{side['median']:g} ({side['low']:g}-{side['high']:g})"

    table = [("", f"A {revisions['A']}", f"B {revisions['B']}", "B / A")]
    table += [(r["figure"], cell(r["A"]), cell(r["B"]), str(r.get("b_over_a", ""))) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
