"""When a probability becomes an alert: the cost model's break-even per component and the depots' alert budget,
never a fixed 0.5.

An alert sends the component to a targeted inspection; it finds a component that would fail with the level's
detection probability, and a find is replaced preventively instead of failing in service. The break-even
probability of each component comes from the one cost model (``railpm.costs.CostModel``); a depot can only act
on so many alerts a day, so above it the riskiest vehicle-components of each depot and day take its budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from railpm.costs import CostModel


def break_even_probability(costs: CostModel, components: pd.Series) -> pd.Series:
    """Per row: the failure probability above which inspecting its component pays for itself."""
    return costs.thresholds(components)


def select_alerts(frame: pd.DataFrame, score: str, threshold, budget_per_depot_per_day: int) -> pd.Series:
    """True for the rows that get an alert: score >= threshold (a number or one per row) and among their depot's
    top ``budget`` that day."""
    eligible = frame[score] >= threshold
    rank = frame[score].where(eligible).groupby([frame["day"], frame["home_depot"]]).rank(method="first", ascending=False)
    return (eligible & (rank <= budget_per_depot_per_day)).fillna(False).astype(bool)


def risk_bands(probability: pd.Series | np.ndarray, threshold, base_rate: float) -> np.ndarray:
    """``high``: alerting pays off; ``medium``: above the fleet's base rate for the horizon; ``low``: otherwise."""
    p = np.asarray(probability, dtype=float)
    t = np.asarray(threshold, dtype=float)
    return np.where(p >= t, "high", np.where(p > base_rate, "medium", "low"))
