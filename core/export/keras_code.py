"""A run written out as plain Keras and NumPy code a student can read: its data, its model and its recipe.

Each function returns Python source (no `import core` in it) that does what ConvLab did for the run, step for
step, so that the notebook (`core.export.notebook`) trains bit-for-bit the same model on a CPU:

    data_code       load the run's images (the same source, test split, scaling and channel axis)
    split_code      the validation hold-out (`core.data.splits.split_validation`)
    model_code      the architecture as `keras.Sequential` (`core.model.build.build_model`, seeds included)
    compile_code    the optimizer and its schedule (`core.training.config.make_optimizer`, `compile_model`)
    fit_code        the batches in ConvLab's order and `fit`, epoch by epoch (`core.training.loop.train`)

The tests execute this code beside ConvLab's own and compare weights, batches and metrics, so that the two
cannot drift apart unseen. Strings that come from users (file and class names) enter as `repr` literals.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from core.data.dataset import DatasetRef
from core.errors import ExportError
from core.model.architecture import Architecture
from core.model.augment import FILL_MODE, _flip_mode
from core.training.config import TrainingConfig

VALIDATION_BATCH_SIZE = 256  # core.training.loop.train's validation_batch_size
PREDICT_BATCH_SIZE = 512  # core.evaluation.metrics.predict_probabilities
PREFETCH = 2  # core.training.loop.batches


@dataclass(frozen=True)
class DataFile:
    """A file the notebook reads, which must sit beside it: where ConvLab finds it, and what the notebook calls it.

    `kind` is "asset" (a file shipped with ConvLab: `source` is its path), "stored" (an upload in the run store:
    `source` is its SHA-256), "file" (a file on this machine that a CLI run read: `source` is its path) or
    "arrays" (the run's images as ConvLab decoded them, written on demand from the loaded dataset).
    """

    name: str
    kind: str
    source: str
    what: str  # in words, for the notebook and the page


@dataclass(frozen=True)
class DataCode:
    """Stage 1 as code: the source loading the raw arrays, the words that say where they come from, and the file
    (if any) that must sit beside the notebook."""

    load: str
    description: str
    data_file: DataFile | None
    known_uint8: bool  # the raw pixels are integers 0..255 for sure (every source but an uploaded .npz)


def safe_file_name(name: str, suffix: str) -> str:
    """A file name that is the same on every system and harmless in code and Markdown: letters, digits, . _ -."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._") or "data"
    stem = stem[:80]
    return stem if stem.lower().endswith(suffix) else stem + suffix


def _npz_load(file_name: str) -> str:
    return (f"with np.load({file_name!r}, allow_pickle=False) as data:\n"
            "    x_train_raw, y_train = data[\"x_train\"], data[\"y_train\"]\n"
            "    x_test_raw, y_test = data[\"x_test\"], data[\"y_test\"]\n")


_IDX_READER = '''def read_idx(path):
    """An IDX file (MNIST's format), gzipped or not, as a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as file:
        data = file.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
'''


def data_code(ref: DatasetRef, run_id: str, class_names: Sequence[str] | None = None) -> DataCode:
    """How the notebook loads the raw arrays x_train_raw, y_train, x_test_raw, y_test and `class_names`.

    Built-in datasets come from where ConvLab takes them (Keras' cache, scikit-learn, Debian's files, or the
    shipped `mnist-10k.npz` beside the notebook); an uploaded or local `.npz` is read as it is, beside the
    notebook. Image folders and IDX folders are read from `<run>-data.npz`: the pixels as ConvLab decoded them
    (Pillow's resizing, padding and inversion are not repeated, so the numbers cannot drift). `class_names`
    are needed for image folders only.
    """
    names = None
    if ref.kind == "builtin":
        from core.data.registry import CIFAR10_NAMES, DIGIT_NAMES, FASHION_NAMES, SHIPPED_MNIST

        names = {"mnist": DIGIT_NAMES, "mnist-10k": DIGIT_NAMES, "digits-8x8": DIGIT_NAMES,
                 "fashion-mnist": FASHION_NAMES, "cifar10": CIFAR10_NAMES}.get(ref.name)
        if names is None:
            raise ExportError(f"the built-in dataset '{ref.name}' has no notebook code.")
        named = f"class_names = {list(names)!r}\n"
        if ref.name == "mnist":
            return DataCode("# Keras' mnist.npz: downloaded once, then kept in ~/.keras/datasets (the file ConvLab read)\n"
                            "(x_train_raw, y_train), (x_test_raw, y_test) = keras.datasets.mnist.load_data()\n" + named,
                            "full MNIST (60,000 training and 10,000 test digits), from Keras' `mnist.npz`", None, True)
        if ref.name == "mnist-10k":
            asset = DataFile("mnist-10k.npz", "asset", str(SHIPPED_MNIST),
                             "ConvLab's offline MNIST: the first 10,000 official training digits and the 10,000 "
                             "official test digits")
            return DataCode("# mnist-10k.npz, shipped with ConvLab, must sit beside this notebook\n"
                            + _npz_load(asset.name) + named,
                            "ConvLab's offline MNIST sample (`mnist-10k.npz`: the first 10,000 official training "
                            "digits and the official 10,000 test digits)", asset, True)
        if ref.name == "digits-8x8":
            return DataCode(
                "from sklearn.datasets import load_digits\n\n"
                "digits = load_digits()  # scikit-learn's 1,797 8x8 digits, pixel values 0..16\n"
                "images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)  # as 0..255, like MNIST\n"
                "labels = digits.target.astype(np.int64)\n"
                "# ConvLab's test split: 20% of each class, drawn at random with seed 0\n"
                "rng = np.random.default_rng(0)\n"
                "is_test = np.zeros(len(labels), dtype=bool)\n"
                "for label in np.unique(labels):\n"
                "    members = rng.permutation(np.flatnonzero(labels == label))\n"
                "    n_test = min(max(1, int(round(len(members) * 0.2))), len(members) - 1)\n"
                "    is_test[members[:n_test]] = True\n"
                "x_train_raw, y_train = images[~is_test], labels[~is_test]\n"
                "x_test_raw, y_test = images[is_test], labels[is_test]\n" + named,
                "scikit-learn's 8x8 digits (`load_digits`), split 80/20 in each class with seed 0", None, True)
        if ref.name == "fashion-mnist":
            return DataCode(
                "import gzip\nimport struct\n\n\n" + _IDX_READER
                + "\n\nDEBIAN = \"/usr/share/datasets/fashion-mnist\"  # Debian's dataset-fashion-mnist\n"
                "if os.path.isdir(DEBIAN):\n"
                "    x_train_raw = read_idx(f\"{DEBIAN}/train-images-idx3-ubyte.gz\")\n"
                "    y_train = read_idx(f\"{DEBIAN}/train-labels-idx1-ubyte.gz\")\n"
                "    x_test_raw = read_idx(f\"{DEBIAN}/t10k-images-idx3-ubyte.gz\")\n"
                "    y_test = read_idx(f\"{DEBIAN}/t10k-labels-idx1-ubyte.gz\")\n"
                "else:  # the same official files, through Keras' download\n"
                "    (x_train_raw, y_train), (x_test_raw, y_test) = keras.datasets.fashion_mnist.load_data()\n"
                + named,
                "Fashion-MNIST (60,000 training and 10,000 test images), from Debian's IDX files or Keras' "
                "download of the same files", None, True)
        return DataCode("# CIFAR-10 through Keras (the official archive, downloaded once into ~/.keras/datasets)\n"
                        "(x_train_raw, y_train), (x_test_raw, y_test) = keras.datasets.cifar10.load_data()\n" + named,
                        "CIFAR-10 (50,000 training and 10,000 test colour photos), through Keras' loader of the "
                        "official archive", None, True)
    if ref.kind == "stored":
        file_name = safe_file_name(str(ref.option_dict.get("file_name") or "upload.npz"), ".npz")
        stored = DataFile(file_name, "stored", ref.name, "the .npz file uploaded to ConvLab")
        return DataCode(f"# {file_name}, the file uploaded to ConvLab, must sit beside this notebook\n"
                        + _npz_load(file_name), f"the uploaded file `{file_name}`", stored, False)
    if ref.kind == "file" and ref.name.lower().endswith(".npz"):
        file_name = safe_file_name(ref.name, ".npz")
        local = DataFile(file_name, "file", ref.name, "the .npz file the run was trained on")
        return DataCode(f"# {file_name}, the .npz file the run was trained on, must sit beside this notebook\n"
                        + _npz_load(file_name), f"the file `{file_name}`", local, False)
    if ref.kind in ("images", "file"):
        if ref.kind == "images" and class_names is None:
            raise ExportError("the class names of an image folder come from the loaded dataset; load it first.")
        file_name = f"{run_id}-data.npz"
        what = ("the pictures as ConvLab decoded them (fitted, padded and inverted as the run's options say)"
                if ref.kind == "images" else "the images of the IDX files ConvLab read")
        arrays = DataFile(file_name, "arrays", ref.name, what)
        named = (f"class_names = {list(class_names)!r}\n" if class_names is not None
                 else "class_names = [str(label) for label in range(int(y_train.max()) + 1)]\n")
        return DataCode(f"# {file_name}: {what}; it must sit beside this notebook\n"
                        + _npz_load(file_name) + named, f"`{file_name}`: {what}", arrays, True)
    raise ExportError(f"datasets of kind '{ref.kind}' have no notebook code.")


def preprocess_code(known_uint8: bool) -> str:
    """`core.data.dataset.preprocess_images` as the notebook writes it (the float branch only where needed)."""
    body = ('def preprocess(images):\n'
            '    """Pixels 0..255 to float32 in [0, 1], with a channel axis: (N, H, W) -> (N, H, W, 1)."""\n'
            '    if images.ndim == 3:\n'
            '        images = images[..., np.newaxis]\n')
    if not known_uint8:
        body += ('    if np.issubdtype(images.dtype, np.floating) and images.size and images.max() <= 1.0:\n'
                 '        return images.astype("float32")  # already in [0, 1]: only cast\n')
    return body + '    return images.astype("float32") / 255.0\n'


def validation_size(count: int, fraction: float) -> int:
    """How many images `core.data.splits.split_validation` holds out of `count`."""
    n_val = int(round(count * fraction))
    return 1 if fraction > 0 and n_val == 0 else n_val


def split_code(fraction: float) -> str:
    """The seeded validation hold-out, as `core.data.splits.split_validation` draws it."""
    if fraction <= 0:
        return ("x_fit, y_fit = x_train, y_train  # no validation images: the run held none out\n"
                "x_val, y_val = x_train[:0], y_train[:0]\n")
    return (f"VALIDATION_FRACTION = {float(fraction)!r}\n"
            "n_val = max(1, int(round(len(x_train) * VALIDATION_FRACTION)))\n"
            "order = np.random.default_rng(SEED).permutation(len(x_train))  # a seeded shuffle of the indices\n"
            "val_idx, fit_idx = np.sort(order[:n_val]), np.sort(order[n_val:])\n"
            "x_fit, y_fit = x_train[fit_idx], y_train[fit_idx]\n"
            "x_val, y_val = x_train[val_idx], y_train[val_idx]\n")


def model_code(arch: Architecture, input_shape: tuple[int, int, int], num_classes: int, seed: int) -> str:
    """`build_model(arch, input_shape, num_classes, seed)` as a `keras.Sequential` (the same layers, names and seeds)."""
    seeds = iter(range(seed * 1000, seed * 1000 + 1000))
    lines = [f"    keras.Input(shape={tuple(int(d) for d in input_shape)!r}, name=\"image\"),"]
    aug = arch.augmentation
    if aug.enabled:
        aug_seeds = iter(range(seed * 10 + 1, seed * 10 + 10))
        lines.append("    # augmentation: random changes to each training batch (identity when predicting)")
        if aug.horizontal_flip or aug.vertical_flip:
            lines.append(f"    layers.RandomFlip({_flip_mode(aug)!r}, seed={next(aug_seeds)}, name=\"augment_flip\"),")
        if aug.rotation:
            lines.append(f"    layers.RandomRotation({float(aug.rotation)!r}, fill_mode={FILL_MODE!r}, "
                         f"seed={next(aug_seeds)}, name=\"augment_rotation\"),")
        if aug.zoom:
            lines.append(f"    layers.RandomZoom({float(aug.zoom)!r}, fill_mode={FILL_MODE!r}, seed={next(aug_seeds)}, "
                         "name=\"augment_zoom\"),")
        if aug.shift:
            lines.append(f"    layers.RandomTranslation({float(aug.shift)!r}, {float(aug.shift)!r}, "
                         f"fill_mode={FILL_MODE!r}, seed={next(aug_seeds)}, name=\"augment_shift\"),")
    for number, block in enumerate(arch.conv_blocks, start=1):
        lines.append(f"    layers.Conv2D({block.filters}, {block.kernel_size}, padding={block.padding!r}, "
                     f"kernel_initializer=keras.initializers.HeUniform(seed={next(seeds)}), name=\"conv{number}\"),")
        if block.batch_norm:
            lines.append(f"    layers.BatchNormalization(name=\"conv{number}_bn\"),")
        lines.append(f"    layers.Activation({block.activation!r}, name=\"conv{number}_{block.activation}\"),")
        if block.pooling == "max":
            lines.append(f"    layers.MaxPooling2D({block.pool_size}, name=\"pool{number}\"),")
        elif block.pooling == "average":
            lines.append(f"    layers.AveragePooling2D({block.pool_size}, name=\"pool{number}\"),")
        if block.dropout > 0:
            lines.append(f"    layers.Dropout({float(block.dropout)!r}, seed={next(seeds)}, "
                         f"name=\"conv{number}_dropout\"),")
    lines.append("    layers.Flatten(name=\"flatten\"),")
    for number, layer in enumerate(arch.dense_layers, start=1):
        lines.append(f"    layers.Dense({layer.units}, activation={layer.activation!r}, "
                     f"kernel_initializer=keras.initializers.HeUniform(seed={next(seeds)}), name=\"dense{number}\"),")
        if layer.dropout > 0:
            lines.append(f"    layers.Dropout({float(layer.dropout)!r}, seed={next(seeds)}, "
                         f"name=\"dense{number}_dropout\"),")
    lines.append(f"    layers.Dense({num_classes}, activation=\"softmax\", "
                 f"kernel_initializer=keras.initializers.GlorotUniform(seed={next(seeds)}), name=\"output\"),")
    return "model = keras.Sequential([\n" + "\n".join(lines) + f"\n], name={arch.name!r})\n"


def compile_code(config: TrainingConfig, steps_per_execution: int) -> str:
    """The optimizer, its learning-rate schedule and `compile`, as `core.training.config.compile_model` does it."""
    rate = repr(float(config.learning_rate))
    code = "steps_per_epoch = math.ceil(len(x_fit) / BATCH_SIZE)\ntotal_steps = steps_per_epoch * EPOCHS\n"
    if config.schedule == "constant":
        code += f"learning_rate = {rate}\n"
    elif config.schedule == "cosine":
        code += (f"# from {rate} down to 0 along a cosine, over the whole training\n"
                 f"learning_rate = keras.optimizers.schedules.CosineDecay({rate}, decay_steps=max(1, total_steps))\n")
    else:
        code += ("# rising from 0 over the first epoch, then down to 0 along a cosine\n"
                 "warmup_steps = max(1, min(steps_per_epoch, total_steps - 1))\n"
                 "learning_rate = keras.optimizers.schedules.CosineDecay(\n"
                 f"    0.0, decay_steps=max(1, total_steps - warmup_steps), warmup_target={rate}, "
                 "warmup_steps=warmup_steps)\n")
    momentum = repr(float(config.momentum))
    optimizer = {"sgd": f"keras.optimizers.SGD(learning_rate=learning_rate, momentum={momentum})",
                 "adam": "keras.optimizers.Adam(learning_rate=learning_rate)",
                 "rmsprop": f"keras.optimizers.RMSprop(learning_rate=learning_rate, momentum={momentum})"}
    return code + ("model.compile(\n"
                   f"    optimizer={optimizer[config.optimizer]},\n"
                   "    loss=\"sparse_categorical_crossentropy\",\n"
                   "    metrics=[\"accuracy\"],\n"
                   f"    steps_per_execution={int(steps_per_execution)},  # batches per call from Python: "
                   "faster on a CPU, same result\n"
                   ")\n")


def fit_code(has_validation: bool) -> str:
    """The batches in ConvLab's order (`core.training.batches`) and `fit`, epoch by epoch, as
    `core.training.loop.train` runs it."""
    validation = (f"        validation_data=(x_val, y_val), validation_batch_size={VALIDATION_BATCH_SIZE},\n"
                  if has_validation else "")
    return ("history = keras.callbacks.History()\n"
            "history.history = {}\n"
            "for epoch in range(EPOCHS):\n"
            "    # epoch e visits the images in the order numpy draws from the seed [SEED, e]: a new order every epoch,\n"
            "    # fixed by the seed (so a training can be paused and resumed at any batch)\n"
            "    order = np.random.default_rng([SEED, epoch]).permutation(len(x_fit))\n"
            "    train_batches = (\n"
            "        tf.data.Dataset.from_tensor_slices((x_fit[order], y_fit[order]))\n"
            f"        .batch(BATCH_SIZE)\n        .prefetch({PREFETCH})\n    )\n"
            "    logs = model.fit(\n"
            "        train_batches, initial_epoch=epoch, epochs=epoch + 1,\n"
            f"{validation}"
            "        shuffle=False,  # the batches above are in their order already\n"
            "        verbose=2,  # one line per epoch\n"
            "    ).history\n"
            "    for key, values in logs.items():\n"
            "        history.history.setdefault(key, []).extend(values)\n")


def training_steps(train_images: int, config: TrainingConfig) -> tuple[int, int]:
    """(images fitted, batches per epoch) for a run with `train_images` training images."""
    fitted = train_images - validation_size(train_images, config.validation_fraction)
    return fitted, math.ceil(fitted / config.batch_size)
