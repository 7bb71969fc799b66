"""`python -m core sweep`: a real process trains a sweep of 6 trials on the 8x8 digits; the best's settings, repeated
with --from-run, give its result again; Ctrl-C stops asking and --resume goes on; bad words get one error line."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys

import pytest

from core.cli import main as train_main
from core.runs.status import RunState
from core.runs.store import RunStore
from core.sweeps.cli import main
from core.sweeps.results import read_sweep
from core.sweeps.store import SweepStore
from tests.conftest import ROOT

SWEEP = [sys.executable, "-m", "core", "sweep", "--dataset", "digits-8x8", "--arch", "lab", "--train", "lab"]


def test_a_sweep_of_6_trials_ends_with_6_runs_and_its_best_repeats_with_from_run(tmp_path):
    store = RunStore(tmp_path / "runs")
    done = subprocess.run([*SWEEP, "--epochs", "4", "--vary", "learning_rate=1e-3:1e-1:log", "--vary", "filters=8,16,32",
                           "--trials", "6", "--runs", str(store.root)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "sweep: 6 trials of a random search over learning_rate=0.001:0.1:log, conv1.filters=8,16,32" in out
    assert re.search(r"trial  outcome    learning_rate  conv1.filters  val_accuracy  epochs  run", out)
    rows = re.findall(r"^\s+(\d)  (finished|pruned)\s+([\d.e-]+)\s+(8|16|32)\s+(\d\.\d{4})\s+(\d)\s+(\S+)$", out, re.M)
    assert sorted(int(row[0]) for row in rows) == [1, 2, 3, 4, 5, 6]
    assert len(store.run_ids()) == 6 and {row[6] for row in rows} == set(store.run_ids())
    (sweep_id,) = SweepStore(store).ids()
    view = read_sweep(SweepStore(store), sweep_id)
    best = view.best
    assert f"best: trial {best.number + 1}, validation accuracy {best.value:.4f}" in out
    assert f"repeat it: python -m core --from-run {best.run_id} --runs {store.root}" in out
    assert view.status.message.startswith("Finished: 6 of 6 trials ended")
    assert (SweepStore(store).path(sweep_id) / "trials.csv").read_text() == view.csv()
    assert all(store.summary(run_id).sweep.startswith(sweep_id) for run_id in store.run_ids())

    with contextlib.redirect_stdout(io.StringIO()):
        assert train_main(["--from-run", best.run_id, "--runs", str(store.root)]) == 0  # as the README says
    (repeat,) = set(store.run_ids()) - {t.run_id for t in view.trials}
    assert store.spec(repeat).sweep is None and store.spec(repeat).training == store.spec(best.run_id).training
    assert store.epochs(repeat)[-1]["val_accuracy"] == best.value
    assert [row["val_loss"] for row in store.epochs(repeat)] == [row["val_loss"] for row in store.epochs(best.run_id)]
    assert store.test_metrics(repeat)["accuracy"] == best.test_accuracy


def test_ctrl_c_stops_asking_and_resume_goes_on_to_the_budget(tmp_path):
    store = RunStore(tmp_path / "runs")
    process = subprocess.Popen([*SWEEP, "--epochs", "3", "--batch-size", "4", "--vary", "learning_rate=0.01,0.02,0.03,0.04",
                                "--strategy", "grid", "--no-prune", "--runs", str(store.root)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if re.match(r"\s+\d  finished", line):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    (sweep_id,) = SweepStore(store).ids()
    assert "no more trials: the training ones finish" in err and "Traceback" not in err
    assert f"stopped: sweep {sweep_id} is stopped; go on with it: python -m core sweep --resume {sweep_id} --runs" in err
    view = read_sweep(SweepStore(store), sweep_id)
    states = [t.state for t in view.trials]
    assert view.status.state is RunState.STOPPED and set(states) <= {"finished", "cancelled"}
    assert 1 <= states.count("finished") < 4  # the one that ended, and the one training at the Ctrl-C

    resumed = subprocess.run([*SWEEP[:4], "--resume", sweep_id, "--runs", str(store.root)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    view = read_sweep(SweepStore(store), sweep_id)
    finished = sorted(t.values["learning_rate"] for t in view.trials if t.state == "finished")
    assert finished == [0.01, 0.02, 0.03, 0.04]  # the cancelled trial's values were asked again
    cancelled = states.count("cancelled")  # the trial queued at the Ctrl-C, if one was (the driver may not have
    # asked it yet when the first trial's line was printed)
    assert view.status.message.startswith("Finished: 4 of 4 trials ended (4 finished); "
                                          + (f"{cancelled} cancelled before training; " if cancelled else "")
                                          + "the best is trial ")


@pytest.mark.parametrize("args, message", [
    ([], "error: Say what to vary: --vary learning_rate=1e-3:1e-1:log --vary batch_size=16,32,64 (see --help)."),
    (["--vary", "learning_rate=1e-3:1e-1:log", "--trials", "500"],
     "error: trials == 500, must be an integer from 1 to 100 (ConvLab runs at most 100 trials a sweep)."),
    (["--vary", "learning_rate=1e-3:20:log"], "error: learning_rate=20: learning rate == 20.0, must be in (0, 10]."),
    (["--vary", "speed=1,2"], "error: 'speed' is not a setting a sweep can vary; it varies learning_rate,"),
    (["--vary", "filters=8,16", "--arch", "fast"], "error: filters: the model has 3 conv blocks; say which"),
    (["--vary", "learning_rate=1e-3:1e-1:log", "--parallel", "0"], "error: --parallel == 0, must be an integer from 1 "
     f"to {os.cpu_count()} (at most one training per core of this machine)."),
    (["--vary", "learning_rate=1e-3:1e-1:log", "--parallel", "2", "--ray", "http://127.0.0.1:1"],
     "error: --parallel is for this machine's training processes; on the Ray cluster at http://127.0.0.1:1 its slots"),
    (["--resume", "s20261206-101500-a1b2c3"], "error: s20261206-101500-a1b2c3: no such sweep in"),
    (["--resume", "../../etc"], "error: '../../etc' is not a sweep id."),
])
def test_bad_arguments_end_with_one_error_line(tmp_path, capsys, args, message):
    assert main(["--dataset", "digits-8x8", "--runs", str(tmp_path / "runs"), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or RunStore(tmp_path / "runs").run_ids() == []
