"""The load benchmark's bookkeeping: wrk's report read, the summary's ratios to the yardstick
and their verdicts, the steady window's CPU per order and its paid-exactly-once check, and
two summaries side by side."""

from bench import compare, steady, summary
from bench.yardstick import parse_wrk

WRK_REPORT = """Running 10s test @ http://127.0.0.1:40000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   210.11ms   40.02ms   1.20s    90.00%
  Latency Distribution
     50%  184.49ms
     75%  220.00ms
     90%  300.00ms
     99%    1.21s
  2900 requests in 10.01s, 500.00KB read
Requests/sec:    289.71
Transfer/sec:     49.95KB
"""


def test_wrk_report_gives_requests_and_percentiles_in_ms():
    figures = parse_wrk(WRK_REPORT)

    assert figures == {"requests_per_s": 289.71, "requests": 2900, "p50_ms": 184.49, "p99_ms": 1210.0}


def _figures(**steady_figures):
    return {
        "yardstick": {"hello_world_daphne": {"requests_per_s": 100, "cpu_ms_per_request": 4.0, "p99_ms": 200.0}},
        "placement": {
            "64": {"orders_per_s": 50.0, "p99_ms": 500.0, "lost": 1, "runs": None},
            "cpu_seconds": {"web-1": 3.0},
        },
        "placement_uvicorn": {"64": {"orders_per_s": 40.0, "lost": 0, "runs": [{"lost": 2}, {"lost": 0}]}},
        "steady": {
            "rate": 10,
            "cpu_ms_per_order": 20.0,
            "lost": 0,
            "sustained": True,
            "flamegraphs": {"relay": "2026-12-04-0600-flames/relay.svg"},
            **steady_figures,
        },
        "e2e": {"highest_rate_p99_under_limit": 40, "search_stop": {"rate": 45, "reason": "p99 1200 ms > 1000 ms"}},
    }


def test_summary_gives_each_figure_as_a_ratio_to_the_yardstick_of_the_run():
    totals = summary.build(_figures())

    assert totals["placement_64_ratio"] == 0.5
    assert totals["placement_p99_ratio"] == 2.5
    assert totals["e2e_ratio"] == 0.4
    assert totals["cpu_ratio"] == 5.0
    assert totals["lost"] == 3  # placement's median run, and every run of a repeated level, and the steady window
    assert totals["flamegraphs"] == {"relay": "2026-12-04-0600-flames/relay.svg"}
    assert totals["failed"] == []


def test_a_target_is_met_at_its_bound_and_missed_past_it():
    assert summary.verdict("cpu_ratio", 3.0) == "met"
    assert summary.verdict("cpu_ratio", 3.01) == "MISSED"
    assert summary.verdict("e2e_ratio", 0.35) == "met"
    assert summary.verdict("e2e_ratio", 0.3) == "MISSED"
    assert summary.verdict("placement_64_ratio", None) == "not measured"


def test_a_skipped_measure_leaves_its_figures_empty_and_a_failed_one_is_named():
    figures = _figures(failed="3 of 300 orders not paid")
    del figures["e2e"]

    totals = summary.build(figures)

    assert totals["e2e_max_orders_per_s_p99_under_1s"] is None and totals["e2e_ratio"] is None
    assert totals["failed"] == ["steady"]
    assert "not measured" in summary.targets_table(totals)


def test_cpu_per_order_is_each_process_over_the_window_divided_by_its_orders():
    before = {"web-1": 10.0, "relay": 5.0, "mariadb": 100.0}
    after = {"web-1": 13.0, "relay": 5.5, "mariadb": 102.0, "redis": 0.2}

    assert steady.per_order(before, after, 100) == {"web-1": 30.0, "mariadb": 20.0, "relay": 5.0, "redis": 2.0}
    assert steady.per_order(before, after, 0) == {}


def test_statements_per_order_are_each_counters_growth_over_the_orders_all_of_them_first():
    before = {"Questions": 1000, "Com_select": 400, "Com_commit": 100, "Com_savepoint": 7}
    after = {"Questions": 7000, "Com_select": 2400, "Com_commit": 1300, "Com_savepoint": 7}

    assert steady.statements_per_order(before, after, 100) == {"Questions": 60.0, "select": 20.0, "commit": 12.0}
    assert steady.statements_per_order(before, after, 0) == {}


def _steady(**overrides):
    figures = {
        "lost": 0,
        "charges": {"1": 300, "0": 0},
        "driver": {"sent": 300, "created": 300, "paid": 300, "errors": {}},
        "database": {"in_database": 300, "paid": 300, "payment_failed": 0, "still_pending": 0},
    }
    figures.update(overrides)
    return figures


def test_every_order_paid_once_is_no_problem():
    assert steady.integrity_problems(_steady()) == []


def test_an_order_charged_twice_or_left_unpaid_is_a_problem():
    twice = steady.integrity_problems(_steady(charges={"1": 299, "2": 1, "0": 0}))
    unpaid = steady.integrity_problems(
        _steady(database={"in_database": 300, "paid": 298, "payment_failed": 2, "still_pending": 0})
    )

    assert twice == ["orders by charges in the ledger: 1 charged 2x"]
    assert unpaid == ["2 of 300 orders not paid (2 failed, 0 still pending)"]


def test_two_summaries_side_by_side():
    a = {"cpu_ms_per_order": 20.0, "cpu_ratio": 5.0, "lost": 0, "cpu_ms_per_order_by_process": {"relay": 4.0}}
    b = {"cpu_ms_per_order": 10.0, "cpu_ratio": 2.5, "lost": 0, "cpu_ms_per_order_by_process": {"relay": 1.0}}

    rows = compare.side_by_side(a, b)

    assert ("cpu_ms_per_order", "20", "10", "x0.50") in rows
    assert ("cpu_ratio", "5", "2.5", "MISSED -> met") in rows
    assert ("cpu_ms_per_order, relay", "4", "1", "x0.25") in rows


def test_the_steady_figures_are_the_median_window_s():
    assert steady.median_window([44.3, 36.0, 41.9]) == 2
    assert steady.median_window([36.0, 44.3]) == 0  # the lower middle of an even count
    assert steady.median_window([None, 50.0, 40.0]) == 1  # a window without orders ranks costliest
    assert steady.median_window([12.0]) == 0


def test_the_windows_counts_are_added():
    assert steady.summed_counts([{"audit.events": 6, "billing": 1}, {"audit.events": 5, "bridge": 1}]) == {
        "audit.events": 11,
        "billing": 1,
        "bridge": 1,
    }
