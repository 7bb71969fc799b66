"""Datasets for the pages: built-in ones and those a run refers to, cached across sessions.

A loaded dataset is read-only (its arrays cannot be written), so one copy
per server process is shared (`st.cache_resource`). An uploaded file is kept
in the run store by its content hash, so a run made on it can load it again
after a restart. A zip of images is decoded once per (zip, options) in the
server: the Data page's Load, a reload and the pages showing a run trained on
it share that copy.
"""

from __future__ import annotations

import os
from hashlib import sha256

import streamlit as st

from core.data.dataset import Dataset, DatasetRef, dataset_from_arrays
from core.data.files import load_npz
from core.data.folders import ImageFolderReport, stored_ref
from core.data.pictures import ImageFolderOptions
from core.data.registry import REGISTRY, VARIANTS, load_dataset, load_images, load_ref
from core.data.stats import DatasetStats, dataset_stats
from core.errors import DataError
from core.runs.store import RunStore


def downloads_allowed() -> bool:
    return os.environ.get("CONVLAB_OFFLINE") != "1"


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def builtin_dataset(key: str) -> Dataset:
    """A registry dataset, loaded once per server process (no downloads when CONVLAB_OFFLINE=1)."""
    return load_dataset(key, allow_download=downloads_allowed())


def dataset_for_ref(ref: DatasetRef, store_root: str) -> Dataset:
    """The dataset a reference names, loaded once per server process.

    Only an uploaded file depends on the store it was kept in: a built-in dataset is one copy for every
    workspace (keyed by the store, each student's workspace used to hold a copy of MNIST for good).
    """
    if ref.kind == "builtin" and (ref.name in REGISTRY or ref.name in VARIANTS):
        return builtin_dataset(ref.name)
    if ref.kind == "images":
        return image_dataset(ref, store_root)[0]
    return _dataset_from_file(ref, store_root if ref.kind == "stored" else "")


@st.cache_resource(show_spinner="Loading the run's dataset…", max_entries=6)
def _dataset_from_file(ref: DatasetRef, store_root: str) -> Dataset:
    return load_ref(ref, RunStore(store_root).stored_dataset_path if store_root else None,
                    allow_download=downloads_allowed())


def uploaded_dataset(name: str, data: bytes, store: RunStore) -> Dataset:
    """A Keras-layout .npz the user uploaded: checked first, then kept in the run store by its hash."""
    arrays = load_npz(data, name=name)  # a broken or hostile file is refused before anything is kept
    digest, _ = store.store_dataset_file(data, name, ".npz")
    ref = DatasetRef.of("stored", digest, {"file_name": name, "suffix": ".npz"})
    return dataset_from_arrays(name, arrays, f"Uploaded file {name}.", name, ref=ref)


@st.cache_resource(show_spinner=False, max_entries=3)  # up to 600 MB each at the limits of core.data.folders
def image_dataset(ref: DatasetRef, store_root: str) -> tuple[Dataset, ImageFolderReport]:
    """Images decoded with the options in `ref`, once per server process; with the report of the loading."""
    return load_images(ref, RunStore(store_root).stored_dataset_path)


def uploaded_images(name: str, data: bytes, options: ImageFolderOptions,
                    store: RunStore) -> tuple[Dataset, ImageFolderReport]:
    """A zip of class folders the user uploaded, kept in the run store by its hash and decoded there.

    A zip that cannot be decoded (DataError) is not kept, unless it was there already.
    """
    path = store.stored_dataset_path(sha256(data).hexdigest(), ".zip")
    existed = path.exists()
    digest, path = store.store_dataset_file(data, name, ".zip")
    try:
        return image_dataset(stored_ref(digest, name, options), str(store.root))
    except DataError:
        if not existed:
            path.unlink(missing_ok=True)
        raise


@st.cache_resource(show_spinner=False, max_entries=8)
def _stats(_dataset: Dataset, ref: DatasetRef, name: str, sizes: tuple[int, int]) -> DatasetStats:
    return dataset_stats(_dataset)


def stats_for(dataset: Dataset) -> DatasetStats:
    """The Data page's statistics of `dataset`, computed once per server for a dataset that has a reference
    (every session shares the built-in ones), once per call otherwise."""
    if dataset.ref is None:
        return dataset_stats(dataset)
    return _stats(dataset, dataset.ref, dataset.name, (len(dataset.x_train), len(dataset.x_test)))
