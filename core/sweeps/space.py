"""What a sweep varies: the settings the sliders offer, each with a range or a list of values.

A `Setting` names one slider's setting and what to try: a range (`low` to
`high`, on a log scale or not) or a list of values. Names are those of the
run's settings: the recipe's (`learning_rate`, `momentum`, `batch_size`,
`epochs`, `optimizer`, `schedule`), each conv block's (`conv1.filters`,
`conv1.kernel_size`, `conv1.dropout`), each dense layer's (`dense1.units`,
`dense1.dropout`) and augmentation's strengths (`rotation`, `zoom`, `shift`);
`filters`, `kernel_size` and `units` name the only block or dense layer of a
model that has one. The command line writes them as the dashboard keeps them:

    learning_rate=1e-3:1e-1:log     a range on a log scale (a grid takes GRID_POINTS of it; :5 for 5)
    conv1.dropout=0:0.5             a range
    batch_size=16,32,64             a list of values
    optimizer=sgd,adam

A setting's values are checked by the rules of the setting itself (the
recipe's and the architecture's own checks), applied to the sweep's model
and recipe: a sweep never asks a trial the sliders would refuse.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from core import limits
from core.checks import check_flag, check_scalar, from_mapping
from core.errors import ConvLabError, RunError
from core.model.architecture import Architecture
from core.training.config import OPTIMIZERS, SCHEDULES, TrainingConfig
from core.training.loop import check_trainable

GRID_POINTS = 4  # points a grid takes of a range, unless the range says how many
TRAINING = {"learning_rate": float, "momentum": float, "batch_size": int, "epochs": int, "optimizer": str,
            "schedule": str}
CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}
BLOCK = {"filters": int, "kernel_size": int, "dropout": float}
DENSE = {"units": int, "dropout": float}
AUGMENTATION = {"rotation": float, "zoom": float, "shift": float}
ALIASES = {"filters": ("conv", "filters"), "kernel_size": ("conv", "kernel_size"), "units": ("dense", "units")}
LABELS = {"learning_rate": "learning rate", "momentum": "momentum", "batch_size": "batch size", "epochs": "epochs",
          "optimizer": "optimizer", "schedule": "schedule", "filters": "filters", "kernel_size": "kernel size",
          "dropout": "dropout", "units": "units", "rotation": "rotation", "zoom": "zoom", "shift": "shift"}
_LAYER = re.compile(r"^(conv|dense)([1-9]\d?)\.([a-z_]+)$")

Value = float | int | str


@dataclass(frozen=True)
class Setting:
    """One setting a sweep varies: a range from `low` to `high` (`log`: on a log scale; `points`: how many a grid
    takes, 0 for GRID_POINTS) or a list of `values`."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    points: int = 0
    values: tuple[Value, ...] = ()

    @property
    def kind(self) -> type:
        """float, int or str: the type of the setting's values."""
        return kind_of(self.name)

    @property
    def is_range(self) -> bool:
        return not self.values

    @property
    def label(self) -> str:
        """'learning rate', 'conv 1 filters': the setting in words."""
        match = _LAYER.match(self.name)
        if match:
            return f"{match.group(1)} {match.group(2)} {LABELS.get(match.group(3), match.group(3))}"
        return LABELS.get(self.name, self.name)

    def grid(self) -> list[Value]:
        """The values a grid takes: the listed ones, or `points` of the range (log-spaced on a log scale,
        rounded to 3 significant digits; integers rounded, without repeats)."""
        if self.values:
            return list(self.values)
        count = self.points or GRID_POINTS
        spaced = (np.geomspace if self.log else np.linspace)(float(self.low), float(self.high), count)
        if self.kind is int:
            return list(dict.fromkeys(int(round(value)) for value in spaced))
        return list(dict.fromkeys(float(f"{value:.3g}") for value in spaced))

    def describe(self) -> str:
        """'learning_rate=0.001:0.1:log', 'batch_size=16,32,64': as the command line writes it."""
        if self.values:
            return f"{self.name}={','.join(f'{v:g}' if isinstance(v, float) else str(v) for v in self.values)}"
        parts = [f"{self.low:g}", f"{self.high:g}"] + (["log"] if self.log else []) + (
            [str(self.points)] if self.points else [])
        return f"{self.name}={':'.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "low": self.low, "high": self.high, "log": self.log, "points": self.points,
                "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: object) -> "Setting":
        """Inverse of `to_dict`, checked (but not against a model: `check_setting` does that)."""
        fields = from_mapping(cls, data, "a sweep's setting", RunError)
        values = fields.values
        if not isinstance(values, (list, tuple)):
            raise RunError("a sweep's setting: its values must be a list.")
        return cls(fields.name, fields.low, fields.high, fields.log, fields.points, tuple(values)).checked()

    def checked(self) -> "Setting":
        """Return self if it is well formed (a known name, a range or a list of the setting's type); RunError."""
        kind = kind_of(self.name)
        where = f"{self.name}"
        check_flag(self.log, f"{where}: log", RunError)
        check_scalar(self.points, f"{where}: grid points", RunError, integer=True, lo=0, hi=limits.MAX_SWEEP_VALUES,
                     what=f"an integer from 2 to {limits.MAX_SWEEP_VALUES} (0: {GRID_POINTS})")
        if self.points == 1:
            raise RunError(f"{where}: a grid needs at least 2 points of a range.")
        if self.values:
            if len(self.values) < 2 or len(self.values) > limits.MAX_SWEEP_VALUES:
                raise RunError(f"{where}: list from 2 to {limits.MAX_SWEEP_VALUES} values to try "
                               f"({len(self.values)} given).")
            if len(set(self.values)) < len(self.values):
                raise RunError(f"{where}: a value is listed twice.")
            for value in self.values:
                _check_type(value, kind, where)
            if kind is str and self.name in CHOICES:
                unknown = [v for v in self.values if v not in CHOICES[self.name]]
                if unknown:
                    raise RunError(f"{where}: {unknown[0]!r} is not one of {', '.join(CHOICES[self.name])}.")
            return self
        if kind is str:
            raise RunError(f"{where}: list the values to try ({','.join(CHOICES.get(self.name, ('a', 'b')))}); "
                           "it has no range.")
        _check_type(self.low, kind, where)
        _check_type(self.high, kind, where)
        if not self.low < self.high:
            raise RunError(f"{where}: the range {self.low:g} to {self.high:g} is empty (the low end comes first).")
        if self.log and self.low <= 0:
            raise RunError(f"{where}: a log scale needs a range above 0, not from {self.low:g}.")
        return self


def kind_of(name: object) -> type:
    """float, int or str for a setting's name; RunError naming what may be varied when it is none."""
    if isinstance(name, str):
        if name in TRAINING:
            return TRAINING[name]
        if name in AUGMENTATION:
            return AUGMENTATION[name]
        match = _LAYER.match(name)
        if match:
            fields = BLOCK if match.group(1) == "conv" else DENSE
            if match.group(3) in fields:
                return fields[match.group(3)]
    raise RunError(f"{str(name)[:40]!r} is not a setting a sweep can vary; it varies {', '.join(TRAINING)}, "
                   f"conv<N>.{{{','.join(BLOCK)}}}, dense<N>.{{{','.join(DENSE)}}}, {', '.join(AUGMENTATION)}.")


def _check_type(value: object, kind: type, where: str) -> None:
    if kind is str:
        if not isinstance(value, str):
            raise RunError(f"{where}: {value!r} is not one of its choices.")
        return
    check_scalar(value, where, RunError, integer=kind is int, lo=-math.inf, hi=math.inf,
                 what="an integer" if kind is int else "a number")


def settings_of(arch: Architecture) -> list[str]:
    """The names of every setting a sweep can vary on this model, in the sliders' order."""
    names = ["learning_rate", "batch_size", "epochs", "optimizer", "momentum", "schedule"]
    for number in range(1, len(arch.conv_blocks) + 1):
        names += [f"conv{number}.{field}" for field in BLOCK]
    for number in range(1, len(arch.dense_layers) + 1):
        names += [f"dense{number}.{field}" for field in DENSE]
    return names + list(AUGMENTATION)


def canonical(name: str, arch: Architecture) -> str:
    """`filters`, `kernel_size` and `units` as the only block's or layer's name; other names as they are."""
    if name not in ALIASES:
        return name
    layer, field = ALIASES[name]
    count = len(arch.conv_blocks) if layer == "conv" else len(arch.dense_layers)
    if count != 1:
        which = " or ".join(f"{layer}{n}.{field}" for n in range(1, count + 1)) or "none"
        raise RunError(f"{name}: the model has {count} {'conv blocks' if layer == 'conv' else 'dense layers'}; "
                       f"say which ({which}).")
    return f"{layer}1.{field}"


def parse(text: str, arch: Architecture) -> Setting:
    """A setting from the command line's `name=range` or `name=a,b,c` (see the module's docstring); RunError."""
    name, equals, what = str(text).partition("=")
    if not equals or not name.strip() or not what.strip():
        raise RunError(f"--vary {text!r}: write name=low:high[:log][:points] or name=a,b,c "
                       "(learning_rate=1e-3:1e-1:log, batch_size=16,32,64).")
    name = canonical(name.strip(), arch)
    kind = kind_of(name)
    try:
        if ":" in what:
            low, high, *options = [part.strip() for part in what.split(":")]
            log = "log" in options
            counts = [option for option in options if option != "log"]
            if len(counts) > 1 or options.count("log") > 1 or counts and not counts[0].isdigit():
                raise ValueError(f"'{':'.join(options)}' is not 'log' and a number of grid points")
            setting = Setting(name, _number(low, kind), _number(high, kind), log, int(counts[0]) if counts else 0)
        else:
            setting = Setting(name, values=tuple(_number(part.strip(), kind) for part in what.split(",")))
    except ValueError as error:
        raise RunError(f"--vary {text!r}: {error}.") from None
    return setting.checked()


def _number(text: str, kind: type) -> Value:
    if kind is str:
        return text
    try:
        return int(text) if kind is int else float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None


def apply(arch: Architecture, config: TrainingConfig, values: dict[str, Value]) -> tuple[Architecture, TrainingConfig]:
    """The model and recipe with `values` (setting name -> value) put in; not yet checked (`check_trial` does)."""
    blocks, dense = list(arch.conv_blocks), list(arch.dense_layers)
    augmentation, training = arch.augmentation, {}
    for name, value in values.items():
        if name in TRAINING:
            training[name] = value
        elif name in AUGMENTATION:
            augmentation = replace(augmentation, **{name: value})
        else:
            layer, number, field = _LAYER.match(name).groups()  # (the name was checked)
            layers = blocks if layer == "conv" else dense
            layers[int(number) - 1] = replace(layers[int(number) - 1], **{field: value})
    return (replace(arch, conv_blocks=tuple(blocks), dense_layers=tuple(dense), augmentation=augmentation),
            replace(config, **training))


def check_setting(setting: Setting, arch: Architecture, config: TrainingConfig, input_shape: tuple[int, int, int],
                  num_classes: int) -> None:
    """Refuse (RunError) a setting this model does not have, or a value its own checks refuse."""
    match = _LAYER.match(setting.name)
    if match:
        count = len(arch.conv_blocks) if match.group(1) == "conv" else len(arch.dense_layers)
        if int(match.group(2)) > count:
            what = "conv block" if match.group(1) == "conv" else "dense layer"
            raise RunError(f"{setting.name}: the model has {count} {what}{'s' if count != 1 else ''}.")
    values = setting.values or (setting.low, setting.high)
    for value in values:
        check_trial(arch, config, {setting.name: value}, input_shape, num_classes,
                    what=f"{setting.name}={value:g}" if isinstance(value, float) else f"{setting.name}={value}")


def check_trial(arch: Architecture, config: TrainingConfig, values: dict[str, Value],
                input_shape: tuple[int, int, int], num_classes: int,
                what: str = "") -> tuple[Architecture, TrainingConfig, int]:
    """`apply`, then the checks a Start on the Training page makes (the recipe, the model, its size at this batch
    size); returns the model, the recipe and its parameter count, or raises RunError saying what `what` breaks."""
    try:
        trial_arch, trial_config = apply(arch, config, values)
        params = check_trainable(trial_arch, input_shape, num_classes, trial_config.validated())
    except ConvLabError as error:
        raise RunError(f"{what or 'this trial'}: {error}") from None
    return trial_arch, trial_config, params


def largest(settings: Sequence[Setting]) -> dict[str, Value]:
    """The settings that make a model larger to train (filters, units, batch size), each at its largest value."""
    grows = [s for s in settings if s.name == "batch_size" or s.name.endswith((".filters", ".units"))]
    return {s.name: max(s.values) if s.values else s.high for s in grows}
