"""The lab notebook: executed with nbclient in a fresh kernel, it gives the run's test accuracy, bit for bit."""

from __future__ import annotations

import io
import json
import re

import nbformat
import numpy as np
import pytest

from core.data.dataset import DatasetRef, make_dataset
from core.data.folders import path_ref, ref_options
from core.data.registry import load_file
from core.errors import ExportError
from core.export.notebook import arrays_npz, data_file_bytes, lab_notebook, markdown_text, write_notebook
from core.model.architecture import PRESETS
from core.runs.details import run_details
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.training.config import TRAINING_PRESETS
from tests.conftest import bars_arrays


def execute(path, folder):
    """Run the notebook from a clean kernel, as Jupyter's Restart & Run All does; returns it with its outputs."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def printed(notebook) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream" and output.name == "stdout")


def test_run_from_a_clean_kernel_it_trains_the_same_model_to_the_same_test_accuracy(rich_run, tmp_path):
    store, run_id = rich_run
    (path,) = write_notebook(store, run_id, tmp_path)  # the 8x8 digits need no file beside it
    notebook = execute(path, tmp_path)
    text = printed(notebook)
    right, total = map(int, re.search(r"Test accuracy: [\d.]+% \((\d+) of (\d+) test images right\)", text).groups())
    accuracy = store.test_metrics(run_id)["accuracy"]
    assert total == 359 and right == round(accuracy * total), text
    # and epoch by epoch: Keras prints each epoch's validation accuracy to 4 places, as the run recorded them
    printed_val = [float(v) for v in re.findall(r"val_accuracy: ([\d.]+)", text)]
    assert printed_val == [round(row["val_accuracy"], 4) for row in store.epochs(run_id)]
    assert not any(output.output_type == "error" for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs)


def test_the_notebook_is_the_labs_four_stages_in_plain_keras(rich_run):
    store, run_id = rich_run
    made = lab_notebook(store, run_id)
    notebook = nbformat.reads(made.content.decode(), as_version=4)
    nbformat.validate(notebook)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert not re.search(r"^\s*(import core|from core)", code, re.M)  # nothing from ConvLab
    for stage in ("## 1 · Load and preprocess the data", "## 2 · Define the model", "## 3 · Train the model",
                  "## 4 · Estimate its performance"):
        assert stage in markdown
    for piece in ("keras.Sequential", "accuracy_score(y_test, y_pred)", "confusion_matrix", "set_random_seed(SEED)",
                  "np.random.default_rng([SEED, epoch]).permutation(len(x_fit))", "RandomTranslation"):
        assert piece in code
    assert "<b>" not in markdown and "\\<b\\>label\\</b\\>" in markdown  # the label's markup stays text
    assert made.file_name == f"{run_id}.ipynb" and made.data_file is None
    assert json.loads(made.content)["metadata"]["convlab"]["run_id"] == run_id


def test_an_uploaded_datasets_notebook_reads_the_upload_beside_it(export_store, tmp_path):
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(tmp_path / "bars.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = (tmp_path / "bars.npz").read_bytes()
    digest, _ = export_store.store_dataset_file(data, "my bars!.npz", ".npz")
    ref = DatasetRef.of("stored", digest, {"file_name": "my bars!.npz", "suffix": ".npz"})
    dataset = load_file(tmp_path / "bars.npz")
    run_id = export_store.create(RunSpec(ref, PRESETS["lab"], TRAINING_PRESETS["lab"]), run_details(dataset, 1),
                                 state=RunState.FINISHED)
    made = lab_notebook(export_store, run_id)
    assert made.data_file.name == "my_bars_.npz" and made.data_file.kind == "stored"
    assert data_file_bytes(export_store, made.data_file) == data
    assert "np.load('my_bars_.npz', allow_pickle=False)" in made.content.decode().replace('\\"', '"')
    export_store.uploads.remove(digest, ".npz")
    with pytest.raises(ExportError, match="no longer in the run store"):
        data_file_bytes(export_store, made.data_file)


def test_an_image_folders_notebook_starts_from_the_pixels_convlab_decoded(shapes, export_store, tmp_path,
                                                                          monkeypatch):
    dataset = load_file(shapes)
    assert dataset.ref == path_ref(shapes, ref_options(dataset.ref))  # a folder of class folders
    run_id = export_store.create(RunSpec(dataset.ref, PRESETS["lab"], TRAINING_PRESETS["lab"]), run_details(dataset, 1),
                                 state=RunState.FINISHED)
    paths = write_notebook(export_store, run_id, tmp_path, dataset)
    assert [p.name for p in paths] == [f"{run_id}.ipynb", f"{run_id}-data.npz"]
    notebook = nbformat.read(paths[0], as_version=4)
    load = notebook.cells[3].source
    namespace = {"np": np}
    monkeypatch.chdir(tmp_path)
    exec(load.split("x_train, x_test = preprocess")[0] +  # noqa: S102 - the notebook's own stage 1
         "x_train, x_test = preprocess(x_train_raw), preprocess(x_test_raw)", namespace)
    np.testing.assert_array_equal(namespace["x_train"], dataset.x_train)  # the very same float32 bits
    np.testing.assert_array_equal(namespace["x_test"], dataset.x_test)
    assert namespace["class_names"] == list(dataset.class_names)


def test_arrays_written_as_pixels_come_back_exactly():
    raw = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)
    dataset = make_dataset("all", raw, np.array([0, 1, 0, 1]), raw, np.array([1, 0, 1, 0]), source="", origin="t")
    with np.load(io.BytesIO(arrays_npz(dataset))) as data:
        np.testing.assert_array_equal(data["x_train"], raw)


def test_an_uploaded_model_has_no_recipe_to_write_out(export_store):
    run_id = export_store.create(RunSpec(DatasetRef.of("builtin", "digits-8x8"), None, None, origin="upload"))
    with pytest.raises(ExportError, match="uploaded model"):
        lab_notebook(export_store, run_id)


def test_a_run_that_did_not_finish_says_the_notebook_trains_the_whole_recipe(lab_run, export_store):
    store, finished = lab_run
    spec = store.spec(finished)
    stopped = store.create(spec, store.spec_file(finished)["details"], state=RunState.STOPPED,
                           message="Stopped by the user in epoch 1/2")
    text = lab_notebook(store, stopped).content.decode()
    assert "ended **stopped**" in text and "not of this one" in text


def test_markdown_text_is_inert():
    assert markdown_text("<script>*x*</script> [a](b) `c`") == \
        "\\<script\\>\\*x\\*\\</script\\> \\[a\\](b) \\`c\\`"


def test_a_run_that_went_beyond_its_recipe_says_the_notebook_trains_the_plain_recipe(lab_run):
    from core.runs.lineage import continue_run

    store, run_id = lab_run
    plain = "\n".join(c.source for c in nbformat.reads(lab_notebook(store, run_id).content.decode(), as_version=4).cells)
    assert "went beyond its recipe" not in plain
    child = continue_run(store, run_id, 1)  # (queued, never trained: its notebook is all that is asked of it)
    store.append_event(child, {"kind": "learning_rate", "value": 0.001, "step": 3, "by": "user"})
    cells = nbformat.reads(lab_notebook(store, child).content.decode(), as_version=4).cells
    text = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    assert (f"This run went beyond its recipe (it continues run `{run_id}` from that run's final weights; its course "
            "was changed by hand while it trained)") in text
    from dataclasses import replace

    from core.runs.status import RunState

    store.write_status(child, replace(store.raw_status(child), state=RunState.CANCELLED))
    store.delete(child)
