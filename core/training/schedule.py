"""The learning rate over a training: the recipe's schedule, and the changes made to it while it trains.

`live_schedule` gives the one learning-rate schedule of every ConvLab training:
the recipe's (constant, cosine, or warm-up then cosine, as Keras' `CosineDecay`
computes them, step by step inside the training function), with its state in
variables, so that a change made while training takes effect at the next chunk
of batches without rebuilding anything. How a change combines with the schedule:

- a new learning rate r at step s scales the schedule from there on: the rate
  becomes rate(s) * r / rate(s), so a constant rate is simply replaced and a
  decaying one goes on decaying from r (where the schedule is at 0, the rate
  stays at r from then on);
- a new number of epochs at step s keeps what is left of the schedule's shape
  and spreads it over the steps now left: the rate goes on from where it is and
  reaches the schedule's end on the new last batch (a constant rate is unchanged);
- a continued run (`start`) begins its own schedule, over its own epochs, at
  the optimizer's step count inherited from its parent.

Left unchanged, it gives bit for bit the rates of the recipe's schedule alone.
The step it is called with is the optimizer's step count.
"""

from __future__ import annotations

from typing import Any

from core.training.config import TrainingConfig


def live_schedule(config: TrainingConfig, total_steps: int, warmup_steps: int, start: int = 0) -> Any:
    """`config`'s schedule over `total_steps` steps from step `start` (warm-up: `warmup_steps`), ready for changes."""
    import keras

    rate = float(config.learning_rate)  # Keras refuses an int or a NumPy scalar learning rate
    base: Any = None
    if config.schedule == "cosine":
        base = keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, total_steps))
    elif config.schedule == "warmup-cosine":
        warmup = max(1, min(warmup_steps, total_steps - 1))
        base = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, total_steps - warmup),
                                                      warmup_target=rate, warmup_steps=warmup)
    return schedule_class()(rate, base, total_steps, start=start)


_CLASS: list[type] = []


def schedule_class() -> type:
    """`LiveSchedule`, defined once Keras is imported (this module loads without TensorFlow)."""
    if _CLASS:
        return _CLASS[0]
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="convlab")
    class LiveSchedule(keras.optimizers.schedules.LearningRateSchedule):
        """rate(step) = `fixed` if set, else multiplier * base(the base's own step); see the module's docstring.

        The base's own step is the run's step (optimizer step - `start`) up to `since`, then
        `since_base + (step - since) * stretch`: a new number of epochs re-times what is left.
        """

        def __init__(self, rate: float, base: Any, total_steps: int, start: int = 0, multiplier: float = 1.0,
                     fixed: float = 0.0, since: float = 0.0, since_base: float = 0.0, stretch: float = 1.0) -> None:
            self.rate, self.base, self.total_steps = float(rate), base, int(total_steps)
            self.base_steps = int(total_steps)  # the steps the recipe's schedule was made for (kept by retime)
            self._vars = {name: keras.Variable(float(value), trainable=False, dtype="float32", name=f"lr_{name}")
                          for name, value in (("start", start), ("multiplier", multiplier), ("fixed", fixed),
                                              ("since", since), ("since_base", since_base), ("stretch", stretch))}

        def __call__(self, step: Any) -> Any:
            v = self._vars
            if self.base is None:
                scheduled = ops.multiply(ops.convert_to_tensor(self.rate, dtype="float32"), v["multiplier"])
            else:
                local = ops.cast(step, "float32") - v["start"]
                own = ops.where(local > v["since"], v["since_base"] + (local - v["since"]) * v["stretch"], local)
                scheduled = ops.multiply(self.base(own), v["multiplier"])
            return ops.where(v["fixed"] > 0, v["fixed"], scheduled)

        # --- changes, from Python between chunks of batches; `step` is the optimizer's step count ---
        def rate_at(self, step: int) -> float:
            """The learning rate the next batch after `step` batches uses."""
            return float(ops.convert_to_numpy(self(step)))

        def set_rate(self, rate: float, step: int) -> None:
            """From `step` on, the schedule scaled so that its rate at `step` is `rate`."""
            unscaled = self.rate_at(step) / float(self._vars["multiplier"].numpy())
            if self._value("fixed") > 0 or unscaled <= 0:
                self._vars["fixed"].assign(float(rate))  # nothing left to scale: `rate` from now on
            else:
                self._vars["multiplier"].assign(float(rate) / unscaled)

        def retime(self, step: int, total_steps: int) -> None:
            """What is left of the schedule spread over the steps up to `total_steps` (a new number of epochs)."""
            local = float(step) - self._value("start")
            left_actual = float(total_steps) - local
            if self.base is not None and left_actual > 0:
                own = self._own_step(local)
                planned = float(self.base.decay_steps + (self.base.warmup_steps or 0))
                self._vars["since"].assign(local)
                self._vars["since_base"].assign(own)
                self._vars["stretch"].assign(max(0.0, planned - own) / left_actual)
            self.total_steps = int(total_steps)

        def _own_step(self, local: float) -> float:
            since = self._value("since")
            return local if local <= since else self._value("since_base") + (local - since) * self._value("stretch")

        def _value(self, name: str) -> float:
            return float(self._vars[name].numpy())

        def state(self) -> dict[str, float]:
            """What a checkpoint keeps of it (`base_steps`: what to make it for again, see `live_schedule`)."""
            return {name: self._value(name) for name in self._vars} | {"total_steps": self.total_steps,
                                                                      "base_steps": self.base_steps}

        def restore(self, state: dict[str, float]) -> None:
            """Its state from `state`; it must have been made for `state["base_steps"]` steps."""
            for name, variable in self._vars.items():
                variable.assign(float(state[name]))
            self.total_steps = int(state["total_steps"])

        def get_config(self) -> dict:
            return {"rate": self.rate, "total_steps": self.total_steps,
                    "base": None if self.base is None else keras.saving.serialize_keras_object(self.base),
                    **{name: self._value(name) for name in self._vars}}

        @classmethod
        def from_config(cls, config: dict) -> "LiveSchedule":
            config = dict(config)
            if config.get("base") is not None:
                config["base"] = keras.saving.deserialize_keras_object(config["base"])
            return cls(**config)

    _CLASS.append(LiveSchedule)
    return LiveSchedule
