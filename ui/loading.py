"""Dataset loading for the pages, with built-in datasets cached across sessions.

Built-in datasets are read-only and identical for every user, so one copy
per server process is shared (`st.cache_resource`); uploaded files belong
to their session and are not cached here.
"""

from __future__ import annotations

import os

import streamlit as st

from core.data import Dataset
from core.datasets import dataset_from_arrays, load_dataset
from core.loaders import load_npz


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def builtin_dataset(key: str) -> Dataset:
    """A registry dataset, loaded once per server process (no downloads when CONVLAB_OFFLINE=1)."""
    return load_dataset(key, allow_download=os.environ.get("CONVLAB_OFFLINE") != "1")


def uploaded_dataset(name: str, data: bytes) -> Dataset:
    """A Keras-layout .npz that the user uploaded (raises DataError with the reason)."""
    arrays = load_npz(data, name=name)
    return dataset_from_arrays(name, arrays, source=f"Uploaded file {name}.", origin=name)
