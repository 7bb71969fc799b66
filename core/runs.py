"""A run: one training as plain data (its spec) and as files (its record) in a store on disk.

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
    tensorboard/           TensorBoard event files (`tensorboard --logdir runs`)

Every whole-file write is atomic (`core.atomic`); the CSV logs grow one complete
line per write. Reading never trusts a run: a folder with a missing or broken
spec is listed as damaged, one whose owning process has gone without ending
it as interrupted. Nothing here imports TensorFlow or knows about processes
beyond reading whether one is alive; `core.engine` runs the trainings.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
import re
import secrets
import shutil
import socket
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from hashlib import sha256
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from core import atomic
from core.architecture import Architecture, architecture_from_dict, architecture_to_dict
from core.data import DatasetRef
from core.errors import ConvLabError, RunError
from core.training import Progress, TrainingConfig

SCHEMA = 1
RUNS_ENV = "CONVLAB_RUNS"
SPEC, STATUS, META = "spec.json", "status.json", "meta.json"
EPOCHS, BATCHES = "epochs.csv", "batches.csv"
MODEL, TEST, TEST_PROBABILITIES = "model.keras", "test.json", "test_probabilities.npy"
CONFUSION, FILTERS, TENSORBOARD = "confusion.json", "filters.npy", "tensorboard"
DATASETS = "datasets"  # uploaded dataset files, by content hash, shared by the runs made on them

EPOCH_FIELDS = ("epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy", "epoch_s", "elapsed_s", "partial")
BATCH_FIELDS = ("step", "epoch", "batch", "loss", "accuracy", "elapsed_s")
MAX_BATCH_ROWS = 2000
_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
_FOREIGN_HEARTBEAT_S = 120.0  # a run owned by another machine is presumed alive this long after its last beat
LIBRARIES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scikit-learn", "streamlit")


class RunState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    DAMAGED = "damaged"

    @property
    def is_active(self) -> bool:
        """Queued or training: something is still going to happen to the run."""
        return self in (RunState.QUEUED, RunState.RUNNING, RunState.STOPPING)

    @property
    def is_training(self) -> bool:
        return self in (RunState.RUNNING, RunState.STOPPING)


# --- the spec ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """What a training needs, as plain data: any process (or machine) can run it from this alone.

    `architecture` and `training` are None for a model the user uploaded.
    """

    dataset: DatasetRef
    architecture: Architecture | None
    training: TrainingConfig | None
    label: str = ""
    origin: str = "dashboard"  # dashboard, cli, upload

    @property
    def seed(self) -> int | None:
        return None if self.training is None else self.training.seed

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_dict(),
            "architecture": None if self.architecture is None else architecture_to_dict(self.architecture),
            "training": None if self.training is None else self.training.to_dict(),
            "label": self.label,
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, data: object) -> "RunSpec":
        """Inverse of `to_dict`; raises a ConvLabError saying what is wrong."""
        if not isinstance(data, Mapping):
            raise RunError(f"a run spec must be a mapping, not {type(data).__name__}.")
        architecture = data.get("architecture")
        training = data.get("training")
        return cls(
            dataset=DatasetRef.from_dict(data.get("dataset")),
            architecture=None if architecture is None else architecture_from_dict(architecture),
            training=None if training is None else TrainingConfig.from_dict(training),
            label=str(data.get("label", "")),
            origin=str(data.get("origin", "dashboard")),
        )

    def settings(self) -> dict[str, Any]:
        """Every setting as one flat mapping ('training.learning_rate': 0.01, 'conv1.filters': 32, ...)."""
        flat: dict[str, Any] = {"dataset": self.dataset.describe()}
        if self.architecture is not None:
            arch = self.architecture
            flat["architecture"] = arch.name
            for number, block in enumerate(arch.conv_blocks, start=1):
                flat.update({f"conv{number}.{key}": value for key, value in asdict(block).items()})
            for number, layer in enumerate(arch.dense_layers, start=1):
                flat.update({f"dense{number}.{key}": value for key, value in asdict(layer).items()})
            flat.update(_augmentation_settings(arch))
        if self.training is not None:
            flat.update({f"training.{key}": value for key, value in self.training.to_dict().items()})
        return flat


def _augmentation_settings(arch: Architecture) -> dict[str, Any]:
    augmentation = getattr(arch, "augmentation", None)
    if augmentation is None or not augmentation.enabled:
        return {}
    return {"augmentation": augmentation.describe()}


def spec_differences(specs: Iterable[RunSpec]) -> dict[str, list[Any]]:
    """Only the settings that differ between `specs`, each with one value per spec (None where absent)."""
    flats = [spec.settings() for spec in specs]
    keys: list[str] = []
    for flat in flats:
        keys.extend(key for key in flat if key not in keys)
    return {key: [flat.get(key) for flat in flats] for key in keys
            if len({repr(flat.get(key)) for flat in flats}) > 1}


def comparison_rows(store: "RunStore", run_ids: list[str]) -> list[dict[str, Any]]:
    """The runs' per-epoch curves side by side (one row per run and epoch), with the settings that differ."""
    specs = [store.spec(run_id) for run_id in run_ids]
    differing = spec_differences(specs)
    rows = []
    for index, run_id in enumerate(run_ids):
        test = store.test_metrics(run_id)
        settings = {key: values[index] for key, values in differing.items()}
        base = {"run": run_id, "label": store.label(run_id), "test_accuracy": None if test is None else test["accuracy"]}
        for epoch in store.epochs(run_id) or [{}]:
            rows.append(base | {key: epoch.get(key) for key in ("epoch", "loss", "accuracy", "val_loss",
                                                                 "val_accuracy", "partial")} | settings)
    return rows


def architecture_summary(arch: Architecture | None) -> str:
    """A few words: 'conv 16-32 (BN) · dense 64'."""
    if arch is None:
        return "uploaded model"
    filters = "-".join(str(block.filters) for block in arch.conv_blocks)
    extras = " (BN)" if any(block.batch_norm for block in arch.conv_blocks) else ""
    dense = " · dense " + "-".join(str(layer.units) for layer in arch.dense_layers) if arch.dense_layers else ""
    return f"conv {filters}{extras}{dense}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run depends on, read without importing them."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# --- status and process liveness ---------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The process that owns a run's state: the server while queued, the trainer while training."""

    pid: int
    host: str
    started: int  # the process's start time in clock ticks since boot, to tell a reused pid apart

    @classmethod
    def this_process(cls) -> "Owner":
        return cls(os.getpid(), socket.gethostname(), process_start_ticks(os.getpid()) or 0)

    def is_alive(self, heartbeat: float, now: float) -> bool:
        if self.host != socket.gethostname():
            return now - heartbeat < _FOREIGN_HEARTBEAT_S
        started = process_start_ticks(self.pid)
        return started is not None and (self.started == 0 or started == self.started)


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0  # no /proc here: alive, start time unknown
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] == "Z":
        return None  # a zombie has finished
    return int(fields[19])


@dataclass(frozen=True)
class RunStatus:
    """A run's state, message, times, progress and owner, as status.json holds them."""

    state: RunState
    message: str = ""
    created: float = 0.0
    started: float | None = None
    ended: float | None = None
    progress: Progress = field(default_factory=Progress)
    owner: Owner | None = None
    heartbeat: float = 0.0

    @property
    def training_s(self) -> float | None:
        """Seconds of training (its progress clock), or None before it starts."""
        return self.progress.elapsed_s if self.started is not None else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunStatus":
        """Inverse of `to_dict`; raises TypeError, ValueError or KeyError for a damaged status."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a status must be a mapping, not {type(data).__name__}")
        owner = data.get("owner")
        progress = {key: value for key, value in dict(data.get("progress") or {}).items()
                    if key in Progress.__dataclass_fields__}
        for key, value in progress.items():  # pages do arithmetic on these
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not (key == "eta_s" and value is None):
                raise TypeError(f"progress.{key} is not a number: {str(value)[:40]!r}")
        return cls(
            state=RunState(data["state"]),
            message=str(data.get("message", "")),
            created=float(data.get("created", 0.0)),
            started=None if data.get("started") is None else float(data["started"]),
            ended=None if data.get("ended") is None else float(data["ended"]),
            progress=Progress(**progress),
            owner=None if owner is None else Owner(int(owner["pid"]), str(owner["host"]), int(owner["started"])),
            heartbeat=float(data.get("heartbeat", 0.0)),
        )


def _interrupted(status: RunStatus) -> RunStatus:
    p = status.progress
    if status.state is RunState.QUEUED:
        message = "The server stopped before this run started."
    elif p.epoch:
        message = (f"The training process ended without finishing, in epoch {p.epoch}/{p.epochs} "
                   "(the server or the machine stopped, or the process was killed).")
    else:
        message = "The training process ended before its first batch (the server or the machine stopped)."
    return replace(status, state=RunState.INTERRUPTED, message=message)


def effective_status(status: RunStatus, now: float | None = None) -> RunStatus:
    """`status`, or the same run marked interrupted when it claims to be active but its owner is gone."""
    if not status.state.is_active:
        return status
    if status.owner is None or not status.owner.is_alive(status.heartbeat, now or time.time()):
        return _interrupted(status)
    return status


# --- CSV logs --------------------------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


class CsvLog:
    """Reads a growing CSV log incrementally: each call parses only the complete lines added since.

    Every cell of a metrics log is a number or True/False: a line with anything else is damaged and skipped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self._offset = 0
        self._header: list[str] | None = None

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:  # not written yet, or damaged (a folder, unreadable): what was read so far stands
            return self.rows
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self._offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            cells = next(csv.reader([line]), [])
            if self._header is None:
                self._header = cells
            elif len(cells) == len(self._header):
                row = {key: _parse_value(value) for key, value in zip(self._header, cells) if value != ""}
                if not any(isinstance(value, str) for value in row.values()):
                    self.rows.append(row)
        return self.rows


def _csv_line(fields: tuple[str, ...], record: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        ["" if record.get(key) is None else record.get(key) for key in fields])
    return buffer.getvalue()


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
        keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if self.epochs and k in self.epochs[0]]
        return {key: [float(row[key]) for row in self.epochs] for key in keys}


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
               state: RunState = RunState.QUEUED, message: str = "") -> str:
        """A new run folder with `spec` (and `details`: data source, params, ...) and a first status."""
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
            raise RunError(f"could not create a new run folder under {self.root}.")
        atomic.write_json(folder / SPEC, {"schema": SCHEMA, "spec": spec.to_dict(), "created": now,
                                          "versions": library_versions(), "details": dict(details or {})})
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
        return self.path(run_id) / MODEL

    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        return CsvLog(self.path(run_id) / EPOCHS).read()

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
            epochs_total=None if spec.training is None else spec.training.epochs,
            best_val_accuracy=max(val) if val else None,
            test_accuracy=None if test is None else float(test["accuracy"]),
            training_s=status.training_s, origin=spec.origin, has_model=self.has_model(run_id),
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

    # --- uploaded datasets ---
    def store_dataset_file(self, data: bytes, file_name: str, suffix: str) -> tuple[str, Path]:
        """Keep an uploaded dataset file by its content hash; returns (sha256, path)."""
        digest = sha256(data).hexdigest()
        folder = self.root / DATASETS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{digest}{suffix}"
        if not path.exists():
            atomic.write_bytes(path, data)
        return digest, path

    def stored_dataset_path(self, digest: str, suffix: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", digest or ""):
            raise RunError(f"'{str(digest)[:70]}' is not the SHA-256 of a stored dataset.")
        return self.root / DATASETS / f"{digest}{suffix}"


class RunReader:
    """One run, polled cheaply: each `snapshot()` reads status.json and only the new lines of the logs."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        folder = store.path(run_id)
        self.spec = store.spec(run_id)
        self._epochs = CsvLog(folder / EPOCHS)
        self._batches = CsvLog(folder / BATCHES)

    def snapshot(self) -> RunSnapshot:
        status = self.store.status(self.run_id)
        return RunSnapshot(
            run_id=self.run_id, spec=self.spec, status=status,
            epochs=tuple(self._epochs.read()), batches=tuple(self._batches.read()),
            label=self.store.label(self.run_id),
            test=self.store.test_metrics(self.run_id) if not status.state.is_active else None,
            has_model=self.store.has_model(self.run_id),
        )


class RunWriter:
    """Writes one run's record as it trains: the narrow sink the training callback reports to.

    Status writes for progress are throttled (state changes are written at once);
    batch rows are thinned to about MAX_BATCH_ROWS per run.
    """

    STATUS_EVERY_S = 0.5

    def __init__(self, store: RunStore, run_id: str, total_steps: int | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.folder = store.path(run_id)
        self._status = store.raw_status(run_id)
        self._last_status_write = 0.0
        self._batch_stride = 1
        self._last_batch_step = 0
        self._lock = threading.Lock()  # the training thread and a control thread (Stop) both update
        self.set_total_steps(total_steps)

    @property
    def status(self) -> RunStatus:
        return self._status

    def set_total_steps(self, total_steps: int | None) -> None:
        self._batch_stride = max(1, math.ceil((total_steps or 0) / MAX_BATCH_ROWS))

    def update(self, force: bool = False, **changes: Any) -> None:
        """Change the status; written now if the state changed or `force`, else at most twice a second."""
        with self._lock:
            now = time.time()
            state_changed = "state" in changes and changes["state"] is not self._status.state
            self._status = replace(self._status, heartbeat=now, **changes)
            if force or state_changed or now - self._last_status_write >= self.STATUS_EVERY_S:
                self.store.write_status(self.run_id, self._status)
                self._last_status_write = now

    def begin(self, message: str = "Training…") -> None:
        self.update(force=True, state=RunState.RUNNING, message=message, started=time.time(),
                    owner=Owner.this_process())

    def end(self, state: RunState, message: str) -> None:
        self.update(force=True, state=state, message=message, ended=time.time())

    # the sink the Keras callback reports to
    def on_batch(self, record: Mapping[str, Any], progress: Progress) -> None:
        step = int(record["step"])
        if step - self._last_batch_step >= self._batch_stride or step == 1:
            self._append(BATCHES, BATCH_FIELDS, record)
            self._last_batch_step = step
        self.update(progress=progress)

    def on_epoch(self, record: Mapping[str, Any]) -> None:
        self._append(EPOCHS, EPOCH_FIELDS, record)
        self.update(force=True)

    def _append(self, name: str, fields: tuple[str, ...], record: Mapping[str, Any]) -> None:
        path = self.folder / name
        if not path.exists():
            atomic.append_line(path, ",".join(fields))
        atomic.append_line(path, _csv_line(fields, record))

    def write_confusion(self, matrices: list[dict[str, Any]]) -> None:
        atomic.write_json(self.folder / CONFUSION, matrices)

    def write_filters(self, kernels: np.ndarray) -> None:
        atomic.write_npy(self.folder / FILTERS, kernels.astype(np.float32))
