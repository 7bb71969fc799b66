"""A run's spec: what to train, as plain data (dataset reference, architecture, training settings, seed).

Any process, or another machine, can train a run from its spec alone (a
continued run also needs its parent's final state, which its folder keeps);
the CLI repeats a run from it (`--from-run`), changes of course included.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from core.checks import from_mapping
from core.data.dataset import DatasetRef
from core.errors import RunError
from core.model.architecture import Architecture, architecture_from_dict, architecture_to_dict
from core.training.config import TrainingConfig
from core.training.controls import Change

LIBRARIES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scikit-learn", "streamlit")


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
