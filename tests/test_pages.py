"""Page tests with Streamlit's AppTest: every page renders, presets fill the sliders, bad architectures
explain themselves, training started from a page runs in a worker process and comes back after a reload."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.engine.execute import execute
from core.model.architecture import PRESETS, Architecture, ConvBlock, DenseLayer, layer_table
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TRAINING_PRESETS, TrainingConfig
from tests.conftest import ROOT, bars_arrays, session_dataset, wait_for
from ui import state

PAGES = ["pages/home.py", "pages/data.py", "pages/architecture.py", "pages/training.py",
         "pages/evaluation.py", "pages/draw.py", "pages/runs.py", "pages/sweeps.py"]
TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny_cnn")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2)


@pytest.fixture(autouse=True)
def run_store(tmp_path, monkeypatch) -> RunStore:
    """Each test has a run store of its own (the job manager is the server's, shared)."""
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


def manager():
    from ui.runs import job_manager

    return job_manager()


def new_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"  # loads offline in milliseconds
    return at


def with_data_and_model(at: AppTest, dataset, arch: Architecture = TINY, config: TrainingConfig = QUICK) -> AppTest:
    at.session_state[state.DATASET] = dataset
    at.session_state[state.BUILT] = state.BuiltArchitecture(
        arch, dataset.input_shape, dataset.num_classes, layer_table(arch, dataset.input_shape, dataset.num_classes))
    at.session_state[state.TRAIN_CONFIG] = config
    return at


def start_and_finish(at: AppTest) -> AppTest:
    at.switch_page("pages/training.py").run()
    at.button(key="train_start").click().run()
    assert not at.session_state[state.START_ERROR], at.session_state[state.START_ERROR]
    assert manager().wait_idle(timeout=300), "training did not end"
    return at.run()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_from_a_fresh_session(page):
    at = new_app().run()
    assert not at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not at.error


def in_a_fresh_process(steps: str) -> str:
    """Run AppTest steps in a new Python process and return what it printed last."""
    code = ("import sys; from streamlit.testing.v1 import AppTest; "
            "from tests.conftest import make_apptest_run_app_py; make_apptest_run_app_py(); "
            f"at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=60); "
            "at.session_state['dataset_choice'] = 'digits-8x8'; at.run(); assert not at.exception; " + steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180)
    return (out.stdout.strip().splitlines() or [""])[-1] + out.stderr[-2000:] * (out.returncode != 0)


def test_home_page_does_not_import_tensorflow():
    assert in_a_fresh_process("print('tensorflow' in sys.modules)") == "False"


def test_build_answers_without_importing_tensorflow():
    printed = in_a_fresh_process(
        "at.switch_page('pages/data.py').run(); at.switch_page('pages/architecture.py').run(); "
        "at.button(key='arch_build').click().run(); "
        "print(at.session_state['built'].params, 'tensorflow' in sys.modules)")
    assert printed == "30230 False"  # the lab model on 8x8 digits, counted by the layer table alone


def test_data_page_shows_source_shapes_and_preprocessing():
    at = new_app().run()
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert "scikit-learn's load_digits" in " ".join(s.value for s in at.success)
    codes = " ".join(c.value for c in at.code)
    assert "(1438, 8, 8) uint8, values 0 to 255" in codes
    assert "(1438, 8, 8, 1) float32, values 0 to 1" in codes
    assert session_dataset(at).name == "digits-8x8"


def test_offline_mnist_is_announced_as_the_shipped_real_digits(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("CONVLAB_OFFLINE", "1")
    from ui.loading import forget_builtin

    forget_builtin("mnist")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.DATASET_CHOICE] = "mnist"
    at.run().switch_page("pages/data.py").run()
    warnings = " ".join(w.value for w in at.warning)
    assert "Using a sample, not the full dataset" in warnings and "Offline MNIST shipped with ConvLab" in warnings
    assert "CC BY-SA 3.0" in warnings
    forget_builtin("mnist")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_architecture_preset_fills_the_sliders(preset):
    at = new_app().run()
    at.switch_page("pages/architecture.py").run()
    at.button(key=f"arch_preset_{preset}").click().run()
    arch = PRESETS[preset]
    assert at.slider(key="arch_blocks").value == len(arch.conv_blocks)
    assert at.slider(key="arch_dense").value == len(arch.dense_layers)
    for i, block in enumerate(arch.conv_blocks):
        assert at.select_slider(key=f"arch_b{i}_filters").value == block.filters
        assert at.checkbox(key=f"arch_b{i}_batch_norm").value == block.batch_norm
        assert at.slider(key=f"arch_b{i}_dropout").value == pytest.approx(block.dropout)
    assert at.session_state[state.ARCHITECTURE].name == arch.name


def test_impossible_architecture_explains_and_disables_build():
    at = new_app().run()
    at.switch_page("pages/data.py").run()  # 8x8 digits: three 3x3 blocks cannot fit
    at.switch_page("pages/architecture.py").run()
    at.slider(key="arch_blocks").set_value(2).run()
    assert [e.value for e in at.error] == [
        "This architecture cannot be built: conv block 2: 2x2 pooling would shrink the 1x1 feature map "
        "to 0x0; remove a block or its pooling."]
    assert at.button(key="arch_build").disabled
    at.slider(key="arch_blocks").set_value(1).run()
    assert not at.error and not at.button(key="arch_build").disabled


def test_training_preset_fills_the_recipe():
    at = new_app().run()
    at.switch_page("pages/training.py").run()
    at.button(key="train_preset_fast").click().run()
    assert at.selectbox(key="train_optimizer").value == "adam"
    at.button(key="train_preset_photos").click().run()
    assert at.select_slider(key="train_batch_size").value == TRAINING_PRESETS["photos"].batch_size
    assert at.slider(key="train_epochs").value == TRAINING_PRESETS["photos"].epochs
    at.button(key="train_preset_lab").click().run()
    assert at.selectbox(key="train_optimizer").value == "sgd"
    assert at.number_input(key="train_learning_rate").value == pytest.approx(0.01)
    assert at.slider(key="train_momentum").value == pytest.approx(0.9)
    assert at.select_slider(key="train_batch_size").value == 32
    assert at.slider(key="train_epochs").value == 10


def test_start_waits_for_data_and_a_model():
    at = new_app().run().switch_page("pages/training.py").run()
    assert at.button(key="train_start").disabled
    assert any("Training needs data and a model" in i.value for i in at.info)


# --- training through the job manager ------------------------------------------------------------------


def test_training_from_the_page_runs_in_a_worker_and_lands_in_the_store(bars_data, run_store):
    at = start_and_finish(with_data_and_model(new_app(), bars_data).run())
    run_id = at.session_state[state.CURRENT_RUN]
    assert run_store.summary(run_id).state is RunState.FINISHED
    assert run_store.raw_status(run_id).owner.pid != __import__("os").getpid()  # trained in another process
    assert len(run_store.epochs(run_id)) == 2
    from ui.widgets import seconds

    status, test = run_store.raw_status(run_id), run_store.test_metrics(run_id)
    said = next(s.value for s in at.success if "Training finished" in s.value)
    assert said.startswith(f"Training finished in {seconds(status.training_s)}; you waited {seconds(status.waited_s)} "
                           "from Start")  # both: how long it trained, how long the user waited
    assert f"Test accuracy {test['accuracy']:.2%}** on {test['images']:,} test images" in said
    assert at.query_params["run"] == run_id  # the URL names the run: a reload comes back to it
    assert not at.exception


def test_a_reload_shows_the_same_run_with_its_dataset_and_settings(bars_data, run_store):
    run_id = run_store.create(RunSpec(bars_data.ref, TINY, QUICK, label="from before the reload"),
                              {"dataset_name": "bars.npz"})
    assert execute(run_store, run_id) is RunState.FINISHED
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params["run"] = run_id  # a new browser session on the same link
    at.run().switch_page("pages/training.py").run()
    assert at.session_state[state.CURRENT_RUN] == run_id
    assert session_dataset(at).ref == bars_data.ref
    assert at.session_state[state.BUILT].arch == TINY and at.session_state[state.TRAIN_CONFIG] == QUICK
    assert any("Training finished" in s.value for s in at.success)
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception and any(m.label == "Test accuracy" for m in at.metric)


def test_an_unknown_run_in_the_url_is_said_and_nothing_breaks():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params["run"] = "20990101-000000-abcdef"
    at.run()
    assert not at.exception and at.session_state[state.CURRENT_RUN] is None
    assert any("There is no run 20990101-000000-abcdef here" in t.value for t in at.toast)


def test_stop_from_the_page_keeps_the_run(bars_data, run_store):
    at = with_data_and_model(new_app(), bars_data, config=TrainingConfig(batch_size=1, epochs=120)).run()
    at.switch_page("pages/training.py").run()
    at.button(key="train_start").click().run()
    run_id = at.session_state[state.CURRENT_RUN]
    at.button(key="train_stop").click().run()
    assert manager().wait_idle(timeout=300)
    at.run()
    summary = run_store.summary(run_id)
    assert summary.state in (RunState.STOPPED, RunState.CANCELLED)  # stopped training, or cancelled while queued
    assert summary.epochs_done < 120  # beyond the slider's 50: a run's settings made elsewhere still show
    assert not at.button(key="train_start").disabled


def test_two_sessions_queue_and_train_independently(bars_data, run_store):
    first = with_data_and_model(new_app(), bars_data, config=TrainingConfig(seed=1, epochs=1)).run()
    second = with_data_and_model(new_app(), bars_data, config=TrainingConfig(seed=2, epochs=1)).run()
    for at in (first, second):
        at.switch_page("pages/training.py").run()
        at.button(key="train_start").click().run()
    run_a, run_b = first.session_state[state.CURRENT_RUN], second.session_state[state.CURRENT_RUN]
    assert run_a != run_b
    if manager().max_concurrent == 1 and manager().position(run_b) == 1:
        assert any("Queued, 1st in line" in i.value for i in second.run().info)
    assert manager().wait_idle(timeout=300)
    assert run_store.summary(run_a).state is RunState.FINISHED and run_store.summary(run_b).state is RunState.FINISHED
    assert run_store.epochs(run_a)[0]["loss"] != run_store.epochs(run_b)[0]["loss"]
    assert first.run().session_state[state.CURRENT_RUN] == run_a  # each session sees its own run


def test_a_run_waiting_behind_others_is_polled_less_often_until_it_is_next(bars_data, run_store):
    from ui.sidebar import poll_seconds

    long = [TrainingConfig(batch_size=1, epochs=120, seed=seed) for seed in range(manager().max_concurrent + 2)]
    sessions = [with_data_and_model(new_app(), bars_data, config=config).run() for config in long]
    try:
        for index, at in enumerate(sessions):
            at.switch_page("pages/training.py").run()
            at.button(key="train_start").click().run()
            if index == manager().max_concurrent - 1:  # every slot taken: the next two wait, 1st and 2nd
                wait_for(lambda: len(manager().running()) == manager().max_concurrent, what="the slots to fill")
        next_in_line, waiting = sessions[-2:]
        assert next_in_line.session_state[state.RUN_PHASE] == "next"
        assert waiting.session_state[state.RUN_PHASE] == "waiting"
        assert any("Queued, 2nd in line" in i.value for i in waiting.info)
        assert poll_seconds("waiting", training_page=True) > poll_seconds("next", training_page=True) == 1.0
        manager().stop(sessions[0].session_state[state.CURRENT_RUN])
        wait_for(lambda: manager().position(waiting.session_state[state.CURRENT_RUN]) == 1, what="the queue to move")
        assert waiting.run().session_state[state.RUN_PHASE] == "next"
        assert any("Queued, 1st in line" in i.value for i in waiting.info)
    finally:
        for at in reversed(sessions):
            manager().stop(at.session_state[state.CURRENT_RUN])
        assert manager().wait_idle(timeout=300)


def test_pollers_refresh_by_phase_and_stop_once_the_run_ends():
    from ui.sidebar import poll_seconds

    assert poll_seconds("training", training_page=True) == poll_seconds("next", training_page=True) == 1.0
    # the moments a user waits on, its first batch and its end, are polled closely, on the Training page only
    assert poll_seconds("starting", training_page=True) == poll_seconds("ending", training_page=True) == 0.25
    assert poll_seconds("starting") == poll_seconds("ending") == 2.0
    assert poll_seconds("training") == 2.0  # the sidebar on other pages
    assert poll_seconds("waiting") == poll_seconds("waiting", training_page=True) == 3.0
    assert poll_seconds("ended") is None and poll_seconds("ended", training_page=True) is None


def _ending_run(run_store: RunStore, dataset) -> str:
    """A run whose batches are all done (its worker validating, saving, scoring): this process owns it."""
    from dataclasses import replace

    from core.runs.status import Owner
    from core.training.progress import Progress

    run_id = run_store.create(RunSpec(dataset.ref, TINY, QUICK))
    progress = Progress(epoch=2, epochs=2, batch=10, batches_per_epoch=10, elapsed_s=1.0, eta_s=0.0)
    run_store.write_status(run_id, replace(run_store.raw_status(run_id), state=RunState.RUNNING, started=time.time(),
                                           owner=Owner.this_process(), progress=progress, message="Scoring…"))
    return run_id


def test_the_training_page_waits_on_an_ending_run_and_draws_its_end_as_soon_as_it_is_written(
        bars_data, run_store, monkeypatch):
    """Not at the next poll: the poller waits in the server (`runs.await_end`) while the worker ends the run."""
    from dataclasses import replace

    run_id = _ending_run(run_store, bars_data)
    waiting, outcomes = threading.Event(), []
    real_wait = type(manager()).wait_until

    def spied(self, done, timeout, recheck_s=0.05):
        waiting.set()
        outcomes.append(real_wait(self, done, timeout, recheck_s))
        return outcomes[-1]

    monkeypatch.setattr(type(manager()), "wait_until", spied)

    def worker_ends() -> None:
        assert waiting.wait(timeout=90)
        run_store.write_test(run_id, {"accuracy": 0.75, "loss": 0.5, "images": 40}, np.full((40, 4), 0.25, np.float32))
        run_store.write_status(run_id, replace(run_store.raw_status(run_id), state=RunState.FINISHED,
                                               message="Training finished.", ended=time.time()))

    ender = threading.Thread(target=worker_ends, daemon=True)
    ender.start()
    at = with_data_and_model(new_app(), bars_data)
    at.session_state[state.CURRENT_RUN] = run_id
    at.run()
    at.switch_page("pages/training.py").run()
    ender.join(timeout=90)
    assert not at.exception and outcomes[0] is True  # the wait ended with the run, not at its bound
    assert any("Training finished" in s.value and "Test accuracy 75.00%" in s.value for s in at.success)


def test_a_run_that_does_not_end_keeps_its_page_drawing_its_progress(bars_data, run_store):
    run_id = _ending_run(run_store, bars_data)  # (its worker never writes its end)
    at = with_data_and_model(new_app(), bars_data)
    at.session_state[state.CURRENT_RUN] = run_id
    at.run()
    at.switch_page("pages/training.py").run()  # the wait is bounded (`END_WAIT_S`): the page is drawn
    assert not at.exception and at.session_state[state.RUN_PHASE] is state.Phase.ENDING
    assert any("Epoch 2/2 · batch 10/10" in str(element.proto) for element in at.get("html"))


@pytest.mark.parametrize("state_, epoch, batch, eta_s, phase", [
    (RunState.RUNNING, 0, 0, None, "starting"),  # loading the data, building, tracing its first batches
    (RunState.RUNNING, 1, 5, None, "training"),  # (10 batches an epoch, 3 epochs)
    (RunState.RUNNING, 3, 2, 9.0, "training"),
    (RunState.RUNNING, 3, 8, 1.5, "ending"),  # its last two seconds, by its pace
    (RunState.RUNNING, 3, 1, None, "ending"),  # its last epoch, its pace not known yet (a one-epoch run): it may be
    (RunState.RUNNING, 3, 10, 0.0, "ending"),  # every batch done: validating, saving, scoring
    (RunState.STOPPING, 1, 5, 60.0, "ending"),
    (RunState.FINISHED, 3, 10, 0.0, "ended"),
])
def test_a_runs_phase_follows_its_progress(bars_data, state_, epoch, batch, eta_s, phase):
    from core.runs.status import RunStatus
    from core.runs.store import RunSnapshot
    from core.training.progress import Progress
    from ui import runs

    progress = Progress(epoch=epoch, epochs=3, batch=batch, batches_per_epoch=10, eta_s=eta_s)
    snapshot = RunSnapshot("20260101-000000-abcdef", RunSpec(bars_data.ref, TINY, QUICK),
                           RunStatus(state_, started=1.0, progress=progress), (), (), "", None, False)
    assert runs.phase(snapshot).value == phase


def test_exploding_loss_is_explained_on_the_page_and_nothing_is_evaluated(bars_data):
    explodes = Architecture(
        conv_blocks=(ConvBlock(filters=16, activation="elu", pooling="none"), ConvBlock(filters=16, activation="elu")),
        dense_layers=(DenseLayer(256, activation="elu"), DenseLayer(256, activation="elu")),
        name="explodes",
    )
    config = TrainingConfig(learning_rate=10.0, momentum=0.9, epochs=3)
    at = start_and_finish(with_data_and_model(new_app(), bars_data, explodes, config).run())
    assert not at.exception
    assert any("the loss became" in e.value and "learning rate" in e.value for e in at.error)
    at.switch_page("pages/evaluation.py").run()
    assert any("Nothing to evaluate yet" in i.value for i in at.info)


# --- evaluation and drawing on a finished run -------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(bars_data, tmp_path_factory):
    """A finished run of the bars in a store of its own (trained here, in this process)."""
    store = RunStore(tmp_path_factory.mktemp("finished") / "runs")
    run_id = store.create(RunSpec(bars_data.ref, TINY, QUICK, label="bars run"), {"dataset_name": "bars.npz"})
    assert execute(store, run_id) is RunState.FINISHED
    return store, run_id


def app_with_run(finished_run, monkeypatch, dataset=None) -> AppTest:
    store, run_id = finished_run
    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    at = new_app()
    at.session_state[state.CURRENT_RUN] = run_id
    at.session_state[state.URL_RUN] = run_id
    if dataset is not None:
        at.session_state[state.DATASET] = dataset
    return at.run()


def test_evaluation_page_shows_accuracy_matrix_and_mistakes(finished_run, monkeypatch):
    store, run_id = finished_run
    at = app_with_run(finished_run, monkeypatch).switch_page("pages/evaluation.py").run()
    assert not at.exception
    shown = next(m.value for m in at.metric if m.label == "Test accuracy")
    assert shown == f"{store.test_metrics(run_id)['accuracy']:.2%}"  # what the training process measured
    assert any(m.label == "Test loss" for m in at.metric)
    from core.evaluation.metrics import Evaluation

    truth = np.asarray(bars_arrays()[3])
    largest = Evaluation(store.test_probabilities(run_id), truth, ("a", "b", "c", "d")[:4]).largest_confusion()
    assert (at.selectbox(key="eval_true").value, at.selectbox(key="eval_pred").value) == largest  # the first look
    at.selectbox(key="eval_true").set_value(0).run()
    at.selectbox(key="eval_pred").set_value(0).run()
    probabilities = store.test_probabilities(run_id)
    count = int(((probabilities.argmax(axis=1) == 0) & (np.asarray(bars_arrays()[3]) == 0)).sum())
    assert any(f"{count} test image(s)" in m.value for m in at.markdown)


def test_draw_page_says_what_it_expects_for_non_digit_data(finished_run, monkeypatch):
    at = app_with_run(finished_run, monkeypatch).switch_page("pages/draw.py").run()  # bars are not digits
    assert not at.exception
    assert any("The canvas is for handwritten digits" in i.value for i in at.info)


def digit_app(finished_run, monkeypatch, drawing) -> AppTest:
    """The finished run, its dataset taken for digits, with the canvas replaced by `drawing`."""
    from dataclasses import replace

    import ui.canvas
    import ui.runs

    monkeypatch.setattr(ui.canvas, "draw_canvas", lambda key, stroke_width: drawing)
    real = ui.runs.dataset_of
    monkeypatch.setattr(ui.runs, "dataset_of", lambda spec: replace(real(spec), handwritten_digits=True))
    return app_with_run(finished_run, monkeypatch).switch_page("pages/draw.py").run()


def test_draw_page_asks_for_a_digit_on_an_empty_canvas(finished_run, monkeypatch):
    at = digit_app(finished_run, monkeypatch, np.zeros((280, 280, 4), np.uint8))
    assert not at.exception
    assert any("Draw a digit on the canvas" in i.value for i in at.info)
    assert not [m for m in at.metric if m.label == "Prediction"]
    # the kinds of element an answer is made of, hidden, so the browser has their code before the first stroke
    assert [m.label for m in at.metric] == ["ready"]
    assert any("st-key-answer-elements-ready{display:none}" in b.proto.body for b in at.get("html"))


def test_draw_page_answers_without_the_hidden_elements(finished_run, monkeypatch):
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[40:240, 130:150, 3] = 255
    at = digit_app(finished_run, monkeypatch, drawing)
    assert [m.label for m in at.metric] == ["Prediction"]


def test_draw_page_predicts_a_drawing(finished_run, monkeypatch, bars_data):
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[40:240, 130:150, 3] = 255  # a vertical stroke
    at = digit_app(finished_run, monkeypatch, drawing)
    assert not at.exception
    prediction = [m for m in at.metric if m.label == "Prediction"]
    assert len(prediction) == 1 and prediction[0].value in bars_data.class_names
    assert any("What the network sees" in m.value for m in at.markdown)
    blocks = [block.proto.body for block in at.get("html")]  # sent inside the page: nothing left to fetch
    bars = [b for b in blocks if "Probability of each class" in b]
    assert len(bars) == 1 and all(f">{name}</span>" in bars[0] for name in bars_data.class_names)
    (steps,) = [b for b in blocks if "<figure" in b]
    assert steps.count('src="data:image/png;base64,') == 5 and "5. centred by mass" in steps


def npz_bytes(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_uploading_npz_files_on_the_data_page(run_store):
    at = new_app().run()
    at.switch_page("pages/data.py").run()
    previous = session_dataset(at)
    at.selectbox(key=state.DATASET_CHOICE).set_value("upload").run()
    x_train, y_train, x_test, y_test = bars_arrays(n_train=40, n_test=20)
    at.file_uploader[0].upload("broken.npz", npz_bytes(x_train=x_train, y_train=y_train, x_test=x_test)).run()
    assert not at.exception
    assert any("broken.npz: missing 'y_test'" in e.value for e in at.error)
    assert session_dataset(at) is previous  # nothing lost
    assert not (run_store.root / "datasets").exists()  # nothing kept of a refused file
    at.file_uploader[0].clear().upload("mine.npz", npz_bytes(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)).run()
    assert not at.error
    uploaded = session_dataset(at)
    assert uploaded.name == "mine.npz" and uploaded.input_shape == (12, 12, 1) and uploaded.num_classes == 4
    assert uploaded.ref.kind == "stored" and run_store.stored_dataset_path(uploaded.ref.name, ".npz").exists()


def png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_draw_page_classifies_an_uploaded_picture_and_refuses_a_corrupt_one(finished_run, monkeypatch, bars_data):
    at = app_with_run(finished_run, monkeypatch).switch_page("pages/draw.py").run()
    picture = np.full((60, 60), 255, np.uint8)
    picture[28:32, 5:55] = 0  # a dark horizontal bar on white
    at.file_uploader(key="draw_upload").upload("bar.png", png_bytes(picture), "image/png").run()
    assert not at.exception and not at.error
    prediction = [m for m in at.metric if m.label == "Prediction"]
    assert len(prediction) == 1 and prediction[0].value in bars_data.class_names
    at.file_uploader(key="draw_upload").clear().upload("broken.png", b"not an image", "image/png").run()
    assert not at.exception
    assert any("broken.png is not an image that can be read" in e.value for e in at.error)


def test_draw_page_reads_an_uploaded_digit_photo_like_a_drawing(finished_run, monkeypatch):
    at = digit_app(finished_run, monkeypatch, None)
    photo = np.full((120, 90), 250, np.uint8)
    photo[20:100, 35:55] = 15  # a dark "1" on white paper
    at.file_uploader(key="draw_upload").upload("one.png", png_bytes(photo), "image/png").run()
    assert not at.exception and not at.error
    assert len([m for m in at.metric if m.label == "Prediction"]) == 1
    assert any("What the network sees" in m.value for m in at.markdown)
