"""Two load benchmark runs side by side: ``python -m bench.compare A.json B.json``.

Prints each figure of the two results files' ``summary`` (``bench/summary.py``) and B / A for
the numbers; the ratios to each run's own yardstick are the figures that compare across
machines and days.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.summary import TARGETS, verdict


def load_summary(path: Path) -> dict[str, Any]:
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"cannot read {path}: {error}") from None
    if not isinstance(results, dict) or not isinstance(results.get("summary"), dict):
        raise SystemExit(f"{path} has no summary (a results file of an older benchmark?)")
    return results["summary"]


def shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def side_by_side(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, A, B, B / A or the targets' verdicts) for every scalar figure of either summary,
    then the CPU per order of each process."""
    rows = []
    for key in [*a, *(k for k in b if k not in a)]:
        left, right = a.get(key), b.get(key)
        if isinstance(left, (dict, list)) or isinstance(right, (dict, list)):
            continue
        if key in TARGETS:
            note = f"{verdict(key, left)} -> {verdict(key, right)}"
        elif isinstance(left, (int, float)) and isinstance(right, (int, float)) and left and not isinstance(left, bool):
            note = f"x{right / left:.2f}"
        else:
            note = ""
        rows.append((key, shown(left), shown(right), note))
    by_a, by_b = a.get("cpu_ms_per_order_by_process") or {}, b.get("cpu_ms_per_order_by_process") or {}
    for process in [*by_a, *(p for p in by_b if p not in by_a)]:
        left, right = by_a.get(process), by_b.get(process)
        note = f"x{right / left:.2f}" if left and right is not None else ""
        rows.append((f"cpu_ms_per_order, {process}", shown(left), shown(right), note))
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: python -m bench.compare A.json B.json\n")
        return 2
    a_path, b_path = Path(argv[1]), Path(argv[2])
    rows = [("", a_path.name, b_path.name, "B / A"), *side_by_side(load_summary(a_path), load_summary(b_path))]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))
            ).rstrip()
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
