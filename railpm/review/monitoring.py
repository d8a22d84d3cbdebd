"""Model monitoring for the data team: drift, calibration and alert volume, week by week, from the layers.

Everything is aggregated inside DuckDB over the predictions and records folders, so only a few hundred
rows (weeks x bins) reach pandas whatever the fleet's size.

- **PSI** (population stability index) of a distribution in a week against the reference (the first four
  scored weeks): sum over 10 bins of (p_week - p_ref) * ln(p_week / p_ref), bins cut at the reference's
  deciles, empty bins floored at 0.0001. The usual reading: below 0.1 stable, 0.1-0.25 moderate shift,
  above 0.25 a shift worth retraining for.
- **Calibration**: per week whose horizon has passed, the mean predicted probability against the share of
  vehicle-components that failed (a major fault of the component's code) within the horizon.
- **Alert volume** per depot and week.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from railpm import contracts
from railpm.review import data

REFERENCE_WEEKS = 4
BINS = 10
FLOOR = 1e-4


def psi_by_week(values: pd.DataFrame) -> pd.DataFrame:
    """PSI per week of each column of ``values`` (``week`` plus value columns), against the first weeks."""
    weeks = sorted(values["week"].unique())
    reference = values[values["week"].isin(weeks[:REFERENCE_WEEKS])]
    out = []
    for column in [c for c in values.columns if c != "week"]:
        ref = reference[column].dropna().to_numpy(float)
        if len(ref) < BINS:
            continue
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)[1:-1]))
        ref_share = np.maximum(np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref), FLOOR)
        for week, rows in values.groupby("week"):
            now = rows[column].dropna().to_numpy(float)
            if not len(now):
                continue
            share = np.maximum(np.bincount(np.searchsorted(edges, now, side="right"), minlength=len(edges) + 1) / len(now), FLOOR)
            out.append({"week": week, "what": column, "psi": float(np.sum((share - ref_share) * np.log(share / ref_share)))})
    return pd.DataFrame(out, columns=["week", "what", "psi"])


def _weekly_sample(path: Path, layer: str, columns: list[str], day: str, per_week: int = 5000) -> pd.DataFrame:
    """Up to ``per_week`` rows a week (a reservoir sample in DuckDB): enough for deciles, small for pandas."""
    selected = ", ".join(f'"{c}"' for c in columns)
    return data.query(path, layer, f"""
        SELECT week, {selected} FROM (
          SELECT date_trunc('week', CAST({day} AS DATE)) AS week, {selected},
                 row_number() OVER (PARTITION BY date_trunc('week', CAST({day} AS DATE)) ORDER BY hash(vehicle_number, {day})) AS k
          FROM {{src}}) WHERE k <= {per_week}""")


def top_reason_features(predictions_dir: Path, limit: int = 5) -> list[str]:
    frame = data.query(predictions_dir, "predictions", """
        SELECT json_extract_string(r.value, '$.feature') AS feature, count(*) AS n
        FROM (SELECT unnest(CAST(json(reasons) AS JSON[])) AS value FROM {src}
              WHERE scored_day = (SELECT max(scored_day) FROM {src}) AND reasons IS NOT NULL) r
        GROUP BY 1 ORDER BY n DESC LIMIT ?""", [limit])
    return [f for f in frame["feature"] if f]


def monitoring(settings) -> dict:
    """The monitoring page's tables (raises ``LayerMissing`` without predictions)."""
    predictions_dir, records_dir = settings.predictions_dir, settings.records_dir
    scores = _weekly_sample(predictions_dir, "predictions", ["vehicle_number", "failure_probability"], "scored_day")
    drift = psi_by_week(scores[["week", "failure_probability"]].rename(columns={"failure_probability": "score"}))
    features = top_reason_features(predictions_dir)
    records = records_dir / "component_days"
    if features and records.is_dir():
        try:
            known = set(data.query(records, "component_days", "SELECT * FROM {src} LIMIT 0").columns)
            chosen = [f for f in features if f in known]
            if chosen:
                sample = _weekly_sample(records, "component_days", ["vehicle_number", *chosen], "day")
                drift = pd.concat([drift, psi_by_week(sample[["week", *chosen]])], ignore_index=True)
        except data.LayerMissing:
            pass
    volume = data.query(predictions_dir, "predictions", """
        SELECT date_trunc('week', CAST(scored_day AS DATE)) AS week, home_depot AS depot,
               sum(CAST(alert AS INTEGER)) AS alerts, count(DISTINCT CAST(scored_day AS DATE)) AS days
        FROM {src} GROUP BY 1, 2 ORDER BY 1, 2""")
    volume["alerts_per_day"] = volume["alerts"] / volume["days"].clip(lower=1)
    horizon = settings.model.horizon_days
    codes = [f.code for f in contracts.FAULT_CODES if f.component and f.typical_grade in contracts.MAJOR_GRADES]
    component_of = {f.code: f.component for f in contracts.FAULT_CODES if f.code in codes}
    try:
        calibration = data.query(predictions_dir, "predictions", f"""
            WITH faults AS (SELECT vehicle_number, fault_code, CAST(ts AS DATE) AS day
                            FROM {data._parquet_source(settings.lake_dir / 'faults', 'faults')}
                            WHERE grade IN ({', '.join(f"'{g}'" for g in contracts.MAJOR_GRADES)})),
                 failed AS (SELECT f.vehicle_number, m.component, f.day FROM faults f
                            JOIN (SELECT unnest(?) AS code, unnest(?) AS component) m ON f.fault_code = m.code),
                 last AS (SELECT max(day) AS day FROM faults)
            SELECT date_trunc('week', CAST(p.scored_day AS DATE)) AS week, avg(p.failure_probability) AS predicted,
                   avg(CASE WHEN EXISTS (SELECT 1 FROM failed x WHERE x.vehicle_number = p.vehicle_number
                        AND x.component = p.component AND x.day > CAST(p.scored_day AS DATE)
                        AND x.day <= CAST(p.scored_day AS DATE) + {horizon}) THEN 1.0 ELSE 0.0 END) AS observed,
                   count(*) AS predictions
            FROM {{src}} p WHERE CAST(p.scored_day AS DATE) + {horizon} <= (SELECT day FROM last)
            GROUP BY 1 ORDER BY 1 DESC LIMIT 12""", [list(component_of), list(component_of.values())])
    except data.LayerMissing:
        calibration = pd.DataFrame(columns=["week", "predicted", "observed", "predictions"])
    return {"drift": drift, "volume": volume, "calibration": calibration.sort_values("week"), "features": features}
