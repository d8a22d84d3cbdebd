"""Monitoring figures (``railpm.review.monitoring``): PSI per week flags a shifted week and not a stable one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from railpm.review.monitoring import psi_by_week


def test_psi_flags_the_week_whose_distribution_shifted():
    rng = np.random.default_rng(1)
    weeks = pd.date_range("2025-01-06", periods=6, freq="W-MON")
    values = pd.DataFrame({"week": np.repeat(weeks, 2000),
                           "score": np.r_[rng.normal(0, 1, 5 * 2000), rng.normal(1, 1, 2000)],
                           "steady": rng.normal(0, 1, 6 * 2000)})
    psi = psi_by_week(values).pivot_table(index="week", columns="what", values="psi")
    assert (psi["steady"] < 0.1).all()
    assert (psi["score"].iloc[:5] < 0.1).all() and psi["score"].iloc[5] > 0.25


def test_too_few_reference_values_give_no_psi_rather_than_noise():
    values = pd.DataFrame({"week": pd.to_datetime(["2025-01-06"] * 3), "score": [0.1, 0.2, 0.3]})
    assert psi_by_week(values).empty
