"""Early stopping and reduce-on-plateau: what the watcher says after each epoch, and what a checkpoint keeps."""

from __future__ import annotations

from core.training.config import TrainingConfig
from core.training.stopping import Watcher


def verdicts(watcher: Watcher, values: list[float], key: str = "val_loss") -> list[tuple[bool, bool, bool]]:
    out = []
    for epoch, value in enumerate(values, start=1):
        verdict = watcher.after_epoch(epoch, {key: value})
        out.append((verdict.improved, verdict.stop, verdict.reduce))
    return out


def test_early_stopping_stops_after_patience_epochs_without_a_lower_loss():
    watcher = Watcher.of(TrainingConfig(early_stopping=True, patience=2))
    assert verdicts(watcher, [0.5, 0.4, 0.45, 0.4]) == [(True, False, False), (True, False, False),
                                                         (False, False, False), (False, True, False)]
    assert watcher.best_epoch == 2 and watcher.best == 0.4  # an equal value is no improvement


def test_accuracy_improves_upwards():
    watcher = Watcher.of(TrainingConfig(early_stopping=True, patience=1, monitor="val_accuracy"))
    assert [v[0] for v in verdicts(watcher, [0.8, 0.9, 0.85], key="val_accuracy")] == [True, True, False]
    assert watcher.best_epoch == 2


def test_reduce_on_plateau_halves_after_its_patience_then_waits_as_long_again():
    watcher = Watcher.of(TrainingConfig(reduce_on_plateau=True, plateau_patience=2))
    reduce = [v[2] for v in verdicts(watcher, [1.0, 1.1, 1.2, 1.3, 1.4, 0.5, 0.6])]
    assert reduce == [False, False, True, False, True, False, False]


def test_nothing_is_watched_when_both_are_off_or_the_metric_is_missing():
    assert verdicts(Watcher.of(TrainingConfig()), [1.0, 2.0, 3.0]) == [(False, False, False)] * 3
    watcher = Watcher.of(TrainingConfig(early_stopping=True, patience=1))
    assert watcher.after_epoch(1, {"loss": 0.3}).improved is False  # no validation metric in this epoch


def test_a_checkpoint_keeps_the_watchers_state():
    watcher = Watcher.of(TrainingConfig(early_stopping=True, patience=3, reduce_on_plateau=True))
    verdicts(watcher, [0.5, 0.6])
    again = Watcher.restore(watcher.state())
    assert again == watcher and again.after_epoch(3, {"val_loss": 0.7}) == watcher.after_epoch(3, {"val_loss": 0.7})
