"""The A/B benchmark's pure parts: the order the sides run in, and the comparison of their runs."""

from bench import ab


def test_the_sides_take_turns_going_first():
    assert ab.turns(1) == ["A", "B"]
    assert ab.turns(3) == ["A", "B", "B", "A", "A", "B"]
    assert ab.turns(4).count("A") == ab.turns(4).count("B") == 4


def test_a_run_s_summary_gives_the_cpu_in_ms_and_yardstick_requests_per_process_and_statements():
    summary = {
        "cpu_ms_per_order": 36.0,
        "cpu_ratio": 17.795,
        "cpu_ms_per_order_by_process": {"web-1": 4.5, "mariadb": 4.66, "web-2": 3.55},
        "statements_per_order": {"Questions": 39.02, "insert": 13.68},
        "yardstick_requests_per_s": 537,
    }
    assert ab.figures_of(summary) == {
        "cpu_ms_per_order": 36.0,
        "cpu_in_yardstick_requests": 17.795,
        "cpu_ms, web": 8.05,  # the web processes together
        "cpu_ms, mariadb": 4.66,
        "statements_per_order": 39.02,
    }
    assert ab.figures_of({"cpu_ms_per_order": None}) == {}


def test_each_figure_is_compared_by_its_medians_with_each_side_s_range():
    runs = {
        "A": [{"cpu_ms_per_order": 40.0, "cpu_ms, relay": 3.0}, {"cpu_ms_per_order": 44.0}, {"cpu_ms_per_order": 42.0}],
        "B": [{"cpu_ms_per_order": 30.0, "cpu_ms, relay": 2.0}, {"cpu_ms_per_order": 50.0}, {"cpu_ms_per_order": 33.6}],
    }
    rows = {row["figure"]: row for row in ab.compared(runs)}
    cpu = rows["cpu_ms_per_order"]
    assert cpu["A"] == {"median": 42.0, "low": 40.0, "high": 44.0}
    assert cpu["B"] == {"median": 33.6, "low": 30.0, "high": 50.0}
    assert cpu["b_over_a"] == 0.8
    assert rows["cpu_ms, relay"]["b_over_a"] == round(2.0 / 3.0, 3)


def test_a_figure_only_one_side_has_is_shown_without_a_ratio():
    rows = ab.compared({"A": [{"cpu_ms, scheduler": 0.1}], "B": [{}]})
    assert rows == [{"figure": "cpu_ms, scheduler", "A": {"median": 0.1, "low": 0.1, "high": 0.1}, "B": None}]
