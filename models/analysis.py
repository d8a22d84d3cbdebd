"""Reliability views of the component-day records and of the registered models, for the notebooks and the review.

Everything here reads values it is given (records, a backtest, a tracking URI) and returns small frames; the
notebooks only display them, so no figure exists only in a notebook.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from railpm.errors import RailpmError
from railpm.models.frames import DAYS_TO_FAILURE, EVENT, LABEL, TIME, failure_events
from railpm.models.survival import kaplan_meier
from railpm.models.tracking import CHALLENGER, CHAMPION, PRIMARY_METRIC, version_by_alias


def failure_summary(records: pd.DataFrame) -> pd.DataFrame:
    """Per component: exposure, failures, censoring and the mean time between failures it implies."""
    last_day = records["day"].max()
    events = failure_events(records)
    # A history censored before the data ends was cut by a preventive replacement.
    censored = records[~records[EVENT].fillna(False).astype(bool)]
    cut = censored.assign(end=censored["day"] + pd.to_timedelta(censored[TIME], unit="D"))
    cut = cut[cut["end"] < last_day].drop_duplicates(["vehicle_number", "component", "end"])
    out = pd.DataFrame({
        "vehicles": records.groupby("component")["vehicle_number"].nunique(),
        "component_days": records.groupby("component").size(),
        "failures": events.groupby("component").size(),
        "preventive_replacements": cut.groupby("component").size(),
        "positive_day_share": records.groupby("component")[LABEL].apply(lambda s: s.dropna().astype(bool).mean()),
    }).fillna({"failures": 0, "preventive_replacements": 0})
    out["mtbf_days"] = out["component_days"] / out["failures"].replace(0, np.nan)
    return out.sort_values("failures", ascending=False)


def degradation_curve(records: pd.DataFrame, feature: str, component: str, days_before: int = 60) -> pd.DataFrame:
    """Mean of a feature by days before a failure (the P-F curve), against its level on days far from any failure."""
    rows = records[records["component"] == component]
    near = rows[rows[DAYS_TO_FAILURE].notna() & (rows[DAYS_TO_FAILURE] <= days_before)]
    curve = near.groupby(DAYS_TO_FAILURE)[feature].agg(["mean", "count"]).rename_axis("days_to_failure")
    healthy = rows[(rows[TIME] > days_before)][feature]
    curve["healthy_mean"] = healthy.mean()
    return curve.reset_index()


def survival_from_day(records: pd.DataFrame, component: str) -> pd.DataFrame:
    """Kaplan-Meier of days to the next failure from any component-day, censoring at replacements and data end."""
    rows = records[records["component"] == component]
    values, surv = kaplan_meier(rows[TIME].to_numpy(float), rows[EVENT].fillna(False).astype(bool).to_numpy())
    return pd.DataFrame({"days": values, "survival": surv}).drop_duplicates("days", keep="last")


def warning_summary(events: pd.DataFrame, lead_days: list[int]) -> pd.DataFrame:
    """Per component and method: failures in the test periods, the share warned N days ahead, median warning.

    ``events`` is a backtest's ``events`` table (one row per failure and method with its ``warning_days``).
    """
    grouped = events.groupby(["component", "method"])["warning_days"]
    out = pd.DataFrame({"failures": grouped.size(), "warned": grouped.apply(lambda s: s.notna().mean()),
                        "median_warning_days": grouped.median()})
    for n in lead_days:
        out[f"warned_{n}d"] = grouped.apply(lambda s, n=n: (s >= n).mean())
    return out.reset_index()


def compare_aliases(tracking_uri: str, model_name: str, aliases=(CHAMPION, CHALLENGER)) -> pd.DataFrame:
    """The aliased versions side by side: version, when, gate decision and their backtest headline metrics."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    columns = {}
    for alias in aliases:
        version = version_by_alias(client, model_name, alias)
        if version is None:
            continue
        run = client.get_run(version.run_id)
        metrics = run.data.metrics
        columns[f"{alias} (v{version.version})"] = {
            "run_id": version.run_id,
            "records_last_day": run.data.tags.get("railpm.last_day"),
            "gate": run.data.tags.get("railpm.gate_reason"),
            "primary PR-AUC (model)": metrics.get(PRIMARY_METRIC),
            **{k: v for k, v in sorted(metrics.items()) if k.startswith(("model.mean.", "age_usage.primary", "schedule.primary",
                                                                           "life_interval.mean", "champion."))},
        }
    return pd.DataFrame(columns)


def champion_backtest(tracking_uri: str, model_name: str, alias: str = CHAMPION) -> dict[str, pd.DataFrame]:
    """The backtest tables logged with the aliased version's training run (events, importance, summary)."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = version_by_alias(client, model_name, alias)
    if version is None:
        raise RailpmError(f"no version of {model_name!r} carries the alias {alias!r}: run `railpm train` first")
    tables = {"events": "backtest/events.json", "importance": "backtest/feature_importance.json",
              "summary": "backtest/summary.json", "life": "backtest/life_coverage.json"}
    out = {}
    for name, path in tables.items():
        logged = json.loads(Path(client.download_artifacts(version.run_id, path)).read_text())
        out[name] = pd.DataFrame(logged["data"], columns=logged["columns"])
    return out
