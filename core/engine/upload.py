"""An uploaded .keras model becomes a run: checked where it arrives, then loaded and scored in a training process.

The server checks the file without loading it (`core.model.files.inspect_model_file`:
its zip, its config, its size against the limits, its fit with the dataset),
keeps it within the uploads' quota and queues the run (`submit_upload`). A
worker then loads it in Keras' safe mode and scores it on the test set
(`score_upload`, called by `core.engine.execute.execute`), so the server
never builds a model a file describes. A file Keras cannot load fails its run
with what is wrong with the file, in ConvLab's words (`core.model.files.keras_failure`).
"""

from __future__ import annotations

from core.data.dataset import Dataset
from core.engine.jobs import JobManager
from core.engine.scoring import evaluate_into
from core.errors import ModelFileError
from core.model.files import inspect_model_file, load_checked_model
from core.runs.details import run_details
from core.runs.spec import RunSpec
from core.runs.status import Owner, RunState
from core.runs.store import RunStore
from core.runs.writer import RunWriter


def submit_upload(manager: JobManager, store: RunStore, data: bytes, file_name: str, dataset: Dataset,
                  owner: str | None = None, made_by: str = "") -> str:
    """Check an uploaded model file, keep it as a queued run on `dataset`, and queue its scoring; returns the run id."""
    run_id = import_model(store, data, file_name, dataset, made_by)
    manager.enqueue(store, run_id, owner)
    return run_id


def import_model(store: RunStore, data: bytes, file_name: str, dataset: Dataset, made_by: str = "") -> str:
    """Check an uploaded model file and keep it as a queued run on `dataset` (to score with `execute`); its id."""
    if dataset.ref is None:
        raise ModelFileError("the current dataset cannot be loaded again later; load it from the Data page first.")
    summary = inspect_model_file(data, file_name, dataset.input_shape, dataset.num_classes)
    store.check_upload_room(len(data))
    spec = RunSpec(dataset.ref, None, None, label=file_name[:100], origin="upload")
    details = run_details(dataset, summary.size.params, model_file=file_name[:200], layers=summary.layers)
    run_id = store.create(spec, details, owner=Owner.this_process(), state=RunState.QUEUED, made_by=made_by,
                          message=f"Checked {file_name[:100]}; waiting for a training process to load and score it.")
    store.write_model_bytes(run_id, data)
    return run_id


def score_upload(store: RunStore, run_id: str, writer: RunWriter, dataset: Dataset) -> RunState:
    """(In a training process.) Load the run's uploaded model safely and score it on the test set."""
    spec = store.spec(run_id)
    name = str(store.spec_file(run_id).get("details", {}).get("model_file") or spec.label or "the model file")
    writer.update(message=f"Loading {name}…")
    model = load_checked_model(store.model_path(run_id), name, dataset.input_shape, dataset.num_classes)
    writer.update(message=f"Scoring the {len(dataset.x_test):,} test images…")
    metrics = evaluate_into(store, run_id, model, dataset)
    writer.end(RunState.FINISHED, f"Uploaded model file {name}: {metrics['accuracy']:.2%} on {metrics['images']:,} "
                                  "test images.")
    return RunState.FINISHED
