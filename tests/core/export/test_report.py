"""The run report: one HTML file with every section, nothing fetched from a network, user text escaped."""

from __future__ import annotations

import re

import numpy as np

from core.data.dataset import DatasetRef
from core.export.report import run_report
from core.model.architecture import PRESETS
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.training.config import TRAINING_PRESETS
from tests.conftest import bars_arrays


def test_the_report_holds_every_section_and_needs_no_network(lab_run):
    store, run_id = lab_run
    page = run_report(store, run_id)
    for heading in ("Results on the test set", "Settings", "Dataset", "Architecture: lab_cnn",
                    "Training and validation curves", "Confusion matrix", "Per-class precision, recall and F1",
                    "The most confident mistakes", "Library versions"):
        assert f"<h2>{heading}</h2>" in page
    accuracy = store.test_metrics(run_id)["accuracy"]
    assert f"{accuracy:.2%}" in page
    assert page.count("Plotly.newPlot") == 3  # curves, confusion matrix, confidence
    assert page.count("<script type='text/javascript'>") == 1  # plotly.js, inline, once
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']https?:""", page)  # nothing to fetch
    assert len(re.findall(r"<img src='data:image/png;base64,", page)) == 24
    assert "30,230" in page and "keras" in page and "SGD (learning rate 0.01" in page


def test_text_from_users_is_escaped(rich_run):
    store, run_id = rich_run
    page = run_report(store, run_id)
    assert "<b>label</b>" not in page and "rich &lt;b&gt;label&lt;/b&gt; *with* [markup](x)" in page


def test_a_run_whose_data_is_gone_still_gets_a_report_saying_so(export_store, tmp_path):
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(tmp_path / "bars.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    digest, _ = export_store.store_dataset_file((tmp_path / "bars.npz").read_bytes(), "bars.npz", ".npz")
    ref = DatasetRef.of("stored", digest, {"file_name": "bars.npz", "suffix": ".npz"})
    run_id = export_store.create(RunSpec(ref, PRESETS["lab"], TRAINING_PRESETS["lab"], label="gone"),
                                 {"dataset_name": "bars.npz", "input_shape": [12, 12, 1], "num_classes": 4},
                                 state=RunState.FINISHED)
    export_store.uploads.remove(digest, ".npz")
    page = run_report(export_store, run_id)
    assert "cannot be loaded again" in page and "no longer in the run store" in page
    assert "<h2>Architecture: lab_cnn</h2>" in page and "<h2>Confusion matrix</h2>" not in page
