"""The lab notebook: a run as a Jupyter notebook that reproduces it in plain Keras, in the lab's four stages.

`lab_notebook(store, run_id)` writes the notebook (with `nbformat`): load and preprocess the data, define the
model as `keras.Sequential` code, train it with the run's recipe, seed, validation split and order of batches,
and estimate its performance (`accuracy_score`, the confusion matrix, the curves). Markdown cells say what each
stage does. Run from a clean kernel on a CPU with the run's library versions, it gives the run's test accuracy
(the tests execute it with `nbclient`). A run made on a file needs that file beside the notebook
(`LabNotebook.data_file`; `data_file_bytes` gives its content). `nbformat` is imported only when called.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ExportError
from core.export.keras_code import (
    PREDICT_BATCH_SIZE,
    DataFile,
    compile_code,
    data_code,
    fit_code,
    model_code,
    preprocess_code,
    split_code,
    training_steps,
)
from core.runs.status import RunState
from core.runs.store import RunStore

if TYPE_CHECKING:
    from core.data.dataset import Dataset


@dataclass(frozen=True)
class LabNotebook:
    """A notebook ready to download: its name, its bytes, and the data file it reads (None: it needs none)."""

    file_name: str
    content: bytes
    data_file: DataFile | None


def markdown_text(text: str) -> str:
    """User text (a label, a file name) as literal Markdown: no HTML, no emphasis, no links."""
    return re.sub(r"([\\`*_{}\[\]<>#|~!])", r"\\\1", html.unescape(str(text)).replace("\n", " "))


def lab_notebook(store: RunStore, run_id: str, dataset: "Dataset | None" = None) -> LabNotebook:
    """The lab notebook of run `run_id` (ExportError when the run has no recipe to write out).

    `dataset` is the run's dataset when the caller has it loaded; it is loaded here only for an image folder,
    whose class names are the folders'.
    """
    import nbformat
    from nbformat import v4

    spec = store.spec(run_id)
    if spec.architecture is None or spec.training is None:
        raise ExportError("this run is an uploaded model: it has no architecture and recipe to write out as a "
                          "notebook.")
    spec_file = store.spec_file(run_id)
    details = spec_file.get("details") if isinstance(spec_file.get("details"), dict) else {}
    shape = details.get("input_shape")
    classes = details.get("num_classes")
    train_images, test_images = details.get("train_images"), details.get("test_images")
    if not (isinstance(shape, list) and len(shape) == 3 and isinstance(classes, int)
            and isinstance(train_images, int) and isinstance(test_images, int)):  # a run made by hand: ask the data
        dataset = dataset or _load(store, spec.dataset)
        shape, classes = list(dataset.input_shape), dataset.num_classes
        train_images, test_images = len(dataset.x_train), len(dataset.x_test)
    input_shape = tuple(int(d) for d in shape)
    class_names = None
    if spec.dataset.kind == "images":
        dataset = dataset or _load(store, spec.dataset)
        class_names = list(dataset.class_names)
    data = data_code(spec.dataset, run_id, class_names)
    config, arch = spec.training, spec.architecture
    fitted, steps = training_steps(train_images, config)
    from core.training.loop import steps_per_execution

    per_call = steps_per_execution(arch, input_shape, classes, config.batch_size, steps)
    test = store.test_metrics(run_id)
    status = store.status(run_id)
    versions = spec_file.get("versions") if isinstance(spec_file.get("versions"), dict) else {}
    title = markdown_text(spec.label or run_id)
    run_accuracy = None if test is None else float(test["accuracy"])
    history = store.reader(run_id).snapshot().history()
    has_validation = config.validation_fraction > 0

    cells = [
        v4.new_markdown_cell(
            f"# {title}\n\n"
            f"ConvLab run `{run_id}`, written out as plain Keras in the four stages of the lab: **1** load and "
            "preprocess the data, **2** define the model, **3** train it, **4** estimate its performance on the "
            "test set.\n\n"
            + _promise(status.state, run_accuracy, test_images, status.message, _beyond_the_recipe(store, run_id))
            + (f"\n\n**Before you run it**: put `{data.data_file.name}` ({markdown_text(data.data_file.what)}) in "
               "the same folder as this notebook." if data.data_file else "")),
        v4.new_code_cell(
            "import math\nimport os\n\n"
            "os.environ.setdefault(\"TF_CPP_MIN_LOG_LEVEL\", \"2\")  # keep TensorFlow's start-up messages short\n\n"
            "import numpy as np\nimport keras\nimport tensorflow as tf\nfrom keras import layers\n"
            "import sklearn\n"
            "from sklearn.metrics import accuracy_score, confusion_matrix\n"
            "import pandas as pd\nimport plotly.graph_objects as go\nfrom plotly.subplots import make_subplots\n\n"
            f"RUN_VERSIONS = {_versions(versions)!r}  # what the run was trained with\n"
            "HERE = {\"tensorflow\": tf.__version__, \"keras\": keras.__version__, \"numpy\": np.__version__,\n"
            "        \"scikit-learn\": sklearn.__version__}\n"
            "for name, version in HERE.items():\n"
            "    if RUN_VERSIONS.get(name, version) != version:\n"
            "        print(f\"Note: the run used {name} {RUN_VERSIONS[name]}, this kernel has {version}; \"\n"
            "              \"the numbers may differ slightly.\")\n"
            "print(\"Versions:\", HERE)"),
        v4.new_markdown_cell(
            "## 1 · Load and preprocess the data\n\n"
            f"The run was trained on {markdown_text(data.description)}. As in the lab, each pixel is scaled from "
            "0..255 to a float32 in [0, 1], and images get a channel axis, (N, H, W) → (N, H, W, C), the shape "
            "a `Conv2D` layer expects."),
        v4.new_code_cell(data.load + "\n" + preprocess_code(data.known_uint8) + "\n"
                         "x_train, x_test = preprocess(x_train_raw), preprocess(x_test_raw)\n"
                         "y_train = y_train.reshape(-1).astype(np.int64)\n"
                         "y_test = y_test.reshape(-1).astype(np.int64)\n"
                         f"assert x_train.shape == {(train_images, *input_shape)!r} and "
                         f"x_test.shape == {(test_images, *input_shape)!r}, (\n"
                         "    f\"these are not the images the run was trained on: {x_train.shape}, {x_test.shape}\")\n"
                         "print(f\"train {x_train.shape} {x_train.dtype}, values {x_train.min()} to {x_train.max()}; \"\n"
                         "      f\"test {x_test.shape}; {len(class_names)} classes\")"),
        v4.new_markdown_cell(
            (f"{config.validation_fraction:.0%} of the training images are held out to validate the model after "
             f"each epoch, chosen by a shuffle seeded with {config.seed}: the same images ConvLab held out. "
             if has_validation else "The run held out no validation images. ")
            + "`keras.utils.set_random_seed` fixes Python's, NumPy's and TensorFlow's random numbers, so the "
            "order of the batches below is the run's."),
        v4.new_code_cell(f"SEED = {config.seed}\nkeras.utils.set_random_seed(SEED)\n\n" + split_code(
            config.validation_fraction) + "print(f\"fitting on {len(x_fit):,} images, validating on {len(x_val):,}\")"),
        v4.new_markdown_cell(
            "## 2 · Define the model\n\n"
            "The run's architecture, layer by layer (the names are ConvLab's). Each initializer and dropout layer "
            "has its own seed, as ConvLab numbers them, so the model starts from the run's weights."
            + (" The augmentation layers change each training batch at random and pass images unchanged when "
               "predicting." if arch.augmentation.enabled else "")),
        v4.new_code_cell(model_code(arch, input_shape, classes, config.seed) + "model.summary()"),
        v4.new_markdown_cell(
            "## 3 · Train the model\n\n"
            f"The run's recipe: {markdown_text(config.describe())} Batches come in a new order every epoch, "
            f"fixed by the seed ({steps} batches an epoch)."),
        v4.new_code_cell(f"BATCH_SIZE = {config.batch_size}\nEPOCHS = {config.epochs}\n"
                         + compile_code(config, per_call) + "\n" + fit_code(has_validation)),
        v4.new_markdown_cell("The curves: training accuracy far above validation accuracy means over-fitting; curves "
                             "still climbing at the last epoch mean more epochs would help."),
        v4.new_code_cell(
            f"RUN_HISTORY = {_rounded(history)!r}  # what ConvLab recorded, epoch by epoch\n"
            "figure = make_subplots(rows=1, cols=2, subplot_titles=(\"loss\", \"accuracy\"))\n"
            "for column, metric in enumerate((\"loss\", \"accuracy\"), start=1):\n"
            "    for key, dash in ((metric, \"solid\"), (\"val_\" + metric, \"dot\")):\n"
            "        if key in history.history:\n"
            "            epochs = list(range(1, len(history.history[key]) + 1))\n"
            "            figure.add_trace(go.Scatter(x=epochs, y=history.history[key], name=key,\n"
            "                                        line={\"dash\": dash}), row=1, col=column)\n"
            "figure.update_xaxes(title_text=\"epoch\")\n"
            "figure.update_layout(height=380, title=\"Training and validation curves\")\n"
            "figure.show()\n"
            "key = \"val_accuracy\" if \"val_accuracy\" in RUN_HISTORY else \"accuracy\"\n"
            "if len(RUN_HISTORY.get(key, [])) == EPOCHS:  # side by side with the run, epoch by epoch\n"
            "    display(pd.DataFrame({\"this notebook\": history.history[key], \"ConvLab's run\": RUN_HISTORY[key]},\n"
            "                         index=pd.RangeIndex(1, EPOCHS + 1, name=\"epoch\")).rename_axis(columns=key))"),
        v4.new_markdown_cell(
            "## 4 · Estimate its performance\n\n"
            "The model has never seen the test images. Its prediction for an image is the class with the highest "
            "probability (the argmax of the softmax output); the test accuracy is scikit-learn's `accuracy_score`."),
        v4.new_code_cell(
            f"RUN_TEST_ACCURACY = {run_accuracy!r}  # ConvLab's test accuracy for this run\n"
            f"probabilities = model.predict(x_test, batch_size={PREDICT_BATCH_SIZE}, verbose=0)\n"
            "y_pred = probabilities.argmax(axis=1)\n"
            "test_accuracy = accuracy_score(y_test, y_pred)\n"
            "print(f\"Test accuracy: {test_accuracy:.2%} ({int((y_pred == y_test).sum())} of {len(y_test)} test \"\n"
            "      \"images right)\")\n"
            "if RUN_TEST_ACCURACY is not None:\n"
            "    print(f\"ConvLab's run: {RUN_TEST_ACCURACY:.2%} ({round(RUN_TEST_ACCURACY * len(y_test))} of \"\n"
            "          f\"{len(y_test)})\")"),
        v4.new_markdown_cell("The confusion matrix: row *i*, column *j* counts the test images of class *i* that the "
                             "model called *j*; the diagonal holds the right answers."),
        v4.new_code_cell(
            "matrix = confusion_matrix(y_test, y_pred, labels=list(range(len(class_names))))\n"
            "heatmap = go.Figure(go.Heatmap(z=matrix, x=class_names, y=class_names, colorscale=\"Blues\",\n"
            "                               text=matrix, texttemplate=\"%{text}\"))\n"
            "heatmap.update_layout(title=\"Confusion matrix\", xaxis_title=\"predicted\", yaxis_title=\"true\",\n"
            "                      yaxis_autorange=\"reversed\", height=520, width=600)\n"
            "heatmap.show()\n"
            "pd.DataFrame(matrix, index=pd.Index(class_names, name=\"true\"), "
            "columns=pd.Index(class_names, name=\"predicted\"))"),
    ]
    notebook = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "convlab": {"run_id": run_id, "test_accuracy": run_accuracy},
    })
    nbformat.validate(notebook)
    return LabNotebook(f"{run_id}.ipynb", nbformat.writes(notebook).encode(), data.data_file)


def _beyond_the_recipe(store: RunStore, run_id: str) -> str:
    """What this run did that the notebook's plain recipe does not ("" when nothing): it then says so."""
    spec = store.spec(run_id)
    config = spec.training
    kinds = {str(event.get("kind")) for event in store.events(run_id)}
    parts = []
    if spec.parent:
        parts.append(f"it continues run `{spec.parent}` from that run's final weights")
    if kinds & {"learning_rate", "epochs"}:
        parts.append("its course was changed by hand while it trained")
    if config is not None and config.watches_validation:
        parts.append("its recipe stops early or reduces the learning rate on a plateau")
    return "; ".join(parts)


def _promise(state: RunState, accuracy: float | None, test_images: int, message: str, beyond: str = "") -> str:
    if beyond:
        return (f"This run went beyond its recipe ({beyond}): the notebook trains the recipe as planned, from "
                "the start, so its accuracy is that of the plain recipe, not of this run (`python -m core "
                "--from-run` repeats the run itself).")
    if state is RunState.FINISHED and accuracy is not None:
        return (f"ConvLab's run reached a **test accuracy of {accuracy:.2%}** ({round(accuracy * test_images)} of "
                f"{test_images:,} test images). Run this notebook from a fresh kernel (*Restart & Run All*) on a CPU, "
                "with the library versions printed below, and it trains the same model and gives the same accuracy: "
                "the seed fixes the starting weights, the validation split, dropout, augmentation and the order of "
                "the batches.")
    return (f"This run ended **{state.value}** ({markdown_text(message)}): the notebook trains the whole recipe, so "
            "its accuracy is that of a complete run, not of this one.")


def _versions(versions: dict[str, Any]) -> dict[str, str]:
    keys = {"tensorflow-cpu": "tensorflow", "tensorflow": "tensorflow", "keras": "keras", "numpy": "numpy",
            "scikit-learn": "scikit-learn"}
    return {keys[name]: str(value) for name, value in versions.items() if name in keys}


def _rounded(history: dict[str, list[float]]) -> dict[str, list[float]]:
    return {key: [round(float(value), 6) for value in values] for key, values in history.items()}


def _load(store: RunStore, ref) -> "Dataset":
    from core.data.registry import load_ref

    return load_ref(ref, store.stored_dataset_path)


def data_file_bytes(store: RunStore, data_file: DataFile, dataset: "Dataset | None" = None) -> bytes:
    """What `data_file` holds: a shipped or uploaded file as it is; for "arrays", the run's images as ConvLab
    decoded them (uint8 0..255, `dataset` loaded from the run's reference when not given)."""
    if data_file.kind == "asset":
        return Path(data_file.source).read_bytes()
    if data_file.kind == "stored":
        path = store.stored_dataset_path(data_file.source, ".npz")
        if not path.exists():
            raise ExportError("the uploaded dataset is no longer in the run store (it was deleted); put the file you "
                              "uploaded beside the notebook.")
        return path.read_bytes()
    if data_file.kind == "file":
        try:
            return Path(data_file.source).read_bytes()
        except OSError as error:
            raise ExportError(f"{data_file.name} cannot be read ({error.strerror or error}).") from None
    if dataset is None:
        raise ExportError("the run's images must be loaded to write them out.")
    return arrays_npz(dataset)


def arrays_npz(dataset: "Dataset") -> bytes:
    """A Keras-layout `.npz` of the dataset's images as uint8 0..255 (what the loader decoded, exactly: a float32
    pixel u/255 times 255, rounded, is u again) and its labels."""
    raw = dataset.raw_train
    if raw is not None and not raw.dtype.startswith(("uint", "int")):
        raise ExportError(f"the run's images were {raw.dtype} values, not 0..255 integers: they cannot be written out "
                          "as pixels for the notebook.")
    buffer = io.BytesIO()
    as_pixels = [np.rint(np.asarray(x, dtype=np.float32) * np.float32(255.0)).astype(np.uint8)
                 for x in (dataset.x_train, dataset.x_test)]
    if dataset.input_shape[-1] == 1:
        as_pixels = [x[..., 0] for x in as_pixels]
    np.savez_compressed(buffer, x_train=as_pixels[0], y_train=np.asarray(dataset.y_train),
                        x_test=as_pixels[1], y_test=np.asarray(dataset.y_test))
    return buffer.getvalue()


def write_notebook(store: RunStore, run_id: str, folder: Path, dataset: "Dataset | None" = None) -> list[Path]:
    """Write the notebook, and the data file it reads, into `folder`; returns their paths."""
    notebook = lab_notebook(store, run_id, dataset)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / notebook.file_name]
    written[0].write_bytes(notebook.content)
    if notebook.data_file is not None:
        if notebook.data_file.kind == "arrays" and dataset is None:
            dataset = _load(store, store.spec(run_id).dataset)
        target = folder / notebook.data_file.name
        target.write_bytes(data_file_bytes(store, notebook.data_file, dataset))
        written.append(target)
    return written
