"""The run store: a folder of runs, each run a folder of files that only this module names.

A run is a folder under the store's root (default `runs/`, `CONVLAB_RUNS` to
move it), named by its id:

    spec.json              what to train: dataset reference, architecture, training settings, seed,
                           where the data came from, library versions (written once)
    status.json            state, message, times, progress and the process that owns the state
    meta.json              what the user edits afterwards (the label)
    epochs.csv             per-epoch metrics, one line appended as each epoch ends (as CSVLogger)
    batches.csv            per-batch metrics, thinned to at most about MAX_BATCH_ROWS lines
    model.keras            the model, written when training ends, is stopped or is interrupted
    test.json              test-set metrics once evaluated, with test_probabilities.npy
    confusion.json         the validation confusion matrix after each epoch (a fixed subset)
    filters.npy            the first convolution's kernels, refreshed while training
    curves.html            the curves as a page that works offline (the CLI writes it)
    tensorboard/           TensorBoard event files (`tensorboard --logdir runs`)
    exports/               the model exported for use outside ConvLab (model.onnx, model.tflite, ...), each
                           with the record of its check (model.onnx.json); made on demand
    events.jsonl           what happened on the way: changes of course (who, at which batch), pauses,
                           resumes, reduce-on-plateau, early stopping, the epoch whose weights were kept
    checkpoints/           the training's whole state (`core.training.checkpoint`): last.npz after every
                           epoch and on pause or stop, best.npz the best epoch's (early stopping),
                           start.npz the parent's final state a continued run starts from
    placement.json         where it trained on a cluster: each node, from which batch on

The store's root holds `.convlab-store`, its identity: a training process on another machine checks it
sees the same store as the server that sent it the run; and, when runs train on a cluster, `.cluster/`:
each cluster slot's inbox and outbox (`core.engine.cluster_slot`) and the server's heartbeat.

Beside the runs, `datasets/` keeps uploaded datasets (`core.runs.uploads`) and `sweeps/` the sweeps
(`core.sweeps.store`, which names the files inside it).

Every file of a run is read and written through `RunStore`: no other module
names them. Every whole-file write is atomic (`core.atomic`); the CSV logs grow
one complete line per write. Reading never trusts a run: a folder with a
missing or broken spec is listed as damaged, one whose owning process has gone
without ending it as interrupted. Nothing here imports TensorFlow (a model is
saved by its own `save`) or knows about processes beyond reading whether one
is alive; `core.engine` runs the trainings.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from core import atomic
from core.errors import ConvLabError, RunError
from core.model.architecture import architecture_summary
from core.runs.logs import BATCH_FIELDS, EPOCH_FIELDS, CsvLog, JsonLog, csv_line, csv_text, json_line
from core.runs.spec import RunSpec, library_versions
from core.runs.status import Owner, RunState, RunStatus, effective_status
from core.runs.uploads import Upload, UploadStore
from core.training.progress import history as history_of

SCHEMA = 1
RUNS_ENV = "CONVLAB_RUNS"
SPEC, STATUS, META = "spec.json", "status.json", "meta.json"
EPOCHS, BATCHES = "epochs.csv", "batches.csv"
MODEL, TEST, TEST_PROBABILITIES = "model.keras", "test.json", "test_probabilities.npy"
CONFUSION, FILTERS, TENSORBOARD, CURVES = "confusion.json", "filters.npy", "tensorboard", "curves.html"
EXPORTS = "exports"  # the model in other formats (core.export.formats), made on demand
EXPORT_SUFFIXES = (".keras", ".zip", ".onnx", ".tflite")
EVENTS, CHECKPOINTS, PLACEMENT = "events.jsonl", "checkpoints", "placement.json"
IDENTITY, CLUSTER = ".convlab-store", ".cluster"
CHECKPOINT_NAMES = ("last", "best", "start")
DATASETS = "datasets"  # uploaded dataset files, by content hash, shared by the runs made on them
SWEEPS = "sweeps"  # one folder per sweep (core.sweeps.store)
PRUNED = "pruned"  # the event a sweep appends to a trial it stopped early (core.sweeps.driver)
_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


# --- snapshots and summaries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSnapshot:
    """Everything a page shows of one run at one moment (immutable)."""

    run_id: str
    spec: RunSpec
    status: RunStatus
    epochs: tuple[dict, ...]
    batches: tuple[dict, ...]
    label: str
    test: Mapping[str, Any] | None
    has_model: bool
    events: tuple[dict, ...] = ()

    @property
    def state(self) -> RunState:
        return self.status.state

    @property
    def usable(self) -> bool:
        """Has weights that can classify: finished, stopped or interrupted with a saved model."""
        return self.has_model and not self.state.is_active

    def final_metrics(self) -> dict:
        return dict(self.epochs[-1]) if self.epochs else {}

    def history(self) -> dict[str, list[float]]:
        """Per-epoch metrics as Keras' History.history: {'loss': [...], 'val_accuracy': [...], ...}."""
        return history_of(self.epochs)


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs table."""

    run_id: str
    state: RunState
    message: str
    created: float
    label: str = ""
    dataset: str = ""
    dataset_key: str = ""
    architecture: str = ""
    params: int | None = None
    epochs_done: int = 0
    epochs_total: int | None = None
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    training_s: float | None = None
    origin: str = ""
    has_model: bool = False
    made_by: str = ""  # the workspace key of the browser that made it; "" for the CLI and scripts
    parent: str = ""  # the run it continues, if it does
    sweep: str = ""  # the sweep and trial it is ('s20261206-101500-a1b2c3 #4'), if it is a trial
    pruned: bool = False  # a trial its sweep stopped early (its state is stopped)

    @property
    def state_words(self) -> str:
        """Its state as the Runs page says it: 'pruned' for a pruned trial, else the state."""
        return PRUNED if self.pruned else self.state.value

    def editable_by(self, workspace: str) -> bool:
        """May the browser with this workspace key label or delete it? Its maker, or anyone for a CLI run."""
        return not self.made_by or self.made_by == workspace

    def as_record(self) -> dict[str, Any]:
        return asdict(self) | {"state": self.state.value}


def new_run_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


def default_root() -> Path:
    """`CONVLAB_RUNS`, or `runs/` in the working folder."""
    return Path(os.environ.get(RUNS_ENV) or "runs")


class RunStore:
    """The runs under one root folder: create, read, list, label, delete."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # --- paths ---
    def path(self, run_id: str) -> Path:
        """The folder of `run_id`; refuses anything that is not a run id (ids come from URLs)."""
        if not isinstance(run_id, str) or not _ID.match(run_id):
            raise RunError(f"'{str(run_id)[:40]}' is not a run id.")
        return self.root / run_id

    def exists(self, run_id: str) -> bool:
        try:
            return (self.path(run_id) / SPEC).is_file()
        except RunError:
            return False

    def run_ids(self) -> list[str]:
        """Every run folder, newest first."""
        try:
            entries = [entry.name for entry in os.scandir(self.root) if entry.is_dir() and _ID.match(entry.name)]
        except FileNotFoundError:
            return []
        return sorted(entries, reverse=True)

    # --- creating ---
    def create(self, spec: RunSpec, details: Mapping[str, Any] | None = None, owner: Owner | None = None,
               state: RunState = RunState.QUEUED, message: str = "", made_by: str = "") -> str:
        """A new run folder with `spec` (and `details`: data source, params, ...) and a first status.

        `made_by` is whose run it is: a browser's workspace key on the dashboard ("" for the CLI and
        scripts, whose runs belong to whoever runs the server). Only they may label or delete it.
        """
        now = time.time()
        for _ in range(5):
            run_id = new_run_id(now)
            folder = self.root / run_id
            try:
                folder.mkdir(parents=True)
                break
            except FileExistsError:
                continue
        else:
            raise RunError("could not create a new run folder in the run store.")
        atomic.write_json(folder / SPEC, {"schema": SCHEMA, "spec": spec.to_dict(), "created": now,
                                          "made_by": made_by, "versions": library_versions(),
                                          "details": dict(details or {})})
        self.write_status(run_id, RunStatus(state=state, message=message, created=now,
                                            owner=owner or Owner.this_process(), heartbeat=now))
        return run_id

    # --- reading ---
    def spec_file(self, run_id: str) -> dict[str, Any]:
        """The whole spec.json: the spec, its details and the library versions."""
        try:
            data = atomic.read_json(self.path(run_id) / SPEC)
        except FileNotFoundError:
            raise RunError(f"run {run_id}: spec.json is missing.") from None
        except (OSError, ValueError) as exc:
            raise RunError(f"run {run_id}: spec.json cannot be read ({exc}).") from None
        if not isinstance(data, dict) or "spec" not in data:
            raise RunError(f"run {run_id}: spec.json holds no spec.")
        return data

    def spec(self, run_id: str) -> RunSpec:
        try:
            return RunSpec.from_dict(self.spec_file(run_id)["spec"])
        except RunError:
            raise
        except (ConvLabError, KeyError, TypeError, ValueError) as exc:
            raise RunError(f"run {run_id}: spec.json is not a valid spec ({exc}).") from None

    def raw_status(self, run_id: str) -> RunStatus:
        """status.json as written (raises RunError when it is missing or broken)."""
        try:
            return RunStatus.from_dict(atomic.read_json(self.path(run_id) / STATUS))
        except FileNotFoundError:
            raise RunError(f"run {run_id}: status.json is missing.") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RunError(f"run {run_id}: status.json cannot be read ({exc}).") from None

    def status(self, run_id: str) -> RunStatus:
        """The run's status, marked interrupted when its owning process is gone."""
        try:
            return effective_status(self.raw_status(run_id))
        except RunError as error:
            created = self._created(run_id)
            return RunStatus(state=RunState.INTERRUPTED, message=f"{error} It never reported a state.",
                             created=created)

    def label(self, run_id: str) -> str:
        try:
            meta = atomic.read_json(self.path(run_id) / META)
            return str(meta.get("label", "")) if isinstance(meta, dict) else ""
        except (OSError, ValueError):
            try:
                return self.spec(run_id).label
            except RunError:
                return ""

    def test_metrics(self, run_id: str) -> dict[str, Any] | None:
        try:
            data = atomic.read_json(self.path(run_id) / TEST)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and "accuracy" in data else None

    def test_probabilities(self, run_id: str) -> np.ndarray | None:
        try:
            return np.load(self.path(run_id) / TEST_PROBABILITIES, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def has_model(self, run_id: str) -> bool:
        return (self.path(run_id) / MODEL).is_file()

    def model_path(self, run_id: str) -> Path:
        """The run's model.keras (for Keras to load; it may not exist yet: see `has_model`)."""
        return self.path(run_id) / MODEL

    def model_bytes(self, run_id: str) -> bytes:
        return self.model_path(run_id).read_bytes()

    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        return CsvLog(self.path(run_id) / EPOCHS).read()

    def filters(self, run_id: str) -> np.ndarray | None:
        """The first convolution's kernels as the training last wrote them, or None."""
        try:
            return np.load(self.path(run_id) / FILTERS, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def confusion(self, run_id: str) -> list[dict[str, Any]] | None:
        """The confusion matrices recorded after each epoch (JSON records), or None when there are none.

        Raises RunError when the file is damaged.
        """
        path = self.path(run_id) / CONFUSION
        try:
            records = atomic.read_json(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise RunError(f"run {run_id}: {CONFUSION} cannot be read ({error}).") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) and "epoch" in r and "matrix" in r
                                                     for r in records):
            raise RunError(f"run {run_id}: {CONFUSION} is not a list of {{'epoch', 'matrix'}} records.")
        return records or None

    def events(self, run_id: str) -> list[dict[str, Any]]:
        """What happened on the way (JSON records, oldest first)."""
        return JsonLog(self.path(run_id) / EVENTS).read()

    def was_pruned(self, run_id: str) -> bool:
        """Did its sweep stop it early (a 'pruned' event)?"""
        return any(event.get("kind") == PRUNED for event in self.events(run_id))

    def checkpoint_bytes(self, run_id: str, name: str) -> bytes | None:
        """The checkpoint `name` ("last", "best", "start") as written, or None when there is none."""
        try:
            return self._checkpoint_path(run_id, name).read_bytes()
        except OSError:
            return None

    def has_checkpoint(self, run_id: str, name: str) -> bool:
        return self._checkpoint_path(run_id, name).is_file()

    def _checkpoint_path(self, run_id: str, name: str) -> Path:
        if name not in CHECKPOINT_NAMES:
            raise RunError(f"'{name}' is not a checkpoint of a run.")
        return self.path(run_id) / CHECKPOINTS / f"{name}.npz"

    def tensorboard_dir(self, run_id: str) -> Path:
        """Where TensorBoard's event files for this run go (its writer makes the folder)."""
        return self.path(run_id) / TENSORBOARD

    def reader(self, run_id: str) -> "RunReader":
        return RunReader(self, run_id)

    def _created(self, run_id: str) -> float:
        try:
            return time.mktime(time.strptime(run_id[:15], "%Y%m%d-%H%M%S"))
        except ValueError:
            return 0.0

    # --- listing ---
    def summary(self, run_id: str) -> RunSummary:
        """One row of the runs table; never raises: a broken run becomes a 'damaged' row saying why."""
        try:
            spec_file = self.spec_file(run_id)
            spec = self.spec(run_id)
        except RunError as error:
            return RunSummary(run_id, RunState.DAMAGED, str(error), self._created(run_id),
                              has_model=self.has_model(run_id))
        status = self.status(run_id)
        epochs = self.epochs(run_id)
        details = spec_file.get("details") if isinstance(spec_file.get("details"), dict) else {}
        val = [row["val_accuracy"] for row in epochs if isinstance(row.get("val_accuracy"), float)]
        test = self.test_metrics(run_id)
        return RunSummary(
            run_id=run_id, state=status.state, message=status.message,
            created=float(spec_file.get("created") or status.created),
            label=self.label(run_id), dataset=str(details.get("dataset_name") or spec.dataset.describe()),
            dataset_key=spec.dataset.describe(), architecture=architecture_summary(spec.architecture),
            params=details.get("params") if isinstance(details.get("params"), int) else None,
            epochs_done=sum(1 for row in epochs if not row.get("partial")),
            epochs_total=status.progress.epochs or (None if spec.training is None else spec.training.epochs),
            best_val_accuracy=max(val) if val else None,
            test_accuracy=None if test is None else float(test["accuracy"]),
            training_s=status.training_s, origin=spec.origin, has_model=self.has_model(run_id),
            made_by=str(spec_file.get("made_by") or ""), parent=spec.parent,
            sweep="" if spec.sweep is None else spec.sweep.describe(),
            pruned=spec.sweep is not None and status.state is RunState.STOPPED and self.was_pruned(run_id),
        )

    def list(self) -> list[RunSummary]:
        """Every run, newest first; damaged and half-written runs included, marked as such."""
        return sorted((self.summary(run_id) for run_id in self.run_ids()),
                      key=lambda summary: (summary.created, summary.run_id), reverse=True)

    # --- writing (by the owner of a run) ---
    def write_status(self, run_id: str, status: RunStatus) -> None:
        atomic.write_json(self.path(run_id) / STATUS, status.to_dict())

    def set_label(self, run_id: str, label: str) -> None:
        atomic.write_json(self.path(run_id) / META, {"label": str(label)[:200]})

    def append_epoch(self, run_id: str, record: Mapping[str, Any]) -> None:
        self._append(run_id, EPOCHS, EPOCH_FIELDS, record)

    def append_batch(self, run_id: str, record: Mapping[str, Any]) -> None:
        self._append(run_id, BATCHES, BATCH_FIELDS, record)

    def _append(self, run_id: str, name: str, fields: tuple[str, ...], record: Mapping[str, Any]) -> None:
        path = self.path(run_id) / name
        if not path.exists():
            atomic.append_line(path, ",".join(fields))
        atomic.append_line(path, csv_line(fields, record))

    def identity(self, create: bool = False) -> str:
        """The store's identity ("" when it has none; `create` gives it one): which store a node sees."""
        path = self.root / IDENTITY
        try:
            return path.read_text().strip()
        except OSError:
            if not create:
                return ""
        self.root.mkdir(parents=True, exist_ok=True)
        try:  # (exclusive: two servers starting on one store agree on one identity)
            with open(path, "x") as handle:
                handle.write(secrets.token_hex(8) + "\n")
        except FileExistsError:
            pass
        return path.read_text().strip()

    def placement(self, run_id: str) -> list[dict[str, Any]]:
        """The cluster nodes that trained the run, in order ([] for a run trained on the server's machine)."""
        try:
            records = atomic.read_json(self.path(run_id) / PLACEMENT)
        except (OSError, ValueError):
            return []
        return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []

    def add_placement(self, run_id: str, record: Mapping[str, Any]) -> None:
        """A cluster node took the run (at its start, or to resume it)."""
        atomic.write_json(self.path(run_id) / PLACEMENT, [*self.placement(run_id), dict(record)])

    def cluster_file(self, name: str) -> Path:
        """A file of the cluster's slots and server under `.cluster/` (`name`: letters, digits, '-', '.')."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,80}", name):
            raise RunError(f"'{name[:40]}' is not a cluster file name.")
        folder = self.root / CLUSTER
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def append_event(self, run_id: str, record: Mapping[str, Any]) -> None:
        atomic.append_line(self.path(run_id) / EVENTS, json_line(record))

    def write_checkpoint(self, run_id: str, name: str, data: bytes) -> None:
        path = self._checkpoint_path(run_id, name)
        path.parent.mkdir(exist_ok=True)
        atomic.write_bytes(path, data)

    def rewind(self, run_id: str, epochs: int, step: int) -> None:
        """Forget what a run recorded after its checkpoint (`epochs` whole epochs, `step` batches): it trains
        on from there. Each log is rewritten whole (readers see a new file) only if it went further."""
        folder = self.path(run_id)
        for name, fields, keep in ((EPOCHS, EPOCH_FIELDS, lambda row: row.get("epoch", 0) <= epochs
                                    and not row.get("partial")),
                                   (BATCHES, BATCH_FIELDS, lambda row: row.get("step", 0) <= step)):
            rows = CsvLog(folder / name).read()
            kept = [row for row in rows if keep(row)]
            if len(kept) < len(rows):
                atomic.write_bytes(folder / name, csv_text(fields, kept).encode())
        events = self.events(run_id)
        kept_events = [event for event in events if int(event.get("step", 0)) <= step]
        if len(kept_events) < len(events):
            atomic.write_bytes(folder / EVENTS, "".join(json_line(e) + "\n" for e in kept_events).encode())
        try:
            matrices = self.confusion(run_id) or []
        except RunError:
            matrices = []
        if any(record["epoch"] > epochs for record in matrices):
            self.write_confusion(run_id, [record for record in matrices if record["epoch"] <= epochs])

    def start_from(self, run_id: str, parent: "RunStore", parent_id: str, checkpoint: bytes, epochs: int,
                   step: int) -> None:
        """A continued run begins with its parent's final `checkpoint` (as its start) and the parent's records
        up to there (`epochs` epochs, `step` batches), so that its curves show both parts joined. (A replay of
        a continued run begins as that run did: `parent` is then that run.)"""
        source, folder = parent.path(parent_id), self.path(run_id)
        self.write_checkpoint(run_id, "start", checkpoint)
        for name in (EPOCHS, BATCHES, EVENTS, CONFUSION, FILTERS):
            if (source / name).is_file():
                atomic.write_bytes(folder / name, (source / name).read_bytes())
        self.rewind(run_id, epochs, step)

    def write_confusion(self, run_id: str, matrices: list[dict[str, Any]]) -> None:
        atomic.write_json(self.path(run_id) / CONFUSION, matrices)

    def write_filters(self, run_id: str, kernels: np.ndarray) -> None:
        atomic.write_npy(self.path(run_id) / FILTERS, kernels.astype(np.float32))

    def save_model(self, run_id: str, save: Callable[[Path], None]) -> None:
        """Write model.keras atomically: `save(path)` writes it (Keras' `model.save`) to a temporary name first."""
        atomic.replace_from(self.path(run_id) / MODEL, save, suffix=".keras")

    def write_model_bytes(self, run_id: str, data: bytes) -> None:
        atomic.write_bytes(self.path(run_id) / MODEL, data)

    def write_curves_html(self, run_id: str, html: str) -> Path:
        """Keep the curves as a page that works offline; returns where."""
        path = self.path(run_id) / CURVES
        atomic.write_bytes(path, html.encode())
        return path

    def keep_export(self, run_id: str, suffix: str, data: bytes, record: Mapping[str, Any]) -> Path:
        """Keep the model exported as `suffix` (exports/model<suffix>) with the record of its check; returns where.

        The record notes the model file it was made from: `kept_export` ignores it once the model changes.
        """
        folder = self.path(run_id) / EXPORTS
        path = folder / f"model{self._export_suffix(suffix)}"
        folder.mkdir(exist_ok=True)
        atomic.write_bytes(path, data)
        atomic.write_json(path.with_name(path.name + ".json"),
                          dict(record) | {"model_mtime_ns": self.model_path(run_id).stat().st_mtime_ns})
        return path

    def kept_export(self, run_id: str, suffix: str) -> tuple[Path, dict[str, Any]] | None:
        """The model exported as `suffix` and the record of its check, if one was made from the current model."""
        path = self.path(run_id) / EXPORTS / f"model{self._export_suffix(suffix)}"
        try:
            record = atomic.read_json(path.with_name(path.name + ".json"))
            current = self.model_path(run_id).stat().st_mtime_ns
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("model_mtime_ns") != current or not path.is_file():
            return None
        return path, record

    @staticmethod
    def _export_suffix(suffix: str) -> str:
        if suffix not in EXPORT_SUFFIXES:
            raise RunError(f"'{suffix[:20]}' is not an export format ({', '.join(EXPORT_SUFFIXES)}).")
        return suffix

    def write_test(self, run_id: str, metrics: Mapping[str, Any], probabilities: np.ndarray) -> None:
        folder = self.path(run_id)
        atomic.write_npy(folder / TEST_PROBABILITIES, probabilities.astype(np.float32))
        atomic.write_json(folder / TEST, dict(metrics))

    def mark_interrupted(self) -> list[str]:
        """Write 'interrupted' into every run that claims to be active but whose owner has gone."""
        changed = []
        for run_id in self.run_ids():
            try:
                raw = self.raw_status(run_id)
            except RunError:
                continue
            effective = effective_status(raw)
            if effective.state is not raw.state:
                self.write_status(run_id, replace(effective, ended=effective.ended or time.time()))
                changed.append(run_id)
        return changed

    def delete(self, run_id: str) -> None:
        """Remove a run's folder; an active run must be stopped or cancelled first."""
        folder = self.path(run_id)
        if not folder.is_dir():
            raise RunError(f"run {run_id} does not exist.")
        if self.status(run_id).state.is_active:
            raise RunError(f"run {run_id} is still {self.status(run_id).state.value}: stop or cancel it first.")
        trash = folder.with_name(f".deleted-{run_id}-{secrets.token_hex(2)}")
        os.replace(folder, trash)  # gone from listings at once, even if removing the files takes a while
        shutil.rmtree(trash, ignore_errors=True)

    @property
    def sweeps_root(self) -> Path:
        """The folder of this store's sweeps (`core.sweeps.store.SweepStore` names what is inside)."""
        return self.root / SWEEPS

    # --- uploads (datasets by content hash, and uploaded model files), under one quota ---
    @property
    def uploads(self) -> UploadStore:
        return UploadStore(self.root / DATASETS)

    def store_dataset_file(self, data: bytes, file_name: str, suffix: str, uploaded_by: str = "") -> tuple[str, Path]:
        """Keep a checked upload by its content hash, within the uploads' quota (DataError); returns (sha256, path)."""
        return self.uploads.keep(data, file_name, suffix, uploaded_by, others=self.uploaded_model_bytes())

    def check_upload_room(self, size: int) -> None:
        """Refuse (DataError) an upload of `size` bytes that would take the store past its uploads' quota."""
        self.uploads.check_room(size, others=self.uploaded_model_bytes())

    def stored_dataset_path(self, digest: str, suffix: str) -> Path:
        return self.uploads.path(digest, suffix)

    def uploaded_model_bytes(self) -> int:
        """What the model files of uploaded-model runs take."""
        total = 0
        for run_id in self.run_ids():
            try:
                if self.spec(run_id).origin == "upload":
                    total += self.model_path(run_id).stat().st_size
            except (RunError, OSError):
                continue
        return total

    def upload_users(self) -> dict[str, list[str]]:
        """For each uploaded dataset's SHA-256, the runs made on it."""
        users: dict[str, list[str]] = {}
        for run_id in self.run_ids():
            try:
                ref = self.spec(run_id).dataset
            except RunError:
                continue
            if ref.kind == "stored" or ref.kind == "images" and ref.option_dict.get("stored"):
                users.setdefault(ref.name, []).append(run_id)
        return users

    def usage(self) -> "StoreUsage":
        """What the store holds, in files and bytes."""
        run_bytes = sum(_folder_bytes(self.root / run_id) for run_id in self.run_ids())
        uploads = self.uploads.listing()
        return StoreUsage(len(self.run_ids()), run_bytes, uploads, self.upload_users(), self.uploaded_model_bytes())


@dataclass(frozen=True)
class StoreUsage:
    """What a run store holds: its runs (all their files) and its uploads, against the uploads' quota."""

    runs: int
    run_bytes: int  # every file of every run, uploaded model files included
    uploads: list[Upload]
    upload_users: dict[str, list[str]]  # SHA-256 -> the runs made on it
    uploaded_model_bytes: int

    @property
    def upload_bytes(self) -> int:
        """What counts against the quota: uploaded datasets and uploaded model files."""
        return sum(upload.size for upload in self.uploads) + self.uploaded_model_bytes

    def unused(self, workspace: str | None = None) -> list[Upload]:
        """Uploads no run uses (those uploaded by `workspace` only, when given)."""
        return [upload for upload in self.uploads if upload.digest not in self.upload_users
                and (workspace is None or workspace in upload.uploaded_by)]


def _folder_bytes(folder: Path) -> int:
    total = 0
    for base, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                continue
    return total


class RunReader:
    """One run, polled cheaply: each `snapshot()` reads status.json and only the new lines of the logs."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        folder = store.path(run_id)
        self.spec = store.spec(run_id)
        self._epochs = CsvLog(folder / EPOCHS)
        self._batches = CsvLog(folder / BATCHES)
        self._events = JsonLog(folder / EVENTS)

    def snapshot(self) -> RunSnapshot:
        status = self.store.status(self.run_id)
        return RunSnapshot(
            run_id=self.run_id, spec=self.spec, status=status,
            epochs=tuple(self._epochs.read()), batches=tuple(self._batches.read()),
            label=self.store.label(self.run_id),
            test=self.store.test_metrics(self.run_id) if not status.state.is_active else None,
            has_model=self.store.has_model(self.run_id), events=tuple(self._events.read()),
        )
