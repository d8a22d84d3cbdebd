"""Inspection plan: capacity and double-booking on random fleets, CP-SAT against greedy, the scheduled visits."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from railpm import contracts
from railpm.config import Settings
from railpm.errors import BadInputError
from railpm.planning.examples import example_inputs
from railpm.planning.inspections import InspectionRules, plan_inspections
from railpm.planning.maintenance import DepotCapacity, covers, inspection_level, maintenance_due
from railpm.planning.risk import avoidable_failure_probability, failure_cdf

SCORED = date(2025, 6, 1)
START = SCORED + timedelta(days=1)


def prediction(vehicle, component, p, life, low=None, high=None, vehicle_type="EMU", depot="DEP-NORTH"):
    return {
        "scored_day": SCORED, "vehicle_number": vehicle, "vehicle_type": vehicle_type, "home_depot": depot,
        "component": component, "failure_probability": p, "risk_band": "high", "alert": True,
        "remaining_life_days": life, "remaining_life_low_days": low if low is not None else life * 0.6,
        "remaining_life_high_days": high if high is not None else life * 1.6, "reasons": "[]", "model_version": "m1",
    }


def registry(*vehicles, depot="DEP-NORTH"):
    return pd.DataFrame(
        {
            "vehicle_number": list(vehicles), "vehicle_type": "EMU", "home_depot": depot,
            "commissioning_date": date(2015, 1, 1), "daily_km_mean": 500.0,
        }
    )


NO_DUE = pd.DataFrame(columns=["vehicle_number", "depot", "maintenance_level", "due_day"])


def check_plan(plan: pd.DataFrame, due: pd.DataFrame, rules: InspectionRules) -> None:
    """Every rule a plan must keep, read from the plan frame alone."""
    placed = plan.loc[plan["status"] == "planned"]
    slots = placed.loc[placed["uses_slot"]]
    assert (slots["component"].isna()).all()
    used = slots.groupby(["depot", "day", "maintenance_level"]).size()
    for (depot, _day, level), count in used.items():
        assert count <= rules.capacity.slots(depot, int(level)), f"{depot} level {level} over capacity"
    assert slots.groupby(["vehicle_number", "day"]).size().max() <= 1 if len(slots) else True, "vehicle double-booked"
    first, last = START, START + timedelta(days=rules.window_days - 1)
    assert placed["day"].between(first, last).all()

    components = placed.loc[placed["component"].notna()]
    assert not components.duplicated(["vehicle_number", "component"]).any()
    visit = slots.set_index(["vehicle_number", "day"])
    for row in components.itertuples(index=False):
        host = visit.loc[(row.vehicle_number, row.day)]
        assert host["depot"] == row.depot
        assert covers(int(host["maintenance_level"]), row.component)
        expected = "scheduled_visit" if row.kind == "ride_along" else "predictive_visit"
        assert host["kind"] == expected
        level = inspection_level(row.component, rules.planned_levels)
        assert row.inspection_cost_eur == (0.0 if row.kind == "ride_along" else rules.costs.inspection(level))
    for row in slots.loc[slots["kind"] == "predictive_visit"].itertuples(index=False):
        assert ((components["vehicle_number"] == row.vehicle_number) & (components["day"] == row.day)).any(), "empty visit"

    scheduled = plan.loc[plan["kind"] == "scheduled_visit"]
    assert len(scheduled) == due["vehicle_number"].nunique()
    for row in scheduled.loc[scheduled["status"] == "planned"].itertuples(index=False):
        assert row.depot == row.home_depot
        if row.due_day >= START:
            assert row.due_day - timedelta(days=rules.scheduled_advance_days) <= row.day <= row.due_day
        else:
            assert row.day <= START + timedelta(days=rules.scheduled_advance_days)


def net_value(plan: pd.DataFrame) -> float:
    return round(plan["net_value_eur"].sum() - plan["transfer_cost_eur"].sum(), 2)


@pytest.mark.parametrize("seed, transfers", [(0, False), (1, True), (2, False), (3, True)])
def test_random_fleets_keep_capacity_and_never_double_book(seed, transfers):
    inputs = example_inputs(24, seed=seed, scored_day=SCORED, degrading_share=0.2)
    rng = np.random.default_rng(seed)
    capacity = DepotCapacity(
        {2: int(rng.integers(1, 3)), 3: 1, 4: 1, 5: 1}, per_depot={"DEP-EAST": {3: 0}}, default=1
    )
    rules = InspectionRules(capacity=capacity, allow_transfers=transfers, transfer_cost=800.0, time_limit_s=5, seed=seed)
    result = plan_inspections(inputs.predictions, inputs.vehicles, inputs.maintenance_due, rules)

    for plan in (result.plan, result.greedy):
        check_plan(plan, inputs.maintenance_due, rules)
    summary = result.summary
    assert net_value(result.plan) == pytest.approx(summary["objective_eur"])
    assert net_value(result.greedy) == pytest.approx(summary["greedy_objective_eur"])
    # Due visits placed come first, then value: CP-SAT never ranks below greedy.
    placed = {name: int((plan["kind"] == "scheduled_visit").sum() - (plan["status"] != "planned").sum())
              for name, plan in (("cp-sat", result.plan), ("greedy", result.greedy))}
    assert placed["cp-sat"] >= placed["greedy"]
    if placed["cp-sat"] == placed["greedy"]:
        assert summary["objective_eur"] >= summary["greedy_objective_eur"]
    if transfers:
        away = result.plan.loc[result.plan["uses_slot"] & (result.plan["depot"] != result.plan["home_depot"])]
        assert (away["transfer_cost_eur"] == 800.0).all()
    else:
        assert (result.plan["depot"] == result.plan["home_depot"]).all()


def test_cp_sat_beats_the_myopic_greedy_rule():
    """Greedy books the most valuable prediction first into the earliest slot; the one that cannot wait loses."""
    predictions = pd.DataFrame(
        [
            prediction("EMU-0001", "wheelset", 0.9, life=25.0, low=20.0, high=30.0),  # can wait: same value both days
            prediction("EMU-0002", "brake_unit", 0.8, life=1.2, low=0.8, high=1.8),  # fails soon: day 2 is too late
        ]
    )
    rules = InspectionRules(capacity=DepotCapacity({2: 1}), window_days=2, time_limit_s=5)
    result = plan_inspections(predictions, registry("EMU-0001", "EMU-0002"), NO_DUE, rules)

    def first_day(plan):
        rows = plan.loc[plan["kind"] == "inspection"].set_index("vehicle_number")["day"]
        return rows.to_dict()

    assert first_day(result.greedy) == {"EMU-0001": START, "EMU-0002": START + timedelta(days=1)}
    assert first_day(result.plan) == {"EMU-0002": START, "EMU-0001": START + timedelta(days=1)}
    assert result.summary["objective_eur"] > result.summary["greedy_objective_eur"] + 1_000
    assert result.summary["solver_status"] == "OPTIMAL"
    assert result.summary["optimality_gap"] == 0


def test_a_component_the_due_visit_examines_rides_along_without_a_slot():
    predictions = pd.DataFrame(
        [
            prediction("EMU-0001", "brake_unit", 0.5, life=40.0),  # level 2 examines it
            prediction("EMU-0001", "hvac", 0.6, life=40.0),  # only level 3 does: needs its own visit
        ]
    )
    due = pd.DataFrame({"vehicle_number": ["EMU-0001"], "depot": ["DEP-NORTH"], "maintenance_level": [2], "due_day": [START + timedelta(days=2)]})
    rules = InspectionRules(capacity=DepotCapacity({2: 1, 3: 1}), window_days=5, time_limit_s=5)
    plan = plan_inspections(predictions, registry("EMU-0001"), due, rules).plan

    rows = plan.set_index("component", drop=False)
    assert rows.loc["brake_unit", "kind"] == "ride_along"
    assert rows.loc["brake_unit", "inspection_cost_eur"] == 0
    assert rows.loc["hvac", "kind"] == "inspection" and rows.loc["hvac", "maintenance_level"] == 3
    visits = plan.loc[plan["uses_slot"]]
    assert sorted(visits["kind"]) == ["predictive_visit", "scheduled_visit"]
    assert visits["day"].nunique() == 2, "the vehicle takes one slot a day"
    check_plan(plan, due, rules)


def test_due_visits_beyond_capacity_are_reported_not_squeezed_in():
    vehicles = ["EMU-0001", "EMU-0002", "EMU-0003"]
    due = pd.DataFrame({"vehicle_number": vehicles, "depot": "DEP-NORTH", "maintenance_level": 3, "due_day": START})
    predictions = pd.DataFrame([prediction(v, "doors", 0.01, life=300.0) for v in vehicles])
    rules = InspectionRules(capacity=DepotCapacity({3: 1}), scheduled_advance_days=0, time_limit_s=5)
    result = plan_inspections(predictions, registry(*vehicles), due, rules)

    scheduled = result.plan.loc[result.plan["kind"] == "scheduled_visit"]
    assert (scheduled["status"] == "planned").sum() == 1
    assert (scheduled["status"] == "unplaced: no capacity").sum() == 2
    assert scheduled.loc[scheduled["status"] != "planned", "day"].isna().all()
    assert result.summary["scheduled_visits_unplaced"] == 2


def test_same_input_same_plan():
    inputs = example_inputs(20, seed=5, scored_day=SCORED, degrading_share=0.2)
    rules = InspectionRules(capacity=DepotCapacity({2: 1, 3: 1}), time_limit_s=5)
    first = plan_inspections(inputs.predictions, inputs.vehicles, inputs.maintenance_due, rules).plan
    second = plan_inspections(inputs.predictions, inputs.vehicles, inputs.maintenance_due, rules).plan
    pd.testing.assert_frame_equal(first, second)


def test_late_slots_are_worth_less_and_nothing_after_the_failure():
    predictions = pd.DataFrame(
        [prediction("A", "wheelset", 0.8, life=3.0, low=2.0, high=4.5), prediction("B", "wheelset", 0.3, life=float("nan"))]
    )
    days = np.arange(0, 31)
    value = avoidable_failure_probability(days, predictions, horizon_days=30, coverage=0.8)
    assert value[:, 0] == pytest.approx([0.8, 0.3])  # an inspection now avoids the whole risk
    assert (np.diff(value, axis=1) <= 1e-12).all()
    assert value[0, 10] < 0.01  # predicted to fail around day 3: a slot on day 10 is too late
    assert value[1, 15] == pytest.approx(0.15)  # no remaining life: constant hazard over the horizon
    assert (value[:, 30] == 0).all()
    beyond = failure_cdf([30, 60], predictions, horizon_days=30, coverage=0.8)
    assert beyond[:, 0] == pytest.approx([0.8, 0.3])
    assert beyond[1, 1] == pytest.approx(1 - 0.7**2)


def test_maintenance_due_from_work_orders():
    as_of = date(2025, 6, 1)
    vehicles = pd.DataFrame(
        {
            "vehicle_number": ["EMU-0001", "EMU-0002", "EMU-0003", "EMU-0004"],
            "home_depot": ["DEP-NORTH", "DEP-SOUTH", "DEP-EAST", "DEP-WEST"],
            "commissioning_date": [date(2015, 1, 1), date(2015, 1, 1), date(2015, 1, 1), date(2025, 5, 20)],
            "daily_km_mean": [500.0, 2_000.0, 500.0, 500.0],
        }
    )

    def order(vehicle, day, level, km, action="inspection"):
        return {"vehicle_number": vehicle, "action": action, "maintenance_level": level, "odometer_km": km,
                "opened_at": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=9)}

    work_orders = pd.DataFrame(
        [
            order("EMU-0001", date(2025, 5, 22), 2, 100_000),  # level 2 by time: due 5 June
            order("EMU-0001", date(2025, 1, 10), 3, 60_000),  # level 3 by time: 10 April, overdue
            order("EMU-0002", date(2025, 5, 28), 2, 300_000),  # 20,000 km at 2,000 km/day: 7 June, before 11 June
            order("EMU-0002", date(2025, 5, 20), 3, 284_000),  # a level 3 resets level 2 too, but the later 2 counts
            order("EMU-0003", date(2025, 3, 1), None, 10_000, action="corrective_replacement"),  # no inspection history
        ]
    )
    due = maintenance_due(work_orders, vehicles, as_of=as_of, window_days=14, levels=(2, 3))
    got = {(r.vehicle_number, r.maintenance_level): (r.due_day, r.due_by) for r in due.itertuples()}
    assert got == {
        ("EMU-0001", 2): (date(2025, 6, 5), "time"),
        ("EMU-0001", 3): (date(2025, 4, 10), "time"),
        ("EMU-0002", 2): (date(2025, 6, 7), "distance"),
        # EMU-0003: last visits unknown (history starts after it entered service): nothing invented.
        ("EMU-0004", 2): (date(2025, 6, 3), "time"),  # commissioned inside the records: its clock starts then
    }


def test_rules_follow_settings_and_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RAILPM_PLAN__DEPOT_CAPACITY", '{"DEP-NORTH": {"2": 7}}')
    monkeypatch.setenv("RAILPM_PLAN__WINDOW_DAYS", "7")
    rules = InspectionRules.from_settings(Settings(data_root=tmp_path))
    assert rules.window_days == 7
    assert rules.capacity.slots("DEP-NORTH", 2) == 7
    assert rules.capacity.slots("DEP-SOUTH", 2) == Settings().plan.capacity_per_level[2]
    assert rules.capacity.slots("DEP-SOUTH", 1) == Settings().plan.default_depot_capacity_per_day


def test_bad_predictions_are_refused_with_the_rule():
    good = prediction("EMU-0001", "doors", 0.2, life=10.0)
    rules = InspectionRules(capacity=DepotCapacity({2: 1}))
    with pytest.raises(BadInputError, match="failure_probability_in_range"):
        plan_inspections(pd.DataFrame([good | {"failure_probability": 1.5}]), registry("EMU-0001"), NO_DUE, rules)
    with pytest.raises(BadInputError, match="vehicle_known"):
        plan_inspections(pd.DataFrame([good | {"vehicle_number": "EMU-9999"}]), registry("EMU-0001"), NO_DUE, rules)
    with pytest.raises(BadInputError, match="one_scored_day"):
        later = good | {"scored_day": SCORED + timedelta(days=1), "component": "hvac"}
        plan_inspections(pd.DataFrame([good, later]), registry("EMU-0001"), NO_DUE, rules)
    assert set(contracts.PREDICTIONS.column_names) >= set(pd.DataFrame([good]).columns)
