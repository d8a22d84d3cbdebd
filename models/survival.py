"""Remaining life with censoring: a discrete-time hazard model on any scikit-learn classifier.

Preventive replacements hide the failures they prevented, and the end of the data hides the failures still to
come. Treating those histories as "no failure" would teach the model that worn components live for ever;
dropping them would keep only the components that failed early. A discrete-time hazard model uses them for
exactly what is known: the component survived up to the censoring day.

Method (Singer & Willett's person-period form): the days ahead are cut into bins (e.g. 0-7, 7-14, 14-30, ...
days). Each component-day row becomes one row per bin it was still at risk at the start of, with target "failed
within this bin" and the bin's start as an extra feature; a row censored inside a bin counts for the share of
the bin it was observed (actuarial adjustment). A classifier then estimates the hazard ``h_j(x)``, the
probability of failing in bin ``j`` given survival to its start. The survival curve is ``S(t) = prod(1 - h_j)``
with a constant daily hazard inside each bin (and the last bin's rate beyond the last edge), so any quantile of
the remaining life has a closed form: the median is the point estimate and the ``(1-c)/2`` and ``(1+c)/2``
quantiles give an interval of nominal coverage ``c``.

Assumption stated plainly: censoring is independent of the failure time given the features. Preventive
replacements are informative (worn parts are the ones replaced), so the model's remaining life is the life of
a component *left in service*, which is what a planner deciding whether to intervene needs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

BIN_FEATURE = "hazard_bin_start_days"


class DiscreteTimeHazard(BaseEstimator):
    """Survival regressor: ``fit(X, y)`` with ``y[:, 0]`` the observed days and ``y[:, 1]`` the event flag.

    ``predict(X)`` returns one row per input row with the remaining-life quantiles ``quantiles`` (days).
    ``survived_share`` < 1 fits on every failing person-period and a seeded share of the survived ones, and
    corrects the hazards back by the prior (log-odds + log(share), as ``fit.correct_for_sampling``).
    """

    def __init__(self, estimator=None, bin_edges=(0, 7, 14, 30, 60, 120, 240, 480), quantiles=(0.1, 0.5, 0.9),
                 max_days: float = 3650.0, survived_share: float = 1.0, random_state: int = 0):
        self.estimator = estimator
        self.bin_edges = bin_edges
        self.quantiles = quantiles
        self.max_days = max_days
        self.survived_share = survived_share
        self.random_state = random_state

    def _edges(self) -> np.ndarray:
        edges = np.asarray(self.bin_edges, dtype=float)
        if edges[0] != 0 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"bin_edges must start at 0 and increase, got {self.bin_edges}")
        return edges

    def _expand(self, X: pd.DataFrame, rows: np.ndarray, bins: np.ndarray) -> pd.DataFrame:
        out = X.iloc[rows].reset_index(drop=True)
        out[BIN_FEATURE] = self._edges()[bins]
        return out

    def fit(self, X: pd.DataFrame, y, sample_weight=None):
        X = pd.DataFrame(X).reset_index(drop=True)
        y = np.asarray(y, dtype=float)
        time, event = y[:, 0], y[:, 1].astype(bool)
        if np.any(np.isnan(time)) or np.any(time < 0):
            raise ValueError("observed times must be non-negative numbers")
        edges = self._edges()
        starts, ends = edges[:-1], edges[1:]
        # At risk in bin j when the observation goes past the bin's start.
        at_risk = time[:, None] > starts[None, :]
        rows, bins = np.nonzero(at_risk)
        t, e = time[rows], event[rows]
        failed_here = e & (t <= ends[bins])
        # Censored inside a bin: counted as at risk for the bin when observed for at least half of it, else left
        # out (the actuarial half-interval rule, without sample weights that make tree binning slow).
        half_seen = (t - starts[bins]) >= (ends - starts)[bins] / 2
        keep = failed_here | (t >= ends[bins]) | half_seen
        if self.survived_share < 1:
            drawn = np.random.default_rng(self.random_state).random(len(rows)) < self.survived_share
            keep &= failed_here | drawn
        rows, bins, failed_here = rows[keep], bins[keep], failed_here[keep]
        if failed_here.sum() == 0:
            raise ValueError("no failure is observed in the training rows: the hazard cannot be estimated")
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=float)[rows]
        self.estimator_ = clone(self.estimator)
        self.estimator_.fit(self._expand(X, rows, bins), failed_here.astype(int), sample_weight=weight)
        self.n_person_periods_ = len(rows)
        self.log_odds_shift_ = float(np.log(min(self.survived_share, 1.0)))
        return self

    def hazards(self, X: pd.DataFrame) -> np.ndarray:
        """Per-bin failure probabilities, shape (rows, bins)."""
        check_is_fitted(self, "estimator_")
        X = pd.DataFrame(X).reset_index(drop=True)
        n_bins = len(self._edges()) - 1
        rows = np.repeat(np.arange(len(X)), n_bins)
        bins = np.tile(np.arange(n_bins), len(X))
        proba = self.estimator_.predict_proba(self._expand(X, rows, bins))[:, 1]
        shift = np.exp(getattr(self, "log_odds_shift_", 0.0))  # models fitted before sampling have none
        proba = proba * shift / (proba * shift + 1 - proba)
        return np.clip(proba, 1e-9, 1 - 1e-9).reshape(len(X), n_bins)

    def _cumulative(self, X=None, hazards: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        edges = self._edges()
        hazards = self.hazards(X) if hazards is None else hazards
        rate = -np.log1p(-hazards) / np.diff(edges)[None, :]  # constant daily hazard per bin
        cum = np.concatenate([np.zeros((len(rate), 1)), np.cumsum(rate * np.diff(edges)[None, :], axis=1)], axis=1)
        return rate, cum

    def survival(self, X, days) -> np.ndarray:
        """S(days | x) for each row: the probability the component is still working after ``days`` days."""
        edges = self._edges()
        rate, cum = self._cumulative(X)
        days = np.broadcast_to(np.asarray(days, dtype=float), (len(rate),))
        j = np.clip(np.searchsorted(edges, days, side="right") - 1, 0, len(edges) - 2)
        idx = np.arange(len(rate))
        hazard = cum[idx, j] + rate[idx, j] * (days - edges[j])
        return np.exp(-hazard)

    def predict_quantiles(self, X, quantiles, hazards: np.ndarray | None = None) -> np.ndarray:
        """Remaining-life quantiles (days) per row, shape (rows, len(quantiles)).

        ``hazards`` (rows, bins), when given, stands for ``self.hazards(X)``: fleet scoring computes them once
        from the trees directly (``railpm.models.fleet_scoring``).
        """
        edges = self._edges()
        rate, cum = self._cumulative(X, hazards)
        out = np.empty((len(rate), len(quantiles)))
        for k, q in enumerate(quantiles):
            target = -np.log1p(-q)  # cumulative hazard at which F(t) = q
            j = np.clip((cum < target).sum(axis=1) - 1, 0, len(edges) - 2)
            idx = np.arange(len(rate))
            with np.errstate(divide="ignore", invalid="ignore"):
                t = edges[j] + (target - cum[idx, j]) / rate[idx, j]
            out[:, k] = np.where(np.isfinite(t), t, self.max_days)
        return np.clip(out, 0.0, self.max_days)

    def predict(self, X) -> np.ndarray:
        return self.predict_quantiles(X, self.quantiles)


def kaplan_meier(values: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival of ``values`` with right-censoring: the distinct event values and S just after each."""
    values = np.asarray(values, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    # Events before censorings at the same value (a censored row was still at risk at that value).
    order = np.lexsort((~observed, values))
    v, o = values[order], observed[order]
    at_risk = len(v) - np.arange(len(v))
    factors = np.where(o, 1.0 - 1.0 / at_risk, 1.0)
    surv = np.cumprod(factors)
    return v[o], surv[o]


def km_survival_at(points: np.ndarray, values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Kaplan-Meier estimate of P(value > point) for each point."""
    event_values, surv = kaplan_meier(values, observed)
    if len(event_values) == 0:
        return np.ones(len(np.atleast_1d(points)))
    idx = np.searchsorted(event_values, np.atleast_1d(points), side="right") - 1
    return np.where(idx >= 0, surv[np.clip(idx, 0, None)], 1.0)


def interval_coverage(low, high, time, event) -> dict[str, float]:
    """How often the true remaining life falls inside the interval, honest about censoring.

    ``censored_aware``: Kaplan-Meier estimate of P(low <= T <= high), computed on the position of each row's
    time inside its own interval (censored rows contribute as at-risk until their censoring). ``among_failures``:
    the plain share for the rows that ended in an observed failure (biased towards early failures, shown for
    comparison). ``known_miss``: share of rows whose interval ended before a time the component was seen working.
    """
    low, high, time = (np.asarray(a, dtype=float) for a in (low, high, time))
    event = np.asarray(event, dtype=bool)
    if len(time) == 0:
        return {"censored_aware": float("nan"), "among_failures": float("nan"), "known_miss": float("nan"), "rows": 0}
    # Position of T relative to the interval: <0 before low, 0..1 inside, >1 after high.
    width = np.maximum(high - low, 1e-9)
    position = (time - low) / width
    s_before_low, s_after_high = km_survival_at(np.array([-1e-12, 1.0]), position, event)
    inside = (low <= time) & (time <= high)
    return {
        "censored_aware": float(s_before_low - s_after_high),
        "among_failures": float(inside[event].mean()) if event.any() else float("nan"),
        "known_miss": float(((~event) & (time > high)).mean()),
        "rows": int(len(time)),
    }
