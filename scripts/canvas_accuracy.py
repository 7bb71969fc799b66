"""Acceptance check: does a digit drawn on the canvas score as well as the test set?

Trains the `fast` architecture with the `fast` training preset on the real
MNIST sample, scores it on the official test set, then re-draws test digits
onto a 280x280 transparent RGBA canvas the way a person would (large, off
centre, thick hard-edged strokes, ink in the alpha channel) and classifies
them through `core.data.drawing.preprocess_drawing` and `core.evaluation.inference.Predictor`,
exactly as the dashboard does. Exits with status 1 when the canvas accuracy
is more than `--max-gap` points below the accuracy on the same digits as
they are in the test set.

    python3 scripts/canvas_accuracy.py [--limit 10000] [--pen thicken|fixed] [--data PATH] [--seed 0]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist-10k.npz"
CANVAS = 280


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="Keras-layout MNIST .npz (default: ../shared/data/mnist-10k.npz)")
    parser.add_argument("--limit", type=int, default=10000,
                        help="how many test digits to re-draw (0 or more than 10,000: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed for training and for the re-drawing")
    parser.add_argument("--epochs", type=int, default=None, help="override the fast preset's epochs")
    parser.add_argument("--min-span", type=int, default=120, help="smallest drawn digit height/width, px")
    parser.add_argument("--max-span", type=int, default=240, help="largest drawn digit height/width, px")
    parser.add_argument("--pen", choices=("thicken", "fixed"), default="thicken",
                        help="thicken: the digit's own strokes widened by a round pen of random size; "
                        "fixed: the strokes retraced with one pen width (--pen-width), as on the canvas")
    parser.add_argument("--pen-width", type=int, default=19,
                        help="pen width in px for --pen fixed (the app's default is about 1/15 of 280)")
    parser.add_argument("--max-gap", type=float, default=2.0, help="largest accepted accuracy gap, points")
    args = parser.parse_args(argv)
    if not 8 <= args.min_span <= args.max_span <= CANVAS - 20:
        parser.error(f"need 8 <= --min-span <= --max-span <= {CANVAS - 20}")
    return args


def disk(radius: int) -> np.ndarray:
    """A round pen tip of the given radius (a boolean footprint)."""
    y, x = np.mgrid[-radius: radius + 1, -radius: radius + 1]
    return x * x + y * y <= radius * radius + radius


def redraw(digit: np.ndarray, rng: np.random.Generator, min_span: int, max_span: int,
           pen: str = "thicken", pen_width: int = 19) -> np.ndarray:
    """One 28x28 digit in [0, 1] as a person might draw it on the canvas: RGBA uint8 (280, 280, 4).

    The digit's ink is cropped, scaled so its longer side spans a random
    `min_span`..`max_span` px and given a pen's hard, slightly anti-aliased
    edge. With `pen="thicken"` its strokes are widened by a round pen of
    random size (up to ~6 % of the digit's size); with `pen="fixed"` they are
    retraced along their middle with a round pen `pen_width` px wide. It is
    placed at a random spot on the canvas. The ink goes in the alpha channel;
    RGB stays black, as the canvas returns black strokes on a transparent
    background.
    """
    mask = digit > 0.05
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = digit[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    span = int(rng.integers(min_span, max_span + 1))
    scale = span / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    big = np.asarray(Image.fromarray(np.rint(crop * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR),
                     dtype=np.float32) / 255.0
    if pen == "thicken":
        radius = int(rng.integers(1, max(2, span // 32) + 1))
        big = ndimage.grey_dilation(np.pad(big, radius + 2), footprint=disk(radius))
        alpha = np.clip((big - 0.5) / 0.25 + 0.5, 0.0, 1.0)  # hard edge with a ~2 px anti-aliased rim
    else:
        radius = max(1, pen_width // 2)
        strokes = np.pad(big, radius + 2) > 0.5
        depth = ndimage.distance_transform_edt(strokes)
        middle = strokes & (depth > 1) & (depth >= ndimage.maximum_filter(depth, size=3) - 0.75)
        retraced = ndimage.binary_dilation(middle if middle.any() else strokes, structure=disk(radius))
        alpha = np.clip(ndimage.gaussian_filter(retraced.astype(np.float32), 0.7), 0.0, 1.0)
    height, width = alpha.shape
    top = int(rng.integers(0, max(1, CANVAS - height + 1)))
    left = int(rng.integers(0, max(1, CANVAS - width + 1)))
    alpha = alpha[: CANVAS - top, : CANVAS - left]
    rgba = np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8)
    rgba[top: top + alpha.shape[0], left: left + alpha.shape[1], 3] = np.rint(alpha * 255).astype(np.uint8)
    return rgba


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.exists():
        print(f"error: MNIST file {args.data} not found. Pass --data PATH to a Keras-layout mnist .npz "
              "(x_train, y_train, x_test, y_test).", file=sys.stderr)
        return 2

    from core.data.drawing import preprocess_drawing
    from core.data.registry import load_file
    from core.evaluation.inference import Predictor
    from core.evaluation.metrics import evaluate
    from core.model.architecture import PRESETS
    from core.runs.status import RunState
    from core.training.config import TRAINING_PRESETS, override
    from core.training.loop import train

    dataset = load_file(args.data)
    config = override(TRAINING_PRESETS["fast"], seed=args.seed, epochs=args.epochs)
    print(f"data: {dataset.summary_line()}", flush=True)
    pen = "strokes thickened" if args.pen == "thicken" else f"a fixed {args.pen_width} px pen"
    print(f"re-drawing: {args.min_span}-{args.max_span} px tall or wide, {pen}, at random places "
          f"on a {CANVAS}x{CANVAS} transparent canvas", flush=True)
    print(f"training: fast architecture, fast preset {config.to_dict()}", flush=True)

    class Report:
        """Prints each epoch as it ends (a training sink)."""

        def on_batch(self, record: dict, progress: object) -> None:
            pass

        def on_epoch(self, record: dict) -> None:
            print(f"  epoch {record['epoch']}/{config.epochs}: loss {record['loss']:.4f}, "
                  f"val_accuracy {record.get('val_accuracy', float('nan')):.4f} ({record['epoch_s']:.1f} s)",
                  flush=True)

    started = time.perf_counter()
    result = train(PRESETS["fast"], dataset, config, sink=Report())
    if result.outcome is not RunState.FINISHED:
        print(f"error: training did not finish: {result.message}", file=sys.stderr)
        return 2
    print(f"trained in {time.perf_counter() - started:.1f} s", flush=True)
    model = result.model

    test = evaluate(model, dataset.x_test, dataset.y_test, dataset.class_names)
    print(f"test accuracy (all {len(dataset.y_test):,} test digits): {test.accuracy:.2%}", flush=True)

    rng = np.random.default_rng(args.seed)
    count = len(dataset.x_test) if args.limit <= 0 else min(args.limit, len(dataset.x_test))
    chosen = np.sort(rng.permutation(len(dataset.x_test))[:count])
    predictor = Predictor(model)
    inputs = np.zeros((count, 28, 28, 1), dtype=np.float32)
    empty = 0
    every = max(500, count // 10)
    started = time.perf_counter()
    for n, index in enumerate(chosen, start=1):
        rgba = redraw(dataset.x_test[index, :, :, 0], rng, args.min_span, args.max_span, args.pen, args.pen_width)
        steps = preprocess_drawing(rgba)
        if steps is None:
            empty += 1  # counted as wrong: a blank input
        else:
            inputs[n - 1] = steps.model_input[0]
        if n % every == 0 or n == count:
            print(f"  re-drawn and preprocessed {n:,}/{count:,} ({time.perf_counter() - started:.1f} s)", flush=True)
    probabilities = np.concatenate([predictor(inputs[i: i + 500]) for i in range(0, count, 500)])
    labels = dataset.y_test[chosen]
    canvas_accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    same_digits = float(test.correct[chosen].mean())
    gap = (same_digits - canvas_accuracy) * 100
    print()
    print(f"model test accuracy, all {len(dataset.y_test):,} digits: {test.accuracy:.2%}")
    print(f"model test accuracy, the {count:,} re-drawn digits as in the test set: {same_digits:.2%}")
    print(f"canvas-redrawn accuracy, the same {count:,} digits: {canvas_accuracy:.2%}"
          + (f" ({empty} read as empty)" if empty else ""))
    print(f"difference: {gap:+.2f} points (test minus canvas; vs all test digits: "
          f"{(test.accuracy - canvas_accuracy) * 100:+.2f}); accepted up to {args.max_gap:.1f}")
    if gap > args.max_gap:
        print(f"FAIL: the canvas loses {gap:.2f} points, more than {args.max_gap:.1f}.")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
