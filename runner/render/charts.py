"""The geometry of the report's charts: positions, ticks, labels and colours, computed here and drawn as
inline SVG by the templates (runner/render/templates), so the page needs no script and no network.

Every model keeps one colour in every chart of a report (``model_colours``): an evaluation's series is keyed
by the stage that was scored (an infer stage, or the model stage itself), and takes the colour of the model
stage behind it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.render.report_model import Evaluation, ModelRow, Report
from runner.render.units import binary_unit, size_text

# Okabe and Ito's palette: told apart with the common colour-vision deficiencies.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "skipped": "#f9a825",
    "waiting": "#6a1b9a",  # for people: a manual evaluation's scores
    "running": "#1565c0",
    "submitted": "#1565c0",
    "pending": "#757575",
    "never run": "#9e9e9e",
}


def nice_ticks(largest: float, count: int = 5) -> list[float]:
    """Tick values from 0 to the first round number at or above ``largest`` (steps of 1, 2, 2.5 or 5 times
    a power of ten), about ``count`` of them."""
    if not largest > 0:
        return [0.0, 1.0]
    rough = largest / count
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)
    return [round(i * step, 10) for i in range(math.ceil(largest / step - 1e-9) + 1)]


def _tick_text(value: float) -> str:
    return f"{value:g}"


def model_of(report: Report) -> dict[str, str]:
    """The model behind each stage a chart may show: a stage that made a model version (the report's
    ``models``) stands for itself; a stage that ran for one (an infer stage) for its first such upstream."""
    models = [model["stage"] for model in report["models"]]
    found = {stage: stage for stage in models}
    for stage in report["stages"]:
        model = next((u for u in stage.get("upstream", ()) if u in found and found[u] == u), None)
        if stage["id"] not in found and model is not None:
            found[stage["id"]] = model
    return found


def model_colours(report: Report) -> dict[str, str]:
    """A colour for every series any chart of the report shows, the same for every series of one model,
    in the order charts show them.

    Models are numbered in the pipeline's order (the report's stages are topological), then any series the
    pipeline does not explain (an older state file) in sorted order, so a report rendered twice is the same.
    """
    behind = model_of(report)
    series = {
        name
        for evaluation in report["evaluations"]
        for values in evaluation["metrics"].values()
        for name in values
    }
    series |= {model["stage"] for model in report["models"]}
    ordered = [model["stage"] for model in report["models"]]
    ordered += sorted({name for name in series if name not in behind} - set(ordered))
    index = {name: position for position, name in enumerate(ordered)}

    def position(name: str) -> int:
        return index[behind.get(name, name)]

    shown = sorted(series, key=lambda name: (position(name), name))
    return {name: PALETTE[position(name) % len(PALETTE)] for name in shown}


@dataclass(frozen=True)
class Tick:
    at: float  # the pixel along the axis
    text: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    value: str  # written next to the bar
    value_x: float
    value_y: float
    title: str  # the tooltip


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    colour: str = ""  # a legend entry's swatch


@dataclass(frozen=True)
class BarChart:
    """Bars on a plot area (``left``..``right`` by ``top``..``bottom``) with a value axis and its ticks."""

    title: str
    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float
    horizontal: bool  # bars grow rightwards (sizes) rather than upwards (metrics)
    axis_title: str
    ticks: list[Tick]
    bars: list[Bar]
    categories: list[Label]  # under each group (metrics) or left of each bar (sizes)
    legend: list[Label]


def metric_chart(evaluation: Evaluation, colours: Mapping[str, str]) -> BarChart | None:
    """Grouped bars: one group per metric, one bar per scored model, a score axis from 0 with ticks."""
    metrics: Mapping[str, Mapping[str, float]] = evaluation["metrics"]
    if not metrics:
        return None
    order = {name: position for position, name in enumerate(colours)}  # the models' order in the pipeline
    series = sorted(
        {name for values in metrics.values() for name in values}, key=lambda n: (order.get(n, len(order)), n)
    )
    bar, gap, left, top, plot_h = 36, 28, 56, 24, 200
    group_w = len(series) * bar + gap
    width = max(420, left + len(metrics) * group_w + 20)
    ticks = nice_ticks(max(v for values in metrics.values() for v in values.values()))
    bottom = top + plot_h

    def y_of(value: float) -> float:
        return bottom - plot_h * max(0.0, value) / ticks[-1]

    bars, categories = [], []
    for index, (name, values) in enumerate(sorted(metrics.items())):
        x0 = left + gap / 2 + index * group_w
        for slot, model in enumerate(series):
            if model not in values:
                continue
            value, x = values[model], x0 + slot * bar
            y = y_of(value)
            bars.append(
                Bar(
                    x,
                    y,
                    bar - 4,
                    bottom - y,
                    colours.get(model, PALETTE[0]),
                    f"{value:.3g}",
                    x + (bar - 4) / 2,
                    y - 4,
                    f"{model}: {value:.4g}",
                )
            )
        categories.append(Label(x0 + len(series) * bar / 2, bottom + 18, name))
    samples = evaluation.get("samples") or {}
    legend, x = [], float(left)
    for model in series:
        text = f"{model} (n={samples[model]})" if samples.get(model) else model
        legend.append(Label(x, bottom + 46, text, colours.get(model, PALETTE[0])))
        x += 16 + 7 * len(text) + 24  # the swatch, the text at about 7 px a character, a gap
    return BarChart(
        title=f"metrics of {evaluation['stage']}",
        width=max(width, x),
        height=bottom + 62,
        left=left,
        top=top,
        right=width - 10,
        bottom=bottom,
        horizontal=False,
        axis_title="score",
        ticks=[Tick(y_of(t), _tick_text(t)) for t in ticks],
        bars=bars,
        categories=categories,
        legend=legend,
    )


def size_chart(models: Sequence[ModelRow], colours: Mapping[str, str]) -> BarChart | None:
    """One horizontal bar per model version with a known size, on a size axis in one binary unit."""
    sized = [(m, m["size_bytes"]) for m in models if isinstance(m.get("size_bytes"), int | float)]
    if not sized:
        return None
    largest = max(size for _, size in sized if size is not None)
    unit, scale = binary_unit(largest)
    ticks = nice_ticks(largest / scale)
    left, top, plot_w, row = 150, 12, 420, 30
    bottom = top + row * len(sized)

    def x_of(value: float) -> float:
        return left + plot_w * value / ticks[-1]

    bars, categories = [], []
    for index, (model, size) in enumerate(sized):
        assert size is not None  # kept above
        y, end = top + index * row + 5, x_of(size / scale)
        text = size_text(size)
        bars.append(
            Bar(
                left,
                y,
                end - left,
                row - 10,
                colours.get(model["stage"], PALETTE[0]),
                text,
                end + 6,
                y + (row - 10) / 2 + 4,
                f"{model['stage']}: {text} ({model['size_bytes']} bytes)",
            )
        )
        categories.append(Label(left - 8, y + (row - 10) / 2 + 4, model["stage"]))
    return BarChart(
        title="model sizes",
        width=left + plot_w + 90,
        height=bottom + 44,
        left=left,
        top=top,
        right=left + plot_w,
        bottom=bottom,
        horizontal=True,
        axis_title=f"size ({unit})",
        ticks=[Tick(x_of(t), _tick_text(t)) for t in ticks],
        bars=bars,
        categories=categories,
        legend=[],
    )


@dataclass(frozen=True)
class Box:
    id: str
    x: float
    y: float
    label: str
    colour: str
    href: str


@dataclass(frozen=True)
class StageGraph:
    width: float
    height: float
    box_w: float
    box_h: float
    boxes: list[Box]
    lines: list[tuple[float, float, float, float]]


def stage_graph(
    stages: Sequence[Mapping[str, Any]], edges: Sequence[Sequence[str]], hrefs: Mapping[str, str]
) -> StageGraph | None:
    """The graph in layers (a stage sits one column right of its deepest upstream); None past 200 stages,
    where a picture stops helping."""
    if len(stages) > 200 or not stages:
        return None
    depth: dict[str, int] = {}
    for stage in stages:  # topological order
        depth[stage["id"]] = max((depth[u] + 1 for u in stage["upstream"] if u in depth), default=0)
    columns: dict[int, list[str]] = {}
    for stage in stages:
        columns.setdefault(depth[stage["id"]], []).append(stage["id"])
    box_w, box_h, gap_x, gap_y = 150, 44, 60, 16
    where: dict[str, tuple[int, int]] = {}
    for column, ids in columns.items():
        for position, stage_id in enumerate(ids):
            where[stage_id] = (gap_x + column * (box_w + gap_x), gap_y + position * (box_h + gap_y))
    by_id = {stage["id"]: stage for stage in stages}
    lines: list[tuple[float, float, float, float]] = [
        (where[s][0] + box_w, where[s][1] + box_h / 2, where[t][0], where[t][1] + box_h / 2)
        for s, t in edges
        if s in where and t in where
    ]
    boxes = [
        Box(
            stage_id,
            x,
            y,
            f"{by_id[stage_id]['type']} · {by_id[stage_id]['status']}",
            STATUS_COLOURS.get(by_id[stage_id]["status"], "#757575"),
            hrefs.get(stage_id, ""),
        )
        for stage_id, (x, y) in where.items()
    ]
    return StageGraph(
        width=len(columns) * (box_w + gap_x) + gap_x,
        height=max(len(c) for c in columns.values()) * (box_h + gap_y) + gap_y,
        box_w=box_w,
        box_h=box_h,
        boxes=boxes,
        lines=lines,
    )


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str  # the tooltip: the series, the run and the value


@dataclass(frozen=True)
class Line:
    colour: str
    path: str  # SVG path data; a run without the value breaks the line rather than bridging it
    points: list[Point]
    dash: str = ""  # SVG stroke-dasharray: a second line of the same model (validation loss)


@dataclass(frozen=True)
class LineChart:
    """Metric values across runs: a score axis from 0, one column per kept run (oldest left)."""

    title: str
    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float
    ticks: list[Tick]
    columns: list[Label]  # the runs, numbered; their ids are in each point's tooltip
    lines: list[Line]
    legend: list[Label]
    axis_title: str = "score"
    x_title: str = ""  # under the columns' labels, when they are numbers (steps) rather than run numbers


def history_chart(
    stage_id: str, runs: Sequence[str], series: Mapping[str, Sequence[float | None]]
) -> LineChart | None:
    """One line per metric and model of an evaluation stage over the kept runs; None before a second run."""
    values = [v for line in series.values() for v in line if v is not None]
    if len(runs) < 2 or not values:
        return None
    left, top, plot_h = 56, 24, 180
    step = max(12.0, min(80.0, 600 / (len(runs) - 1)))
    right = left + 20 + step * (len(runs) - 1)
    bottom = top + plot_h
    ticks = nice_ticks(max(values))

    def x_of(index: int) -> float:
        return left + 10 + step * index

    def y_of(value: float) -> float:
        return bottom - plot_h * max(0.0, value) / ticks[-1]

    lines, legend, x = [], [], float(left)
    for number, (label, line) in enumerate(sorted(series.items())):
        colour = PALETTE[number % len(PALETTE)]
        path, points, gap = [], [], True
        for index, value in enumerate(line):
            if value is None:
                gap = True
                continue
            px, py = x_of(index), y_of(value)
            path.append(f"{'M' if gap else 'L'}{px:.1f},{py:.1f}")
            points.append(Point(px, py, f"{label}, run {runs[index]}: {value:.4g}"))
            gap = False
        lines.append(Line(colour, " ".join(path), points))
        legend.append(Label(x, bottom + 46, label, colour))
        x += 16 + 7 * len(label) + 24
    every = max(1, math.ceil(len(runs) / 20))  # at most ~20 run numbers under the axis
    columns = [Label(x_of(i), bottom + 18, f"#{i + 1}") for i in range(0, len(runs), every)]
    return LineChart(
        title=f"metrics of {stage_id} across runs",
        width=max(right + 20, x, 420),
        height=bottom + 62,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        ticks=[Tick(y_of(t), _tick_text(t)) for t in ticks],
        columns=columns,
        lines=lines,
        legend=legend,
    )


MAX_POINTS = 400  # per line of a loss chart: enough for the eye, and the page stays small


def thinned(line: Sequence[Sequence[float]], limit: int = MAX_POINTS) -> list[Sequence[float]]:
    """At most about ``limit`` points of ``line``, evenly spaced, always with the first, the last and the
    lowest (the numbers the report's summary quotes)."""
    if len(line) <= limit:
        return list(line)
    every = math.ceil(len(line) / limit)
    lowest = min(range(len(line)), key=lambda index: line[index][1])
    keep = set(range(0, len(line), every)) | {len(line) - 1, lowest}
    return [line[index] for index in sorted(keep)]


def loss_chart(
    stage_id: str, curves: Mapping[str, Sequence[Sequence[float]]], names: Mapping[str, str], colour: str
) -> LineChart | None:
    """The loss per step of one training task: a step axis from 0 and a loss axis from 0, one line per
    curve in the model's colour (the validation loss dashed)."""
    lines_in = {key: thinned(line) for key, line in curves.items() if line}
    if not lines_in:
        return None
    left, top, plot_w, plot_h = 56, 24, 560, 180
    last_step = max(point[0] for line in lines_in.values() for point in line)
    x_ticks = nice_ticks(last_step)
    y_ticks = nice_ticks(max(point[1] for line in lines_in.values() for point in line))
    right, bottom = left + plot_w, top + plot_h

    def x_of(step: float) -> float:
        return left + plot_w * step / x_ticks[-1]

    def y_of(value: float) -> float:
        return bottom - plot_h * max(0.0, value) / y_ticks[-1]

    lines, legend, x = [], [], float(left)
    for key, line in lines_in.items():
        label = names.get(key, key)
        dash = "6 4" if key != "loss" else ""
        path = " ".join(
            f"{'M' if index == 0 else 'L'}{x_of(step):.1f},{y_of(value):.1f}"
            for index, (step, value) in enumerate(line)
        )
        # a marker (and its tooltip) per point while they stay apart; past that the first, lowest and last
        marked = line if len(line) <= 100 else [line[0], min(line, key=lambda p: p[1]), line[-1]]
        points = [
            Point(x_of(step), y_of(value), f"{label}, step {step:g}: {value:.4g}") for step, value in marked
        ]
        lines.append(Line(colour, path, points, dash))
        shown = f"{label} (dashed)" if dash else label  # one colour per model: the dash tells them apart
        legend.append(Label(x, bottom + 46, shown, colour))
        x += 16 + 7 * len(shown) + 24
    return LineChart(
        title=f"loss of {stage_id}",
        width=max(right + 30, x),
        height=bottom + 62,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        ticks=[Tick(y_of(t), _tick_text(t)) for t in y_ticks],
        columns=[Label(x_of(t), bottom + 18, _tick_text(t)) for t in x_ticks],
        lines=lines,
        legend=legend,
        axis_title="loss",
        x_title="step",
    )
