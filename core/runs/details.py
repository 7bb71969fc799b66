"""What a run records beside its spec: the data and the model it was made from, in words and numbers.

The spec is what a training needs; the details are what the Runs page and a
report show of it without loading anything again (the dataset's name and
source, its sizes, the model's parameter count). One builder for every place
that makes a run: Start on the dashboard, the CLI, an uploaded model.
"""

from __future__ import annotations

from typing import Any

from core.data.dataset import Dataset


def run_details(dataset: Dataset, params: int, **more: Any) -> dict[str, Any]:
    """The details of a run made on `dataset` with a model of `params` parameters (and `more`)."""
    return {"dataset_name": dataset.name, "data_source": dataset.source, "input_shape": list(dataset.input_shape),
            "num_classes": dataset.num_classes, "params": int(params), "train_images": len(dataset.x_train),
            "test_images": len(dataset.x_test), **more}
