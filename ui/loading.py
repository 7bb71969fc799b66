"""Datasets for the pages: one copy per server, whoever loads them, within the server's memory budget.

Every dataset the pages use lives in the server's `ServerMemory` (one per
server process), keyed by what it is rather than by who asked: a built-in by
its name, an upload by the SHA-256 of its bytes, images by the zip's hash and
the options. Each session holds what it uses; when the session ends (its tab
closed), its holds are released and whatever nobody holds is dropped. A load
that would take the server past its budget is refused before anything is
allocated, with a message that says so. A session keeps only a handle to its
dataset (`DatasetHandle`), never the arrays, so a closed tab's state cannot
keep them alive.

An uploaded file is parsed and checked first and kept in the run store (by
its hash, within the uploads' quota) only once it passes, so a refused file
leaves nothing on disk.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, Callable, Hashable

import streamlit as st

from core.data.dataset import Dataset, DatasetRef, dataset_from_arrays
from core.data.decode import decode_images, decode_picture_input
from core.data.drawing import PictureInput, PictureTarget
from core.data.files import declared_npz, load_npz
from core.data.folders import ImageFolderReport, describe_folder, stored_ref
from core.data.memory import ServerMemory
from core.data.pictures import ImageFolderOptions
from core.data.registry import REGISTRY, VARIANTS, declared_bytes, estimate_bytes, load_images, load_ref, loaded_bytes
from core.data.stats import DatasetStats, dataset_stats
from core.errors import DataError
from core.runs.store import RunStore
from ui import state


def downloads_allowed() -> bool:
    return os.environ.get("CONVLAB_OFFLINE") != "1"


@st.cache_resource(show_spinner=False)
def server_memory() -> ServerMemory:
    """The server's datasets and models, shared by every session, within CONVLAB_MEMORY_BUDGET_MB."""
    return ServerMemory()


@dataclass(frozen=True)
class DatasetHandle:
    """What a session keeps of its dataset: how to find it in the server's memory (or load it again)."""

    key: Hashable
    ref: DatasetRef
    store_root: str  # where an upload it refers to is kept
    name: str


def _key(ref: DatasetRef) -> Hashable:
    """What a dataset is, whoever loads it: an upload's key is its content hash, wherever it is kept."""
    if ref.kind == "builtin":
        return ("builtin", ref.name)
    return (ref.kind, ref.name, ref.options)


def _holder() -> str:
    try:
        return state.owner()
    except KeyError:  # outside a session (a script, a test calling a loader directly)
        return "script"


def dataset_for_ref(ref: DatasetRef, store_root: str) -> Dataset:
    """The dataset a reference names, loaded once per server; this session holds it."""
    if ref.kind == "builtin" and ref.name not in REGISTRY and ref.name not in VARIANTS:
        raise DataError(f"unknown built-in dataset '{ref.name}'.")
    if ref.kind == "images":
        return image_dataset(ref, store_root)[0]
    stored = RunStore(store_root).stored_dataset_path if store_root else None
    return server_memory().get(_key(ref), _holder(),
                               lambda: load_ref(ref, stored, allow_download=downloads_allowed()),
                               estimate=estimate_bytes(ref, stored), what=f"the dataset {ref.describe()}")


def builtin_dataset(key: str) -> Dataset:
    """A registry dataset, loaded once per server process (no downloads when CONVLAB_OFFLINE=1)."""
    return dataset_for_ref(DatasetRef.of("builtin", key), "")


def forget_builtin(key: str) -> None:
    """Load the built-in dataset `key` again next time (where it comes from may have changed)."""
    server_memory().forget(_key(DatasetRef.of("builtin", key)))


def handle_of(dataset: Dataset, store_root: str) -> DatasetHandle | Dataset:
    """What a session keeps of `dataset`: a handle when it can be found again, else the dataset itself."""
    if dataset.ref is None:
        return dataset
    return DatasetHandle(_key(dataset.ref), dataset.ref, store_root, dataset.name)


def resolve(kept: DatasetHandle | Dataset | None) -> Dataset | None:
    """A session's dataset from what it keeps: from the server's memory, loaded again if it was dropped."""
    if kept is None or isinstance(kept, Dataset):
        return kept
    return dataset_for_ref(kept.ref, kept.store_root)


def uploaded_dataset(name: str, data: bytes, store: RunStore) -> Dataset:
    """A Keras-layout .npz the user uploaded: checked, loaded once per server, then kept in the run store."""
    digest = sha256(data).hexdigest()
    ref = DatasetRef.of("stored", digest, {"file_name": name, "suffix": ".npz"})
    if not store.stored_dataset_path(digest, ".npz").exists():
        store.check_upload_room(len(data))  # before anything is parsed or allocated
    dataset = server_memory().get(
        _key(ref), _holder(), lambda: dataset_from_arrays(name, load_npz(data, name=name), f"Uploaded file {name}.",
                                                          name, ref=ref),
        estimate=declared_bytes(declared_npz(data, name=name)), what=name)
    store.store_dataset_file(data, name, ".npz", uploaded_by=_workspace())  # only once it passed every check
    return dataset


def uploaded_images(name: str, data: bytes, options: ImageFolderOptions,
                    store: RunStore) -> tuple[Dataset, ImageFolderReport]:
    """A zip of class folders the user uploaded, decoded with `options` once per server (in a process of its own),
    then kept in the run store. A zip that cannot be decoded (DataError) is not kept."""
    digest = sha256(data).hexdigest()
    ref = stored_ref(digest, name, options)
    kept = store.stored_dataset_path(digest, ".zip")
    if not kept.exists():
        store.check_upload_room(len(data))
    files = describe_folder(data, name=name).image_files
    estimate = loaded_bytes(files * options.image_size ** 2 * options.channels, files)

    def load() -> tuple[Dataset, ImageFolderReport]:
        with tempfile.TemporaryDirectory(prefix="convlab-upload-") as folder:
            path = Path(folder) / "upload.zip"  # never the uploaded name: it is not a path we trust
            path.write_bytes(data)
            decoded = decode_images(path, options, name, on_start=_decoding_for(_holder()))
        return decoded.to_dataset(name, ref=ref), decoded.report

    dataset, report = server_memory().get(("decoded",) + tuple(_key(ref)), _holder(), load, estimate=estimate,
                                          what=name, size=lambda pair: _nbytes(pair[0]))
    store.store_dataset_file(data, name, ".zip", uploaded_by=_workspace())
    return dataset, report


def image_dataset(ref: DatasetRef, store_root: str) -> tuple[Dataset, ImageFolderReport]:
    """Images decoded with the options in `ref` (a zip kept in the store or a folder), once per server, in a
    process of its own."""
    stored = RunStore(store_root).stored_dataset_path
    return server_memory().get(("decoded",) + tuple(_key(ref)), _holder(),
                               lambda: load_images(ref, stored, decode=_decoder(_holder())),
                               estimate=estimate_bytes(ref, stored), what=f"the images {ref.describe()}",
                               size=lambda pair: _nbytes(pair[0]))


class Decodings:
    """The decoding processes each session started, to stop them when the session ends (server-wide)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: dict[str, list[subprocess.Popen]] = {}

    def add(self, owner: str, child: subprocess.Popen) -> None:
        with self._lock:
            self._children.setdefault(owner, []).append(child)

    def stop(self, owner: str) -> int:
        """Stop `owner`'s decodings still running; returns how many."""
        with self._lock:
            children = self._children.pop(owner, [])
        running = [child for child in children if child.poll() is None]
        for child in running:
            child.kill()
        return len(running)


@st.cache_resource(show_spinner=False)
def decodings() -> Decodings:
    return Decodings()


def _decoding_for(owner: str) -> Callable[[subprocess.Popen], None]:
    return lambda child: decodings().add(owner, child)


def _decoder(owner: str) -> Callable[..., Any]:
    """`core.data.decode.decode_images`, its processes stopped when `owner`'s session ends."""
    return lambda path, options, name: decode_images(path, options, name, on_start=_decoding_for(owner))


def _nbytes(dataset: Any) -> int:
    from core.data.memory import nbytes

    return nbytes(dataset)


def _workspace() -> str:
    from ui.runs import workspace

    try:
        return workspace()
    except Exception:  # noqa: BLE001 - outside a session (a script): the upload has no browser owner
        return ""


def picture_for_model(data: bytes, dataset: Dataset, name: str) -> PictureInput | None:
    """An uploaded picture as input for `dataset`'s model, decoded in a process of its own (stopped with the session)."""
    return decode_picture_input(data, PictureTarget.of(dataset), name, on_start=_decoding_for(_holder()))


def release_session(owner: str) -> int:
    """A session has ended: its decodings are stopped and what only it held is dropped (bytes freed)."""
    decodings().stop(owner)
    return server_memory().release(owner)


@st.cache_resource(show_spinner=False, max_entries=8)
def _stats(_dataset: Dataset, ref: DatasetRef, name: str, sizes: tuple[int, int]) -> DatasetStats:
    return dataset_stats(_dataset)


def stats_for(dataset: Dataset) -> DatasetStats:
    """The Data page's statistics of `dataset`, computed once per server for a dataset that has a reference
    (every session shares the built-in ones), once per call otherwise."""
    if dataset.ref is None:
        return dataset_stats(dataset)
    return _stats(dataset, dataset.ref, dataset.name, (len(dataset.x_train), len(dataset.x_test)))


