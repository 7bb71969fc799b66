"""Stage 3's recipe: the training settings as plain data, checked, described in words, and their presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from core.checks import check_choice, check_flag, check_scalar, check_seed, from_mapping
from core.errors import TrainingConfigError

OPTIMIZERS = ("sgd", "adam", "rmsprop")
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}
SCHEDULES = ("constant", "cosine", "warmup-cosine")
MONITORS = ("val_loss", "val_accuracy")  # what early stopping and reduce-on-plateau watch
MONITOR_NAMES = {"val_loss": "validation loss", "val_accuracy": "validation accuracy"}
PLATEAU_FACTOR = 0.5  # reduce-on-plateau halves the learning rate


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: the optimizer and its settings, batch size, epochs, validation split, seed, and the
    recipes that watch the validation metrics (`monitor`): early stopping after `patience` epochs without
    improvement, keeping the best epoch's weights, and halving the learning rate after `plateau_patience`."""

    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    batch_size: int = 32
    epochs: int = 10
    validation_fraction: float = 0.1
    seed: int = 0
    schedule: str = "constant"
    early_stopping: bool = False
    patience: int = 3
    reduce_on_plateau: bool = False
    plateau_patience: int = 2
    monitor: str = "val_loss"

    @property
    def watches_validation(self) -> bool:
        return self.early_stopping or self.reduce_on_plateau

    def validated(self) -> "TrainingConfig":
        """Return self, or raise TrainingConfigError saying which setting is out of range."""
        check_choice(self.optimizer, "optimizer", OPTIMIZERS, TrainingConfigError)
        check_choice(self.schedule, "schedule", SCHEDULES, TrainingConfigError)
        check_scalar(self.learning_rate, "learning rate", TrainingConfigError, integer=False, lo=0, hi=10,
                     lo_open=True, what="in (0, 10]", kind_message="a number")
        check_scalar(self.momentum, "momentum", TrainingConfigError, integer=False, lo=0, hi=1, hi_open=True,
                     what="in [0, 1)", kind_message="a number")
        check_scalar(self.batch_size, "batch size", TrainingConfigError, integer=True, lo=1, hi=8192,
                     what="an integer from 1 to 8192")
        check_scalar(self.epochs, "epochs", TrainingConfigError, integer=True, lo=1, hi=500,
                     what="an integer from 1 to 500")
        check_scalar(self.validation_fraction, "validation fraction", TrainingConfigError, integer=False, lo=0,
                     hi=0.5, what="in [0, 0.5]", kind_message="a number")
        check_seed(self.seed, "seed", TrainingConfigError)
        check_flag(self.early_stopping, "early stopping", TrainingConfigError)
        check_flag(self.reduce_on_plateau, "reduce on plateau", TrainingConfigError)
        check_scalar(self.patience, "patience", TrainingConfigError, integer=True, lo=1, hi=100,
                     what="an integer from 1 to 100")
        check_scalar(self.plateau_patience, "plateau patience", TrainingConfigError, integer=True, lo=1, hi=100,
                     what="an integer from 1 to 100")
        check_choice(self.monitor, "monitor", MONITORS, TrainingConfigError)
        if self.watches_validation and self.validation_fraction == 0:
            raise TrainingConfigError(
                f"{'Early stopping' if self.early_stopping else 'Reduce on plateau'} watches the "
                f"{MONITOR_NAMES[self.monitor]}: hold out some training images for validation (validation "
                "fraction above 0), or turn it off.")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> "TrainingConfig":
        """Inverse of `to_dict`, validated; unknown settings are refused by name."""
        return from_mapping(cls, data, "training settings", TrainingConfigError).validated()

    def describe(self) -> str:
        """One sentence a person can check: the whole recipe."""
        name = OPTIMIZER_NAMES[self.optimizer]
        momentum = "" if self.optimizer == "adam" else f", momentum {self.momentum:g}"
        rate = {"constant": "constant", "cosine": "decaying to 0 (cosine)",
                "warmup-cosine": "rising over the first epoch, then decaying to 0 (cosine)"}[self.schedule]
        epochs = "1 epoch" if self.epochs == 1 else f"{self.epochs} epochs"
        return (f"{name} (learning rate {self.learning_rate:g}, {rate}{momentum}), sparse categorical "
                f"cross-entropy, batch {self.batch_size}, {epochs}, {self.validation_fraction:.0%} of the "
                f"training images held out for validation, seed {self.seed}.{self.describe_watching()}")

    def describe_watching(self) -> str:
        """The self-stopping recipes in words ("" when both are off), with a leading space."""
        watched = MONITOR_NAMES[self.monitor]
        parts = []
        if self.reduce_on_plateau:
            parts.append(f"The learning rate is halved when the {watched} has not improved for "
                         f"{_epochs(self.plateau_patience)}.")
        if self.early_stopping:
            parts.append(f"Training stops early when the {watched} has not improved for {_epochs(self.patience)}; "
                         "the best epoch's weights are kept.")
        return "".join(" " + part for part in parts)


def _epochs(count: int) -> str:
    return "1 epoch" if count == 1 else f"{count} epochs"


TRAINING_PRESETS: dict[str, TrainingConfig] = {
    # The lab's recipe: SGD lr 0.01 momentum 0.9, sparse categorical cross-entropy, 10 epochs, batch 32.
    "lab": TrainingConfig(optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=32, epochs=10),
    # Pairs with the `fast` architecture: Adam warming up over one epoch to 0.01, then a cosine decay to 0, on
    # batches of 64 for 12 epochs (99.05 / 99.15 / 99.14 % on mnist-10k for seeds 0 / 1 / 2 in about 30 s,
    # bench/RESULTS.md).
    "fast": TrainingConfig(optimizer="adam", learning_rate=0.01, momentum=0.0, batch_size=64, epochs=12,
                           schedule="warmup-cosine"),
    # Pairs with the `photos` architecture: the same schedule to 0.005 on batches of 128 for 20 epochs
    # (93.80 / 93.52 / 93.60 % on full Fashion-MNIST for seeds 0 / 1 / 2 in 423-461 s, bench/RESULTS.md).
    "photos": TrainingConfig(optimizer="adam", learning_rate=0.005, momentum=0.0, batch_size=128, epochs=20,
                             schedule="warmup-cosine"),
}


TRAINING_PRESET_DESCRIPTIONS = {
    "lab": "SGD 0.01, momentum 0.9, batch 32, 10 epochs (the lab)",
    "fast": "Adam up to 0.01 (one epoch of warm-up, then cosine decay), batch 64, 12 epochs (pairs with the fast "
            "model)",
    "photos": "Adam up to 0.005 (one epoch of warm-up, then cosine decay), batch 128, 20 epochs (pairs with the "
              "photos model)",
}


def override(config: TrainingConfig, **changes: object) -> TrainingConfig:
    """`config` with the given non-None settings replaced, validated."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None}).validated()
