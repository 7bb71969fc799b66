"""Figures of the Evaluation and Draw pages: confusion matrix, confidence histogram, probability bars (HTML)."""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from core.figures.base import TRAIN_COLOUR, VAL_COLOUR, _layout


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
