"""Write a real dataset out as a folder (or zip) of class folders of PNG files, to try core.data.folders on.

    python scripts/make_image_folder.py --source digits --out /tmp/digits --per-class 150 --load
    python scripts/make_image_folder.py --source fashion --out /tmp/fashion --per-class 300 --zip --load

`digits` is scikit-learn's load_digits (8x8); `fashion` is Fashion-MNIST's
training set from Debian's IDX files (28x28, `dataset-fashion-mnist`).
`--scale` enlarges each image, `--paper` writes dark ink on white (as a
scan would be; load with invert "auto" or "always" to get MNIST-like images
back). `--load` then reads the result with `core.data.folders.load_image_folder`
and prints the report and the time taken.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.files import read_idx  # noqa: E402
from core.data.folders import load_image_folder
from core.data.pictures import ImageFolderOptions
from core.data.registry import DEBIAN_FASHION_DIR, FASHION_NAMES  # noqa: E402


def source_arrays(source: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """uint8 images (N, H, W), labels, and a folder name per class."""
    if source == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8), bunch.target, tuple(map(str, range(10)))
    images = read_idx(DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz")
    labels = read_idx(DEBIAN_FASHION_DIR / "train-labels-idx1-ubyte.gz")
    return images, labels, tuple(name.replace("/", "-") for name in FASHION_NAMES)  # "T-shirt/top"


def encoded_files(source: str, per_class: int, scale: int, paper: bool) -> list[tuple[str, bytes]]:
    """(relative path, PNG bytes) for the first `per_class` images of each class."""
    images, labels, names = source_arrays(source)
    files = []
    for label, name in enumerate(names):
        for i, index in enumerate(np.flatnonzero(labels == label)[:per_class]):
            picture = Image.fromarray(255 - images[index] if paper else images[index])
            if scale > 1:
                picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.BICUBIC)
            buffer = io.BytesIO()
            picture.save(buffer, "PNG")
            files.append((f"{name}/{name}_{i:04d}.png", buffer.getvalue()))
    return files


def write(files: list[tuple[str, bytes]], out: Path, as_zip: bool) -> Path:
    if as_zip:
        target = out.with_suffix(".zip")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files:
                archive.writestr(f"{out.name}/{name}", data)
        return target
    for name, data in files:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("digits", "fashion"), default="digits")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (with --zip: OUT.zip)")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--zip", action="store_true", help="write one zip instead of a folder")
    parser.add_argument("--scale", type=int, default=1, help="enlarge each image this many times")
    parser.add_argument("--paper", action="store_true", help="dark ink on white, as a scan")
    parser.add_argument("--load", action="store_true", help="then load it with core.data.folders and report")
    parser.add_argument("--size", type=int, default=28, help="image size for --load")
    parser.add_argument("--invert", choices=("never", "always", "auto"), default="never")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    target = write(encoded_files(args.source, args.per_class, args.scale, args.paper), args.out, args.zip)
    print(f"wrote {target} in {time.perf_counter() - start:.2f} s")
    if args.load:
        data = load_image_folder(target, ImageFolderOptions(image_size=args.size, invert=args.invert))
        report = data.report
        print(report.describe())
        print("classes:", ", ".join(f"{n} {tr}+{te}" for n, tr, te in
                                    zip(report.class_names, report.train_counts, report.test_counts)))
        print(f"x_train {data.x_train.shape} {data.x_train.dtype}, x_test {data.x_test.shape}, "
              f"inverted {report.inverted}, loaded in {report.seconds:.2f} s "
              f"({report.images_read / report.seconds:,.0f} images/s)")
        for line in report.skipped_summary():
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
