"""`python -m core`: the four stages headless, run in-process on a tiny .npz file."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.model.architecture import PRESETS
from core.runs.status import RunState
from core.runs.store import RunStore
from tests.conftest import ROOT, bars_arrays, zip_folder


def write_bars_npz(path: Path) -> Path:
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One run of the CLI on the bars, into a run store: the lab model and recipe for one epoch."""
    folder = tmp_path_factory.mktemp("cli")
    data = write_bars_npz(folder / "bars.npz")
    store = RunStore(folder / "runs")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["--dataset", str(data), "--arch", "lab", "--train", "lab", "--epochs", "1",
                     "--seed", "3", "--runs", str(store.root)])
    (run_id,) = store.run_ids()
    return code, stdout.getvalue(), stderr.getvalue(), store, run_id


def test_cli_succeeds_and_reports_each_stage(cli_run):
    code, stdout, stderr, store, run_id = cli_run
    assert code == 0, stderr
    assert "error" not in stderr
    for stage in ("[1/4] data: bars.npz: 240 train / 80 test, 12x12x1", "[2/4] model: lab_cnn",
                  "[3/4] training: SGD (learning rate 0.01, constant, momentum 0.9)", "epoch 1/1: loss",
                  "[4/4] test accuracy:", f"saved run {run_id} in {store.path(run_id)}"):
        assert stage in stdout
    assert re.search(r"test accuracy: \d+\.\d\d% \(accuracy_score on 80 test images\)", stdout)


def test_cli_writes_a_finished_run_into_the_store(cli_run):
    _, stdout, _, store, run_id = cli_run
    summary = store.summary(run_id)
    assert summary.state is RunState.FINISHED and summary.origin == "cli" and summary.epochs_done == 1
    spec = store.spec(run_id)
    assert spec.architecture == PRESETS["lab"] and spec.dataset.kind == "file"
    assert spec.training.epochs == 1 and spec.training.seed == 3 and spec.training.momentum == 0.9
    assert f"test accuracy: {summary.test_accuracy:.2%}" in stdout
    with open(store.path(run_id) / "epochs.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:6] == ["epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(rows) == 2 and rows[1][0] == "1"


def test_cli_saves_a_loadable_model_that_scores_as_reported(cli_run):
    import keras

    _, _, _, store, run_id = cli_run
    model = keras.models.load_model(store.path(run_id) / "model.keras")
    _, _, x_test, y_test = bars_arrays()
    probabilities = np.asarray(model.predict(x_test[..., None].astype(np.float32) / 255, verbose=0))
    assert probabilities.shape == (80, 4)
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(80), abs=1e-5)
    accuracy = float((probabilities.argmax(axis=1) == y_test).mean())
    assert accuracy == pytest.approx(store.test_metrics(run_id)["accuracy"])


def test_cli_writes_curves_html(cli_run):
    _, _, _, store, run_id = cli_run
    html = (store.path(run_id) / "curves.html").read_text()
    assert "<html>" in html and html.rstrip().endswith("</html>")
    assert "Training and validation curves" in html and '"validation"' in html
    assert "<script src=" not in html  # plotly.js is inlined: the page works offline


def test_from_run_repeats_a_run_with_the_same_metrics(cli_run, capsys):
    _, _, _, store, run_id = cli_run
    assert main(["--from-run", str(store.path(run_id))]) == 0
    repeat = next(other for other in store.run_ids() if other != run_id)
    assert store.spec(repeat).training == store.spec(run_id).training
    assert store.label(repeat) == f"repeat of {run_id}"
    assert [row["loss"] for row in store.epochs(repeat)] == [row["loss"] for row in store.epochs(run_id)]
    assert store.test_metrics(repeat)["accuracy"] == store.test_metrics(run_id)["accuracy"]


def test_from_run_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    line = run_failing(capsys, ["--from-run", str(tmp_path)])
    assert line == f"error: {tmp_path}: not a run folder (it has no spec.json)."


# --- pause, resume, continue ---------------------------------------------------------------------


def test_ctrl_c_pauses_the_run_and_resume_finishes_it_as_its_replay_does(tmp_path):
    """A real Ctrl-C (SIGINT) to a real CLI process; then --resume in another; then --from-run for comparison."""
    data = write_bars_npz(tmp_path / "bars.npz")
    store = RunStore(tmp_path / "runs")
    command = [sys.executable, "-m", "core", "--dataset", str(data), "--arch", "lab", "--train", "lab",
               "--epochs", "8", "--batch-size", "1", "--runs", str(store.root)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "epoch 1/8:" in line:
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    (run_id,) = store.run_ids()
    assert re.search(r"pausing after the current batches", err)
    assert re.search(rf"paused: Paused in epoch 2/8, after batch \d+/216; Resume goes on from there\. Resume it "
                     rf"with: python -m core --resume {run_id} --runs {re.escape(str(store.root))}", err), err
    assert store.status(run_id).state is RunState.PAUSED and "Traceback" not in err
    resumed = subprocess.run([sys.executable, "-m", "core", "--resume", run_id, "--runs", str(store.root)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"run {run_id} resumed: resuming from epoch 2, after batch" in resumed.stdout
    assert store.status(run_id).state is RunState.FINISHED and len(store.epochs(run_id)) == 8
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--from-run", run_id, "--runs", str(store.root)]) == 0
    replay = next(other for other in store.run_ids() if other != run_id)
    assert [row["val_loss"] for row in store.epochs(replay)] == [row["val_loss"] for row in store.epochs(run_id)]
    assert store.test_metrics(replay)["accuracy"] == store.test_metrics(run_id)["accuracy"]


def test_a_second_ctrl_c_stops_instead_and_a_third_aborts():
    from core.cli import ctrl_c_pauses
    from core.training.controls import Controls, Halt

    controls = Controls()
    with contextlib.redirect_stderr(io.StringIO()) as said, ctrl_c_pauses(controls):
        signal.raise_signal(signal.SIGINT)
        assert controls.halted is Halt.PAUSE
        signal.raise_signal(signal.SIGINT)
        assert controls.halted is Halt.STOP
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert "pausing after the current batches (Ctrl-C again to stop instead)" in said.getvalue()


def test_continue_makes_a_child_run_that_trains_further(cli_run, capsys):
    _, _, _, store, run_id = cli_run
    assert main(["--continue", run_id, "--epochs", "2", "--runs", str(store.root)]) == 0
    out = capsys.readouterr().out
    child = next(other for other in store.run_ids() if store.spec(other).parent == run_id)
    assert f"run {child} continues run {run_id}: continuing from the end of epoch 1" in out
    assert [row["epoch"] for row in store.epochs(child)] == [1, 2, 3]
    assert store.status(child).state is RunState.FINISHED and store.spec(child).origin == "cli"


def test_resume_refuses_a_finished_run_and_names_continue(cli_run, capsys):
    _, _, _, store, run_id = cli_run
    line = run_failing(capsys, ["--resume", run_id, "--runs", str(store.root)])
    assert line == (f"error: run {run_id} is finished: only a paused or interrupted run can be resumed "
                    "(--continue trains it further).")
    line = run_failing(capsys, ["--resume", "20260101-000000-abcdef", "--runs", str(store.root)])
    assert line.startswith("error: 20260101-000000-abcdef: no such run")


# --- errors -------------------------------------------------------------------------------------


def run_failing(capsys, argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_not_a_npz_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip archive")
    line = run_failing(capsys, ["--dataset", str(bad), "--epochs", "1", "--runs", str(tmp_path / "o")])
    assert line == "error: bad.npz: not a .npz archive (a .npz file is a zip of .npy arrays)."
    assert not (tmp_path / "o").exists()  # nothing is created for a run that cannot start


def test_npz_missing_arrays_is_one_line_error(tmp_path, capsys):
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.arange(4))
    line = run_failing(capsys, ["--dataset", str(partial), "--epochs", "1", "--runs", str(tmp_path / "o")])
    assert line.startswith("error: partial.npz: missing 'x_test', 'y_test'")


def test_unknown_dataset_is_one_line_error(tmp_path, capsys):
    line = run_failing(capsys, ["--dataset", str(tmp_path / "absent.npz"), "--runs", str(tmp_path / "o")])
    assert re.match(r"^error: unknown dataset '.*absent\.npz': use one of mnist, ", line)


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "error: epochs == 0, must be an integer from 1 to 500."),
    ("--batch-size", "0", "error: batch size == 0, must be an integer from 1 to 8192."),
    ("--learning-rate", "0", "error: learning rate == 0.0, must be in (0, 10]."),
    ("--seed", "-1", "error: seed == -1, must be an integer from 0 to 2147483647."),
])
def test_bad_training_override_is_one_line_error(tmp_path, capsys, option, value, message):
    data = write_bars_npz(tmp_path / "bars.npz")
    assert run_failing(capsys, ["--dataset", str(data), option, value, "--runs", str(tmp_path / "o")]) == message


def test_unwritable_run_store_is_one_line_error(tmp_path, capsys):
    data = write_bars_npz(tmp_path / "bars.npz")
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the run store should go")
    line = run_failing(capsys, ["--dataset", str(data), "--arch", "fast", "--train", "fast", "--epochs", "1",
                                "--runs", str(blocker)])
    assert "taken" in line


@pytest.mark.parametrize("argv", [["--arch", "huge"], ["--train", "slow"], ["--epochs", "two"]])
def test_bad_arguments_exit_with_usage(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m core") and "Traceback" not in err


@pytest.mark.parametrize("preset", ["fast", "photos"])
def test_cli_takes_each_preset_as_architecture_and_recipe(tmp_path, preset):
    from core.cli import parse_args, prepare_run
    from core.training.config import TRAINING_PRESETS, override

    data = write_bars_npz(tmp_path / "bars.npz")
    args = parse_args(["--dataset", str(data), "--arch", preset, "--train", preset, "--seed", "2",
                       "--runs", str(tmp_path / "runs")])
    _, run_id, what, spec = prepare_run(args)
    assert (run_id, what) == (None, "new")
    assert spec.architecture == PRESETS[preset] and spec.training == override(TRAINING_PRESETS[preset], seed=2)
    assert spec.label == f"{preset} / {preset} (cli)"


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    assert "--dataset" in result.stdout and "keras-example" in result.stdout and "photos" in result.stdout


def test_cli_trains_a_zip_of_class_folders(shapes, tmp_path):
    import contextlib

    from core.cli import main
    from core.runs.status import RunState
    from core.runs.store import RunStore

    (tmp_path / "shapes.zip").write_bytes(zip_folder(shapes, wrap="shapes"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--dataset", str(tmp_path / "shapes.zip"), "--image-size", "16", "--color-mode", "rgb",
                     "--test-fraction", "0.25", "--arch", "fast", "--train", "fast", "--epochs", "1",
                     "--runs", str(tmp_path / "runs")])
    assert code == 0, err.getvalue()
    printed = out.getvalue()
    assert "[1/4] data: shapes.zip: " in printed and ", 16x16x3," in printed
    assert "classes: circle, square, triangle" in printed and "skipped, not an image: shapes/square/notes.txt" in printed
    store = RunStore(tmp_path / "runs")
    (run_id,) = store.run_ids()
    spec = store.spec(run_id)
    assert store.summary(run_id).state is RunState.FINISHED
    assert spec.dataset.kind == "images" and spec.dataset.option_dict["test_fraction"] == 0.25
    with contextlib.redirect_stderr(err):
        assert main(["--dataset", "digits-8x8", "--invert", "auto", "--runs", str(tmp_path / "runs")]) == 1
    assert "error: --invert applies only to a folder or .zip of images, not to digits-8x8." in err.getvalue()
