"""Sweep figures: each trial's curve, settings against the metric (parallel coordinates), each setting's importance.

Plain dicts (`FigureSpec`): the Sweeps page redraws them while a sweep runs.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from core.figures.base import RUN_COLOURS, FigureSpec, _plain_layout
from core.sweeps.results import SweepView, TrialView
from core.sweeps.space import Setting
from core.sweeps.spec import METRIC_NAMES

PRUNED_COLOUR = "#b0b0b0"
LOG_SPAN = 8  # a list of positive numbers spanning this factor or more (16 to 128) is drawn on a log axis
OUTLIER_REACH = 2.0  # the metric's axis reaches this many median-to-best distances beyond the median (`_metric_axis`)


def trial_curves(view: SweepView) -> FigureSpec:
    """The metric after each epoch, one line per trial: finished ones in colour (the best thicker), pruned ones
    grey and dashed, ending where they were stopped."""
    best = view.best
    traces = []
    for trial in view.trials:
        if not trial.curve:
            continue
        pruned = trial.state == "pruned"
        colour = PRUNED_COLOUR if pruned else RUN_COLOURS[trial.number % len(RUN_COLOURS)]
        is_best = best is not None and trial.number == best.number
        traces.append({"type": "scatter", "mode": "lines+markers", "x": list(trial.curve), "y": list(trial.curve.values()),
                       "name": f"#{trial.number + 1}{' (best)' if is_best else ''}{' pruned' if pruned else ''}",
                       "line": {"color": colour, "width": 4 if is_best else 2, "dash": "dash" if pruned else "solid"},
                       "marker": {"size": 5}, "hovertemplate": _hover(trial, view) + "<extra></extra>"})
    metric = METRIC_NAMES[view.spec.metric]
    values = [value for trial in view.trials for value in trial.curve.values()]
    y_range = {}
    if values:  # a little room around what is drawn (an accuracy never past 100 %)
        low, high = min(values), max(values)
        pad = max((high - low) * 0.08, 0.01)
        y_range = {"range": [low - pad, min(high + pad, 1.005) if _is_accuracy(view) else high + pad]}
    layout = _plain_layout(f"{metric.capitalize()} after each epoch, one line per trial", 360,
                           xaxis={"title": {"text": "epoch"}, "dtick": 1, "range": [0.8, _most_epochs(view) + 0.2]},
                           yaxis={"title": {"text": metric}, **y_range,
                                  **({"tickformat": ".0%"} if _is_accuracy(view) else {})})
    layout["legend"] = {"orientation": "v", "x": 1.02, "y": 1}
    layout["margin"] = {"l": 60, "r": 10, "t": 50, "b": 50}
    return FigureSpec({"data": traces, "layout": layout})


def _most_epochs(view: SweepView) -> int:
    """The most epochs a trial of this sweep trains (the recipe's, or the largest of the epochs varied)."""
    epochs = next((s for s in view.spec.settings if s.name == "epochs"), None)
    if epochs is None:
        return view.spec.training.epochs
    return int(max(epochs.values) if epochs.values else epochs.high)


def _hover(trial: TrialView, view: SweepView) -> str:
    values = "<br>".join(f"{name} = {_text(trial.values.get(name))}" for name in view.spec.names())
    return f"trial {trial.number + 1} ({trial.state})<br>{values}<br>epoch %{{x}}: %{{y:.4f}}"


def parallel_coordinates(view: SweepView) -> FigureSpec | None:
    """One line per finished or pruned trial through an axis per setting varied and one for the metric (plotly's
    parallel coordinates); log-scale settings on log axes. None before any trial has finished.

    A pruned trial is drawn at the best metric it reached before it was stopped, and an axis of the epochs each
    trial trained says how far it got (with pruning on, most trials are pruned: the settings that failed are what
    the plot must show). The colour spans the better half, from the median to the best, so that the trials worth
    comparing differ in colour even when a diverged one sits far below them (it takes the end of the scale).
    """
    if not any(t.state == "finished" and t.value is not None for t in view.trials):
        return None
    shown = [t for t in view.trials if t.state == "finished" and t.value is not None or t.state == "pruned" and t.curve]
    values = [t.value if t.state == "finished" else _best(view, t.curve.values()) for t in shown]
    dimensions = [_dimension(setting, [t.values.get(setting.name) for t in shown]) for setting in view.spec.settings]
    if any(t.state == "pruned" for t in shown):
        epochs = [max(t.curve) if t.curve else t.epochs_done for t in shown]
        dimensions.append({"label": "epochs trained", "values": epochs, "range": [0, _most_epochs(view)]})
    metric = METRIC_NAMES[view.spec.metric]
    dimensions.append(_metric_axis(view, values))
    middle, best = statistics.median(values), _best(view, values)
    low, high = sorted((middle, best))
    colour = {"color": values, "cmin": low, "cmax": high if high > low else low + 1e-9, "colorscale": "Viridis",
              "reversescale": view.spec.direction == "minimize", "showscale": True,
              "colorbar": {"title": {"text": f"{metric}<br>(median to best)"}, "x": 1.08, "thickness": 14,
                           **_number_format(view, low, high)}}
    trace = {"type": "parcoords", "dimensions": dimensions, "line": colour,
             "labelfont": {"size": 13}, "tickfont": {"size": 11}}
    pruned = sum(t.state == "pruned" for t in shown)
    title = f"Settings against the {metric}: one line per finished trial" + (
        f" and per pruned one ({pruned}, at its best before it was stopped)" if pruned else "")
    layout = _plain_layout(title, 440)
    layout["margin"] = {"l": 80, "r": 150, "t": 110, "b": 40}
    return FigureSpec({"data": [trace], "layout": layout})


def _metric_axis(view: SweepView, values: list[float]) -> dict:
    """The metric's axis. A trial far worse than the rest (a diverged one: 10 % beside 96 %) would squash every other
    line against the best, so the axis ends `OUTLIER_REACH` median-to-best distances beyond the median, and such a
    trial is drawn at that end, ticked "≤ 89.7%" ("≥" for a loss)."""
    label = METRIC_NAMES[view.spec.metric]
    maximize = view.spec.direction == "maximize"
    middle, best = statistics.median(values), _best(view, values)
    reach = abs(best - middle) * OUTLIER_REACH
    end = middle - reach if maximize else middle + reach
    worst = min(values) if maximize else max(values)
    if not reach or (worst >= end if maximize else worst <= end):
        return {"label": label, "values": values, **_number_format(view, min(values), max(values))}
    low, high = sorted((end, best))
    ticks = [low + (high - low) * step / 4 for step in range(5)]
    text = [f"{tick:.2%}" if high - low < 0.02 else f"{tick:.1%}" for tick in ticks] if _is_accuracy(view) else \
        [f"{tick:.3g}" for tick in ticks]
    text[0 if maximize else -1] = ("≤ " if maximize else "≥ ") + text[0 if maximize else -1]
    return {"label": label, "values": [max(v, end) if maximize else min(v, end) for v in values],
            "range": [low, high], "tickvals": ticks, "ticktext": text}


def _best(view: SweepView, values) -> float:
    values = list(values)
    return max(values) if view.spec.direction == "maximize" else min(values)


def _number_format(view: SweepView, low: float, high: float) -> dict:
    """Ticks of an accuracy in percent, with a decimal more when the span is narrow (97.05 % beside 97.10 %)."""
    if not _is_accuracy(view):
        return {}
    return {"tickformat": ".2%" if high - low < 0.02 else ".1%"}


def _dimension(setting: Setting, values: Sequence) -> dict:
    """One axis: a list of words at their positions, a log axis (log10 values, ticks in plain numbers), or linear
    (a list of numbers ticked at its values: 16 and 64, not 20, 30, ... 60)."""
    if setting.kind is str:
        choices = list(setting.values)
        return {"label": setting.name, "values": [choices.index(v) for v in values], "range": [0, len(choices) - 1],
                "tickvals": list(range(len(choices))), "ticktext": choices}
    low, high = (min(setting.values), max(setting.values)) if setting.values else (setting.low, setting.high)
    if low > 0 and (setting.log or setting.values and high / low >= LOG_SPAN):
        ticks = list(setting.values) if setting.values else _log_ticks(low, high)
        return {"label": f"{setting.name} (log)", "values": [math.log10(v) for v in values],
                "range": [math.log10(low), math.log10(high)], "tickvals": [math.log10(t) for t in ticks],
                "ticktext": [_text(t) for t in ticks]}
    ticks = {"tickvals": list(setting.values), "ticktext": [_text(v) for v in setting.values]} if setting.values else {}
    return {"label": setting.name, "values": list(values), "range": [low, high], **ticks}  # (a list: ticks at its values)


def _log_ticks(low: float, high: float) -> list[float]:
    """1, 2 and 5 times the powers of ten between `low` and `high`, with both ends."""
    ticks = [low]
    for power in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        ticks += [m * 10.0 ** power for m in (1, 2, 5) if low * 1.15 < m * 10.0 ** power < high / 1.15]
    return sorted(set(ticks + [high]))


def importance_bars(importances: dict[str, float], metric: str) -> FigureSpec:
    """Each setting's share of the metric's variation (fANOVA), the largest at the top."""
    ranked = sorted(importances.items(), key=lambda item: item[1])
    trace = {"type": "bar", "orientation": "h", "x": [value for _, value in ranked], "y": [name for name, _ in ranked],
             "marker": {"color": RUN_COLOURS[0]}, "text": [f"{value:.0%}" for _, value in ranked],
             "textposition": "auto", "hovertemplate": "%{y}: %{x:.1%}<extra></extra>"}
    layout = _plain_layout(f"What mattered: each setting's share of the variation in {METRIC_NAMES[metric]}",
                           max(200, 60 + 40 * len(ranked)),
                           xaxis={"range": [0, 1], "tickformat": ".0%"}, yaxis={"automargin": True})
    layout["margin"] = {"l": 10, "r": 10, "t": 50, "b": 40}
    layout["showlegend"] = False
    return FigureSpec({"data": [trace], "layout": layout})


def _is_accuracy(view: SweepView) -> bool:
    return view.spec.metric == "val_accuracy"


def _text(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
