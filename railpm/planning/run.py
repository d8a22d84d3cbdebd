"""The plan step's I/O: read one day's predictions and the lake's reference data, write both plans.

Everything here is reading and writing; the decisions are made by ``inspections``, ``maintenance`` and
``spares`` on small DataFrames (one row per vehicle-component), so the step needs no Spark.
Output, per scored day: ``plans/<scored_day>/`` with ``inspection_plan``, ``spares_plan`` and
``spares_pooling`` as Parquet and CSV (for planners' spreadsheets), ``inspection_plan_greedy.parquet`` and
``spares_demand.parquet`` for audit, and ``summary.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc

from railpm import contracts
from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.layers import lake_dir_of, plan_files, plan_folder, read_predictions, read_table, write_atomically
from railpm.planning.inspections import INSPECTION_PLAN_COLUMNS, InspectionRules, plan_inspections
from railpm.planning.maintenance import maintenance_due
from railpm.planning.spares import SparesRules, plan_spares

WORK_ORDER_COLUMNS = ["vehicle_number", "action", "maintenance_level", "opened_at", "odometer_km"]


def read_work_orders(lake_dir: Path, as_of: date) -> pd.DataFrame:
    """Work orders opened up to the end of ``as_of``, only the columns the schedule needs."""
    path = lake_dir_of(lake_dir, contracts.WORK_ORDERS)
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    try:
        return read_table(path, WORK_ORDER_COLUMNS, filter=pc.field("opened_at") < end)
    except RailpmError:
        return pd.DataFrame(columns=WORK_ORDER_COLUMNS)


@dataclass
class PlanRun:
    folder: Path
    files: list[Path]
    summary: dict


def run_plan(settings: Settings, scored_day: date | None = None, **inspection_overrides) -> PlanRun:
    """Both plans for one scored day (default: the latest), written under ``plans/<scored_day>/``."""
    predictions = read_predictions(settings.predictions_dir, scored_day)
    day = predictions["scored_day"].iloc[0]
    lake = settings.lake_dir
    vehicles = read_table(lake_dir_of(lake, contracts.VEHICLES), contracts.VEHICLES.column_names)
    parts = read_table(lake_dir_of(lake, contracts.PARTS), contracts.PARTS.column_names)
    try:
        stock = read_table(lake_dir_of(lake, contracts.STOCK), contracts.STOCK.column_names)
    except RailpmError:
        stock = pd.DataFrame(columns=contracts.STOCK.column_names)

    rules = InspectionRules.from_settings(settings, **inspection_overrides)
    due = maintenance_due(
        read_work_orders(lake, day), vehicles, as_of=day, window_days=rules.window_days, levels=rules.planned_levels
    )
    inspection = plan_inspections(predictions, vehicles, due, rules)
    spares = plan_spares(predictions, inspection.plan, parts, stock, SparesRules.from_settings(settings))

    folder = plan_folder(settings.plans_dir, day)
    folder.mkdir(parents=True, exist_ok=True)
    files = write_atomically(inspection.plan, folder, "inspection_plan")
    files += write_atomically(inspection.greedy, folder, "inspection_plan_greedy", csv=False)
    files += write_atomically(spares.stock, folder, "spares_plan")
    files += write_atomically(spares.pooling, folder, "spares_pooling")
    files += write_atomically(spares.demand, folder, "spares_demand", csv=False)
    summary = {"scored_day": day.isoformat(), "inspections": inspection.summary, "spares": spares.summary}
    summary_path = folder / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    return PlanRun(folder=folder, files=[*files, summary_path], summary=summary)


def read_inspection_plans(plans_dir: Path) -> pd.DataFrame:
    """Every inspection plan written so far (all scored days), for the audit trail."""
    files = plan_files(plans_dir, "inspection_plan")
    if not files:
        return pd.DataFrame(columns=INSPECTION_PLAN_COLUMNS)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
