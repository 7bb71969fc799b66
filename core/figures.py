"""Figures for every stage: data, training curves, evaluation, predictions (plotly; the probability bars as HTML).

Plain functions from numbers to `go.Figure`, shared by the dashboard and the
CLI (which writes the training curves to HTML).
"""

from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"
MAX_BATCH_POINTS = 600  # per-batch curves are thinned to this many points so a redraw stays cheap


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=40, r=10, t=50, b=90),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="center", x=0.5))
    return fig


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
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf")


def _line(panel: int, x: Sequence[float], y: Sequence[float], name: str, colour: str, *, width: float = 2,
          markers: bool = True, dash: str = "solid", opacity: float = 1.0, legend: bool = True,
          group: str = "") -> dict:
    axis = "" if panel == 0 else "2"
    return {"type": "scatter", "x": list(x), "y": list(y), "name": name, "mode": "lines+markers" if markers else "lines",
            "line": {"color": colour, "width": width, "dash": dash}, "marker": {"size": 5}, "opacity": opacity,
            "xaxis": f"x{axis}", "yaxis": f"y{axis}", "showlegend": legend, "legendgroup": group or name}


class FigureSpec(go.Figure):
    """A plotly figure handed over as the dict it was built from: never validated, never copied.

    Building a `go.Figure` (even unvalidated) and its `to_dict()` cost tens of milliseconds; the live
    curves are redrawn every second while a run trains, so they are assembled as a plain dict from
    trusted parts. `st.plotly_chart`, `plotly.io.to_json` and `write_html` read a figure through
    `to_dict()`, which returns that dict. Read it (tests, changes) through `to_dict()` too: the
    graph-object attributes (`.data`, `.layout`) of this class stay empty.
    """

    def __init__(self, spec: dict) -> None:  # noqa: D107 - deliberately not BaseFigure.__init__: that is the cost
        self._spec = spec

    def to_dict(self) -> dict:
        return self._spec

    def to_plotly_json(self) -> dict:
        return self._spec

    def write_html(self, file, **kwargs) -> None:  # noqa: ANN001 - as plotly's
        import plotly.io

        plotly.io.write_html(self._spec, file, validate=False, **kwargs)


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


def training_curves(
    batch_history: Sequence[dict], epoch_history: Sequence[dict], batches_per_epoch: int
) -> FigureSpec:
    """Loss and accuracy side by side: training per batch (thin), and per epoch with validation (markers).

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
    return _two_panels(traces, "")


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


def confusion_heatmap(matrix: np.ndarray, class_names: Sequence[str], normalized: bool) -> go.Figure:
    """Confusion matrix: true class down, predicted class across.

    An invisible marker sits on each cell: heatmaps send no click selections,
    markers do, so a click on a cell selects that (true, predicted) pair.
    """
    names = [str(n) for n in class_names]
    text = np.vectorize(lambda v: f"{v:.2f}" if normalized else f"{int(v)}")(matrix)
    fig = go.Figure(go.Heatmap(
        z=matrix, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Blues",
        hoverinfo="skip", showscale=False,
    ))
    rows, cols = np.indices(matrix.shape)
    fig.add_trace(go.Scatter(
        x=[names[c] for c in cols.ravel()], y=[names[r] for r in rows.ravel()], mode="markers",
        marker=dict(symbol="square", size=28, opacity=0), text=text.ravel(), showlegend=False,
        hovertemplate="true %{y}, predicted %{x}: %{text}<extra>click to see the images</extra>",
        unselected=dict(marker=dict(opacity=0)), selected=dict(marker=dict(opacity=0.35, color="#ff7f0e")),
    ))
    fig.update_yaxes(autorange="reversed", title_text="true class", type="category")
    fig.update_xaxes(title_text="predicted class", type="category", side="bottom")
    fig.update_layout(clickmode="event+select", dragmode=False)
    return _layout(fig, "Confusion matrix" + (" (row-normalised)" if normalized else " (counts)"), height=480)


def _plain_layout(title: str, height: int, **axes: dict) -> dict:
    """`_layout`'s look, as a plain dict for a FigureSpec."""
    return {"title": {"text": title}, "height": height, "margin": {"l": 40, "r": 10, "t": 50, "b": 90},
            "legend": {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "center", "x": 0.5}, **axes}


def probability_bars(probabilities: np.ndarray, class_names: Sequence[str]) -> str:
    """One horizontal bar per class, the top prediction highlighted, as a small HTML block.

    Redrawn on every stroke on the canvas: plain HTML and CSS appear at once, where a plotly chart
    takes the browser a few hundred milliseconds to draw on a small machine.
    """
    probabilities = np.asarray(probabilities, dtype=float).ravel()
    top = int(probabilities.argmax())
    rows = []
    for index, (name, probability) in enumerate(zip(class_names, probabilities)):
        colour = VAL_COLOUR if index == top else TRAIN_COLOUR
        weight = "600" if index == top else "400"
        rows.append(
            f'<div style="display:flex;align-items:center;gap:8px;height:22px;font-weight:{weight}">'
            f'<span style="flex:0 0 7em;text-align:right;overflow:hidden;white-space:nowrap;text-overflow:ellipsis">'
            f"{html.escape(str(name))}</span>"
            f'<span style="flex:1 1 auto;background:rgba(128,128,128,0.12);height:14px;border-radius:2px">'
            f'<span style="display:block;width:{probability * 100:.1f}%;height:100%;background:{colour};'
            f'border-radius:2px"></span></span>'
            f'<span style="flex:0 0 3.2em;text-align:right">{probability:.0%}</span></div>')
    return ('<div role="figure" aria-label="Probability of each class" style="font-size:14px;max-width:560px">'
            '<div style="font-weight:600;margin-bottom:4px">Probability of each class</div>'
            + "".join(rows) + "</div>")


def confidence_histogram(confidence: np.ndarray, correct: np.ndarray) -> go.Figure:
    """How sure the model is, for its right and its wrong answers."""
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=confidence[correct], name=f"correct ({int(correct.sum())})",
                               xbins=dict(start=0, end=1.0001, size=0.05), marker_color=TRAIN_COLOUR, opacity=0.75))
    fig.add_trace(go.Histogram(x=confidence[~correct], name=f"wrong ({int((~correct).sum())})",
                               xbins=dict(start=0, end=1.0001, size=0.05), marker_color="#d62728", opacity=0.75))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="confidence (probability of the predicted class)", range=[0, 1])
    fig.update_yaxes(title_text="test images", type="log")
    return _layout(fig, "Prediction confidence", height=320)


def class_counts(train_counts: np.ndarray, test_counts: np.ndarray, class_names: Sequence[str]) -> FigureSpec:
    """Images per class in the training and test sets."""
    names = [str(n) for n in class_names]
    bars = [{"type": "bar", "x": names, "y": np.asarray(counts).tolist(), "name": name, "marker": {"color": colour}}
            for counts, name, colour in ((train_counts, "train", TRAIN_COLOUR), (test_counts, "test", VAL_COLOUR))]
    return FigureSpec({"data": bars, "layout": _plain_layout(
        "Images per class", 320, barmode="group", xaxis={"type": "category", "title": {"text": "class"}},
        yaxis={"title": {"text": "images"}})})


def pixel_histogram(counts: np.ndarray) -> FigureSpec:
    """Distribution of pixel values after scaling to [0, 1], from equal-width bin counts."""
    bins = len(counts)
    centres = (np.arange(bins) + 0.5) / bins
    bars = {"type": "bar", "x": centres.round(4).tolist(), "y": np.asarray(counts).tolist(), "width": 1 / bins,
            "marker": {"color": TRAIN_COLOUR}}
    return FigureSpec({"data": [bars], "layout": _plain_layout(
        "Pixel intensities", 320, xaxis={"title": {"text": "pixel value after scaling"}},
        yaxis={"title": {"text": "pixels"}, "type": "log"})})


def filter_mosaic(kernels: np.ndarray, cell: int = 24, gap: int = 2) -> np.ndarray:
    """A convolution's kernels (k, k, C_in, C_out) as one RGB image: a grid of upscaled filters.

    All filters share one symmetric scale (`core.explain.kernel_images`, the rule the Inside page uses
    too): mid-grey is a zero weight, brighter adds, darker subtracts, and a weak filter looks faint.
    Colour inputs show in colour, grey ones in grey. Cheap enough to redraw every second while training.
    """
    from core.explain import kernel_images

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
