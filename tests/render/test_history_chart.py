"""The report's metric history chart: one line per metric and model across the kept runs, gaps left open."""

from __future__ import annotations

from runner.render.charts import history_chart


def test_a_single_run_draws_no_history() -> None:
    assert history_chart("eval", ["r1"], {"accuracy of base": [0.9]}) is None


def test_each_series_is_one_line_on_a_score_axis_from_zero() -> None:
    chart = history_chart("eval", ["r1", "r2", "r3"], {"accuracy of base": [0.5, 0.75, 1.0]})
    assert chart is not None
    (line,) = chart.lines
    assert [round(point.y, 1) for point in line.points] == [
        chart.bottom - 90.0,
        chart.bottom - 135.0,
        chart.top,
    ]
    assert line.path.count("M") == 1
    assert line.points[1].title == "accuracy of base, run r2: 0.75"
    assert chart.ticks[0].text == "0"
    assert [label.text for label in chart.columns] == ["#1", "#2", "#3"]


def test_a_run_without_the_metric_breaks_the_line_rather_than_bridging_it() -> None:
    chart = history_chart("eval", ["r1", "r2", "r3", "r4"], {"accuracy of w4": [0.5, None, 0.6, 0.7]})
    assert chart is not None
    assert chart.lines[0].path.count("M") == 2
    assert len(chart.lines[0].points) == 3


def test_fifty_runs_number_at_most_about_twenty_columns() -> None:
    runs = [f"r{index}" for index in range(50)]
    chart = history_chart("eval", runs, {"accuracy of base": [0.5] * 50})
    assert chart is not None
    assert len(chart.columns) <= 25
    assert chart.columns[0].text == "#1"
