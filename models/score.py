"""Daily scoring: the champion by alias on one day's component records, written to ``predictions/``.

Output: ``predictions/predictions-YYYY-MM-DD.parquet``, one file per scored day with exactly the columns of
``contracts.PREDICTIONS``; rescoring a day overwrites its file, so reruns are idempotent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow import MlflowClient

from railpm import contracts
from railpm.arrow import arrow_schema
from railpm.config import ModelSettings
from railpm.errors import RailpmError
from railpm.layers import predictions_path
from railpm.models.frames import latest_day, read_component_days
from railpm.costs import CostModel
from railpm.models.policy import break_even_probability, risk_bands, select_alerts
from railpm.models.tracking import CHAMPION, version_by_alias

class NoChampionError(RailpmError):
    """No model version is champion yet: a new deployment's first records arrive before its first model."""


@dataclass
class ScoringResult:
    day: pd.Timestamp
    path: Path
    rows: int
    alerts: int
    model_version: str
    seconds: float


def predictions_schema() -> pa.Schema:
    return arrow_schema(contracts.PREDICTIONS)


def load_champion(tracking_uri: str, model_name: str, alias: str = CHAMPION):
    """The pyfunc model behind ``models:/<name>@<alias>`` and its version number."""
    mlflow.set_tracking_uri(tracking_uri)
    version = version_by_alias(MlflowClient(), model_name, alias)
    if version is None:
        raise NoChampionError(f"no model version of {model_name!r} carries the alias {alias!r} in {tracking_uri}:"
                          " run `railpm train` first")
    return mlflow.pyfunc.load_model(f"models:/{model_name}@{alias}"), str(version.version)


def score_rows(model, version: str, rows: pd.DataFrame, settings: ModelSettings, costs: CostModel) -> pd.DataFrame:
    """Predictions for component-day rows of one day, in the contract's columns and order."""
    served = model.unwrap_python_model()
    predicted = served.predict_with_reasons(rows)  # one pass for the day: probability, life and reasons
    out = rows[["day", "vehicle_number", "vehicle_type", "home_depot", "component"]].reset_index(drop=True)
    out = pd.concat([out, predicted.reset_index(drop=True)], axis=1)
    threshold = break_even_probability(costs, out["component"])
    out["alert"] = select_alerts(out, "failure_probability", threshold, settings.alert_budget_per_depot_per_day)
    out["risk_band"] = risk_bands(out["failure_probability"], threshold, served.base_rate)
    out["model_version"] = version
    out["scored_day"] = out["day"].dt.date
    return out[contracts.PREDICTIONS.column_names]


def check_predictions(frame: pd.DataFrame) -> None:
    """The written frame must honour its contract: columns, order, nulls, ranges, allowed values, key."""
    contract = contracts.PREDICTIONS
    if list(frame.columns) != contract.column_names:
        raise RailpmError(f"predictions columns {list(frame.columns)} differ from the contract {contract.column_names}")
    for column in contract.columns:
        values = frame[column.name]
        if not column.nullable and values.isna().any():
            raise RailpmError(f"predictions column {column.name} has nulls (rule not_null)")
        if column.min is not None and (values < column.min).any():
            raise RailpmError(f"predictions column {column.name} below {column.min} (rule min)")
        if column.max is not None and (values > column.max).any():
            raise RailpmError(f"predictions column {column.name} above {column.max} (rule max)")
        if column.allowed is not None and not values.isin(column.allowed).all():
            raise RailpmError(f"predictions column {column.name} has values outside {column.allowed} (rule allowed)")
    if frame.duplicated(list(contract.key)).any():
        raise RailpmError("predictions repeat a (scored_day, vehicle_number, component) key (rule unique_key)")


def write_predictions(frame: pd.DataFrame, predictions_dir: Path, day: pd.Timestamp) -> Path:
    check_predictions(frame)
    path = predictions_path(predictions_dir, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, schema=predictions_schema(), preserve_index=False)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)  # atomic: a reader never sees half a day
    return path


def score_day(records_dir: Path, predictions_dir: Path, settings: ModelSettings, tracking_uri: str,
              day: pd.Timestamp | None = None, costs: CostModel | None = None) -> ScoringResult:
    """Score one day's component records (the latest by default) with the champion and write its predictions."""
    started = time.perf_counter()
    day = latest_day(records_dir) if day is None else pd.Timestamp(day).normalize()
    rows = read_component_days(records_dir, days=[day])
    if rows.empty:
        raise RailpmError(f"no component-day records for {day:%Y-%m-%d} in {records_dir}")
    model, version = load_champion(tracking_uri, settings.registered_model_name)
    predictions = score_rows(model, version, rows, settings, costs or CostModel.default())
    path = write_predictions(predictions, predictions_dir, day)
    return ScoringResult(day, path, len(predictions), int(np.sum(predictions["alert"])), version,
                         time.perf_counter() - started)
