"""Shared fixtures and helpers: tiny learnable datasets, quiet TensorFlow, AppTest running app.py, folders of
class pictures (and their zips), drawn digits on a canvas."""

from __future__ import annotations

import io
import os
import struct
import sys
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.dataset import Dataset, make_dataset  # noqa: E402


def bars_arrays(n_train: int = 240, n_test: int = 80, size: int = 12, seed: int = 0):
    """Raw uint8 images of four easy classes: horizontal, vertical, diagonal bar, and a box."""
    rng = np.random.default_rng(seed)

    def draw(label: int) -> np.ndarray:
        image = rng.integers(0, 40, size=(size, size)).astype(np.float64)
        offset = int(rng.integers(2, size - 3))
        if label == 0:
            image[offset, 1:-1] = 255
        elif label == 1:
            image[1:-1, offset] = 255
        elif label == 2:
            np.fill_diagonal(image, 255)
        else:
            image[2, 2:-2] = image[-3, 2:-2] = image[2:-2, 2] = image[2:-2, -3] = 255
        return image

    def batch(n: int):
        labels = np.arange(n) % 4
        return np.stack([draw(int(k)) for k in labels]).astype(np.uint8), labels.astype(np.uint8)

    return (*batch(n_train), *batch(n_test))


def wait_for(condition: Callable[[], object], timeout: float = 180.0, what: str = "condition") -> None:
    """Await a condition that another process or thread makes true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def training(store, run_id: str) -> bool:
    """The run's worker is past its first batch, in its log and in its status (which says where a kill hit)."""
    from core.runs.status import RunState

    status = store.status(run_id)
    return (status.state is RunState.RUNNING and status.progress.epoch >= 1
            and bool(store.reader(run_id).snapshot().batches))


@pytest.fixture(scope="session")
def bars() -> Dataset:
    """A tiny 12x12, 4-class dataset a small CNN learns in one epoch."""
    return make_dataset("bars", *bars_arrays(), source="synthetic bars", origin="bars",
                        class_names=("horizontal", "vertical", "diagonal", "box"))


@pytest.fixture(scope="session")
def bars_file(tmp_path_factory) -> Path:
    """The bars as an .npz file in the Keras layout (what a run's dataset reference can point to)."""
    path = tmp_path_factory.mktemp("data") / "bars.npz"
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="session")
def bars_data(tmp_path_factory) -> Dataset:
    """The bars saved as an .npz file and loaded from it: a dataset with a reference, so that a training
    process (or a run used again) can load it again."""
    from core.data.registry import load_file

    path = tmp_path_factory.mktemp("bars") / "bars.npz"
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return load_file(path)


def make_apptest_run_app_py() -> Callable[[], None]:
    """Make AppTest run app.py on every run, as the server does; returns the undo.

    The server runs app.py (which calls st.navigation) on every rerun. Streamlit 1.67's AppTest resets
    `PagesManager.uses_pages_directory` before each run and, finding our pages/ folder, would rerun a page
    file alone, skipping app.py (session hooks, the URL, the sidebar). st.navigation sets the flag to False
    in the server; this does the same for AppTest.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    return lambda: setattr(PagesManager, "__init__", original)


@pytest.fixture(autouse=True, scope="session")
def apptest_runs_app_py_on_every_run():
    undo = make_apptest_run_app_py()
    yield
    undo()


def session_dataset(at) -> Dataset | None:
    """The dataset an AppTest session uses (the session keeps a handle; the server's memory the arrays)."""
    from ui.loading import resolve
    from ui.state import DATASET

    return resolve(at.session_state[DATASET]) if DATASET in at.session_state else None


# --- class folders: pictures of three shapes (the Data page's own images, their zips) ---------------------

CLASSES = {"circle": (220, 40, 40), "square": (40, 160, 60), "triangle": (40, 60, 200)}
PER_CLASS = 6


def shape_picture(kind: str, index: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A coloured shape on a light background; non-square, so fitting pads it."""
    picture = Image.new("RGB", size, (245, 245, 240))
    draw = ImageDraw.Draw(picture)
    x, y = 8 + index % 4, 5 + index % 3
    box = (x, y, x + 18, y + 18)
    if kind == "circle":
        draw.ellipse(box, fill=CLASSES[kind])
    elif kind == "square":
        draw.rectangle(box, fill=CLASSES[kind])
    else:
        draw.polygon([(x, y + 18), (x + 9, y), (x + 18, y + 18)], fill=CLASSES[kind])
    return picture


def encode(picture: Image.Image | np.ndarray, fmt: str = "PNG", **params) -> bytes:
    """A picture (or an image array) as the bytes of a `fmt` file."""
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **params)
    return buffer.getvalue()


def write_classes(root: Path, per_class: dict[str, int]) -> None:
    for kind, count in per_class.items():
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            picture = shape_picture(kind if kind in CLASSES else "square", i)
            if i % 2:
                (folder / f"{kind}_{i:02d}.jpg").write_bytes(encode(picture, "JPEG", quality=95))
            else:
                (folder / f"{kind}_{i:02d}.png").write_bytes(encode(picture))


def add_clutter(root: Path) -> None:
    """One corrupt image, one non-image, hidden files and a __MACOSX folder."""
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    (root / "square" / "notes.txt").write_text("labels are folder names")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "circle" / ".hidden.png").write_bytes(encode(shape_picture("circle", 0)))
    (root / "__MACOSX" / "circle").mkdir(parents=True)
    (root / "__MACOSX" / "circle" / "._circle_00.png").write_bytes(b"\x00\x05\x16\x07")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    write_classes(root, dict.fromkeys(CLASSES, PER_CLASS))
    add_clutter(root)
    return root


def zip_folder(root: Path, wrap: str = "") -> bytes:
    """The folder as zip bytes (hidden files included), optionally inside one top folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            name = "/".join(filter(None, [wrap, path.relative_to(root).as_posix()]))
            archive.write(path, name)
    return buffer.getvalue()


def patch_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite a member's uncompressed size in the central directory (what zipfile trusts)."""
    data = bytearray(data)
    start = 0
    while (start := data.find(b"PK\x01\x02", start)) >= 0:
        name_len = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46: start + 46 + name_len].decode() == member:
            struct.pack_into("<I", data, start + 24, size)
            return bytes(data)
        start += 4
    raise AssertionError(f"{member} not in the central directory")


# --- drawings: digits drawn on the canvas, photos of digits -------------------------------------------

CANVAS = 280
PEN = 19  # about 1/15 of the canvas width, the app's default pen


def ink_image(strokes: list[list[tuple[int, int]]], width: int = PEN, size: int = CANVAS) -> np.ndarray:
    """Ink strength (uint8, 255 = full) of polylines drawn with a round pen."""
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for points in strokes:
        draw.line(points, fill=255, width=width, joint="curve")
        r = width // 2
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(image)


def transparent_canvas(ink: np.ndarray, colour: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """What streamlit-drawable-canvas returns: strokes in `colour`, the ink in alpha, RGBA uint8."""
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., :3] = np.where(ink[..., np.newaxis] > 0, np.array(colour, dtype=np.uint8), 0)
    rgba[..., 3] = ink
    return rgba


# A large '7' in the top-right of the canvas: about 120 px wide, 230 px tall.
SEVEN = [[(140, 25), (265, 25), (185, 255)]]


def paper_digit(dark_on_light: bool = True) -> np.ndarray:
    """A 120x90 grey photo-like picture of a thick bar: dark ink on white paper (or the reverse)."""
    picture = np.full((120, 90), 250, dtype=np.uint8)
    picture[20:100, 35:55] = 15
    return picture if dark_on_light else 255 - picture
