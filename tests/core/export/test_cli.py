"""`python -m core notebook|report|export|classify RUN`: files written, pictures classified, one `error:` line
for what cannot be done."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import nbformat
import numpy as np
from PIL import Image

from core.data.registry import load_dataset
from core.export.cli import main
from tests.conftest import ROOT


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def digit_png(path, index: int = 3, size: int = 96) -> None:
    """A test digit of the 8x8 set, enlarged as a photo of it would be: dark ink on white paper."""
    digit = load_dataset("digits-8x8").x_test[index, :, :, 0]
    ink = Image.fromarray(np.rint(255 - digit * 255).astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
    canvas = Image.new("L", (size + 40, size + 40), 255)
    canvas.paste(ink, (20, 20))
    canvas.save(path)


def test_notebook_report_and_export_write_their_files(lab_run, tmp_path):
    store, run_id = lab_run
    code, out, err = call("notebook", run_id, "--runs", str(store.root), "-o", str(tmp_path))
    assert code == 0, err
    nbformat.validate(nbformat.read(tmp_path / f"{run_id}.ipynb", as_version=4))
    code, out, err = call("report", str(store.path(run_id)), "-o", str(tmp_path / "report.html"))  # a run's folder
    assert code == 0 and (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    code, out, err = call("export", run_id, "--runs", str(store.root), "--format", "onnx", "--format", "litert",
                          "-o", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / f"{run_id}.onnx").is_file() and (tmp_path / f"{run_id}.tflite").is_file()
    assert "checked with onnxruntime" in out and "checked with ai-edge-litert" in out
    assert "largest difference from Keras" in out


def test_classify_prints_the_top_classes_of_each_picture(lab_run, tmp_path):
    store, run_id = lab_run
    digit_png(tmp_path / "three.png")
    code, out, err = call("classify", run_id, "--runs", str(store.root), str(tmp_path / "three.png"), "--top", "2")
    assert code == 0, err
    (line,) = out.splitlines()
    name, ranked = line.split(": ")
    classes = [part.rsplit(" ", 1) for part in ranked.split(", ")]
    assert name == "three.png" and len(classes) == 2
    assert all(label in "0123456789" and percent.endswith("%") for label, percent in classes)


def test_classify_from_the_shell_says_error_once_for_a_broken_picture_and_goes_on(lab_run, tmp_path):
    store, run_id = lab_run
    digit_png(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    done = subprocess.run([sys.executable, "-m", "core", "classify", run_id, "--runs", str(store.root),
                           str(tmp_path / "broken.png"), str(tmp_path / "good.png")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: broken.png is not an image that can be read (PNG, JPEG, BMP, GIF, WebP or TIFF)."]
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith("good.png: ")


def test_a_run_that_is_not_there_is_one_error_line(tmp_path):
    code, out, err = call("report", "20990101-000000-abcdef", "--runs", str(tmp_path))
    assert code == 1 and err.startswith("error: no run '20990101-000000-abcdef' in the run store")
    code, out, err = call("classify", "not-a-run", "--runs", str(tmp_path), "x.png")
    assert code == 1 and err.count("\n") == 1 and err.startswith("error:")


def test_the_training_cli_is_left_as_it_was():
    done = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "--arch" in done.stdout and "--from-run" in done.stdout
