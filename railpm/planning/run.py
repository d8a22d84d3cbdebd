"""The plan step's I/O: read one day's predictions and the lake's reference data, write both plans.

Everything here is reading and writing; the decisions are made by ``inspections``, ``maintenance`` and
``spares`` on small DataFrames (one row per vehicle-component), so the step needs no Spark.
Output, per scored day: ``plans/<scored_day>/`` with ``inspection_plan``, ``spares_plan`` and
``spares_pooling`` as Parquet and CSV (for planners' spreadsheets), ``inspection_plan_greedy.parquet`` and
``spares_demand.parquet`` for audit, and ``summary.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc

from railpm import contracts
from railpm.config import Settings
from railpm.errors import BadInputError, RailpmError
from railpm.layers import lake_dir_of, plan_files, plan_folder, read_predictions, read_table, write_atomically
from railpm.planning.inspections import INSPECTION_PLAN_COLUMNS, InspectionRules, plan_inspections
from railpm.planning.maintenance import maintenance_due
from railpm.planning.spares import SparesRules, plan_spares
from railpm.planning.work import open_work_requests
from railpm.rules import MAJOR_WINDOW_DAYS

WORK_ORDER_COLUMNS = ["vehicle_number", "action", "component", "maintenance_level", "opened_at", "odometer_km"]
FAULT_COLUMNS = ["event_id", "vehicle_number", "depot", "ts", "fault_code", "grade"]


def read_work_orders(lake_dir: Path, as_of: date) -> pd.DataFrame:
    """Work orders opened up to the end of ``as_of``, only the columns the schedule needs."""
    path = lake_dir_of(lake_dir, contracts.WORK_ORDERS)
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    try:
        return read_table(path, WORK_ORDER_COLUMNS, filter=pc.field("opened_at") < end)
    except RailpmError:
        return pd.DataFrame(columns=WORK_ORDER_COLUMNS)


def read_faults(lake_dir: Path, as_of: date) -> pd.DataFrame:
    """Faults up to the end of ``as_of`` (the rules' windows look back at most a year)."""
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    try:
        return read_table(lake_dir_of(lake_dir, contracts.FAULTS), FAULT_COLUMNS,
                          filter=(pc.field("ts") < end) & (pc.field("ts") >= end - pd.Timedelta(days=2 * MAJOR_WINDOW_DAYS)))
    except RailpmError:
        return pd.DataFrame(columns=FAULT_COLUMNS)


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
    vehicles = read_table(lake_dir_of(lake, contracts.VEHICLES), contracts.VEHICLES.column_names)
    parts = read_table(lake_dir_of(lake, contracts.PARTS), contracts.PARTS.column_names)
    try:
        stock = read_table(lake_dir_of(lake, contracts.STOCK))  # with on_order / in_transit when the feed carries them
    except RailpmError:
        stock = pd.DataFrame(columns=contracts.STOCK.column_names)
    missing = [c for c in contracts.STOCK.column_names if c not in stock.columns]
    if missing:
        raise BadInputError(f"{lake_dir_of(lake, contracts.STOCK)} lacks columns {missing}", file=lake_dir_of(lake, contracts.STOCK),
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

    folder = plan_folder(settings.plans_dir, day)
    folder.mkdir(parents=True, exist_ok=True)
    files = write_atomically(inspection.plan, folder, "inspection_plan")
    files += write_atomically(inspection.greedy, folder, "inspection_plan_greedy", csv=False)
    files += write_atomically(spares.stock, folder, "spares_plan")
    files += write_atomically(spares.pooling, folder, "spares_pooling")
    files += write_atomically(spares.transfers, folder, "spares_transfers")
    files += write_atomically(spares.demand, folder, "spares_demand", csv=False)
    files += write_atomically(work, folder, "work_requests")
    if baseline is not None:
        files += write_atomically(baseline.plan, folder, "inspection_plan_baseline")
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
    files = plan_files(plans_dir, "inspection_plan")
    if not files:
        return pd.DataFrame(columns=INSPECTION_PLAN_COLUMNS)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
