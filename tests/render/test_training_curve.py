"""The loss curve's data and geometry: junk points left out, long curves thinned with the numbers the summary
quotes kept, markers only where they stay apart, fingerprints shortened only when they are digests."""

from __future__ import annotations

from runner.render.charts import MAX_POINTS, loss_chart, thinned
from runner.render.lineage import short
from runner.render.training import SERIES, curves_of, trainings


def test_points_that_are_not_numbers_are_left_out_rather_than_failing_the_report() -> None:
    points = [
        {"step": 1, "loss": float("nan")},  # a diverged run
        {"step": "2", "loss": 1.0},
        "junk",
        {"step": 3, "loss": True},
        {"step": 5, "loss": 0.5},
        {"step": 4, "loss": 0.7, "eval_loss": 0.9},
    ]
    assert curves_of(points) == {"loss": [[4.0, 0.7], [5.0, 0.5]], "eval_loss": [[4.0, 0.9]]}
    assert curves_of(None) == curves_of({"step": 1}) == {}
    assert trainings([{"id": "a", "outputs": {"loss_curve": "not a list"}}, {"id": "b", "outputs": {}}]) == []


def test_a_long_curve_is_thinned_keeping_its_first_last_and_lowest_points() -> None:
    line = [[float(step), 10.0 - step / 4000] for step in range(1, 20_001)]
    line[7777][1] = 0.001  # a dip the summary quotes
    kept = thinned(line)
    assert len(kept) <= MAX_POINTS + 2
    assert kept[0] == line[0]
    assert kept[-1] == line[-1]
    assert line[7777] in kept
    assert thinned(line[:10]) == line[:10]


def test_a_long_curve_marks_only_its_first_lowest_and_last_points() -> None:
    line = [[float(step), 1.0 / step] for step in range(1, 301)]
    chart = loss_chart("tuned", {"loss": line}, SERIES, "#e69f00")
    assert chart is not None
    (drawn,) = chart.lines
    assert [point.title for point in drawn.points] == [
        "training loss, step 1: 1",
        "training loss, step 300: 0.003333",
        "training loss, step 300: 0.003333",
    ]
    assert drawn.path.count("L") == 299  # every point is on the line
    assert loss_chart("tuned", {"loss": []}, SERIES, "#e69f00") is None


def test_only_a_sha256_digest_is_shortened_for_people() -> None:
    assert short("a" * 64) == "sha256 aaaaaaaaaaaa"
    assert short("qianfan:ds-1") == "qianfan:ds-1"  # a Qianfan dataset: its id is what identifies it


def test_the_report_keeps_a_long_curve_thinned_but_summarises_every_point() -> None:
    points = [{"step": step, "loss": 5.0 - step / 10_000} for step in range(1, 20_001)]
    points[12_345]["loss"] = 0.01
    (training,) = trainings([{"id": "tuned", "outputs": {"loss_curve": points}}])
    assert len(training["curves"]["loss"]) <= MAX_POINTS + 2
    assert training["summary"]["loss"] == {"first": 4.9999, "last": 3.0, "min": 0.01, "min_step": 12_346.0}


def test_the_validation_loss_the_fine_tuning_stage_keeps_apart_is_drawn_beside_the_training_loss() -> None:
    outputs = {
        "loss_curve": [{"step": 10, "loss": 2.0}, {"step": 20, "loss": 1.0}],
        "eval_curve": [{"step": 10, "eval_loss": 2.5}, {"step": 20, "eval_loss": 1.5}],
    }
    (training,) = trainings([{"id": "tune", "outputs": outputs}])
    assert training["curves"] == {"loss": [[10.0, 2.0], [20.0, 1.0]], "eval_loss": [[10.0, 2.5], [20.0, 1.5]]}
    assert training["summary"]["eval_loss"]["last"] == 1.5
