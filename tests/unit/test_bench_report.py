"""docs/performance.md's generated table is the latest load benchmark's (python -m bench.report)."""

import json

from bench import report


def test_the_performance_page_shows_the_latest_results():
    assert report.main(["--check"]) == 0, "docs/performance.md is stale: run python -m bench.report"


def test_the_table_names_its_run_and_says_which_targets_are_missed(tmp_path):
    run = tmp_path / "2026-12-31-2359.json"
    run.write_text(
        json.dumps(
            {
                "summary": {
                    "yardstick_requests_per_s": 300,
                    "yardstick_cpu_ms_per_request": 3.0,
                    "yardstick_64_p99_ms": 250,
                    "cpu_ratio": 2.5,
                    "e2e_ratio": 0.2,
                    "placement_64_ratio": 1.1,
                    "placement_p99_ratio": 3.0,
                    "cpu_ms_per_order_by_process": {"web-1": 4.0, "relay": 0.01},
                    "lost": 0,
                }
            }
        )
    )
    (tmp_path / "2026-12-31-bus.json").write_text("{}")  # another benchmark's file is not a run
    assert report.latest(tmp_path) == run
    block = report.table(run)
    assert "`bench/results/2026-12-31-2359.json`" in block
    assert "| CPU per order / yardstick CPU per request | 2.5 | ≤ 3 | met |" in block
    assert "| e2e orders/s (p99 < 1 s) / yardstick requests/s | 0.2 | ≥ 0.35 | MISSED |" in block
    assert "web-1 4" in block and "relay" not in block


def test_a_page_without_the_markers_is_refused():
    try:
        report.render("# no markers here", "table")
    except SystemExit as refused:
        assert "no generated block" in str(refused)
    else:
        raise AssertionError("rendered into a page without markers")
