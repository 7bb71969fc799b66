"""What a run records of its data and model beside its spec, for the Runs page to show without loading anything."""

from __future__ import annotations

import json

import numpy as np

from core.runs.details import run_details
from core.runs.store import RunStore
from tests.core.runs.conftest import LAB


def test_the_details_of_a_run_on_the_bars(bars):
    details = run_details(bars, np.int64(542_230), model_file="mine.keras")
    assert details == {"dataset_name": "bars", "data_source": "synthetic bars", "input_shape": [12, 12, 1],
                       "num_classes": 4, "params": 542_230, "train_images": 240, "test_images": 80,
                       "model_file": "mine.keras"}
    assert type(details["params"]) is int  # a NumPy count would not go into JSON
    assert json.loads(json.dumps(details)) == details


def test_the_run_store_keeps_them_and_the_listing_shows_them(bars, tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = store.create(LAB, run_details(bars, 1234))
    assert store.spec_file(run_id)["details"] == run_details(bars, 1234)
    summary = store.summary(run_id)
    assert (summary.dataset, summary.params) == ("bars", 1234)
