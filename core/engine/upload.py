"""An uploaded .keras model becomes a finished run: checked, kept in the store and scored on the test set."""

from __future__ import annotations

from core.data.dataset import Dataset
from core.engine.execute import evaluate_into
from core.errors import ModelFileError
from core.model.files import check_model_file
from core.runs.details import run_details
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore


def import_model(store: RunStore, data: bytes, file_name: str, dataset: Dataset) -> str:
    """Check an uploaded model file, keep it as a finished run on `dataset`, score it; returns the run id."""
    if dataset.ref is None:
        raise ModelFileError("the current dataset cannot be loaded again later; load it from the Data page first.")
    model = check_model_file(data, file_name, dataset.input_shape, dataset.num_classes)
    spec = RunSpec(dataset.ref, None, None, label=file_name[:100], origin="upload")
    details = run_details(dataset, model.count_params(), model_file=file_name[:200], layers=len(model.layers))
    run_id = store.create(spec, details, state=RunState.FINISHED, message=f"Uploaded model file {file_name[:100]}.")
    store.write_model_bytes(run_id, data)
    evaluate_into(store, run_id, model, dataset)
    return run_id
