"""Stage 1 · Data: choose a dataset, look at it, see the preprocessing step."""

import numpy as np
import streamlit as st

from core.data.dataset import Dataset
from core.data.registry import REGISTRY
from core.errors import DataError
from core.figures.data import class_counts, pixel_histogram
from ui import runs, state
from ui.bootstrap import page_setup
from ui.image_upload import image_upload, npz_limits
from ui.loading import builtin_dataset, stats_for, uploaded_dataset
from ui.widgets import image_grid, md, show_error

page_setup()

UPLOAD, IMAGES = state.CHOICE_NPZ, state.CHOICE_IMAGES
state.keep_widget_values(state.DATASET_CHOICE)

st.title("1 · Data")
choices = [*REGISTRY, UPLOAD, IMAGES]
titles = {key: info.title for key, info in REGISTRY.items()} | {UPLOAD: "Upload a Keras-layout .npz…",
                                                                 IMAGES: "Upload a zip of class folders…"}
choice = st.selectbox("Dataset", choices, format_func=titles.get, key=state.DATASET_CHOICE)

try:
    if choice == IMAGES:
        image_upload(runs.store())
    elif choice == UPLOAD:
        st.caption(npz_limits())
        upload = st.file_uploader("A .npz with x_train, y_train, x_test, y_test (as Keras' mnist.npz)", type=["npz"],
                                  key=state.DataPage.upload_key("npz", st.session_state))
        # parse each uploaded file once, not on every rerun
        if upload is not None and st.session_state.get(state.DataPage.NPZ_UPLOAD_ID) != upload.file_id:
            st.session_state[state.DataPage.NPZ_UPLOAD_ID] = upload.file_id
            state.set_dataset(uploaded_dataset(upload.name, upload.getvalue(), runs.store()), str(runs.store().root))
            state.DataPage.forget_upload(st.session_state)  # the server keeps the dataset, not the upload's bytes
            st.rerun()
    else:
        st.caption(REGISTRY[choice].blurb)
        state.set_dataset(builtin_dataset(choice))
except DataError as error:
    show_error(error, "Could not load this dataset: ")
    if state.dataset() is not None:
        st.caption(f"Still using the previous dataset: {md(state.dataset().summary_line())}.")


def explore(dataset: Dataset) -> None:
    stats = stats_for(dataset)  # computed once per dataset and server: reruns never rescan the pixels
    if dataset.is_sample:
        st.warning(f"**Using a sample, not the full dataset.** {md(dataset.source)}", icon=":material/warning:")
        for note in dataset.notes:
            st.caption(md(note))
    else:
        st.success(md(dataset.source), icon=":material/check_circle:")

    height, width, channels = dataset.input_shape
    cols = st.columns(4)
    cols[0].metric("Training images", f"{len(dataset.x_train):,}")
    cols[1].metric("Test images", f"{len(dataset.x_test):,}")
    cols[2].metric("Image size", f"{height}x{width}x{channels}")
    cols[3].metric("Classes", dataset.num_classes)

    st.subheader("Preprocessing")
    before, after = st.columns(2)
    with before:
        st.markdown("**As loaded**")
        st.code(dataset.raw_train.describe() if dataset.raw_train else "unknown", language=None)
    with after:
        st.markdown("**As the network sees it**")
        st.code(stats.scaled.describe(), language=None)
    st.code(f"x_train = x_train.astype('float32') / 255.0          # scale pixels to [0, 1]\n"
            f"x_train = x_train.reshape(-1, {height}, {width}, {channels})  # add the channel axis", language="python")

    st.subheader("Samples")
    seed = st.session_state.setdefault(state.DataPage.SAMPLE_SEED, 0)
    if st.button("Reshuffle", icon=":material/shuffle:"):
        st.session_state[state.DataPage.SAMPLE_SEED] = seed = seed + 1
    picks = np.random.default_rng(seed).choice(len(dataset.x_train), size=min(30, len(dataset.x_train)), replace=False)
    image_grid([dataset.x_train[i] for i in picks], [dataset.class_names[dataset.y_train[i]] for i in picks])

    left, right = st.columns(2)
    left.plotly_chart(class_counts(stats.train_counts, stats.test_counts, dataset.class_names))
    right.plotly_chart(pixel_histogram(stats.pixel_counts))
    st.caption(f"Pixel mean {stats.pixel_mean:.3f}, standard deviation {stats.pixel_std:.3f} (after scaling).")

    st.subheader("The mean image of each class")
    image_grid([mean / max(float(mean.max()), 1e-6) for mean in stats.class_means], list(dataset.class_names))


if state.dataset() is not None:
    explore(state.dataset())
