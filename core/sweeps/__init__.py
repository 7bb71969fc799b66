"""Sweeps: many runs of one study over the settings the sliders offer (Optuna: ask, run, tell)."""
