"""The sweep figures: each trial's curve, parallel coordinates with log and word axes, importances; all valid plotly."""

from __future__ import annotations

import math

import pytest

from core.figures import sweeps
from core.runs.status import RunState, RunStatus
from core.sweeps.results import SweepView, TrialView
from core.sweeps.space import Setting
from tests.core.figures.conftest import is_a_valid_plotly_figure, traces
from tests.core.sweeps.conftest import RATES, sweep_spec

SETTINGS = (RATES, Setting("batch_size", values=(16, 32, 128)), Setting("optimizer", values=("sgd", "adam")),
            Setting("conv1.dropout", 0.0, 0.5))


@pytest.fixture()
def view() -> SweepView:
    from core.data.registry import load_dataset

    spec = sweep_spec(load_dataset("digits-8x8"), *SETTINGS, trials=5)
    trials = (
        TrialView(0, "finished", {"learning_rate": 0.01, "batch_size": 16, "optimizer": "sgd", "conv1.dropout": 0.1},
                  0.9, {1: 0.8, 2: 0.9}),
        TrialView(1, "finished", {"learning_rate": 0.05, "batch_size": 128, "optimizer": "adam", "conv1.dropout": 0.3},
                  0.95, {1: 0.85, 2: 0.95}),
        TrialView(2, "pruned", {"learning_rate": 0.001, "batch_size": 32, "optimizer": "sgd", "conv1.dropout": 0.0},
                  None, {1: 0.3}),
        TrialView(3, "training", {"learning_rate": 0.02, "batch_size": 32, "optimizer": "adam", "conv1.dropout": 0.2},
                  None, {}),
    )
    return SweepView("s20261206-101500-a1b2c3", spec, RunStatus(RunState.RUNNING), "", trials)


def test_each_trials_curve_the_best_thicker_the_pruned_grey_and_dashed(view):
    fig = sweeps.trial_curves(view)
    lines = {t["name"]: t for t in traces(fig)}
    assert list(lines) == ["#1", "#2 (best)", "#3 pruned"]  # (the trial training has no epoch yet)
    assert lines["#2 (best)"]["line"]["width"] == 4 and lines["#3 pruned"]["line"]["dash"] == "dash"
    assert lines["#3 pruned"]["x"] == [1] and lines["#1"]["y"] == [0.8, 0.9]
    assert is_a_valid_plotly_figure(fig)


def test_parallel_coordinates_put_each_setting_on_its_own_kind_of_axis(view):
    fig = sweeps.parallel_coordinates(view)
    (trace,) = traces(fig)
    axes = {d["label"]: d for d in trace["dimensions"]}
    assert list(axes) == ["learning_rate (log)", "batch_size (log)", "optimizer", "conv1.dropout", "epochs trained",
                          "validation accuracy"]
    # finished and pruned trials (the pruned one at its best before the stop), not the one still training
    assert axes["learning_rate (log)"]["values"] == pytest.approx([-2, math.log10(0.05), -3])
    assert axes["learning_rate (log)"]["range"] == [-3, -1]
    assert axes["learning_rate (log)"]["ticktext"] == ["0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1"]
    assert axes["batch_size (log)"]["ticktext"] == ["16", "32", "128"]  # a list spanning 8x: log, at its values
    assert axes["optimizer"]["ticktext"] == ["sgd", "adam"] and axes["optimizer"]["values"] == [0, 1, 0]
    assert axes["conv1.dropout"]["range"] == [0.0, 0.5] and "tickvals" not in axes["conv1.dropout"]  # plotly's ticks
    assert axes["epochs trained"]["values"] == [2, 2, 1] and axes["epochs trained"]["range"] == [0, 3]
    # the pruned trial's 30 % is far below 90 % and 95 %: drawn at the axis' end, twice the median-to-best below it
    assert axes["validation accuracy"]["values"] == pytest.approx([0.9, 0.95, 0.8])
    assert axes["validation accuracy"]["range"] == pytest.approx([0.8, 0.95])
    assert axes["validation accuracy"]["ticktext"] == ["≤ 80.0%", "83.8%", "87.5%", "91.2%", "95.0%"]
    assert "and per pruned one (1, at its best before it was stopped)" in fig.to_dict()["layout"]["title"]["text"]
    assert is_a_valid_plotly_figure(fig)


def test_the_colour_spans_the_median_to_the_best_so_a_diverged_trial_does_not_flatten_the_rest(view):
    from dataclasses import replace

    finished = [TrialView(n, "finished", {"learning_rate": 0.01, "batch_size": 16, "optimizer": "sgd",
                                          "conv1.dropout": 0.1}, value, {1: value}) for n, value in
                enumerate((0.968, 0.971, 0.965, 0.107, 0.969))]
    (trace,) = traces(sweeps.parallel_coordinates(replace(view, trials=tuple(finished))))
    line = trace["line"]
    assert (line["cmin"], line["cmax"]) == (0.968, 0.971) and line["color"] == [0.968, 0.971, 0.965, 0.107, 0.969]
    assert line["colorbar"]["tickformat"] == ".2%"  # 96.80 % to 97.10 %: one decimal would repeat 97.0 %
    assert [d["label"] for d in trace["dimensions"]][-2:] == ["conv1.dropout", "validation accuracy"]  # none pruned
    # nor does it squash the rest on the metric's axis: it sits at its end, "96.20 % or less"
    metric = trace["dimensions"][-1]
    assert metric["values"] == pytest.approx([0.968, 0.971, 0.965, 0.962, 0.969])
    assert metric["range"] == pytest.approx([0.962, 0.971]) and metric["ticktext"][0] == "≤ 96.20%"

    losses = replace(view, spec=replace(view.spec, metric="val_loss"),
                     trials=tuple(replace(t, value=v) for t, v in zip(finished, (0.2, 0.1, 0.3, 2.5, 0.15))))
    (trace,) = traces(sweeps.parallel_coordinates(losses))
    assert (trace["line"]["cmin"], trace["line"]["cmax"]) == (0.1, 0.2) and trace["line"]["reversescale"]
    assert "tickformat" not in trace["line"]["colorbar"]
    metric = trace["dimensions"][-1]  # a loss: the diverged 2.5 at the top end, "0.4 or more"
    assert metric["values"] == pytest.approx([0.2, 0.1, 0.3, 0.4, 0.15]) and metric["ticktext"][-1] == "≥ 0.4"


def test_the_metric_axis_is_left_as_it_is_when_no_trial_sits_far_below(view):
    from dataclasses import replace

    close = [TrialView(n, "finished", {"learning_rate": 0.01, "batch_size": 16, "optimizer": "sgd",
                                       "conv1.dropout": 0.1}, value, {1: value}) for n, value in
             enumerate((0.90, 0.95, 0.93))]
    (trace,) = traces(sweeps.parallel_coordinates(replace(view, trials=tuple(close))))
    metric = trace["dimensions"][-1]
    assert metric["values"] == [0.90, 0.95, 0.93] and "range" not in metric and metric["tickformat"] == ".1%"


def test_a_list_of_numbers_on_a_linear_axis_is_ticked_at_its_values(view):
    from dataclasses import replace

    spec = replace(view.spec, settings=(Setting("batch_size", values=(16, 32, 64)),))
    (trace,) = traces(sweeps.parallel_coordinates(replace(view, spec=spec)))
    batch = trace["dimensions"][0]
    assert batch["label"] == "batch_size" and batch["range"] == [16, 64]  # spanning 4x: linear
    assert batch["tickvals"] == [16, 32, 64] and batch["ticktext"] == ["16", "32", "64"]
    assert is_a_valid_plotly_figure(sweeps.parallel_coordinates(replace(view, spec=spec)))


def test_no_parallel_coordinates_before_a_trial_has_finished(view):
    from dataclasses import replace

    assert sweeps.parallel_coordinates(replace(view, trials=view.trials[2:])) is None
    empty = replace(view, trials=())
    assert traces(sweeps.trial_curves(empty)) == [] and is_a_valid_plotly_figure(sweeps.trial_curves(empty))


def test_importances_largest_on_top():
    fig = sweeps.importance_bars({"learning_rate": 0.7, "batch_size": 0.2, "optimizer": 0.1}, "val_accuracy")
    (trace,) = traces(fig)
    assert trace["y"] == ["optimizer", "batch_size", "learning_rate"] and trace["text"][-1] == "70%"
    assert is_a_valid_plotly_figure(fig)
