"""Backtest scores: rows for the statistician, events for the planner.

Row scores (PR-AUC, ROC-AUC, Brier) say how well risks are ranked and calibrated on component-days whose
outcome is known. Planners live with events, so every failure in a test period is also scored once: was it
warned, how many days ahead, and how many alarms did the policy raise that no failure followed. Overlapping
daily rows of one failure are never counted as many successes.

Policies scored:
- *capacity*: each week the planner inspects the fleet's ``k`` riskiest vehicle-components;
- *alerts*: every day the rows above the alert threshold within the depot's alert budget (see ``policy``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from railpm.config import ModelSettings
from railpm.costs import CostModel


def ranking_scores(label: np.ndarray, score: np.ndarray, is_probability: bool) -> dict[str, float]:
    label = np.asarray(label, dtype=bool)
    score = np.asarray(score, dtype=float)
    positives = int(label.sum())
    both = 0 < positives < len(label)
    return {
        "rows": int(len(label)),
        "positives": positives,
        "base_rate": float(label.mean()) if len(label) else float("nan"),
        "pr_auc": float(average_precision_score(label, score)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(label, score)) if both else float("nan"),
        "brier": float(brier_score_loss(label, score)) if is_probability and len(label) else float("nan"),
    }


def weekly_capacity_alerts(test: pd.DataFrame, score: str, top_k: int, first_day: pd.Timestamp) -> pd.Series:
    """True for the fleet's ``top_k`` riskiest vehicle-components on each weekly decision day."""
    decision = ((test["day"] - first_day).dt.days % 7) == 0
    rank = test[score].where(decision).groupby(test["day"]).rank(method="first", ascending=False)
    return (decision & (rank <= top_k)).fillna(False).astype(bool)


def warnings_for_events(events: pd.DataFrame, alerts: pd.DataFrame, horizon_days: int) -> pd.Series:
    """Days of warning each failure got: the earliest alert on its vehicle-component within the horizon before it.

    NaN for a failure no alert warned.
    """
    if events.empty:
        return pd.Series(dtype="float64")
    if alerts.empty:
        return pd.Series(np.nan, index=events.index)
    pairs = events.reset_index().merge(
        alerts[["vehicle_number", "component", "day"]], on=["vehicle_number", "component"], how="left"
    )
    lead = (pairs["failure_day"] - pairs["day"]).dt.days
    pairs["lead"] = lead.where((lead >= 1) & (lead <= horizon_days))
    return pairs.groupby("index")["lead"].max().reindex(events.index)


def alarm_episodes(alerts: pd.DataFrame, label: str, merge_gap_days: int = 7) -> pd.DataFrame:
    """Alerts on one vehicle-component a few days apart form one alarm; it is false if no alerted day was followed
    by a failure within the horizon."""
    if alerts.empty:
        return pd.DataFrame(columns=["vehicle_number", "component", "start", "false_alarm"])
    a = alerts.sort_values(["vehicle_number", "component", "day"])
    same = (a["vehicle_number"].eq(a["vehicle_number"].shift())) & (a["component"].eq(a["component"].shift()))
    new = ~same | ((a["day"] - a["day"].shift()).dt.days > merge_gap_days)
    episode = new.cumsum()
    grouped = a.groupby(episode)
    return pd.DataFrame({
        "vehicle_number": grouped["vehicle_number"].first(),
        "component": grouped["component"].first(),
        "start": grouped["day"].min(),
        "false_alarm": ~grouped[label].any(),
    }).reset_index(drop=True)


def policy_scores(test: pd.DataFrame, alerted: pd.Series, events: pd.DataFrame, label: str, settings: ModelSettings,
                  exposure_days: int, costs: CostModel) -> dict[str, float]:
    """Event-level scores of one alert policy on one test period (one component or the whole fleet).

    ``expected_cost`` prices with the one cost model (``railpm.costs``): every alert a targeted inspection of its
    component; every warned failure is found with the inspection's detection probability and then costs a
    preventive replacement, else the in-service failure; every failure no alert warned the in-service failure.
    ``cost_saving`` is the gain over raising no alert at all (every failure in service). The policy simulation
    (``models.simulation``) goes further and lets a find change what happens next.
    """
    alerts = test.loc[alerted, ["vehicle_number", "component", "day", label]]
    lead = warnings_for_events(events, alerts, settings.horizon_days)
    n_events = len(events)
    failure = np.array([costs.failure(c) for c in events["component"]], dtype=float) if n_events else np.zeros(0)
    detect = np.array([costs.detection(c) for c in events["component"]], dtype=float) if n_events else np.zeros(0)
    preventive = np.array([costs.preventive(c) for c in events["component"]], dtype=float) if n_events else np.zeros(0)
    warned = lead.notna().to_numpy() if n_events else np.zeros(0, dtype=bool)
    inspections = float(sum(costs.component_inspection(c) for c in alerts["component"]))
    event_cost = np.where(warned, detect * preventive + (1 - detect) * failure, failure)
    cost = inspections + float(event_cost.sum())
    episodes = alarm_episodes(alerts, label)
    out = {
        "alerts": int(len(alerts)),
        "precision": float(alerts[label].astype(bool).mean()) if len(alerts) else float("nan"),
        "failures": int(n_events),
        "recall": float(lead.notna().mean()) if n_events else float("nan"),
        "median_warning_days": float(lead.median()) if lead.notna().any() else float("nan"),
        "false_alarms_per_1000_vehicle_days": 1000.0 * float(episodes["false_alarm"].sum()) / max(exposure_days, 1),
        "expected_cost": float(cost),
        "cost_saving": float(failure.sum() - cost),
    }
    for n in settings.warning_lead_days:
        out[f"warned_{n}d"] = float((lead >= n).mean()) if n_events else float("nan")
    return out
