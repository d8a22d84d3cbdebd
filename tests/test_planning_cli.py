"""`railpm plan` end to end on a small lake: reads predictions and the lake, writes both plans, prints a summary."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from railpm import contracts
from railpm.cli import app
from railpm.config import Settings
from railpm.planning.examples import example_inputs
from railpm.planning.inspections import InspectionRules

SCORED = date(2025, 6, 1)
INTERVAL = {m.level: m.interval_days for m in contracts.MAINTENANCE_LEVELS}


@pytest.fixture
def data_root(tmp_path):
    """A lake in the shared layout: reference tables flat, work orders in day partitions; one day of predictions."""
    root = tmp_path / "data"
    lake = root / "lake"
    inputs = example_inputs(30, seed=4, scored_day=SCORED, degrading_share=0.15)
    for feed, frame in ((contracts.VEHICLES, inputs.vehicles), (contracts.PARTS, inputs.parts), (contracts.STOCK, inputs.stock)):
        (lake / feed.name).mkdir(parents=True)
        frame[feed.column_names].to_parquet(lake / feed.name / f"{feed.name}.parquet", index=False)
    # The last inspection of each level, one interval before the due day the example gives.
    orders = pd.DataFrame(
        {
            "work_order_id": [f"WO-{i:05d}" for i in range(len(inputs.maintenance_due))],
            "vehicle_number": inputs.maintenance_due["vehicle_number"],
            "depot": inputs.maintenance_due["depot"],
            "action": "inspection",
            "component": None,
            "part_number": None,
            "maintenance_level": inputs.maintenance_due["maintenance_level"].astype("int64"),
            "opened_at": [
                pd.Timestamp(due - timedelta(days=INTERVAL[level]), tz="UTC") + pd.Timedelta(hours=7)
                for due, level in zip(inputs.maintenance_due["due_day"], inputs.maintenance_due["maintenance_level"])
            ],
            "odometer_km": 250_000.0,
        }
    )
    orders["closed_at"] = orders["opened_at"] + pd.Timedelta(hours=5)
    for day, frame in orders.groupby(orders["opened_at"].dt.date):
        folder = lake / "work_orders" / f"day={day.isoformat()}"
        folder.mkdir(parents=True)
        frame[contracts.WORK_ORDERS.column_names].to_parquet(folder / "work_orders.parquet", index=False)
    (root / "predictions").mkdir()
    inputs.predictions.to_parquet(root / "predictions" / f"predictions-{SCORED}.parquet", index=False)
    return root


def test_railpm_plan_writes_both_plans_for_planners(data_root):
    result = CliRunner().invoke(app, ["plan", "--data-root", str(data_root), "--time-limit", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "greedy rule" in result.output and "pooling the depots would save" in result.output

    folder = data_root / "plans" / SCORED.isoformat()
    for name in ("inspection_plan", "spares_plan", "spares_pooling"):
        table, sheet = pd.read_parquet(folder / f"{name}.parquet"), pd.read_csv(folder / f"{name}.csv")
        assert list(sheet.columns) == list(table.columns) and len(sheet) == len(table) > 0
    plan = pd.read_parquet(folder / "inspection_plan.parquet")
    summary = json.loads((folder / "summary.json").read_text())

    # The schedule came from the work orders: every vehicle's due visit is in the plan.
    scheduled = plan.loc[plan["kind"] == "scheduled_visit"]
    assert set(scheduled["vehicle_number"]) == set(pd.read_parquet(data_root / "lake" / "vehicles")["vehicle_number"])
    rules = InspectionRules.from_settings(Settings(data_root=data_root))
    slots = plan.loc[plan["uses_slot"] & (plan["status"] == "planned")]
    for (depot, _day, level), count in slots.groupby(["depot", "day", "maintenance_level"]).size().items():
        assert count <= rules.capacity.slots(depot, int(level))
    assert summary["inspections"]["objective_eur"] >= summary["inspections"]["greedy_objective_eur"]
    assert summary["inspections"]["objective_eur"] == pytest.approx(plan["net_value_eur"].sum() - plan["transfer_cost_eur"].sum())
    spares = pd.read_csv(folder / "spares_plan.csv")
    assert (spares["fill_rate"] >= 0.95 - 1e-9).all()
    assert summary["spares"]["reorder_units"] == spares["reorder_quantity"].sum()


def test_railpm_plan_says_what_is_missing(data_root, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["plan", "--data-root", str(data_root), "--scored-day", "2025-01-01"])
    assert result.exit_code == 1 and "no predictions for 2025-01-01" in result.output
    result = runner.invoke(app, ["plan", "--data-root", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "no Parquet files under" in result.output
