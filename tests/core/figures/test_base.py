"""What every figure shares: one look (as a graph object or a plain dict), colours, and the cheap FigureSpec."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io

from core.figures.base import RUN_COLOURS, TRAIN_COLOUR, VAL_COLOUR, FigureSpec, _layout, _plain_layout
from tests.core.figures.conftest import is_a_valid_plotly_figure


def spec() -> dict:
    return {"data": [{"type": "scatter", "x": [1, 2, 3], "y": [0.9, 0.5, 0.3], "name": "training"}],
            "layout": _plain_layout("Training and validation curves", 320, xaxis={"title": {"text": "epoch"}})}


def test_a_figure_spec_is_handed_over_as_the_dict_it_was_built_from():
    plain = spec()
    fig = FigureSpec(plain)
    assert fig.to_dict() is plain and fig.to_plotly_json() is plain  # never copied
    assert json.loads(plotly.io.to_json(fig, validate=False)) == plain  # how Streamlit sends it
    assert is_a_valid_plotly_figure(fig)


def test_a_figure_spec_writes_a_page_that_works_offline(tmp_path):
    FigureSpec(spec()).write_html(tmp_path / "curves.html")
    html = (tmp_path / "curves.html").read_text()
    assert "Training and validation curves" in html and '"training"' in html
    assert "<script src=" not in html  # plotly.js inlined


def test_the_plain_layout_is_the_graph_objects_look():
    look = _layout(go.Figure(), "Class counts", height=280).to_dict()["layout"]
    assert go.Figure(layout=_plain_layout("Class counts", 280)).to_dict()["layout"] == look
    assert (look["height"], look["title"]["text"], look["legend"]["orientation"]) == (280, "Class counts", "h")


def test_each_run_and_each_curve_has_a_colour_of_its_own():
    assert len(set(RUN_COLOURS)) == len(RUN_COLOURS) == 10
    assert TRAIN_COLOUR != VAL_COLOUR
