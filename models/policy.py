"""When a probability becomes an alert: the cost model and the depots' alert budget, never a fixed 0.5.

An alert sends the component to an inspection (``cost_inspection``); if it was not going to fail, the part
replaced on suspicion is wasted (``cost_needless_replacement``). Not alerting risks an unplanned failure
(``cost_unplanned_failure``). Alerting pays for itself in expectation when

    p * C_failure  >  C_inspection + (1 - p) * C_needless   <=>   p  >  (C_inspection + C_needless) / (C_failure + C_needless)

and a depot can only act on so many alerts a day, so above that break-even probability the riskiest
vehicle-components of each depot and day take its budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from railpm.config import ModelSettings


def break_even_probability(settings: ModelSettings) -> float:
    return (settings.cost_inspection + settings.cost_needless_replacement) / (
        settings.cost_unplanned_failure + settings.cost_needless_replacement
    )


def select_alerts(frame: pd.DataFrame, score: str, threshold: float, budget_per_depot_per_day: int) -> pd.Series:
    """True for the rows that get an alert: score >= threshold and among their depot's top ``budget`` that day."""
    eligible = frame[score] >= threshold
    rank = frame[score].where(eligible).groupby([frame["day"], frame["home_depot"]]).rank(method="first", ascending=False)
    return (eligible & (rank <= budget_per_depot_per_day)).fillna(False).astype(bool)


def risk_bands(probability: pd.Series | np.ndarray, threshold: float, base_rate: float) -> np.ndarray:
    """``high``: alerting pays off; ``medium``: above the fleet's base rate for the horizon; ``low``: otherwise."""
    p = np.asarray(probability, dtype=float)
    return np.where(p >= threshold, "high", np.where(p > base_rate, "medium", "low"))
