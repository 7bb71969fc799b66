"""A run's spec: what to train, as plain data (dataset reference, architecture, training settings, seed).

Any process, or another machine, can train a run from its spec alone (a
continued run also needs its parent's final state, which its folder keeps);
the CLI repeats a run from it (`--from-run`), changes of course included.
A trial of a sweep (`core.sweeps`) carries its `SweepTag`: which sweep, which
trial; a repeat or a continuation of it is no trial and drops the tag.
"""

from __future__ import annotations

import platform
import re
import secrets
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from core.checks import check_scalar, from_mapping
from core.data.dataset import DatasetRef
from core.errors import RunError
from core.model.architecture import Architecture, architecture_from_dict, architecture_to_dict
from core.training.config import TrainingConfig
from core.training.controls import Change

LIBRARIES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scikit-learn", "streamlit")
_SWEEP_ID = re.compile(r"^s\d{8}-\d{6}-[0-9a-f]{6}$")
MAX_TRIAL_NUMBER = 2**31 - 1  # Optuna's trial numbers, as a sweep tag may carry them


# --- a trial's tag -------------------------------------------------------------------------------


def new_sweep_id(now: float | None = None) -> str:
    """'s20261206-101500-a1b2c3': like a run id, with an s in front (a sweep's folder is never taken for a run)."""
    return f"s{time.strftime('%Y%m%d-%H%M%S', time.localtime(now or time.time()))}-{secrets.token_hex(3)}"


def check_sweep_id(value: object) -> str:
    """Return `value` if it is a sweep id (ids come from URLs and files: anything else is refused, never a path)."""
    if not isinstance(value, str) or not _SWEEP_ID.match(value):
        raise RunError(f"'{str(value)[:40]}' is not a sweep id.")
    return value


@dataclass(frozen=True)
class SweepTag:
    """Which sweep a run is a trial of, and which trial (Optuna's trial number, from 0)."""

    sweep_id: str = ""
    trial: int = -1

    def validated(self) -> "SweepTag":
        check_sweep_id(self.sweep_id)
        # (Optuna numbers every trial asked: a trial cancelled before it trained is asked again under a new number
        # when its sweep is resumed, so a sweep of MAX_SWEEP_TRIALS may number its trials past its budget)
        check_scalar(self.trial, "a sweep tag's trial", RunError, integer=True, lo=0, hi=MAX_TRIAL_NUMBER,
                     what=f"an integer from 0 to {MAX_TRIAL_NUMBER:,}")
        return self

    def describe(self) -> str:
        """'s20261206-101500-a1b2c3 #4' (trials are counted from 1 where people read them)."""
        return f"{self.sweep_id} #{self.trial + 1}"

    def to_dict(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "trial": self.trial}

    @classmethod
    def from_dict(cls, data: object) -> "SweepTag":
        return from_mapping(cls, data, "a sweep tag", RunError).validated()


# --- the spec ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """What a training needs, as plain data: any process (or machine) can run it from this alone.

    `architecture` and `training` are None for a model the user uploaded. `parent` is the run a
    continued run goes on from; `changes` are changes of course to make at given batches (a replay of
    a run that was changed by hand while it trained).
    """

    dataset: DatasetRef
    architecture: Architecture | None
    training: TrainingConfig | None
    label: str = ""
    origin: str = "dashboard"  # dashboard, cli, upload
    parent: str = ""
    changes: tuple[Change, ...] = ()
    sweep: SweepTag | None = None

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
            "parent": self.parent,
            "changes": [change.to_dict() for change in self.changes],
            "sweep": None if self.sweep is None else self.sweep.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: object) -> "RunSpec":
        """Inverse of `to_dict`; raises a ConvLabError saying what is wrong."""
        fields = from_mapping(_SpecFields, data, "a run spec", RunError)
        return cls(
            dataset=DatasetRef.from_dict(fields.dataset),
            architecture=None if fields.architecture is None else architecture_from_dict(fields.architecture),
            training=None if fields.training is None else TrainingConfig.from_dict(fields.training),
            label=str(fields.label),
            origin=str(fields.origin),
            parent=str(fields.parent or ""),
            changes=_changes(fields.changes),
            sweep=None if fields.sweep is None else SweepTag.from_dict(fields.sweep),
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


@dataclass(frozen=True)
class _SpecFields:
    """A spec as JSON holds it, before its parts are read."""

    dataset: object = None
    architecture: object = None
    training: object = None
    label: object = ""
    origin: object = "dashboard"
    parent: object = ""
    changes: object = ()
    sweep: object = None


def _changes(data: object) -> tuple[Change, ...]:
    if not isinstance(data, (list, tuple)) or len(data) > 10_000:
        raise RunError("a run spec's changes must be a list (of at most 10,000).")
    changes = tuple(Change.from_dict(item) for item in data)
    if any(change.step is None for change in changes):
        raise RunError("each change in a run spec says at which batch (step) it is made.")
    return changes


def _augmentation_settings(arch: Architecture) -> dict[str, Any]:
    augmentation = getattr(arch, "augmentation", None)
    if augmentation is None or not augmentation.enabled:
        return {}
    return {"augmentation": augmentation.describe()}


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run depends on, read without importing them."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
