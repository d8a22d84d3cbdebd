"""The inspection and spares plans as planners read them: the latest plan, its depot load and headline figures.

The planning step writes ``plans/<scored_day>/`` with ``inspection_plan``, ``spares_plan`` and
``spares_pooling`` (Parquet) and ``summary.json``; the latest scored day's folder is the one shown.
Depot capacity is taken from the same ``Settings`` the planner used, so the load chart shows the limit the
plan was built under.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pandas as pd

from railpm import contracts
from railpm.config import Settings
from railpm.layers import plan_files
from railpm.review.data import HINTS, LayerMissing

INSPECTION_SHOWN = [
    "day", "vehicle_number", "depot", "home_depot", "maintenance_level", "kind", "component", "status",
    "failure_probability", "remaining_life_days", "expected_avoided_cost_eur", "net_value_eur",
]
SPARES_SHOWN = [
    "depot", "part_number", "component", "vehicle_type", "stock_category", "lead_time_days", "expected_demand",
    "stock_level", "planned_stock", "fault_driven_stock", "emergency_stock", "on_hand", "reorder_quantity",
    "reorder_value_eur", "fill_rate",
]
POOLING_SHOWN = ["part_number", "component", "vehicle_type", "depots", "separate_stock", "pooled_stock", "saving_units", "saving_eur"]


@dataclass
class PlanView:
    scored_day: str
    figures: list[tuple[str, object]]
    columns: list[str]
    records: list[dict]
    numeric: tuple[str, ...]
    rows: pd.DataFrame
    load: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Inspection plan only: slots used per depot and day against the depot's capacity."""
    extra: dict = field(default_factory=dict)


def latest_plan_folder(plans_dir: Path, plan: str, layer: str) -> Path:
    folders = [p.parent for p in plan_files(plans_dir, plan)]
    if not folders:
        raise LayerMissing(HINTS[layer])
    return folders[-1]


def _summary(folder: Path, section: str) -> dict:
    path = folder / "summary.json"
    return json.loads(path.read_text()).get(section, {}) if path.exists() else {}


def _rows(frame: pd.DataFrame) -> list[dict]:
    from railpm.review.pages import records

    return records(frame)


def read_inspection_plan(settings: Settings) -> PlanView:
    folder = latest_plan_folder(settings.plans_dir, "inspection_plan", "inspection_plan")
    from railpm.planning.inspections import InspectionRules  # OR-Tools is slow to import: only when a plan exists

    plan = pd.read_parquet(folder / "inspection_plan.parquet")
    summary = _summary(folder, "inspections")
    capacity = InspectionRules.from_settings(settings).capacity
    levels = sorted(settings.plan.planned_levels)

    slots = plan[plan["uses_slot"].astype(bool)] if "uses_slot" in plan.columns else plan.iloc[0:0]
    first = pd.Timestamp(summary.get("first_day") or plan["day"].min()).date()
    window = int(summary.get("window_days") or settings.plan.window_days)
    days = [first + timedelta(days=k) for k in range(window)]
    depots = list(dict.fromkeys([*contracts.DEPOTS, *slots["depot"]]))
    used = slots.assign(day=pd.to_datetime(slots["day"]).dt.date).groupby(["depot", "day"]).size()
    load = pd.DataFrame([(d, k) for d in depots for k in days], columns=["depot", "day"])
    load["planned"] = [int(used.get((d, k), 0)) for d, k in zip(load["depot"], load["day"])]
    load["capacity"] = load["depot"].map(lambda depot: sum(capacity.slots(depot, level) for level in levels))
    by_level = slots.groupby(["depot", "day", "maintenance_level"]).size().rename("planned").reset_index()
    by_level["slots"] = [capacity.slots(d, int(lv)) for d, lv in zip(by_level["depot"], by_level["maintenance_level"])]
    utilisation = (
        by_level.groupby(["depot", "maintenance_level"])
        .agg(busiest_day_planned=("planned", "max"), slots_per_day=("slots", "first"), visits=("planned", "sum"))
        .reset_index()
    )
    figures = [
        ("scored day", folder.name),
        ("visits using a slot", int(len(slots))),
        ("predictive inspections", summary.get("inspections")),
        ("scheduled visits due", summary.get("scheduled_visits_due")),
        ("expected value (EUR)", summary.get("objective_eur")),
        ("expected cost over the horizon (EUR)", summary.get("expected_cost_eur")),
        *_what_if_figures(folder),
        ("gain over greedy (EUR)", summary.get("gain_over_greedy_eur")),
        ("solve time (s)", summary.get("solve_time_s")),
    ]
    shown = plan.sort_values(["day", "depot", "vehicle_number"], kind="stable")
    columns = [c for c in INSPECTION_SHOWN if c in shown.columns]
    return PlanView(
        scored_day=folder.name,
        figures=[(label, value) for label, value in figures if value is not None],
        columns=columns,
        records=_rows(shown[columns]),
        numeric=("failure_probability", "remaining_life_days", "expected_avoided_cost_eur", "net_value_eur"),
        rows=plan,
        load=load,
        extra={"utilisation": _rows(utilisation), "utilisation_columns": list(utilisation.columns),
               **_table_of(folder / "work_requests.parquet", "work")},
    )


def _what_if_figures(folder: Path) -> list[tuple[str, object]]:
    """A plan made for a capacity what-if (``railpm plan --capacity``): the baseline's expected cost beside it."""
    what_if = _summary(folder, "what_if")
    if not what_if:
        return []
    overrides = "; ".join(f"{d} L{lv}={n}" for d, levels in what_if["capacity_overrides"].items() for lv, n in levels.items())
    return [("what-if capacity", overrides), ("baseline expected cost (EUR)", what_if["baseline"].get("expected_cost_eur")),
            ("what-if extra cost (EUR)", what_if.get("extra_cost_eur"))]


def _table_of(path: Path, name: str) -> dict:
    """An optional table of the plan folder as ``{name: rows, name_columns: columns}`` (empty rows if absent)."""
    frame = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    return {name: _rows(frame), f"{name}_columns": list(frame.columns)}


def read_spares_plan(settings: Settings) -> PlanView:
    folder = latest_plan_folder(settings.plans_dir, "spares_plan", "spares_plan")
    plan = pd.read_parquet(folder / "spares_plan.parquet")
    summary = _summary(folder, "spares")
    pooling_path = folder / "spares_pooling.parquet"
    pooling = pd.read_parquet(pooling_path) if pooling_path.exists() else pd.DataFrame(columns=POOLING_SHOWN)
    figures = [
        ("scored day", folder.name),
        ("service level", summary.get("service_level")),
        ("stock value (EUR)", summary.get("stock_value_eur")),
        ("reorder lines", summary.get("reorder_lines")),
        ("reorder value (EUR)", summary.get("reorder_value_eur")),
        ("pooling would save (EUR)", summary.get("pooling_saving_eur")),
        ("transfers (units)", summary.get("transfer_units")),
        ("transfer cost (EUR)", summary.get("transfer_cost_eur")),
    ]
    shown = plan.sort_values(["reorder_value_eur", "depot", "part_number"], ascending=[False, True, True], kind="stable") \
        if "reorder_value_eur" in plan.columns else plan
    columns = [c for c in SPARES_SHOWN if c in shown.columns]
    pooling_columns = [c for c in POOLING_SHOWN if c in pooling.columns]
    pooled = pooling.sort_values("saving_eur", ascending=False) if "saving_eur" in pooling.columns else pooling
    return PlanView(
        scored_day=folder.name,
        figures=[(label, value) for label, value in figures if value is not None],
        columns=columns,
        records=_rows(shown[columns]),
        numeric=tuple(c for c in columns if pd.api.types.is_numeric_dtype(shown[c])),
        rows=plan,
        extra={"pooling": _rows(pooled[pooling_columns]), "pooling_columns": pooling_columns,
               **_table_of(folder / "spares_transfers.parquet", "transfers")},
    )
