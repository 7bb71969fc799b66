"""The time left in a training: its pace over the run so far, smoothed, with its start-up left out.

A training reports after each chunk of batches. Estimating from the epoch
under way alone (as ConvLab first did) goes wrong early in every epoch: the
epoch's first chunk carries the pause between epochs (validation, the
confusion matrix, a checkpoint, the next fit's set-up), so a rate over a
chunk or two swings tenfold. `Pace` keeps the batches and seconds of every
stretch between two reports since the first one, each weighed down by its
age (half-weight after `half_life_s`), so that a pause between epochs counts
once, spread over the epoch, and a training that speeds up or slows down
(another training starting beside it) is followed within a minute or so.
The stretch up to the first report is left out: it holds the tracing of the
training step and the start of the input pipeline, which no later batch pays.
"""

from __future__ import annotations

import math

HALF_LIFE_S = 30.0  # a stretch this old counts half as much as one just reported


class Pace:
    """Batches per second of a training so far (smoothed, start-up left out), and the seconds its rest takes."""

    def __init__(self, half_life_s: float = HALF_LIFE_S) -> None:
        if not half_life_s > 0:
            raise ValueError(f"half_life_s == {half_life_s}, must be > 0.")
        self.half_life_s = half_life_s
        self._last: tuple[float, int] | None = None  # (elapsed_s, step) at the last report
        self._steps = 0.0  # decayed sums over the stretches since the first report
        self._seconds = 0.0

    def observe(self, elapsed_s: float, step: int) -> None:
        """A report: `step` batches done in all after `elapsed_s` seconds of training (both never go back)."""
        if self._last is None:
            self._last = (elapsed_s, step)  # the start-up stretch ends here: nothing of it is counted
            return
        last_s, last_step = self._last
        seconds, steps = elapsed_s - last_s, step - last_step
        if seconds < 0 or steps < 0:  # a new reckoning (a clock or a count reset): start again from here
            self._last = (elapsed_s, step)
            return
        keep = math.exp(-math.log(2) * seconds / self.half_life_s)
        self._steps = self._steps * keep + steps
        self._seconds = self._seconds * keep + seconds
        self._last = (elapsed_s, step)

    @property
    def steps_per_second(self) -> float | None:
        """The smoothed rate, or None until a stretch after the start-up has been reported."""
        if self._steps <= 0 or self._seconds <= 0:
            return None
        return self._steps / self._seconds

    def seconds_left(self, steps_left: int) -> float | None:
        """Seconds the `steps_left` remaining batches take at this pace; None while it is not known."""
        rate = self.steps_per_second
        if steps_left <= 0:
            return 0.0
        return None if rate is None else steps_left / rate
