"""Decoding pictures in a process of its own, so the web server never decodes one.

`decode_images(path, options, name)` decodes a folder or zip of class folders
(`core.data.folders.load_image_folder`, every limit of a dataset of image files
applying) and `decode_picture_input(data, target, name)` one uploaded picture
(`core.data.drawing.picture_input`), each by running `python -m core.data.decode`
and waiting for it: the child writes the arrays (and the report) into a folder
of its own, which the parent reads back. The child runs at a lower priority,
is stopped after `core.limits.MAX_DECODE_SECONDS`, and can be stopped sooner by
whoever started it (`on_start` hands over the process: a web server stops it
when the browser session that asked goes away). A refusal comes back as the
child's own message (DataError, or DrawingError for a picture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from core import limits
from core.data.drawing import DrawingSteps, PictureInput, PictureTarget, picture_input
from core.data.folders import ImageFolder, ImageFolderReport, SkippedFile, load_image_folder
from core.data.pictures import ImageFolderOptions
from core.errors import ConvLabError, DataError, DrawingError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NICE = 5
_ARRAYS, _REPORT, _ERROR = "arrays.npz", "report.json", "error.txt"


OnStart = Callable[[subprocess.Popen], None]


def decode_images(path: str | Path, options: ImageFolderOptions, name: str, on_start: OnStart | None = None,
                  timeout_s: float = limits.MAX_DECODE_SECONDS) -> ImageFolder:
    """Decode the folder or zip at `path` in a child process; raises DataError with why it was refused or stopped."""
    with tempfile.TemporaryDirectory(prefix="convlab-decode-") as out:
        folder = _run(["images", str(path), json.dumps(options.to_dict()), name, out], name, DataError, on_start,
                      timeout_s)
        with np.load(folder / _ARRAYS, allow_pickle=False) as arrays:
            x_train, y_train, x_test, y_test = (arrays[key] for key in ("x_train", "y_train", "x_test", "y_test"))
        report = _report_from(json.loads((folder / _REPORT).read_text()))
        return ImageFolder(x_train, y_train, x_test, y_test, report.class_names, report)


def decode_picture_input(data: bytes, target: PictureTarget, name: str, on_start: OnStart | None = None,
                         timeout_s: float = 60.0) -> PictureInput | None:
    """`core.data.drawing.picture_input` in a child process; raises DrawingError with why the picture was refused."""
    with tempfile.TemporaryDirectory(prefix="convlab-picture-") as out:
        picture = Path(out) / "picture"  # never the uploaded name: it is not a path we trust
        picture.write_bytes(data)
        folder = _run(["picture", str(picture), json.dumps(target.to_dict()), name, out], name, DrawingError,
                      on_start, timeout_s)
        meta = json.loads((folder / _REPORT).read_text())
        if meta.get("empty"):
            return None
        with np.load(folder / _ARRAYS, allow_pickle=False) as arrays:
            got = {key: arrays[key] for key in arrays.files}
        steps = DrawingSteps(*(got[f"step_{name}"] for name in _STEPS), coverage=meta["coverage"]) \
            if "step_ink" in got else None
        return PictureInput(got["model_input"], got.get("original"), got.get("seen"), meta["caption"], steps)


def _run(args: list[str], name: str, error: type[Exception], on_start: OnStart | None, timeout_s: float) -> Path:
    """Run the child with `args`; the folder it wrote into, or `error` with its message."""
    out = Path(args[-1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen([sys.executable, "-m", "core.data.decode", *args], cwd=PROJECT_ROOT, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    if on_start is not None:
        on_start(child)
    try:
        child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        raise error(f"{name}: decoding took longer than {timeout_s:.0f} s and was stopped; use fewer or smaller "
                    "pictures.") from None
    finally:
        stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
        if child.stderr:
            child.stderr.close()
    if (out / _ERROR).exists():
        raise error((out / _ERROR).read_text())
    if child.returncode != 0 or not (out / _REPORT).exists():
        last = stderr.strip().splitlines()[-1:] or [f"exit code {child.returncode}"]
        raise error(f"{name}: decoding stopped before it finished ({last[0][:200]}).")
    return out


def _report_from(data: dict) -> ImageFolderReport:
    data = dict(data)
    data["skipped"] = tuple(SkippedFile(**item) for item in data["skipped"])
    for key in ("class_names", "train_counts", "test_counts", "image_shape"):
        data[key] = tuple(data[key])
    return ImageFolderReport(**data)


_STEPS = ("ink", "cropped", "resized", "padded", "centered")


def main(argv: list[str]) -> int:
    kind, path, settings, name, out = argv
    try:
        os.nice(NICE)
    except OSError:
        pass
    folder = Path(out)
    try:
        if kind == "images":
            decoded = load_image_folder(Path(path), ImageFolderOptions.from_dict(json.loads(settings)), name=name)
            np.savez(folder / _ARRAYS, x_train=decoded.x_train, y_train=decoded.y_train, x_test=decoded.x_test,
                     y_test=decoded.y_test)
            (folder / _REPORT).write_text(json.dumps(asdict(decoded.report)))
            return 0
        given = picture_input(Path(path).read_bytes(), PictureTarget.from_dict(json.loads(settings)), name=name)
    except ConvLabError as error:
        (folder / _ERROR).write_text(str(error))
        return 2
    if given is None:
        (folder / _REPORT).write_text(json.dumps({"empty": True}))
        return 0
    arrays = {"model_input": given.model_input}
    arrays |= {key: value for key, value in (("original", given.original), ("seen", given.seen)) if value is not None}
    if given.steps is not None:
        arrays |= {f"step_{step}": getattr(given.steps, step) for step in _STEPS}
    np.savez(folder / _ARRAYS, **arrays)
    (folder / _REPORT).write_text(json.dumps({"caption": given.caption,
                                              "coverage": given.steps.coverage if given.steps else 0.0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
