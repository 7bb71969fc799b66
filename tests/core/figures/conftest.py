"""Reading figures as plotly.js will: their traces, and plotly's full validation."""

from __future__ import annotations


def traces(fig) -> list[dict]:
    """The curves are plain figure dicts (FigureSpec): read them as plotly.js will."""
    return fig.to_dict()["data"]


def is_a_valid_plotly_figure(fig) -> bool:
    import plotly.graph_objects as go

    go.Figure(fig.to_dict())  # plotly's full validation raises on anything plotly.js would not draw
    return True
