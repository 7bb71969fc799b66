"""The Sweeps page (AppTest): a sweep set up from the built model and the recipe, refused with its reason (the limit
stated), run through the server's job manager, shown with its trials and figures; its best used and applied; a sweep
cancelled; another browser's sweep only shown; a sweep left by a stopped server goes on."""

from __future__ import annotations

from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from core.data.registry import load_dataset
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.runs.status import RunState
from core.runs.store import RunStore
from core.sweeps.space import Setting
from core.sweeps.spec import SweepSpec
from core.sweeps.store import SweepStore
from core.training.config import TrainingConfig
from tests.conftest import ROOT, wait_for
from tests.core.runs.conftest import dead_owner
from tests.test_pages import with_data_and_model
from ui import state
from ui.state import SweepsPage as KEYS

SMALL = Architecture(conv_blocks=(ConvBlock(filters=8, pooling="none"),), dense_layers=(DenseLayer(units=16),),
                     name="small_cnn")
QUICK = TrainingConfig(optimizer="sgd", learning_rate=0.05, momentum=0.9, batch_size=32, epochs=3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits-8x8")


@pytest.fixture(autouse=True)
def run_store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


def driver():
    from ui.sweeps import sweep_driver

    return sweep_driver()


def sweeps_page(digits, config: TrainingConfig = QUICK) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"
    with_data_and_model(at, digits, SMALL, config)
    return at.run().switch_page("pages/sweeps.py").run()


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_the_page_asks_for_data_and_a_model_first():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run().switch_page("pages/sweeps.py").run()
    assert not at.exception and not at.error
    assert any("A sweep starts from a model and a recipe" in i.value for i in at.info)
    assert any("No sweeps yet" in i.value for i in at.info)


def test_bad_sweeps_are_refused_with_their_reason_and_the_limit(digits, run_store):
    at = sweeps_page(digits)
    assert at.multiselect(key=KEYS.VARY).value == ["learning_rate"]
    at.number_input(key=KEYS.TRIALS).set_value(500).run()
    at.button(key=KEYS.START).click().run()
    assert errors(at) == ["trials == 500, must be an integer from 1 to 100 (ConvLab runs at most 100 trials a sweep)."]
    at.number_input(key=KEYS.TRIALS).set_value(3).run()
    at.multiselect(key=KEYS.VARY).set_value(["learning_rate", "batch_size"]).run()
    at.multiselect(key=KEYS.RANGE.format("batch_size")).set_value([16]).run()
    at.button(key=KEYS.START).click().run()
    assert errors(at) == ["batch_size: list from 2 to 20 values to try (1 given)."]
    at.multiselect(key=KEYS.VARY).set_value([]).run()
    at.button(key=KEYS.START).click().run()
    assert errors(at) == ["Choose at least one setting to vary."]
    assert not at.exception and SweepStore(run_store).ids() == [] and run_store.run_ids() == []


def test_a_sweep_runs_its_trials_as_runs_and_its_best_is_used_and_applied(digits, run_store):
    at = sweeps_page(digits)
    at.multiselect(key=KEYS.VARY).set_value(["learning_rate", "batch_size"]).run()
    at.multiselect(key=KEYS.RANGE.format("batch_size")).set_value([16, 64]).run()
    at.number_input(key=KEYS.TRIALS).set_value(3).run()
    at.button(key=KEYS.START).click().run()
    assert not errors(at) and not at.exception
    (sweep_id,) = SweepStore(run_store).ids()
    assert at.selectbox(key=KEYS.PICK).value == sweep_id
    assert any(sweep_id in s.value and "started" in s.value for s in at.success)
    assert driver().wait(sweep_id, timeout=600)
    at.run()
    assert not at.exception and not at.error
    assert any(s.value.startswith("Finished: 3 of 3 trials ended") for s in at.success)
    table = at.dataframe[0].value  # (AppTest keeps no key for a dataframe)
    assert list(table["trial"]) == [1, 2, 3] and set(table["batch_size"]) <= {16, 64}
    assert set(table["run"]) == set(run_store.run_ids())
    charts = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert len(charts) == 2 and '"parcoords"' in charts[1]  # each trial's curve; settings against the metric
    assert any("needs at least 4 completed trials (3 so far)" in c.value for c in at.caption)
    spec = SweepStore(run_store).spec(sweep_id)
    assert (spec.architecture, spec.training, spec.origin) == (SMALL, QUICK, "dashboard")
    assert all(run_store.summary(r).sweep.startswith(sweep_id) for r in run_store.run_ids())
    assert all(RunStore(run_store.root).spec_file(r)["made_by"] == at.session_state[state.WORKSPACE]
               for r in run_store.run_ids())

    from core.sweeps.results import read_sweep

    best = read_sweep(SweepStore(run_store), sweep_id).best
    at.button(key=KEYS.USE).click().run()
    assert at.session_state[state.CURRENT_RUN] == best.run_id
    assert any("The best trial is now the current run" in s.value for s in at.success)
    at.button(key=KEYS.APPLY).click().run()
    assert at.session_state[state.TRAIN_CONFIG] == run_store.spec(best.run_id).training
    assert at.session_state[state.TRAIN_CONFIG].batch_size == best.values["batch_size"]
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception and any(m.label == "Test accuracy" for m in at.metric)
    at.switch_page("pages/runs.py").run()
    runs_table = at.dataframe[0].value
    assert set(runs_table["sweep"]) == {f"{sweep_id} #{n}" for n in (1, 2, 3)}


def test_cancel_stops_the_training_trials_and_the_sweep_ends_cancelled(digits, run_store):
    at = sweeps_page(digits, replace(QUICK, batch_size=4, epochs=50))  # minutes if nobody stops them
    at.number_input(key=KEYS.TRIALS).set_value(5).run()
    at.button(key=KEYS.START).click().run()
    (sweep_id,) = SweepStore(run_store).ids()
    wait_for(lambda: any(run_store.status(r).state is RunState.RUNNING for r in run_store.run_ids()),
             what="the first trial to train")
    at.run()
    at.button(key=KEYS.CANCEL).click().run()
    assert any("Cancelling" in i.value for i in at.info)
    assert driver().wait(sweep_id, timeout=120)
    status = SweepStore(run_store).status(sweep_id)
    assert status.state is RunState.CANCELLED and status.message.startswith("Cancelled: 1 of 5 trials ended (1 stopped)")
    assert sorted(run_store.status(r).state.value for r in run_store.run_ids()) == ["cancelled", "stopped"]
    at.run()
    assert not at.exception and any(w.value.startswith("Cancelled:") for w in at.warning)


def test_another_browsers_sweep_is_shown_but_only_its_maker_stops_it(digits, run_store):
    sweeps = SweepStore(run_store)
    spec = SweepSpec(digits.ref, SMALL, QUICK, (Setting("learning_rate", 1e-3, 1e-1, log=True),), trials=2)
    sweep_id = sweeps.create(spec, {"input_shape": [8, 8, 1], "num_classes": 10}, made_by="00000000000000bb")
    sweeps.write_status(sweep_id, replace(sweeps.raw_status(sweep_id), state=RunState.STOPPED, message="Stopped."))
    at = sweeps_page(digits)
    assert at.selectbox(key=KEYS.PICK).value == sweep_id and "another browser's" in at.selectbox(key=KEYS.PICK).options[0]
    assert any("Started in another browser" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key in (KEYS.STOP, KEYS.CANCEL, KEYS.RESUME)]


def test_a_sweep_a_stopped_server_left_running_goes_on_when_its_store_is_seen(digits, run_store):
    sweeps = SweepStore(run_store)
    spec = SweepSpec(digits.ref, SMALL, QUICK, (Setting("learning_rate", values=(0.05, 0.02)),), trials=2,
                     strategy="grid")
    sweep_id = sweeps.create(spec, {"input_shape": [8, 8, 1], "num_classes": 10, "dataset_name": "digits-8x8"})
    sweeps.write_status(sweep_id, replace(sweeps.raw_status(sweep_id), owner=dead_owner()))  # its server has gone
    assert sweeps.status(sweep_id).state is RunState.INTERRUPTED
    at = sweeps_page(digits)
    assert driver().is_driving(sweep_id) or sweeps.status(sweep_id).state is RunState.FINISHED
    assert driver().wait(sweep_id, timeout=600)
    assert sweeps.status(sweep_id).state is RunState.FINISHED and len(run_store.run_ids()) == 2
    at.run()
    assert not at.exception


def test_a_stopped_sweep_of_mine_resumes_to_its_budget(digits, run_store):
    mine = "00000000000000aa"
    sweeps = SweepStore(run_store)
    spec = SweepSpec(digits.ref, SMALL, QUICK, (Setting("learning_rate", values=(0.05, 0.02)),), trials=2,
                     strategy="grid")
    sweep_id = sweeps.create(spec, {"input_shape": [8, 8, 1], "num_classes": 10, "dataset_name": "digits-8x8"},
                             made_by=mine)
    sweeps.write_status(sweep_id, replace(sweeps.raw_status(sweep_id), state=RunState.STOPPED, message="Stopped."))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["ws"] = mine
    at.run().switch_page("pages/sweeps.py").run()
    assert not at.button(key=KEYS.RESUME).disabled and at.button(key=KEYS.STOP).disabled
    at.button(key=KEYS.RESUME).click().run()
    assert not at.exception and any("It goes on from where it was" in s.value for s in at.success)
    assert driver().wait(sweep_id, timeout=600)
    assert sweeps.status(sweep_id).state is RunState.FINISHED and len(run_store.run_ids()) == 2
