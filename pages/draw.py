"""Draw & classify: a digit drawn on the canvas (or an uploaded picture) through the trained model."""

import numpy as np
import streamlit as st

from core.data.drawing import DrawingSteps, preprocess_drawing, read_digit_picture, scale_drawing_to
from core.data.folders import image_folder_options
from core.data.pictures import prepare_picture, read_picture
from core.errors import ConvLabError
from core.figures.evaluation import probability_bars
from ui import runs
from ui.bootstrap import page_setup
from ui.canvas import CANVAS_SIZE, draw_canvas
from ui.errors import guarded
from ui.runs import UsableRun
from ui.widgets import inline_image_row, show_error, upscale

page_setup()

PICTURE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]

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
    st.caption(f"The model (`{run.name}`, trained on {data.name}) reads the digit as you draw: "
               "draw one digit, large, in the box.")
    st.session_state.setdefault("draw_canvas_round", 0)
    pad, controls = st.columns([2, 3])
    with controls:
        stroke = st.slider("Stroke width", 4, 40, CANVAS_SIZE // 15, key="draw_stroke")
        if st.button("Clear", icon=":material/delete:", key="draw_clear"):
            st.session_state["draw_canvas_round"] += 1  # a new key gives an empty canvas
    with pad:
        st.write("")  # room for the canvas's floating toolbar
        rgba = draw_canvas(f"draw_canvas_{st.session_state['draw_canvas_round']}", stroke)
    steps = preprocess_drawing(rgba)
    with controls:
        if steps is None:
            st.info("Draw a digit on the canvas to classify it.", icon=":material/draw:")
        else:
            if steps.coverage > 0.5:
                st.warning("Most of the canvas is ink: draw a single digit with a clear background around it.")
            show_prediction(predict(scale_drawing_to(steps, data.input_shape))[0], data.class_names)
    if steps is not None:
        show_steps(steps)


def picture(run: UsableRun) -> None:
    data, predict = run.dataset, runs.predictor_for(run)
    upload = st.file_uploader("An image file (PNG, JPEG, BMP, GIF, WebP)", type=PICTURE_TYPES, key="draw_upload")
    if upload is None:
        return
    try:
        options = image_folder_options(data)
        if options is not None:  # your own images: exactly the preprocessing the training images had
            prepared = prepare_picture(upload.getvalue(), options, name=upload.name)
            left, right = st.columns(2)
            left.image(prepared.original, caption="your picture", width=200)
            right.image(upscale(prepared.model_input[0], 200), width=200, caption=(
                f"what the network sees: fitted into {options.image_size}x{options.image_size}, {options.color_mode}"
                + (", inverted" if prepared.inverted else "")))
            show_prediction(predict(prepared.model_input)[0], data.class_names)
        elif data.handwritten_digits:  # a photo of a digit gets the same crop-and-centre as a drawing
            steps = read_digit_picture(upload.getvalue(), name=upload.name)
            if steps is None:
                st.info(f"No digit found in {upload.name}: it looks like a plain background.")
                return
            show_prediction(predict(scale_drawing_to(steps, data.input_shape))[0], data.class_names)
            show_steps(steps)
        else:
            seen = read_picture(upload.getvalue(), data.input_shape, name=upload.name)
            left, right = st.columns(2)
            left.image(seen.original, caption="your picture", width=200)
            right.image(seen.resized, caption="what the network sees" + (" (inverted)" if seen.inverted else ""),
                        width=200, clamp=True)
            show_prediction(predict(seen.model_input)[0], data.class_names)
    except ConvLabError as error:  # a picture that cannot be read (DrawingError), or a damaged reference
        show_error(error)


run = runs.usable_run_or_say("Train a model first (**Training**), or pick one on **Runs**; then draw here and "
                             "watch it read your digit.")
if run is not None:
    if run.dataset.handwritten_digits:
        st.fragment(canvas)(run)
    else:
        st.info(f"The canvas is for handwritten digits, and this model was trained on **{run.dataset.name}** "
                f"({', '.join(run.dataset.class_names[:4])}, …). Upload a picture instead.", icon=":material/image:")
    st.subheader("Classify a picture")
    picture(run)
