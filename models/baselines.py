"""The fixed maintenance schedule as a ranking: what a planner who only follows the schedule would look at first.

Each maintenance level inspects some components and falls due after a number of days or kilometres, whichever
comes first (``contracts.MAINTENANCE_LEVELS``). A component's schedule risk is how far its most advanced
inspection interval has elapsed: ``max over the levels that inspect it of max(days since / interval days,
km since / interval km)``. 1.0 means an inspection is due. No learning: the schedule baseline sees no label.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from railpm import contracts
from railpm.errors import BadInputError


def _level_column(columns, unit: str, level: int) -> str | None:
    pattern = re.compile(rf"^{unit}_since_\w*?(level|l)_?{level}(_|$)")
    matches = sorted(c for c in columns if pattern.search(c))
    return matches[0] if matches else None


def schedule_columns(columns) -> dict[int, tuple[str | None, str | None]]:
    """Per maintenance level, the record columns holding days and km since its last inspection."""
    found = {m.level: (_level_column(columns, "days", m.level), _level_column(columns, "km", m.level))
             for m in contracts.MAINTENANCE_LEVELS}
    if not any(d or k for d, k in found.values()):
        raise BadInputError(
            "the component-day records carry no days/km since the last inspection of any maintenance level",
            file="records/component_days", rule="schedule_features",
        )
    return found


def schedule_risk(rows: pd.DataFrame) -> np.ndarray:
    """Elapsed share of the most advanced inspection interval that covers each row's component."""
    columns = schedule_columns(rows.columns)
    risk = np.zeros(len(rows))
    component = rows["component"].to_numpy()
    for level in contracts.MAINTENANCE_LEVELS:
        covers = np.isin(component, level.inspects)
        days_col, km_col = columns[level.level]
        for col, interval in ((days_col, level.interval_days), (km_col, level.interval_km)):
            if col is None:
                continue
            # Never inspected at this level: count the vehicle as overdue (the schedule would bring it in).
            elapsed = (rows[col].to_numpy(dtype=float) / interval)
            elapsed = np.where(np.isnan(elapsed), 1.0, elapsed)
            risk = np.where(covers, np.maximum(risk, elapsed), risk)
    return risk
