"""When a predicted failure happens: the timing that decides whether an inspection slot is still in time.

A prediction gives two things: the probability ``p`` that the component fails within the model's horizon
``H``, and a remaining-life estimate (median with an interval of nominal coverage, e.g. the 10th and 90th
percentiles). The probability sets how likely a failure is; the remaining life sets *when* it comes, which
is what makes a late inspection slot worth less than an early one. Both are combined as

    P(T <= t) = p * F(t) / F(H)              for t <= H
    P(T <= t) = 1 - (1 - p) ** (t / H)       for t >  H   (constant hazard beyond the horizon)

with ``F`` the log-normal fitted to the remaining-life median and interval. When the remaining life puts
(practically) no mass inside the horizon although ``p > 0``, or is missing, the timing falls back to a
constant hazard over the horizon, which is the least informed assumption.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from scipy import stats

from railpm.errors import BadInputError

MIN_MEDIAN_DAYS = 0.25
"""A remaining life of 0 means 'failing now'; a quarter day keeps the log-normal defined."""
DEFAULT_SIGMA = 0.5
"""Log-scale spread used when the interval is missing or degenerate."""


def lognormal_sigma(low: np.ndarray, high: np.ndarray, coverage: float) -> np.ndarray:
    """Log-scale spread of a log-normal whose central ``coverage`` interval is [low, high]."""
    z = stats.norm.ppf(0.5 + coverage / 2)
    low = np.asarray(low, dtype=float)
    high = np.asarray(high, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.log(high / low) / (2 * z)
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, DEFAULT_SIGMA)
    return np.clip(sigma, 0.05, 3.0)


def scored_day_of(predictions: pd.DataFrame) -> date:
    """The one scored day a plan is made for; plans never mix days."""
    days = pd.to_datetime(predictions["scored_day"]).dt.date.unique()
    if len(days) != 1:
        raise BadInputError(f"plan one scored day at a time, got {sorted(days)[:5]}", rule="one_scored_day")
    return days[0]


def failure_cdf(days, predictions: pd.DataFrame, *, horizon_days: float, coverage: float) -> np.ndarray:
    """P(component fails within ``days`` of the scored day), one row per prediction, one column per day."""
    return _failure_cdf(
        days,
        predictions["failure_probability"].to_numpy(float),
        predictions["remaining_life_days"].to_numpy(float),
        predictions["remaining_life_low_days"].to_numpy(float),
        predictions["remaining_life_high_days"].to_numpy(float),
        horizon_days=horizon_days,
        coverage=coverage,
    )


def _failure_cdf(
    days, probability, remaining_life, remaining_life_low, remaining_life_high, *, horizon_days: float, coverage: float
) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)[:, None]
    t = np.atleast_1d(np.asarray(days, dtype=float))[None, :]
    median = np.asarray(remaining_life, dtype=float)
    finite = np.isfinite(median)
    median = np.where(finite, np.maximum(median, MIN_MEDIAN_DAYS), 1.0)[:, None]
    sigma = lognormal_sigma(remaining_life_low, remaining_life_high, coverage)[:, None]

    life = stats.lognorm(s=sigma, scale=median)
    mass_in_horizon = life.cdf(horizon_days)
    informative = finite[:, None] & (mass_in_horizon > 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        shaped = np.minimum(life.cdf(np.minimum(t, horizon_days)) / mass_in_horizon, 1.0)
    uniform = np.minimum(t, horizon_days) / horizon_days
    within = p * np.where(informative, shaped, uniform)
    beyond = 1.0 - (1.0 - p) ** (t / horizon_days)
    return np.where(t <= horizon_days, within, beyond)


def avoidable_failure_probability(days, predictions: pd.DataFrame, *, horizon_days: float, coverage: float) -> np.ndarray:
    """P(the failure comes after an inspection on day ``t`` but within the horizon), rows x days.

    A failure before the inspection cannot be avoided by it, and the prediction says nothing past the horizon,
    so an inspection on or after the horizon is worth nothing here.
    """
    cdf = failure_cdf(days, predictions, horizon_days=horizon_days, coverage=coverage)
    at_horizon = np.clip(predictions["failure_probability"].to_numpy(float), 0.0, 1.0)[:, None]
    t = np.atleast_1d(np.asarray(days, dtype=float))[None, :]
    return np.where(t < horizon_days, np.maximum(at_horizon - cdf, 0.0), 0.0)
