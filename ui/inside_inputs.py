"""The Inside page's input pickers: a drawing, a test image by class, or one of the most confident mistakes."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import streamlit as st

from core.data.drawing import preprocess_drawing, scale_drawing_to
from ui import runs
from ui.canvas import digit_canvas
from ui.runs import UsableRun
from ui.state import InsidePage as KEYS
from ui.widgets import md

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

MISTAKES = 50  # the most confident mistakes offered as inputs
DRAWING, TEST_IMAGE, MISTAKE = "drawing", "test image", "mistake"
SOURCE_LABELS = {DRAWING: "Draw a digit", TEST_IMAGE: "A test image, by class", MISTAKE: "A confident mistake"}


class Picked(NamedTuple):
    """The input to look inside: an (H, W, C) float32 image in [0, 1], and what it is."""

    image: np.ndarray
    caption: str
    true_class: int | None = None


# --- the input ------------------------------------------------------------------------------------------------


def source_choices(run: UsableRun) -> tuple[str, ...]:
    return (DRAWING, TEST_IMAGE, MISTAKE) if run.dataset.handwritten_digits else (TEST_IMAGE, MISTAKE)


def drawn_input(run: UsableRun, view: "DeltaGenerator") -> Picked | None:
    """The canvas on the left, what the network sees on the right; None (and a prompt) while it is empty."""
    pad, side = view.columns([3, 2])
    steps = preprocess_drawing(digit_canvas(KEYS.CANVAS, pad, side))
    if steps is None:
        side.info("Draw a digit on the canvas: its feature maps, their arithmetic and the saliency maps follow "
                  "each stroke.", icon=":material/draw:")
        return None
    image = scale_drawing_to(steps, run.dataset.input_shape)[0]
    return Picked(image, "your drawing, preprocessed as MNIST (cropped, 20x20, centred by mass)")


def test_input(run: UsableRun, view: "DeltaGenerator") -> Picked | None:
    data = run.dataset
    left, right = view.columns(2)
    names = data.class_names
    cls = left.selectbox("Class", range(len(names)), format_func=lambda i: str(names[i]), key=KEYS.CLASS)
    members = np.flatnonzero(data.y_test == cls)
    if not len(members):
        view.info(f"The test set has no image of class {md(names[cls])}.")
        return None
    number = right.number_input(f"Image (1 to {len(members)})", 1, len(members), 1, key=KEYS.NUMBER) \
        if len(members) > 1 else 1
    index = int(members[min(int(number), len(members)) - 1])
    return Picked(data.x_test[index], f"test image {index} (class {names[cls]})", cls)


def mistake_input(run: UsableRun, view: "DeltaGenerator") -> Picked | None:
    data, result = run.dataset, runs.evaluation_for(run)
    wrong = [int(i) for i in result.misclassified(limit=MISTAKES)]
    if not wrong:
        view.info("This model makes no mistake on the test set: pick a test image instead.")
        return None
    names = data.class_names

    def label(i: int) -> str:
        said = f"{names[result.y_pred[i]]} ({result.confidence[i]:.0%})"
        return f"test image {i}: {names[result.y_true[i]]} read as {said}"

    index = view.selectbox(f"One of the {len(wrong)} most confident mistakes", wrong, format_func=label,
                           key=KEYS.MISTAKE)
    true, said = int(result.y_true[index]), int(result.y_pred[index])
    return Picked(data.x_test[index], f"test image {index}: a {names[true]} the model read as {names[said]}. Why "
                  f"did it say {names[said]}? Pick class {names[true]} below to see what spoke for the truth.", true)


PICKERS = {DRAWING: drawn_input, TEST_IMAGE: test_input, MISTAKE: mistake_input}


def clamp(key: str, low: int, high: int, default: int) -> None:
    """Keep a number input's stored value in [low, high] before it is drawn (its bounds change with the layer)."""
    value = st.session_state.get(key, default)
    st.session_state[key] = int(min(max(value if isinstance(value, (int, np.integer)) else default, low), high))


def follow_strongest(place: tuple[int, int]) -> None:
    """Put "one value, computed" at `place` (where the map is strongest), unless the user has put it elsewhere
    (a click on the map, or the row and column inputs): then it stays where they put it."""
    current = (st.session_state.get(KEYS.ROW), st.session_state.get(KEYS.COL))
    if None in current or current == st.session_state.get(KEYS.PLACED):
        st.session_state[KEYS.ROW], st.session_state[KEYS.COL] = place
        st.session_state[KEYS.PLACED] = place


def select_cell(key: str) -> None:
    """on_select of the clickable map: the clicked cell becomes the row and column of the arithmetic."""
    points = [p for p in st.session_state[key].selection.points if "x" in p and "y" in p]
    if points:
        st.session_state[KEYS.ROW] = int(points[0]["y"])
        st.session_state[KEYS.COL] = int(points[0]["x"])
