"""The Data page's "your own images": upload a zip of class folders, see what it holds, choose, load.

The zip is listed once per upload (`describe_folder`: classes, counts, files
that will be skipped) and a few of its images are kept for the preview; the
images are decoded only on Load, once per (zip, options) in the server
(`ui.loading.image_dataset`). A refused zip shows why and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

import numpy as np
import pandas as pd
import streamlit as st

from core import limits
from core.data import folders, pictures
from core.data.dataset import Dataset
from core.data.folders import FolderSummary, ImageFolderReport, stored_ref
from core.data.pictures import ImageFolderOptions
from core.errors import DataError
from core.runs.store import RunStore
from ui import state
from ui.loading import uploaded_images
from ui.widgets import image_grid, md

KEYS = state.DataPage
SAMPLES = 6

COLOR_TITLES = {"grayscale": "Grayscale", "rgb": "Colour (RGB)"}
INVERT_TITLES = {"never": "Never", "always": "Always (dark on light becomes light on dark)",
                 "auto": "Auto (each image whose border is light)"}


@dataclass(frozen=True)
class ListedZip:
    """An uploaded zip as listed from its directory, with a few images for the preview."""

    file_id: str
    name: str
    digest: str  # SHA-256 of the zip: its name in the run store once loaded
    summary: FolderSummary
    samples: tuple[tuple[str, bytes], ...]


def npz_limits() -> str:
    """What a Keras-layout .npz may hold, in one sentence (core.limits)."""
    from core import limits

    return (f"At most {st.get_option('server.maxUploadSize')} MB; up to {limits.MAX_IMAGES:,} images per array, images up to "
            f"{limits.MAX_IMAGE_SIDE}x{limits.MAX_IMAGE_SIDE}x3, {limits.MAX_DATASET_VALUES:,} pixel values in all, "
            f"plain numeric arrays only (pickled object arrays are refused). Larger files are refused from their "
            "headers, before anything is read.")


def limits_caption() -> str:
    upload_mb = st.get_option("server.maxUploadSize")
    return (f"One folder per class (its name is the class name), or `train/<class>/` and `test/<class>/`. "
            f"PNG, JPEG, BMP, GIF, WebP or TIFF. Limits: {upload_mb} MB per upload; at most "
            f"{limits.MAX_IMAGE_FILES:,} images ({limits.MIN_IMAGES_PER_CLASS} or more per class), "
            f"{limits.format_bytes(limits.MAX_IMAGE_BYTES)} unpacked, {limits.format_bytes(limits.MAX_IMAGE_FILE_BYTES)} and "
            f"{limits.MAX_PICTURE_PIXELS // 1_000_000} megapixels per image. Zips with links or paths leaving the "
            "folder are refused.")


def _listed(upload) -> ListedZip:
    """The upload listed (once per file): raises the DataError that refused it, on every rerun."""
    cached = st.session_state.get(KEYS.LISTED)
    if cached is None or cached[0] != upload.file_id:
        data = upload.getvalue()
        try:
            summary = folders.describe_folder(data, name=upload.name)
            samples = tuple(folders.sample_images(data, SAMPLES, name=upload.name))
            result: ListedZip | DataError = ListedZip(upload.file_id, upload.name, sha256(data).hexdigest(),
                                                      summary, samples)
        except DataError as error:
            result = error
        cached = st.session_state[KEYS.LISTED] = (upload.file_id, result)
    if isinstance(cached[1], DataError):
        raise cached[1]
    return cached[1]


def show_summary(summary: FolderSummary) -> None:
    test = "" if summary.has_test_folder else " (a test set will be held out of each class)"
    size = (f"{summary.total_bytes / 1e6:,.1f} MB" if summary.total_bytes >= 1e6
            else f"{summary.total_bytes / 1e3:,.0f} kB")
    st.markdown(f"**{md(summary.source)}**: {len(summary.class_names)} classes, {summary.image_files:,} image files, "
                f"{size}{test}.")
    counts = {"class": list(summary.class_names), "train files": list(summary.train_counts)}
    if summary.test_counts is not None:
        counts["test files"] = list(summary.test_counts)
    st.dataframe(pd.DataFrame(counts), hide_index=True, height=min(35 * (len(summary.class_names) + 1) + 3, 300))
    for line in folders.summarise_skipped(summary.skipped):
        st.caption(md(line))


def options_form(summary: FolderSummary) -> ImageFolderOptions:
    """The options widgets; returns the options they describe (checked by ImageFolderOptions)."""
    size, colour, invert, fraction = st.columns(4)
    image_size = size.selectbox("Image size", pictures.IMAGE_SIZES, key=KEYS.IMAGE_SIZE, format_func=lambda s: f"{s}x{s}")
    color_mode = colour.radio("Colour", pictures.COLOR_MODES, key=KEYS.COLOR, format_func=COLOR_TITLES.get)
    invert_mode = invert.selectbox("Invert", pictures.INVERT_MODES, key=KEYS.INVERT, format_func=INVERT_TITLES.get,
                                   help="MNIST-like models expect light shapes on a dark background.")
    test_fraction = 0.2
    if summary.has_test_folder:
        fraction.caption("Test set: the test/ folder.")
    else:
        test_fraction = fraction.slider("Test fraction", *pictures.TEST_FRACTION_RANGE, value=0.2, step=0.05,
                                        key=KEYS.TEST_FRACTION, help="Held out of each class (seeded), for the test set.")
    return ImageFolderOptions(image_size=image_size, color_mode=color_mode, invert=invert_mode,
                              test_fraction=round(float(test_fraction), 2))


def show_preview(listed: ListedZip, options: ImageFolderOptions) -> None:
    """A few images as they are in the zip, and as the network will see them with these options."""
    key = (listed.file_id, options)
    cached = st.session_state.get(KEYS.PREVIEWED)
    if cached is None or cached[0] != key:
        cached = st.session_state[KEYS.PREVIEWED] = (key, folders.preview([data for _, data in listed.samples], options))
    pairs = cached[1]
    if not pairs:
        return
    names = [name for name, _ in listed.samples][: len(pairs)]
    st.markdown("**Before** (as in the zip) **and after** (what the network sees):")
    st.image([before for before, _ in pairs], caption=names, width=96)
    image_grid([after.astype(np.float32) / 255 for _, after in pairs], names, size=96, per_row=len(pairs))
    st.caption(f"Fitted into {options.image_size}x{options.image_size}: the longer side scaled, the shorter "
               "one padded with the border colour (nothing is cropped).")


def show_report(report: ImageFolderReport) -> None:
    """What loading did, beyond the dataset's source line (shown below with the dataset)."""
    inverted = f"; {report.inverted:,} images inverted" if report.inverted else ""
    st.caption(f"Decoded {report.images_read:,} images in {report.seconds:.1f} s{inverted}. Split: {report.split}.")
    skipped = report.skipped_summary()
    if skipped:
        with st.expander(f"{len(report.skipped):,} files skipped, and why"):
            for line in skipped:
                st.caption(md(line))


def image_upload(store: RunStore) -> None:
    """The whole panel; a refused zip raises DataError (the page shows it and keeps the previous dataset)."""
    st.caption(limits_caption())
    upload = st.file_uploader("A .zip of class folders", type=["zip"], key=KEYS.upload_key("img", st.session_state))
    current: Dataset | None = state.dataset()
    if upload is not None:
        listed = _listed(upload)
        show_summary(listed.summary)
        options = options_form(listed.summary)
        show_preview(listed, options)
        if st.button("Load these images", key=KEYS.LOAD_IMAGES, type="primary", icon=":material/upload:"):
            with st.spinner(f"Decoding {listed.summary.image_files:,} images…"):
                dataset, report = uploaded_images(listed.name, upload.getvalue(), options, store)
            state.set_dataset(current := dataset, str(store.root))
            st.session_state[KEYS.LOADED] = (dataset.ref, report)
            KEYS.forget_upload(st.session_state)  # the server keeps the decoded images, not the zip's bytes
            st.rerun()
        elif current is None or current.ref != stored_ref(listed.digest, listed.name, options):
            still = f" Until then, below is the dataset in use: {current.name}." if current is not None else ""
            st.info(f"Press **Load these images** to decode them with these options.{still}", icon=":material/info:")
    loaded = st.session_state.get(KEYS.LOADED)
    if loaded is not None and current is not None and current.ref == loaded[0]:
        show_report(loaded[1])
