"""The plan step's I/O: read one day's predictions and the lake's reference data, write both plans.

Everything here is reading and writing; the decisions are made by ``inspections``, ``maintenance`` and
``spares`` on small DataFrames (one row per vehicle-component), so the step needs no Spark.
Output, per scored day: ``plans/<scored_day>/`` with ``inspection_plan``, ``spares_plan`` and
``spares_pooling`` as Parquet and CSV (for planners' spreadsheets), ``inspection_plan_greedy.parquet`` and
``spares_demand.parquet`` for audit, and ``summary.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from railpm import contracts
from railpm.config import Settings
from railpm.errors import BadInputError, RailpmError
from railpm.planning.inspections import INSPECTION_PLAN_COLUMNS, InspectionRules, plan_inspections
from railpm.planning.maintenance import maintenance_due
from railpm.planning.spares import SparesRules, plan_spares
from railpm.planning.work import open_work_requests
from railpm.rules import MAJOR_WINDOW_DAYS

WORK_ORDER_COLUMNS = ["vehicle_number", "action", "component", "maintenance_level", "opened_at", "odometer_km"]
FAULT_COLUMNS = ["event_id", "vehicle_number", "depot", "ts", "fault_code", "grade"]


def _dataset(path: Path) -> pads.Dataset:
    """Every Parquet file under ``path``; ``key=value`` folders become columns unless the files carry them."""
    files = sorted(f for f in path.rglob("*.parquet") if not f.name.startswith(".")) if path.is_dir() else []
    if not files:
        raise RailpmError(f"no Parquet files under {path}")
    keys = {part.split("=", 1)[0] for part in files[0].relative_to(path).parts[:-1] if "=" in part}
    hive = bool(keys) and not keys & set(pq.read_schema(files[0]).names)
    return pads.dataset(
        [str(f) for f in files], format="parquet", partitioning="hive" if hive else None,
        partition_base_dir=str(path) if hive else None,
    )


def read_table(path: Path, columns: list[str] | None = None, filter=None) -> pd.DataFrame:
    """A lake or predictions table as pandas (only for tables that are small by nature)."""
    dataset = _dataset(path)
    if columns:
        absent = [c for c in columns if c not in dataset.schema.names]
        if absent:
            raise BadInputError(f"{path} lacks columns {absent}", file=path, rule="columns_present")
    return dataset.to_table(columns=columns, filter=filter).to_pandas()


def _as_date(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.astype(str)).dt.date


def read_predictions(predictions_dir: Path, scored_day: date | None = None) -> pd.DataFrame:
    """The predictions of one scored day: the one asked for, or the latest."""
    dataset = _dataset(predictions_dir)
    if "scored_day" not in dataset.schema.names:
        raise BadInputError(f"predictions under {predictions_dir} carry no scored_day", file=predictions_dir, rule="predictions_contract")
    days = _as_date(dataset.to_table(columns=["scored_day"]).column("scored_day").to_pandas()).unique()
    if scored_day is None:
        scored_day = max(days)
    elif scored_day not in set(days):
        latest = max(days)
        raise RailpmError(f"no predictions for {scored_day} under {predictions_dir} (latest: {latest})")
    table = dataset.to_table().to_pandas()
    table["scored_day"] = _as_date(table["scored_day"])
    frame = table.loc[table["scored_day"] == scored_day].reset_index(drop=True)
    missing = [c for c in contracts.PREDICTIONS.column_names if c not in frame.columns]
    if missing:
        raise BadInputError(f"predictions lack columns {missing}", file=predictions_dir, rule="predictions_contract")
    return frame[contracts.PREDICTIONS.column_names]


def read_work_orders(lake_dir: Path, as_of: date) -> pd.DataFrame:
    """Work orders opened up to the end of ``as_of``, only the columns the schedule needs."""
    path = lake_dir / contracts.WORK_ORDERS.name
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    try:
        return read_table(path, WORK_ORDER_COLUMNS, filter=pc.field("opened_at") < end)
    except RailpmError:
        return pd.DataFrame(columns=WORK_ORDER_COLUMNS)


def read_faults(lake_dir: Path, as_of: date) -> pd.DataFrame:
    """Faults up to the end of ``as_of`` (the rules' windows look back at most a year)."""
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    try:
        return read_table(lake_dir / contracts.FAULTS.name, FAULT_COLUMNS,
                          filter=(pc.field("ts") < end) & (pc.field("ts") >= end - pd.Timedelta(days=2 * MAJOR_WINDOW_DAYS)))
    except RailpmError:
        return pd.DataFrame(columns=FAULT_COLUMNS)


def _write(frame: pd.DataFrame, folder: Path, name: str, csv: bool = True) -> list[Path]:
    """Write beside, then rename: a reader never sees half a file."""
    written = []
    for suffix in (".parquet", ".csv") if csv else (".parquet",):
        target = folder / f"{name}{suffix}"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}", suffix=suffix)
        os.close(fd)
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, target)
        written.append(target)
    return written


@dataclass
class PlanRun:
    folder: Path
    files: list[Path]
    summary: dict


def run_plan(settings: Settings, scored_day: date | None = None, capacity_overrides: dict[str, dict[int, int]] | None = None,
             **inspection_overrides) -> PlanRun:
    """Both plans for one scored day (default: the latest), written under ``plans/<scored_day>/``.

    ``capacity_overrides`` (depot -> level -> slots per day) is a planner's what-if: the plan is made for that
    capacity, and the plan for the configured capacity is written beside it (``inspection_plan_baseline``) with
    both expected costs in the summary.
    """
    predictions = read_predictions(settings.predictions_dir, scored_day)
    day = predictions["scored_day"].iloc[0]
    lake = settings.lake_dir
    vehicles = read_table(lake / contracts.VEHICLES.name, contracts.VEHICLES.column_names)
    parts = read_table(lake / contracts.PARTS.name, contracts.PARTS.column_names)
    try:
        stock = read_table(lake / contracts.STOCK.name)  # with on_order / in_transit when the feed carries them
    except RailpmError:
        stock = pd.DataFrame(columns=contracts.STOCK.column_names)
    missing = [c for c in contracts.STOCK.column_names if c not in stock.columns]
    if missing:
        raise BadInputError(f"{lake / contracts.STOCK.name} lacks columns {missing}", file=lake / contracts.STOCK.name,
                            rule="columns_present")

    rules = InspectionRules.from_settings(settings, **inspection_overrides)
    work_orders = read_work_orders(lake, day)
    due = maintenance_due(
        work_orders, vehicles, as_of=day, window_days=rules.window_days, levels=rules.planned_levels
    )
    baseline = None
    if capacity_overrides:
        baseline = plan_inspections(predictions, vehicles, due, rules)
        rules = replace(rules, capacity=rules.capacity.with_overrides(capacity_overrides))
    inspection = plan_inspections(predictions, vehicles, due, rules)
    spares = plan_spares(predictions, inspection.plan, parts, stock, SparesRules.from_settings(settings))
    work = open_work_requests(read_faults(lake, day), work_orders, vehicles, day, rules.costs)

    folder = settings.plans_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    files = _write(inspection.plan, folder, "inspection_plan")
    files += _write(inspection.greedy, folder, "inspection_plan_greedy", csv=False)
    files += _write(spares.stock, folder, "spares_plan")
    files += _write(spares.pooling, folder, "spares_pooling")
    files += _write(spares.transfers, folder, "spares_transfers")
    files += _write(spares.demand, folder, "spares_demand", csv=False)
    files += _write(work, folder, "work_requests")
    if baseline is not None:
        files += _write(baseline.plan, folder, "inspection_plan_baseline")
    summary = {"scored_day": day.isoformat(), "inspections": inspection.summary, "spares": spares.summary,
               "work_requests": {kind: int((work["kind"] == kind).sum()) for kind in ("replace_component", "vehicle_escalation")}}
    if baseline is not None:
        summary["what_if"] = {"capacity_overrides": capacity_overrides, "baseline": baseline.summary,
                              "extra_cost_eur": round(inspection.summary["expected_cost_eur"] - baseline.summary["expected_cost_eur"], 2)}
    summary_path = folder / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    return PlanRun(folder=folder, files=[*files, summary_path], summary=summary)


def read_inspection_plans(plans_dir: Path) -> pd.DataFrame:
    """Every inspection plan written so far (all scored days), for the audit trail."""
    files = sorted(plans_dir.glob("*/inspection_plan.parquet"))
    if not files:
        return pd.DataFrame(columns=INSPECTION_PLAN_COLUMNS)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
