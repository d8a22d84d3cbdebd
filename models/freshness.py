"""A champion that stays fresh: the serving model against a refit, on the newest days neither learnt from.

Re-running the champion's recipe on the same folds (the old gate) scores a refit of the same recipe exactly
like the champion, so a weekly retrain could never replace it and the served model, with the feedback it was
trained on, stayed frozen. Instead the weekly retrain compares

- the champion as registered (its fitted model, loaded from MLflow), and
- the candidate recipe refitted on the records as they stand today up to the champion's last training day, with
  their labels censored there: what the champion could know, no more and no less, but with today's corrections,
  late records and engineers' feedback (a refit that knew less lost to the champion every week; one that knew
  more would have seen the window's outcomes),

on the **window**: the labelled days from the first day whose outcome the champion could not know (its last
training day minus the horizon, plus one) to the last labelled day, at least ``MIN_WINDOW_DAYS`` long. The
champion may have learnt failures inside the window that had happened by its last day: such rows (failures it had seen) are left out of the window's scoring; fresh data wins ties.

Rule (:func:`freshness_decision`): a refit of the champion's own recipe replaces it unless its window PR-AUC is
worse by more than the margin; a new recipe must beat the champion's by the margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from railpm.models.fit import fit_models, predict_probability
from railpm.models.frames import LABEL, TIME, censor_at
from railpm.models.pipeline import ModelParams

MIN_WINDOW_DAYS = 7
"""The weekly retrain's cadence: a window is at least one week of labelled days."""


@dataclass(frozen=True)
class Window:
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class FreshnessDecision:
    replace: bool
    reason: str
    champion: float
    refit: float
    window: Window


def freshness_window(last_day: pd.Timestamp, champion_last_day: pd.Timestamp, horizon_days: int) -> Window:
    """The newest labelled days whose outcome the champion could not know when it was trained."""
    end = last_day - pd.Timedelta(days=horizon_days)
    start = min(champion_last_day - pd.Timedelta(days=horizon_days - 1), end - pd.Timedelta(days=MIN_WINDOW_DAYS - 1))
    return Window(start, end)


def window_pr_auc(rows: pd.DataFrame, scores: np.ndarray) -> float:
    """Mean PR-AUC over components with a failure among the window's labelled rows (as ``primary_metric``)."""
    labelled = rows.assign(_score=scores)
    labelled = labelled[labelled[LABEL].notna()]
    values = [
        average_precision_score(part[LABEL].astype(bool), part["_score"])
        for _, part in labelled.groupby("component")
        if part[LABEL].astype(bool).any()
    ]
    return float(np.mean(values)) if values else float("nan")


def compare_on_window(records: pd.DataFrame, params: ModelParams, champion_model, champion_last_day: pd.Timestamp,
                      window: Window, horizon_days: int) -> tuple[float, float]:
    """(champion, refit) PR-AUC on the window: the registered model as it is, the recipe refitted on what it knew.

    Rows the champion learnt as failures (a failure it had seen by its last day) are left out, so neither model
    is scored on a row it was trained on; NaN where the window holds no failure (or the refit cannot be fitted).
    """
    test = records[(records["day"] >= window.start) & (records["day"] <= window.end)]
    seen = test[LABEL].fillna(False).astype(bool) & (test["day"] + pd.to_timedelta(test[TIME], unit="D") <= champion_last_day)
    test = test[~seen]
    train = censor_at(records[records["day"] <= champion_last_day], champion_last_day, horizon_days)
    champion = window_pr_auc(test, champion_model.probability(champion_model.features(test)))
    try:
        refit = window_pr_auc(test, predict_probability(fit_models(train, params, None), test))
    except ValueError:  # too few failures before the window to fit and calibrate
        refit = float("nan")
    return champion, refit


def freshness_decision(champion: float, refit: float, same_recipe: bool, margin: float, window: Window) -> FreshnessDecision:
    """The rule on measured figures (pure, so it can be read and tested on its own)."""
    span = f"{window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}"
    if not np.isfinite(champion) or not np.isfinite(refit):
        return FreshnessDecision(same_recipe, f"no failure in the window {span} to compare on: "
                                 + ("the refit of the same recipe replaces the champion" if same_recipe else "a new recipe needs a comparison"),
                                 champion, refit, window)
    if same_recipe:
        replace = refit >= champion - margin
        verdict = "replaces it (fresh data wins ties)" if replace else f"is worse by more than {margin}: the champion stays"
        return FreshnessDecision(replace, f"refit of the same recipe {refit:.4f} against the champion's {champion:.4f} on {span} {verdict}",
                                 champion, refit, window)
    replace = refit >= champion + margin
    verdict = f"beats it by at least {margin}" if replace else f"does not beat it by {margin}"
    return FreshnessDecision(replace, f"new recipe {refit:.4f} against the champion's {champion:.4f} on {span} {verdict}",
                             champion, refit, window)
