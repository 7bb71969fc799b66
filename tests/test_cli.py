"""`python -m core`: the four stages headless, run in-process on a tiny .npz file."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.architecture import PRESETS, architecture_from_dict
from core.cli import main
from tests.conftest import ROOT, bars_arrays


def write_bars_npz(path: Path) -> Path:
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One run of the CLI on the bars: the lab model and recipe for one epoch."""
    folder = tmp_path_factory.mktemp("cli")
    data = write_bars_npz(folder / "bars.npz")
    out = folder / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["--dataset", str(data), "--arch", "lab", "--train", "lab", "--epochs", "1",
                     "--seed", "3", "--out", str(out)])
    return code, stdout.getvalue(), stderr.getvalue(), out


def test_cli_succeeds_and_reports_each_stage(cli_run):
    code, stdout, stderr, _ = cli_run
    assert code == 0, stderr
    assert "error" not in stderr
    for stage in ("[1/4] data: bars.npz: 240 train / 80 test, 12x12x1", "[2/4] model: lab",
                  "[3/4] training: lab", "epoch 1/1: loss", "[4/4] test accuracy:"):
        assert stage in stdout
    assert re.search(r"test accuracy: \d+\.\d\d% \(accuracy_score on 80 test images\)", stdout)


def test_cli_writes_history_csv(cli_run):
    _, _, _, out = cli_run
    with open(out / "history.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(rows) == 2 and rows[1][0] == "1"
    values = [float(v) for v in rows[1][1:]]
    assert all(np.isfinite(values)) and 0 <= values[1] <= 1 and 0 <= values[3] <= 1


def test_cli_writes_config_json(cli_run):
    _, stdout, _, out = cli_run
    config = json.loads((out / "config.json").read_text())
    assert config["architecture_preset"] == "lab" and config["training_preset"] == "lab"
    assert architecture_from_dict(config["architecture"]) == PRESETS["lab"]
    assert config["training"]["epochs"] == 1 and config["training"]["seed"] == 3
    assert config["training"]["learning_rate"] == 0.01 and config["training"]["momentum"] == 0.9
    assert 0.0 <= config["test_accuracy"] <= 1.0
    assert f"test accuracy: {config['test_accuracy']:.2%}" in stdout
    assert config["dataset"].endswith("bars.npz") and "bars.npz" in config["dataset_source"]


def test_cli_saves_a_loadable_model_that_scores_as_reported(cli_run):
    import keras

    _, _, _, out = cli_run
    model = keras.models.load_model(out / "model.keras")
    _, _, x_test, y_test = bars_arrays()
    probabilities = np.asarray(model.predict(x_test[..., None].astype(np.float32) / 255, verbose=0))
    assert probabilities.shape == (80, 4)
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(80), abs=1e-5)
    accuracy = float((probabilities.argmax(axis=1) == y_test).mean())
    config = json.loads((out / "config.json").read_text())
    assert accuracy == pytest.approx(config["test_accuracy"])


def test_cli_writes_curves_html(cli_run):
    _, _, _, out = cli_run
    html = (out / "curves.html").read_text()
    assert "<html>" in html and html.rstrip().endswith("</html>")
    assert "Training and validation curves" in html and '"validation"' in html
    assert "<script src=" not in html  # plotly.js is inlined: the page works offline


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
    line = run_failing(capsys, ["--dataset", str(bad), "--epochs", "1", "--out", str(tmp_path / "o")])
    assert line == "error: bad.npz: not a .npz archive (a .npz file is a zip of .npy arrays)."
    assert not (tmp_path / "o").exists()


def test_npz_missing_arrays_is_one_line_error(tmp_path, capsys):
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.arange(4))
    line = run_failing(capsys, ["--dataset", str(partial), "--epochs", "1", "--out", str(tmp_path / "o")])
    assert line.startswith("error: partial.npz: missing 'x_test', 'y_test'")


def test_unknown_dataset_is_one_line_error(tmp_path, capsys):
    line = run_failing(capsys, ["--dataset", str(tmp_path / "absent.npz"), "--out", str(tmp_path / "o")])
    assert re.match(r"^error: unknown dataset '.*absent\.npz': use one of mnist, ", line)


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "error: epochs == 0, must be an integer from 1 to 500."),
    ("--batch-size", "0", "error: batch size == 0, must be an integer from 1 to 8192."),
    ("--learning-rate", "0", "error: learning rate == 0.0, must be in (0, 10]."),
    ("--seed", "-1", "error: seed == -1, must be a non-negative integer."),
])
def test_bad_training_override_is_one_line_error(tmp_path, capsys, option, value, message):
    data = write_bars_npz(tmp_path / "bars.npz")
    assert run_failing(capsys, ["--dataset", str(data), option, value, "--out", str(tmp_path / "o")]) == message


def test_unwritable_output_folder_is_one_line_error(tmp_path, capsys):
    data = write_bars_npz(tmp_path / "bars.npz")
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the output folder should go")
    line = run_failing(capsys, ["--dataset", str(data), "--arch", "fast", "--train", "fast", "--epochs", "1",
                                "--out", str(blocker)])
    assert "taken" in line


@pytest.mark.parametrize("argv", [["--arch", "huge"], ["--train", "slow"], ["--epochs", "two"]])
def test_bad_arguments_exit_with_usage(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m core") and "Traceback" not in err


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    assert "--dataset" in result.stdout and "keras-example" in result.stdout
