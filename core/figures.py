"""Plotly figures for every stage: data, training curves, evaluation, predictions.

Plain functions from numbers to `go.Figure`, shared by the dashboard and the
CLI (which writes the training curves to HTML).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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


def training_curves(
    batch_history: Sequence[dict], epoch_history: Sequence[dict], batches_per_epoch: int
) -> go.Figure:
    """Loss and accuracy side by side: training per batch (running epoch mean), validation per epoch.

    The x axis is in epochs, so batch points and epoch points share it.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.08)
    per_epoch = max(batches_per_epoch, 1)
    batches = _thin(batch_history)
    x_batch = [(row["epoch"] - 1) + row["batch"] / per_epoch for row in batches]
    # a stopped run's last epoch is partial: place it where its last batch was
    x_epoch = [row["step"] / per_epoch for row in epoch_history]
    for col, metric in ((1, "loss"), (2, "accuracy")):
        show = col == 1
        fig.add_trace(go.Scatter(x=x_batch, y=[row[metric] for row in batches], mode="lines", name="training (per batch)",
                                 line=dict(color=TRAIN_COLOUR, width=1), opacity=0.6, showlegend=show,
                                 legendgroup="batch"), row=1, col=col)
        if epoch_history and metric in epoch_history[0]:
            fig.add_trace(go.Scatter(x=x_epoch, y=[row[metric] for row in epoch_history], mode="lines+markers",
                                     name="training (epoch)", line=dict(color=TRAIN_COLOUR, width=2),
                                     showlegend=show, legendgroup="train"), row=1, col=col)
        val_key = f"val_{metric}"
        if epoch_history and val_key in epoch_history[0]:
            fig.add_trace(go.Scatter(x=x_epoch, y=[row[val_key] for row in epoch_history], mode="lines+markers",
                                     name="validation (epoch)", line=dict(color=VAL_COLOUR, width=2),
                                     showlegend=show, legendgroup="val"), row=1, col=col)
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.0], row=1, col=2)
    return _layout(fig, "", height=340)


def history_curves(history: dict[str, list[float]], title: str = "Training and validation curves") -> go.Figure:
    """Per-epoch training and validation curves from a Keras-style history dict."""
    epochs = list(range(1, len(history.get("loss", [])) + 1))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.08)
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for key, colour, label in ((metric, TRAIN_COLOUR, "training"), (f"val_{metric}", VAL_COLOUR, "validation")):
            if key in history:
                fig.add_trace(go.Scatter(x=epochs, y=history[key], mode="lines+markers", name=label,
                                         line=dict(color=colour), showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=1)
    return _layout(fig, title, height=340)


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


def probability_bars(probabilities: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """One bar per class; the top prediction highlighted."""
    probabilities = np.asarray(probabilities).ravel()
    top = int(probabilities.argmax())
    colours = [VAL_COLOUR if i == top else TRAIN_COLOUR for i in range(len(probabilities))]
    fig = go.Figure(go.Bar(x=[str(n) for n in class_names], y=probabilities, marker_color=colours,
                           text=[f"{p:.0%}" for p in probabilities], textposition="outside"))
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%", title_text="probability")
    fig.update_xaxes(type="category", title_text="class")
    return _layout(fig, "Probability of each class", height=300)


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


def class_counts(train_counts: np.ndarray, test_counts: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Images per class in the training and test sets."""
    names = [str(n) for n in class_names]
    fig = go.Figure([
        go.Bar(x=names, y=train_counts, name="train", marker_color=TRAIN_COLOUR),
        go.Bar(x=names, y=test_counts, name="test", marker_color=VAL_COLOUR),
    ])
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category", title_text="class")
    fig.update_yaxes(title_text="images")
    return _layout(fig, "Images per class")


def pixel_histogram(counts: np.ndarray) -> go.Figure:
    """Distribution of pixel values after scaling to [0, 1], from equal-width bin counts."""
    bins = len(counts)
    centres = (np.arange(bins) + 0.5) / bins
    fig = go.Figure(go.Bar(x=centres, y=counts, width=1 / bins, marker_color=TRAIN_COLOUR))
    fig.update_xaxes(title_text="pixel value after scaling")
    fig.update_yaxes(title_text="pixels", type="log")
    return _layout(fig, "Pixel intensities")
