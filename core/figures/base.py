"""What every figure shares: colours, layout, and `FigureSpec`, a figure as a plain dict that redraws cheaply."""

from __future__ import annotations

import plotly.graph_objects as go

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=40, r=10, t=50, b=90),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="center", x=0.5))
    return fig
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf")


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


def _plain_layout(title: str, height: int, **axes: dict) -> dict:
    """`_layout`'s look, as a plain dict for a FigureSpec."""
    return {"title": {"text": title}, "height": height, "margin": {"l": 40, "r": 10, "t": 50, "b": 90},
            "legend": {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "center", "x": 0.5}, **axes}
