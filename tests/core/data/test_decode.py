"""Decoding pictures in a process of its own: the same arrays as in this process, refusals with their message,
and a process that can be stopped (a web server stops it when the session that asked goes away)."""

from __future__ import annotations

import io
import subprocess
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data.decode import decode_images, decode_picture_input
from core.data.drawing import PictureTarget, picture_input
from core.data.folders import load_image_folder
from core.data.pictures import ImageFolderOptions
from core.errors import DataError, DrawingError
from tests.conftest import encode, paper_digit, zip_folder


def test_a_zip_decoded_in_its_own_process_gives_the_arrays_and_report_of_this_one(shapes, tmp_path):
    path = tmp_path / "shapes.zip"
    path.write_bytes(zip_folder(shapes))
    options = ImageFolderOptions(image_size=16, color_mode="rgb", invert="auto")
    started: list[subprocess.Popen] = []
    there = decode_images(path, options, "shapes.zip", on_start=started.append)
    here = load_image_folder(path, options, name="shapes.zip")
    assert len(started) == 1 and started[0].returncode == 0  # it ran, and it has ended
    for a, b in zip(there.arrays(), here.arrays()):
        np.testing.assert_array_equal(a, b)
    assert there.class_names == here.class_names
    assert (there.report.skipped, there.report.split) == (here.report.skipped, here.report.split)


def test_a_refusal_comes_back_with_the_childs_message(tmp_path):
    path = tmp_path / "one.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("only/a.png", encode(Image.new("L", (8, 8))))
    with pytest.raises(DataError, match=r"^one\.zip: only one class folder \('only'\)"):
        decode_images(path, ImageFolderOptions(), "one.zip")


def test_a_decoding_stopped_by_its_owner_ends_with_a_message(shapes, tmp_path):
    path = tmp_path / "shapes.zip"
    path.write_bytes(zip_folder(shapes))
    with pytest.raises(DataError, match=r"^shapes\.zip: decoding stopped before it finished"):
        decode_images(path, ImageFolderOptions(), "shapes.zip", on_start=lambda child: child.kill())


def test_a_decoding_past_its_time_is_stopped(shapes, tmp_path):
    path = tmp_path / "shapes.zip"
    path.write_bytes(zip_folder(shapes))
    with pytest.raises(DataError, match=r"decoding took longer than 0 s and was stopped"):
        decode_images(path, ImageFolderOptions(), "shapes.zip", timeout_s=0.01)


@pytest.mark.parametrize("target", [PictureTarget(None, True, (28, 28, 1)), PictureTarget(None, False, (16, 16, 3)),
                                    PictureTarget(ImageFolderOptions(image_size=12), False, (12, 12, 1))],
                         ids=["digits", "any dataset", "image files"])
def test_a_picture_decoded_in_its_own_process_is_the_input_of_this_one(target):
    data = encode(paper_digit())
    there, here = decode_picture_input(data, target, "digit.png"), picture_input(data, target, "digit.png")
    np.testing.assert_array_equal(there.model_input, here.model_input)
    assert there.caption == here.caption and (there.steps is None) == (here.steps is None)
    if here.steps is not None:
        np.testing.assert_array_equal(there.steps.centered, here.steps.centered)


def test_a_picture_in_a_format_not_listed_is_refused_in_the_child():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(DrawingError, match=r"^evil\.eps is not an image that can be read \(PNG, JPEG, BMP, GIF, WebP "
                                           r"or TIFF\)\.$"):
        decode_picture_input(eps, PictureTarget(None, False, (16, 16, 3)), "evil.eps")
    blank = io.BytesIO()
    Image.new("L", (50, 50), 255).save(blank, "PNG")
    assert decode_picture_input(blank.getvalue(), PictureTarget(None, True, (28, 28, 1)), "blank.png") is None
