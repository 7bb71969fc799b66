"""A folder or zip of class folders as a dataset: classes, skipped files, splits, colour, inversion, refusals."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core import limits
from core.data.folders import describe_folder, load_image_folder, preview, sample_images
from core.data.pictures import NOT_AN_IMAGE, TOO_LARGE, UNREADABLE, ImageFolderOptions
from core.errors import DataError
from tests.conftest import CLASSES, PER_CLASS, encode, shape_picture, write_classes, zip_folder
from tests.core.data.conftest import forbid_reading, zip_members


@pytest.fixture(scope="module")
def split_layout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("split")
    write_classes(root / "train", dict.fromkeys(CLASSES, PER_CLASS))
    write_classes(root / "test", dict.fromkeys(CLASSES, 2))
    return root


# --- folders and zips -----------------------------------------------------------------------------


def test_folder_loads_classes_and_names_skipped_files(shapes):
    data = load_image_folder(shapes)
    report = data.report
    assert data.class_names == ("circle", "square", "triangle")
    assert data.x_train.dtype == np.uint8 and data.x_train.shape[1:] == (28, 28)
    assert data.y_train.dtype == np.int64
    assert report.images_read == 3 * PER_CLASS
    assert report.train_counts == (5, 5, 5) and report.test_counts == (1, 1, 1)
    assert {(s.name, s.reason) for s in report.skipped} == {
        ("circle/broken.png", UNREADABLE), ("square/notes.txt", NOT_AN_IMAGE)}
    assert report.skipped_summary() == [
        "1 file skipped, not an image: square/notes.txt",  # found from the listing, before decoding
        "1 file skipped, damaged or unreadable: circle/broken.png",
    ]
    assert "20% of each class held out, seed 0" in report.describe()


def test_zip_bytes_with_a_wrapping_folder_reads_like_the_folder(shapes):
    from_folder = load_image_folder(shapes)
    from_zip = load_image_folder(zip_folder(shapes, wrap="shapes"), name="shapes.zip")
    assert from_zip.class_names == from_folder.class_names
    for a, b in zip(from_zip.arrays(), from_folder.arrays()):
        np.testing.assert_array_equal(a, b)
    assert from_zip.report.source == "shapes.zip"
    assert sorted(s.name for s in from_zip.report.skipped) == ["shapes/circle/broken.png", "shapes/square/notes.txt"]


def test_zip_path_on_disk(shapes, tmp_path):
    path = tmp_path / "shapes.zip"
    path.write_bytes(zip_folder(shapes))
    assert load_image_folder(path).report.images_read == 3 * PER_CLASS


def test_fraction_split_is_stratified_and_seeded(shapes):
    options = ImageFolderOptions(test_fraction=0.5, seed=3)
    first, again = load_image_folder(shapes, options), load_image_folder(shapes, options)
    assert first.report.test_counts == (3, 3, 3) and first.report.train_counts == (3, 3, 3)
    for a, b in zip(first.arrays(), again.arrays()):
        np.testing.assert_array_equal(a, b)
    other = load_image_folder(shapes, ImageFolderOptions(test_fraction=0.5, seed=4))
    assert not np.array_equal(other.x_test, first.x_test)


def test_train_test_folders_give_the_split(split_layout):
    data = load_image_folder(split_layout)
    assert data.report.train_counts == (6, 6, 6) and data.report.test_counts == (2, 2, 2)
    assert data.report.split == "the test/ folder"
    zipped = load_image_folder(zip_folder(split_layout, wrap="mine"))
    np.testing.assert_array_equal(zipped.x_test, data.x_test)


def test_rgb_and_grayscale_shapes(shapes):
    rgb = load_image_folder(shapes, ImageFolderOptions(image_size=32, color_mode="rgb"))
    assert rgb.x_train.shape[1:] == (32, 32, 3) and rgb.x_test.shape[1:] == (32, 32, 3)
    # A red circle: its centre is red in colour.
    centre = rgb.x_train[rgb.y_train == 0][:, 12:20, 12:20].reshape(-1, 3).mean(axis=0)
    assert centre[0] > 150 > centre[1]
    dataset = rgb.to_dataset("shapes")
    assert dataset.input_shape == (32, 32, 3) and dataset.class_names == rgb.class_names
    assert dataset.x_train.dtype == np.float32 and dataset.x_train.max() <= 1.0


def test_invert_always_and_auto(shapes):
    plain = load_image_folder(shapes)
    always = load_image_folder(shapes, ImageFolderOptions(invert="always"))
    auto = load_image_folder(shapes, ImageFolderOptions(invert="auto"))
    np.testing.assert_array_equal(always.x_train, 255 - plain.x_train)
    np.testing.assert_array_equal(auto.x_train, always.x_train)  # every background here is light
    assert auto.report.inverted == 3 * PER_CLASS and plain.report.inverted == 0
    assert plain.x_train[:, 0, 0].min() > 200 and auto.x_train[:, 0, 0].max() < 50


def test_preview_applies_exif_rotation_and_flattens_transparency():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    rotated = encode(shape_picture("square", 0, size=(40, 20)), "JPEG", exif=exif)
    transparent = Image.new("RGBA", (30, 30), (0, 0, 0, 0))
    ImageDraw.Draw(transparent).line([(5, 15), (25, 15)], fill=(0, 0, 0, 255), width=4)
    pairs = preview([rotated, encode(transparent), b"garbage"], ImageFolderOptions(image_size=28))
    assert len(pairs) == 2  # undecodable files are left out
    (before, after), (clear_before, clear_after) = pairs
    assert before.shape == (40, 20, 3) and after.shape == (28, 28)
    assert clear_before[0, 0].tolist() == [255, 255, 255]  # black strokes on transparency: laid over white
    assert clear_after[0, 0] == 255 and clear_after[14, 14] < 50


def test_sample_images_takes_one_class_after_another(shapes):
    picked = sample_images(shapes, count=4)
    assert [name for name, _ in picked] == ["circle", "square", "triangle", "circle"]
    assert all(isinstance(data, bytes) for _, data in picked)


def test_oversized_image_is_skipped(tmp_path, monkeypatch):
    write_classes(tmp_path, {"circle": 5, "square": 5})
    (tmp_path / "square" / "big.png").write_bytes(encode(Image.new("RGB", (200, 200), "white")))
    monkeypatch.setattr(limits, "MAX_PICTURE_PIXELS", 10_000)
    skipped = load_image_folder(tmp_path).report.skipped
    assert [(s.name, s.reason, s.detail) for s in skipped] == [
        ("square/big.png", TOO_LARGE, "200x200 pixels; at most 0.01 MP per image")]


# --- describe without decoding --------------------------------------------------------------------


def test_describe_folder_counts_without_decoding(shapes, split_layout, monkeypatch):
    zipped = zip_folder(split_layout)
    forbid_reading(monkeypatch)
    summary = describe_folder(shapes)
    assert summary.class_names == ("circle", "square", "triangle")
    assert summary.train_counts == (7, 6, 6)  # broken.png is only found out by decoding
    assert not summary.has_test_folder
    assert [s.name for s in summary.skipped] == ["square/notes.txt"]
    layout = describe_folder(zipped)
    assert layout.test_counts == (2, 2, 2) and layout.image_files == 24


# --- refusals -------------------------------------------------------------------------------------


def test_class_with_three_images_is_refused_by_name(tmp_path):
    write_classes(tmp_path, {"circle": 6, "square": 6, "tiny": 3})
    with pytest.raises(DataError, match=re.escape("too few images in class 'tiny' (3); each class needs at least 5.")):
        load_image_folder(tmp_path)


def test_unreadable_files_can_leave_a_class_too_small(tmp_path):
    write_classes(tmp_path, {"circle": 5, "square": 5})
    (tmp_path / "square" / "square_00.png").write_bytes(b"broken")
    with pytest.raises(DataError, match=re.escape("too few readable images in class 'square' (4)")):
        load_image_folder(tmp_path)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"circle/a.png": b"x" * 10, "circle/b.png": b"x"}, "only one class folder ('circle'); "
         "a classifier needs at least 2 classes."),
        ({"a.png": b"x", "b.png": b"x"}, "no class folders found; put each class's images in a folder"),
        ({}, "no class folders found"),
    ],
)
def test_too_few_classes(members, message):
    with pytest.raises(DataError, match=re.escape(message)):
        load_image_folder(zip_members(members), name="mine.zip")


def test_test_folder_with_an_unknown_class_is_refused(tmp_path):
    write_classes(tmp_path / "train", {"circle": 5, "square": 5})
    write_classes(tmp_path / "test", {"circle": 1, "square": 1, "triangle": 1})
    with pytest.raises(DataError, match="test/ has a class folder 'triangle' that train/ lacks"):
        describe_folder(tmp_path)


def test_too_many_images(monkeypatch, shapes):
    monkeypatch.setattr(limits, "MAX_IMAGE_FILES", 10)
    with pytest.raises(DataError, match=re.escape(f"{shapes.name}: holds 19 images; at most 10 are read.")):
        load_image_folder(shapes)


def test_too_many_pixel_values(monkeypatch, shapes):
    monkeypatch.setattr(limits, "MAX_DATASET_VALUES", 19 * 64 * 64 * 3 - 1)
    with pytest.raises(DataError, match=r"19 images at 64x64x3 would take [\d.]+ [kMG]B as float32; .* "
                                        r"Choose a smaller image size or grayscale\."):
        load_image_folder(shapes, ImageFolderOptions(image_size=64, color_mode="rgb"))
    load_image_folder(shapes, ImageFolderOptions(image_size=64))  # grayscale fits


def test_not_a_zip_or_a_folder(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"data\.csv: not a valid \.zip file .*; expected a zip of class folders\."):
        describe_folder(tmp_path / "data.csv")
    with pytest.raises(DataError, match=r"missing: no such file or folder\."):
        describe_folder(tmp_path / "missing")


# --- a run's reference ----------------------------------------------------------------------------


def test_a_stored_zip_reference_loads_again_identically_through_json(shapes, tmp_path):
    from core.data.dataset import DatasetRef
    from core.data.folders import image_folder_options, stored_ref
    from core.data.registry import load_ref
    from core.runs.store import RunStore

    store = RunStore(tmp_path / "runs")
    digest, _ = store.store_dataset_file(zip_folder(shapes, wrap="shapes"), "my shapes.zip", ".zip")
    options = ImageFolderOptions(image_size=16, color_mode="rgb", invert="auto", test_fraction=0.3)
    ref = stored_ref(digest, "my shapes.zip", options)
    again = DatasetRef.from_dict(json.loads(json.dumps(ref.to_dict())))
    assert again == ref and ref.describe() == "images my shapes.zip (16px rgb, invert auto)"
    first, second = load_ref(ref, store.stored_dataset_path), load_ref(again, store.stored_dataset_path)
    assert first.name == "my shapes.zip" and first.class_names == tuple(CLASSES) and first.ref == ref
    assert first.input_shape == (16, 16, 3) and image_folder_options(first) == options
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, key), getattr(second, key))
    assert "2 files skipped" in first.source and any("not an image" in note for note in first.notes)
    with pytest.raises(DataError, match=r"^the images my shapes\.zip were uploaded into a run store"):
        load_ref(ref)
    store.stored_dataset_path(digest, ".zip").unlink()
    with pytest.raises(DataError, match=r"^the uploaded images my shapes\.zip are no longer in the run store"):
        load_ref(ref, store.stored_dataset_path)


def huge_png(side: int) -> bytes:
    """A small file that declares a `side` x `side` picture (it compresses to almost nothing)."""
    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def test_tiny_files_declaring_huge_pictures_are_refused_from_their_headers_before_any_is_decoded(monkeypatch):
    from core import limits

    picture = huge_png(6000)  # 36 megapixels each, in a few kB
    members = {f"{kind}/{i}.png": picture for kind in ("a", "b") for i in range(6)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert len(buffer.getvalue()) < 500_000
    monkeypatch.setattr(limits, "MAX_DECODE_PIXELS", 300_000_000)
    from PIL import ImageFile

    Image.init()  # (Pillow's plugins registered before decoding is forbidden)
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("a picture was decoded"))
    with pytest.raises(DataError, match=r"^huge\.zip: its images declare more than 300 megapixels to decode \(counted "
                                        r"from their headers, up to [ab]/\d\.png\); ConvLab decodes at most 300 "
                                        r"megapixels per dataset\."):
        load_image_folder(buffer.getvalue(), ImageFolderOptions(), name="huge.zip")
