"""Your own images (core.data.folders): folders and zips of class folders, hostile zips, preprocessing."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core import limits
from core.data import pictures
from core.data.folders import describe_folder, load_image_folder, preview, sample_images
from core.data.pictures import NOT_AN_IMAGE, TOO_LARGE, UNREADABLE, ImageFolderOptions, fit_and_pad, preprocess_picture
from core.errors import DataError

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


def encode(picture: Image.Image, fmt: str = "PNG", **params) -> bytes:
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


@pytest.fixture(scope="module")
def split_layout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("split")
    write_classes(root / "train", dict.fromkeys(CLASSES, PER_CLASS))
    write_classes(root / "test", dict.fromkeys(CLASSES, 2))
    return root


def zip_folder(root: Path, wrap: str = "") -> bytes:
    """The folder as zip bytes (hidden files included), optionally inside one top folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            name = "/".join(filter(None, [wrap, path.relative_to(root).as_posix()]))
            archive.write(path, name)
    return buffer.getvalue()


def zip_members(members: dict[str, bytes], infos: list[zipfile.ZipInfo] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
        for info in infos:
            archive.writestr(info, b"target")
    return buffer.getvalue()


def valid_members(per_class: int = 5) -> dict[str, bytes]:
    return {f"{kind}/{i}.png": encode(shape_picture(kind, i)) for kind in ("circle", "square")
            for i in range(per_class)}


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


def forbid_reading(monkeypatch) -> None:
    """From now on, fail the test if any zip member is decompressed or any image decoded."""
    def refuse(*args, **kwargs):
        raise AssertionError("a member was read or decoded")

    monkeypatch.setattr(pictures.Image, "open", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)


# ---------------------------------------------------------------- folders and zips


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


def test_auto_invert_leaves_light_on_dark_alone():
    picture = Image.new("RGB", (30, 30), (0, 0, 0))
    ImageDraw.Draw(picture).line([(5, 5), (25, 25)], fill=(255, 255, 255), width=3)
    image, inverted = preprocess_picture(picture, ImageFolderOptions(invert="auto"))
    assert not inverted and image[0, 0] == 0 and image.max() > 200


# ---------------------------------------------------------------- preprocessing and preview


def test_fit_and_pad_keeps_the_aspect_and_pads_with_the_border():
    wide = np.full((10, 40), 50, dtype=np.uint8)
    wide[4:6, 15:25] = 200
    out = fit_and_pad(wide, 28)
    assert out.shape == (28, 28)
    assert (out[:10] == 50).all() and (out[-11:] == 50).all()  # 10x40 scaled to 7x28, padded top and bottom
    assert out[13, 14] > 150


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


# ---------------------------------------------------------------- describe without decoding


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


# ---------------------------------------------------------------- refusals


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


@pytest.mark.parametrize(
    "name", ["../evil.png", "circle/../../evil.png", "/abs/evil.png", "C:/evil.png", "c:evil.png", "..\\evil.png"]
)
def test_zip_member_escaping_the_folder_is_refused_before_reading(name, monkeypatch):
    data = zip_members({**valid_members(), name: b"x"})
    forbid_reading(monkeypatch)
    expected = f"evil.zip: member {name!r} points outside the folder (an absolute path, a drive letter or '..')"
    with pytest.raises(DataError, match=re.escape(expected)):
        load_image_folder(data, name="evil.zip")


def test_zip_symlink_is_refused(monkeypatch):
    link = zipfile.ZipInfo("circle/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = zip_members(valid_members(), [link])
    forbid_reading(monkeypatch)
    with pytest.raises(DataError, match=re.escape("member 'circle/link.png' is a symbolic link")):
        describe_folder(data, name="links.zip")


def test_zip_bomb_by_declared_size_is_refused_from_the_directory(monkeypatch):
    data = patch_declared_size(zip_members(valid_members()), "circle/0.png", 300_000_000)
    forbid_reading(monkeypatch)
    with pytest.raises(DataError, match=r"its files add up to 300\.0 MB once uncompressed; ConvLab reads at most "
                                        r"200\.0 MB of a zip of class folders \(a zip bomb\?\)"):
        load_image_folder(data, name="bomb.zip")


def test_real_zip_bomb_is_refused_by_its_ratio(monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, member in valid_members().items():
            archive.writestr(name, member)
        info = zipfile.ZipInfo("circle/zeros.png")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as handle:
            for _ in range(20):  # 20 MB of zeros, streamed: the test never holds them at once
                handle.write(bytes(1 << 20))
    assert len(buffer.getvalue()) < 100_000
    forbid_reading(monkeypatch)
    with pytest.raises(DataError, match=r"member 'circle/zeros.png' is compressed 1,0\d\d to 1; "
                                        r"at most 500 to 1 is accepted"):
        load_image_folder(buffer.getvalue(), name="bomb.zip")


def test_member_larger_than_declared_is_refused():
    data = valid_members()
    declared = len(data["square/4.png"]) - 10
    crafted = patch_declared_size(zip_members(data), "square/4.png", declared)
    with pytest.raises(DataError, match=re.escape("member 'square/4.png' is damaged or does not match its "
                                                  "declared size")):
        load_image_folder(crafted, name="crafted.zip")


def test_too_many_entries_in_a_zip(monkeypatch, shapes):
    data = zip_folder(shapes)
    monkeypatch.setattr(limits, "IMAGE_ARCHIVE", dataclasses.replace(limits.IMAGE_ARCHIVE, max_entries=10))
    forbid_reading(monkeypatch)
    with pytest.raises(DataError, match=r"many\.zip: the archive lists \d+ files and folders; ConvLab reads at most 10 "
                                        r"in a zip of class folders\."):
        describe_folder(data, name="many.zip")


def with_zip64_end(data: bytes) -> bytes:
    """The same zip with a zip64 end record, its plain end record saying 'see zip64' (0xFFFF...)."""
    at = data.rfind(b"PK\x05\x06")
    sig, disk, cdisk, on_disk, total, size, offset, _ = struct.unpack_from("<4s4H2LH", data, at)
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, disk, cdisk, on_disk, total, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    end = struct.pack("<4s4H2LH", sig, disk, cdisk, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:at] + record + locator + end


@pytest.mark.parametrize("zip64", [False, True])
def test_zip_directory_too_large_is_refused_before_parsing(monkeypatch, shapes, zip64):
    data = zip_folder(shapes)
    data = with_zip64_end(data) if zip64 else data
    assert describe_folder(data).class_names == ("circle", "square", "triangle")
    monkeypatch.setattr(limits, "IMAGE_ARCHIVE", dataclasses.replace(limits.IMAGE_ARCHIVE, max_directory_bytes=1000))
    forbid_reading(monkeypatch)
    monkeypatch.setattr(zipfile, "ZipFile", lambda *args, **kwargs: pytest.fail("the directory was parsed"))
    with pytest.raises(DataError, match=r"big\.zip: its zip directory takes \d+\.\d kB; ConvLab reads at most "
                                        r"1\.0 kB for a zip of class folders \(about 50,000 files\)\."):
        describe_folder(data, name="big.zip")


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


# ---------------------------------------------------------------- options


def test_options_round_trip_as_json():
    options = ImageFolderOptions(image_size=64, color_mode="rgb", invert="auto", test_fraction=0.25, seed=7)
    assert ImageFolderOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    assert options.input_shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"image_size": 300}, "image_size == 300, must be an integer from 8 to 128."),
        ({"image_size": 28.0}, "image_size == 28.0, must be an integer."),
        ({"color_mode": "cmyk"}, "color_mode == 'cmyk', must be one of 'grayscale', 'rgb'."),
        ({"invert": True}, "invert == True, must be one of 'never', 'always', 'auto'."),
        ({"test_fraction": 0.9}, "test_fraction == 0.9, must be in [0.05, 0.5]."),
        ({"test_fraction": "0.2"}, "test_fraction == '0.2', must be a number."),
        ({"seed": -1}, "seed == -1, must be an integer from 0 to 2147483647."),
        ({"seed": 2**32 - 1}, "seed == 4294967295, must be an integer from 0 to 2147483647."),
        ({"size": 28}, "image folder options: unknown setting(s) 'size'; known: image_size, color_mode, invert, "
                       "test_fraction, seed."),
    ],
)
def test_bad_options(settings, message):
    with pytest.raises(DataError, match=re.escape(message)):
        ImageFolderOptions.from_dict(settings)


# ---------------------------------------------------------------- a run's reference, and pictures to classify


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


def test_local_paths_tell_images_from_idx_folders_and_npz_files(shapes, tmp_path):
    from core.data.registry import is_image_source, load_file, local_ref

    (tmp_path / "shapes.zip").write_bytes(zip_folder(shapes))
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"")
    np.savez(tmp_path / "data.npz", x=np.zeros(1))
    assert is_image_source(shapes) and is_image_source(tmp_path / "shapes.zip")
    assert not is_image_source(tmp_path / "idx") and not is_image_source(tmp_path / "data.npz")
    ref = local_ref(shapes, ImageFolderOptions(image_size=12))
    assert (ref.kind, ref.name, ref.option_dict["image_size"]) == ("images", str(shapes.resolve()), 12)
    assert local_ref(tmp_path / "data.npz").kind == "file"
    with pytest.raises(DataError, match=r"image options .* apply only to a folder or \.zip of class folders"):
        local_ref(tmp_path / "data.npz", ImageFolderOptions())
    dataset = load_file(tmp_path / "shapes.zip")
    assert dataset.name == "shapes.zip" and dataset.class_names == tuple(CLASSES)
    assert dataset.input_shape == (28, 28, 1) and dataset.ref.kind == "images"


@pytest.mark.parametrize("options", [ImageFolderOptions(image_size=16, color_mode="rgb"),
                                     ImageFolderOptions(image_size=20, invert="auto"),
                                     ImageFolderOptions(image_size=12, invert="always")])
def test_a_picture_to_classify_is_preprocessed_exactly_as_the_training_images(shapes, options):
    from core.data.pictures import prepare_picture

    dataset = load_image_folder(shapes, options).to_dataset("shapes")
    every = np.concatenate([dataset.x_train, dataset.x_test])
    for path in sorted((shapes / "square").glob("square_*")):
        picture = prepare_picture(path.read_bytes(), options, name=path.name)
        assert picture.model_input.shape == (1, *options.input_shape) and picture.model_input.dtype == np.float32
        assert (every == picture.model_input[0]).all(axis=(1, 2, 3)).any(), path.name  # bit for bit one of them
        assert picture.inverted == (options.invert != "never")  # light paper: auto inverts too


def test_a_picture_that_cannot_be_read_says_why():
    from core.data.pictures import prepare_picture
    from core.errors import DrawingError

    with pytest.raises(DrawingError, match=r"^notes\.png is not an image that can be read \(PNG, JPEG, BMP, GIF, WebP "
                                           r"or TIFF\)\.$"):
        prepare_picture(b"not a picture", ImageFolderOptions(), name="notes.png")


def test_cli_trains_a_zip_of_class_folders(shapes, tmp_path):
    import contextlib

    from core.cli import main
    from core.runs.status import RunState
    from core.runs.store import RunStore

    (tmp_path / "shapes.zip").write_bytes(zip_folder(shapes, wrap="shapes"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--dataset", str(tmp_path / "shapes.zip"), "--image-size", "16", "--color-mode", "rgb",
                     "--test-fraction", "0.25", "--arch", "fast", "--train", "fast", "--epochs", "1",
                     "--runs", str(tmp_path / "runs")])
    assert code == 0, err.getvalue()
    printed = out.getvalue()
    assert "[1/4] data: shapes.zip: " in printed and ", 16x16x3," in printed
    assert "classes: circle, square, triangle" in printed and "skipped, not an image: shapes/square/notes.txt" in printed
    store = RunStore(tmp_path / "runs")
    (run_id,) = store.run_ids()
    spec = store.spec(run_id)
    assert store.summary(run_id).state is RunState.FINISHED
    assert spec.dataset.kind == "images" and spec.dataset.option_dict["test_fraction"] == 0.25
    with contextlib.redirect_stderr(err):
        assert main(["--dataset", "digits-8x8", "--invert", "auto", "--runs", str(tmp_path / "runs")]) == 1
    assert "error: --invert applies only to a folder or .zip of images, not to digits-8x8." in err.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_every_listed_format_decodes(fmt):
    # Pillow 13 has no "MPO" opener of its own: naming it made every format tried after it fail
    from core.data.pictures import prepare_picture

    picture = prepare_picture(encode(shape_picture("circle", 0), fmt), ImageFolderOptions(image_size=12), name="x")
    assert picture.image.shape == (12, 12) and picture.image.std() > 0
