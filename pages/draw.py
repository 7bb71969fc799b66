"""Draw & classify: a digit drawn on the canvas (or an uploaded picture) through the trained model."""

import numpy as np
import streamlit as st

from core.data.drawing import DrawingSteps, preprocess_drawing, scale_drawing_to
from core.data.pictures import PICTURE_FORMATS
from core.errors import ConvLabError
from core.figures.evaluation import probability_bars
from ui import runs
from ui.bootstrap import page_setup
from ui.canvas import digit_canvas
from ui.errors import guarded
from ui.loading import picture_for_model
from ui.runs import UsableRun
from ui.state import DrawPage
from ui.widgets import answer_elements_ready, code, inline_image_row, md, show_error, upscale

page_setup()

PICTURE_TYPES = sorted({f.lower() for f in PICTURE_FORMATS if f != "MPO"} | {"jpg", "tif"})

st.title("Draw & classify")


def show_prediction(probabilities: np.ndarray, class_names: tuple[str, ...]) -> None:
    top = int(probabilities.argmax())
    st.metric("Prediction", class_names[top], f"{probabilities[top]:.0%} sure", delta_color="off", delta_arrow="off")
    st.html(probability_bars(probabilities, class_names))


def show_steps(steps: DrawingSteps) -> None:
    st.markdown("**What the network sees**, step by step (MNIST-style: crop, fit in 20x20, centre by mass in 28x28):")
    names, images = zip(*steps.named_steps())
    inline_image_row(images, names, size=112)


@guarded
def canvas(run: UsableRun) -> None:
    """The canvas and its answer: a fragment, so a stroke reruns only this part of the page."""
    data, predict = run.dataset, runs.predictor_for(run)
    st.caption(f"The model ({code(run.name)}, trained on {md(data.name)}) reads the digit as you draw: "
               "draw one digit, large, in the box.")
    pad, controls = st.columns([2, 3])
    steps = preprocess_drawing(digit_canvas(DrawPage.CANVAS, pad, controls))
    with controls:
        if steps is None:
            st.info("Draw a digit on the canvas to classify it.", icon=":material/draw:")
            answer_elements_ready()  # so that the first answer is drawn as fast as the next
        else:
            if steps.coverage > 0.5:
                st.warning("Most of the canvas is ink: draw a single digit with a clear background around it.")
            show_prediction(predict(scale_drawing_to(steps, data.input_shape))[0], data.class_names)
    if steps is not None:
        show_steps(steps)


def picture(run: UsableRun) -> None:
    data, predict = run.dataset, runs.predictor_for(run)
    upload = st.file_uploader("An image file (PNG, JPEG, BMP, GIF, WebP or TIFF)", type=PICTURE_TYPES,
                              key=DrawPage.UPLOAD)
    if upload is None:
        return
    try:
        given = picture_for_model(upload.getvalue(), data, upload.name)  # decoded in a process of its own
    except ConvLabError as error:  # a picture that cannot be read (DrawingError), or a damaged reference
        show_error(error)
        return
    if given is None:
        st.info(f"No digit found in {md(upload.name)}: it looks like a plain background.")
        return
    if given.steps is None:
        left, right = st.columns(2)
        left.image(given.original, caption="your picture", width=200)
        right.image(upscale(given.seen, 200), width=200, clamp=True, caption=f"what the network sees: {given.caption}")
    show_prediction(predict(given.model_input)[0], data.class_names)
    if given.steps is not None:
        show_steps(given.steps)


run = runs.usable_run_or_say("Train a model first (**Training**), or pick one on **Runs**; then draw here and "
                             "watch it read your digit.")
if run is not None:
    if run.dataset.handwritten_digits:
        st.fragment(canvas)(run)
    else:
        st.info(f"The canvas is for handwritten digits, and this model was trained on **{md(run.dataset.name)}** "
                f"({md(', '.join(run.dataset.class_names[:4]))}, …). Upload a picture instead.", icon=":material/image:")
    st.subheader("Classify a picture")
    picture(run)
