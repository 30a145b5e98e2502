"""A short chaos soak (``make chaos``, bench/chaos.py) end to end: private servers, the whole
stack as the Procfile runs it, orders with trackers while worker, relay, Redis and database
faults come every few seconds; the soak's own audit must pass.

Half a minute of orders on one broker node (a cluster's boot and a daphne's restart take most
of a minute on two busy cores); docs/reliability.md ("Chaos soak") describes the full run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_a_short_soak_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # Given the soak for 30 s with a fault every 6-10 s (and a fixed seed)
    results = tmp_path / "chaos.json"
    argv = [
        sys.executable,
        "-m",
        "bench.chaos",
        "--minutes",
        "0.5",
        "--faults",
        "worker,relay,redis,db",
        "--interval",
        "6,10",
        "--broker-nodes",
        "1",
        "--seed",
        "20",
        "--settle-seconds",
        "240",
        "--output",
        str(results),
    ]

    # When it runs
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1200)

    # Then it passes its audit: faults were injected, every order was accepted, none lost or
    # duplicated, everything converged
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    summary = json.loads(results.read_text())["summary"]
    assert summary["faults_injected"] >= 2
    assert summary["orders"] == summary["accepted"] > 0
    assert (summary["lost"], summary["duplicated"], summary["unconverged"]) == (0, 0, 0)
    assert summary["trackers_converged"] == summary["trackers"] > 0
    assert summary["worst_convergence_s"] is not None
