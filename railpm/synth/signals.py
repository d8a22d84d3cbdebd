"""Condition signals: a baseline set by the operating context, sensor noise, and drift before failures.

Each signal's baseline is linear in speed, payload and ambient temperature (and their product where
physics says so), so a model or a test can normalise the context away and see the component's health.
Noise is always present (no sensor repeats itself for hours unless it is stuck), and values are clipped
inside the contract's range and rounded to 3 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from railpm import contracts
from railpm.synth.profiles import Operation
from railpm.synth.wear import ComponentHistory


@dataclass(frozen=True)
class SignalModel:
    intercept: float
    per_speed: float
    per_load: float
    per_ambient: float
    per_speed_load: float
    noise: float
    drift_at_failure: float
    """Shift of the signal at failure for an announced degradation (sign gives the direction)."""


SIGNAL_MODELS: dict[str, SignalModel] = {
    "axle_bearing_temp_c": SignalModel(8.0, 0.12, 0.04, 1.0, 0.0, 1.2, 11.0),
    "bogie_vibration_rms_ms2": SignalModel(0.25, 0.016, 0.0, 0.0, 0.00005, 0.06, 0.5),
    "brake_release_s": SignalModel(2.6, 0.0, 0.004, -0.01, 0.0, 0.12, 1.2),
    "motor_current_imbalance_pct": SignalModel(1.5, 0.005, 0.02, 0.0, 0.0, 0.25, 2.5),
    "pantograph_contact_force_n": SignalModel(70.0, 0.35, 0.0, 0.0, 0.0, 4.0, -25.0),
    "hvac_supply_dev_c": SignalModel(-0.9, 0.0, 0.01, 0.05, 0.0, 0.4, 2.5),
    "door_close_time_s": SignalModel(3.2, 0.0, 0.006, 0.0, 0.0, 0.1, 0.9),
    "compressor_duty_pct": SignalModel(18.0, 0.08, 0.02, 0.35, 0.0, 1.5, 14.0),
    "battery_voltage_v": SignalModel(111.0, 0.0, 0.0, 0.06, 0.0, 0.35, -3.5),
}
"""Per signal: baseline coefficients, noise sd and drift at failure (wheel flange is a wear measure, below)."""

FLANGE_NEW_MM = (32.5, 33.5)
FLANGE_WEAR_MM = 9.0
FLANGE_WEAR_USAGE = 900_000.0
"""Flange thickness falls from new towards new - 9 mm as the wheelset's usage grows (reprofiling resets it)."""
FLANGE_NOISE_MM = 0.05


WANDER_SHARE = 0.6
"""Sd of the slow wander (unmodelled context: track, weather, sensor ageing) relative to the hourly noise."""
WANDER_HOURS = 120.0
"""Its time constant: it lasts days, so it does not average out within a day as the hourly noise does."""


def wander(hours: int, sd: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary AR(1) process with the given sd and time constant: slow, healthy variation."""
    phi = np.exp(-1.0 / WANDER_HOURS)
    innovations = rng.normal(0.0, sd * np.sqrt(1 - phi**2), hours)
    innovations[0] = rng.normal(0.0, sd)
    return lfilter([1.0], [1.0, -phi], innovations)


def baseline(model: SignalModel, operation: Operation) -> np.ndarray:
    return (
        model.intercept
        + model.per_speed * operation.speed_kmh
        + model.per_load * operation.load_pct
        + model.per_ambient * operation.ambient_c
        + model.per_speed_load * operation.speed_kmh * operation.load_pct
    )


def clip_with_noise(values: np.ndarray, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """Clip into [low, high] without creating runs of identical values at the bounds."""
    span = (high - low) * 1e-3
    below, above = values < low + span, values > high - span
    out = values.copy()
    out[below] = low + span * rng.uniform(0.05, 1.0, below.sum())
    out[above] = high - span * rng.uniform(0.05, 1.0, above.sum())
    return out


def condition_signals(
    vehicle_type: str,
    operation: Operation,
    histories: dict[str, ComponentHistory],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The hourly condition signals of one vehicle; signals of components it does not have are all-null."""
    hours = len(operation.km)
    out: dict[str, np.ndarray] = {}
    for signal in contracts.SIGNALS:
        history = histories.get(signal.component)
        if history is None:
            out[signal.column] = np.full(hours, np.nan)
            continue
        if signal.column == "wheel_flange_mm":
            values = _flange(history, hours, rng) + rng.normal(0, FLANGE_NOISE_MM, hours)
        else:
            model = SIGNAL_MODELS[signal.column]
            offset = rng.normal(0, model.noise * 0.5)  # sensor calibration differs a little per vehicle
            values = baseline(model, operation) + offset + rng.normal(0, model.noise, hours)
            values += wander(hours, model.noise * WANDER_SHARE, rng)
            values += model.drift_at_failure * history.drift
        out[signal.column] = np.round(clip_with_noise(values, signal.min, signal.max, rng), 3)
    return out


def _flange(history: ComponentHistory, hours: int, rng: np.random.Generator) -> np.ndarray:
    """Each wheelset instance starts at its own new thickness and wears with usage."""
    values = np.empty(hours)
    for life in history.lives:
        new_mm = rng.uniform(*FLANGE_NEW_MM)
        s, e = life.start_hour, life.end_hour
        worn = FLANGE_WEAR_MM * (1.0 - np.exp(-np.maximum(history.used[s:e], 0.0) / FLANGE_WEAR_USAGE))
        values[s:e] = new_mm - worn
    return values
