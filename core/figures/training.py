"""Training figures: loss and accuracy per batch and per epoch, live and compared, and the first layer's filters."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from core.figures.base import RUN_COLOURS, TRAIN_COLOUR, VAL_COLOUR, FigureSpec

MAX_BATCH_POINTS = 600  # per-batch curves are thinned to this many points so a redraw stays cheap


def _thin(rows: Sequence[dict]) -> Sequence[dict]:
    if len(rows) <= MAX_BATCH_POINTS:
        return rows
    stride = int(np.ceil(len(rows) / MAX_BATCH_POINTS))
    return list(rows[::stride]) + ([rows[-1]] if (len(rows) - 1) % stride else [])


def stretch_means(rows: Sequence[dict], metric: str) -> list[float | None]:
    """Each row's `metric` as the mean over the batches since the row before it, in its epoch.

    Keras reports a metric after each batch as its mean since the epoch began, and restarts that mean at
    every epoch: plotted as it is, the curve is smooth within an epoch and drops where the next begins,
    though nothing happened to the network there. A row at batch b with epoch-mean m, after one at batch
    b0 with mean m0, covers batches b0+1..b with the mean (b*m - b0*m0) / (b - b0).
    """
    means: list[float | None] = []
    epoch, batch_before, mean_before = None, 0, 0.0
    for row in rows:
        value, batch = row.get(metric), int(row["batch"])
        if row["epoch"] != epoch or batch <= batch_before:
            epoch, batch_before, mean_before = row["epoch"], 0, 0.0
        if value is not None and not math.isfinite(value):
            value = None
        if value is None or mean_before is None:
            means.append(None)
            mean_before = value
        else:
            stretch = (batch * value - batch_before * mean_before) / (batch - batch_before)
            means.append(min(max(stretch, 0.0), 1.0) if metric == "accuracy" else max(stretch, 0.0))
            mean_before = value
        batch_before = batch
    return means


PANELS = ("loss", "accuracy")


def _line(panel: int, x: Sequence[float], y: Sequence[float], name: str, colour: str, *, width: float = 2,
          markers: bool = True, dash: str = "solid", opacity: float = 1.0, legend: bool = True,
          group: str = "") -> dict:
    axis = "" if panel == 0 else "2"
    return {"type": "scatter", "x": list(x), "y": list(y), "name": name, "mode": "lines+markers" if markers else "lines",
            "line": {"color": colour, "width": width, "dash": dash}, "marker": {"size": 5}, "opacity": opacity,
            "xaxis": f"x{axis}", "yaxis": f"y{axis}", "showlegend": legend, "legendgroup": group or name}


def _two_panels(traces: list[dict], title: str, height: int = 340, accuracy_range: bool = True,
                epoch_ticks: bool = False) -> FigureSpec:
    """Loss on the left, accuracy on the right, as a plain dict (see FigureSpec)."""
    axis = {"title": {"text": "epoch"}, "rangemode": "tozero", "zeroline": False, **({"dtick": 1} if epoch_ticks else {})}
    layout = {
        "title": {"text": title}, "height": height, "margin": {"l": 40, "r": 10, "t": 50, "b": 90},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "center", "x": 0.5},
        "xaxis": dict(axis, domain=[0.0, 0.46], anchor="y"), "xaxis2": dict(axis, domain=[0.54, 1.0], anchor="y2"),
        "yaxis": {"anchor": "x", "rangemode": "tozero"},
        "yaxis2": {"anchor": "x2", **({"range": [0, 1.0]} if accuracy_range else {})},
        "annotations": [
            {"text": label.capitalize(), "x": x, "y": 1.0, "xref": "paper", "yref": "paper", "showarrow": False,
             "xanchor": "center", "yanchor": "bottom", "font": {"size": 16}}
            for label, x in zip(PANELS, (0.23, 0.77))],
    }
    return FigureSpec({"data": traces, "layout": layout})


EVENT_WORDS = {  # how a run's events (`core.training.controls`) read on its curves
    "learning_rate": "rate {value:.3g}", "epochs": "{value} epochs", "stop": "stopped", "paused": "paused",
    "resumed": "resumed", "continued": "continued", "plateau": "rate {value:.3g} (plateau)",
    "early_stop": "early stop", "kept": "kept epoch {value}", "pruned": "pruned by its sweep",
    "node_lost": "node lost",
}
EVENT_COLOUR = "#7f7f7f"


def event_marks(events: Sequence[dict], batches_per_epoch: int) -> tuple[list[dict], list[dict]]:
    """A run's events as dotted vertical lines on both panels, labelled (events at one batch share a line)."""
    per_epoch = max(batches_per_epoch, 1)
    at: dict[float, list[str]] = {}
    for event in events:
        words = EVENT_WORDS.get(str(event.get("kind")))
        if words is None:
            continue
        x = float(event["value"]) if event.get("kind") == "kept" else int(event.get("step", 0)) / per_epoch
        try:
            text = words.format(value=event.get("value"))
        except (TypeError, ValueError):
            text = words.split(" {")[0]
        at.setdefault(round(x, 6), []).append(text)
    shapes, notes = [], []
    for index, (x, texts) in enumerate(sorted(at.items())):
        for axis in ("x", "x2"):
            shapes.append({"type": "line", "xref": axis, "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 0.94,
                           "line": {"color": EVENT_COLOUR, "width": 1, "dash": "dot"}})
            notes.append({"text": " · ".join(texts), "x": x, "xref": axis, "y": 0.94 - 0.07 * (index % 3),
                          "yref": "paper", "showarrow": False, "xanchor": "left", "font": {"size": 10,
                          "color": EVENT_COLOUR}, "bgcolor": "rgba(255,255,255,0.7)"})
    return shapes, notes


def training_curves(
    batch_history: Sequence[dict], epoch_history: Sequence[dict], batches_per_epoch: int,
    events: Sequence[dict] = (),
) -> FigureSpec:
    """Loss and accuracy side by side: training per batch (thin), and per epoch with validation (markers);
    the run's events (changes of course, pauses, early stopping) as labelled dotted lines.

    The x axis is in epochs, so batch points and epoch points share it. Each batch point is the mean over the
    batches since the point before it (`stretch_means`), not Keras' mean since the epoch began. Cheap
    enough to make every second.
    """
    per_epoch = max(batches_per_epoch, 1)
    batches = _thin(batch_history)
    x_batch = [(row["epoch"] - 1) + row["batch"] / per_epoch for row in batches]
    # a stopped run's last epoch is partial: place it where its last batch was
    x_epoch = [row["step"] / per_epoch for row in epoch_history]
    traces = []
    for panel, metric in enumerate(PANELS):
        first = panel == 0
        traces.append(_line(panel, x_batch, stretch_means(batches, metric), "training (per batch)",
                            TRAIN_COLOUR, width=1, markers=False, opacity=0.6, legend=first))
        for key, colour, name in ((metric, TRAIN_COLOUR, "training (epoch)"),
                                  (f"val_{metric}", VAL_COLOUR, "validation (epoch)")):
            if epoch_history and key in epoch_history[0]:
                traces.append(_line(panel, x_epoch, [row.get(key) for row in epoch_history], name, colour,
                                    legend=first))
    figure = _two_panels(traces, "")
    shapes, notes = event_marks(events, per_epoch)
    layout = figure.to_dict()["layout"]
    layout["shapes"] = shapes
    layout["annotations"] = [*layout["annotations"], *notes]
    return figure


def history_curves(history: dict[str, list[float]], title: str = "Training and validation curves") -> FigureSpec:
    """Per-epoch training and validation curves from a Keras-style history dict."""
    epochs = list(range(1, len(history.get("loss", [])) + 1))
    traces = []
    for panel, metric in enumerate(PANELS):
        for key, colour, label in ((metric, TRAIN_COLOUR, "training"), (f"val_{metric}", VAL_COLOUR, "validation")):
            if key in history:
                traces.append(_line(panel, epochs, history[key], label, colour, legend=panel == 0))
    return _two_panels(traces, title, epoch_ticks=True)


def compare_curves(runs: Sequence[tuple[str, Sequence[dict]]]) -> FigureSpec:
    """Several runs' per-epoch curves overlaid: one colour per run, solid for training, dotted for validation."""
    traces = []
    for index, (label, epochs) in enumerate(runs):
        colour = RUN_COLOURS[index % len(RUN_COLOURS)]
        x = [row["epoch"] for row in epochs]
        for panel, metric in enumerate(PANELS):
            for key, dash, kind in ((metric, "solid", "training"), (f"val_{metric}", "dot", "validation")):
                if epochs and key in epochs[0]:
                    traces.append(_line(panel, x, [row.get(key) for row in epochs], f"{label} · {kind}", colour,
                                        dash=dash, legend=panel == 0, group=f"{label}{kind}"))
    return _two_panels(traces, "", height=420, accuracy_range=False)


def filter_mosaic(kernels: np.ndarray, cell: int = 24, gap: int = 2) -> np.ndarray:
    """A convolution's kernels (k, k, C_in, C_out) as one RGB image: a grid of upscaled filters.

    All filters share one symmetric scale (`core.explain.kernel_images`, the rule the Inside page uses
    too): mid-grey is a zero weight, brighter adds, darker subtracts, and a weak filter looks faint.
    Colour inputs show in colour, grey ones in grey. Cheap enough to redraw every second while training.
    """
    from core.explain.images import kernel_images

    kernels, _ = kernel_images(kernels)
    k_h, k_w, channels, count = kernels.shape
    per_row = int(np.ceil(np.sqrt(count * 2)))  # wider than tall: fits beside the curves
    rows = int(np.ceil(count / per_row))
    scale = max(1, cell // max(k_h, k_w))
    size_h, size_w = k_h * scale, k_w * scale
    mosaic = np.ones((rows * (size_h + gap) + gap, per_row * (size_w + gap) + gap, 3), dtype=np.float32)
    for index in range(count):
        kernel = kernels[..., index]
        kernel = kernel[..., :3] if channels >= 3 else np.repeat(kernel[..., :1], 3, axis=2)
        big = np.kron(kernel, np.ones((scale, scale, 1), dtype=np.float32))
        top, left = gap + (index // per_row) * (size_h + gap), gap + (index % per_row) * (size_w + gap)
        mosaic[top: top + size_h, left: left + size_w] = big
    return (mosaic * 255).astype(np.uint8)
