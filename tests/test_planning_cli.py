"""`railpm plan` end to end on a small lake: reads predictions and the lake, writes both plans, prints a summary."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

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


def write_faults(data_root, rows: list[tuple[str, str, datetime]]) -> None:
    lake = data_root / "lake" / "faults"
    frame = pd.DataFrame([{
        "event_id": f"F-{i}", "vehicle_number": v, "vehicle_type": None, "depot": "DEP-NORTH", "ts": pd.Timestamp(ts),
        "fault_code": code, "subsystem": contracts.FAULT_CODE_BY_CODE[code].subsystem,
        "grade": contracts.FAULT_CODE_BY_CODE[code].typical_grade, "description": None} for i, (v, code, ts) in enumerate(rows)])
    for day, part in frame.groupby(frame["ts"].dt.date):
        folder = lake / f"day={day.isoformat()}"
        folder.mkdir(parents=True)
        part[contracts.FAULTS.column_names].to_parquet(folder / "faults.parquet", index=False)


def test_a_recurring_fault_becomes_one_replacement_request_in_the_plan(data_root):
    vehicles = sorted(pd.read_parquet(data_root / "lake" / "vehicles")["vehicle_number"])
    late = datetime(SCORED.year, SCORED.month, SCORED.day, 9, tzinfo=timezone.utc)
    # Five brake warnings on one vehicle in the last 30 days: one request. The same three weeks ago on another,
    # 40 days ago: its window has ended. Four A/B faults within a year on a third: one escalation.
    rows = [(vehicles[0], "BR-110", late - timedelta(days=d)) for d in (20, 12, 6, 3, 0)]
    rows += [(vehicles[1], "BR-110", late - timedelta(days=d)) for d in (60, 50, 40)]
    rows += [(vehicles[2], "RG-190", late - timedelta(days=d)) for d in (300, 200, 100, 1)]
    write_faults(data_root, rows)
    result = CliRunner().invoke(app, ["plan", "--data-root", str(data_root), "--time-limit", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    work = pd.read_csv(data_root / "plans" / SCORED.isoformat() / "work_requests.csv")
    assert work[["kind", "vehicle_number", "component"]].fillna("").values.tolist() == [
        ["replace_component", vehicles[0], "brake_unit"], ["vehicle_escalation", vehicles[2], ""]]
    assert work.loc[0, "faults"] == 5 and work.loc[0, "raised_day"] == (SCORED - timedelta(days=6)).isoformat()
    assert "1 component replacements, 1 vehicle escalations" in result.output


def test_a_capacity_override_changes_the_plan_and_never_exceeds_the_new_capacity(data_root):
    runner = CliRunner()
    base = runner.invoke(app, ["plan", "--data-root", str(data_root), "--time-limit", "3"])
    assert base.exit_code == 0, base.output
    folder = data_root / "plans" / SCORED.isoformat()
    before = pd.read_parquet(folder / "inspection_plan.parquet")
    slots = before.loc[before["uses_slot"] & (before["status"] == "planned")]
    busiest = slots.groupby("depot").size().idxmax()
    short = {2: 0, 3: 1}  # the busiest depot loses its level-2 slots and keeps one level-3 slot a day
    args = [f"--capacity={busiest}:{level}={n}" for level, n in short.items()]
    result = runner.invoke(app, ["plan", "--data-root", str(data_root), "--time-limit", "3", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    after = pd.read_parquet(folder / "inspection_plan.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "inspection_plan_baseline.parquet"), before)
    used = after.loc[after["uses_slot"] & (after["status"] == "planned") & (after["depot"] == busiest)]
    for (_day, level), count in used.groupby(["day", "maintenance_level"]).size().items():
        assert count <= short.get(int(level), InspectionRules.from_settings(Settings()).capacity.slots(busiest, int(level)))
    assert not after.equals(before)
    summary = json.loads((folder / "summary.json").read_text())
    what_if = summary["what_if"]
    assert what_if["extra_cost_eur"] == pytest.approx(
        summary["inspections"]["expected_cost_eur"] - what_if["baseline"]["expected_cost_eur"], abs=0.01)
    assert summary["inspections"]["expected_cost_eur"] >= what_if["baseline"]["expected_cost_eur"] - 1e-6
    assert "baseline capacity" in result.output
    # The plan pages show the what-if beside the baseline, and the transfer list.
    from railpm.review.pages import ReviewData, Site, environment, inspections_page, render, spares_page

    review = ReviewData(Settings(data_root=data_root))
    page = render(environment(), inspections_page(review), Site())
    assert "what-if capacity" in page and f"{busiest} L2=0" in page and "baseline expected cost" in page
    assert "Work the service rules raised" in page
    assert "Transfers before ordering" in render(environment(), spares_page(review), Site())
    bad = runner.invoke(app, ["plan", "--data-root", str(data_root), "--capacity", "DEP-NORTH-2-1"])
    assert bad.exit_code != 0 and "DEPOT:LEVEL=SLOTS" in bad.output
