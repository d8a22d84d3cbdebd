"""The policy simulation on a small case with known truth: a find changes what happens next."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from railpm.config import CostSettings
from railpm.costs import CostModel
from railpm.models.frames import LABEL
from railpm.models.simulation import SimulationSettings, policy_table, simulate_policies

DAYS = pd.date_range("2025-03-01", periods=60)
VEHICLES = ["EMU-0001", "EMU-0002", "EMU-0003", "EMU-0004"]
FAILURE_DAY = DAYS[40]


def case() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """EMU-0001's brake unit fails (grade A) on day 40, and the model sees it coming from day 25; the age/usage
    baseline ranks every vehicle alike. EMU-0002's routine level-2 visit on day 5 found a worn wheelset."""
    rows = []
    for v in VEHICLES:
        for k, day in enumerate(DAYS):
            failing = v == "EMU-0001" and 25 <= k < 40
            rows.append({"vehicle_number": v, "component": "brake_unit", "home_depot": "DEP-NORTH", "day": day, "fold": 1,
                         LABEL: v == "EMU-0001" and 10 <= k < 40, "score_model": 0.9 if failing else 0.001,
                         "score_age_usage": 0.01})
    scored = pd.DataFrame(rows)
    failures = pd.DataFrame({"vehicle_number": ["EMU-0001"], "component": ["brake_unit"], "failure_day": [FAILURE_DAY],
                             "fold": [1], "grade": ["A"]})
    schedule = pd.DataFrame({"vehicle_number": ["EMU-0002", "EMU-0002"], "fold": [1, 1],
                             "action": ["inspection", "preventive_replacement"], "maintenance_level": [2, 2],
                             "component": [None, "wheelset"]})
    return scored, failures, schedule


def costs_with(detection: float) -> CostModel:
    return CostModel(CostSettings(detection_probability_by_level={lvl: detection for lvl in range(1, 6)}))


def test_a_find_avoids_the_failure_and_changes_the_outcome():
    scored, failures, schedule = case()
    settings = SimulationSettings(bootstrap=200)
    certain = costs_with(1.0)
    outcome = simulate_policies(scored, failures, schedule, certain, settings)
    table = policy_table(outcome, settings).set_index("policy")

    # The model alerts on day 25 and finds the worn brake unit: a preventive replacement instead of a grade-A failure.
    assert table.loc["model_threshold", "failures"] == 0 and table.loc["model_threshold", "failures_avoided"] == 1
    assert table.loc["fixed_schedule", "failures"] == 1 and table.loc["fixed_schedule", "failures_a"] == 1
    assert table.loc["age_usage", "failures"] == 1  # below its threshold: no alert, nothing found
    # One inspection (the renewed unit is not inspected again), one targeted replacement plus the schedule's one.
    assert table.loc["model_threshold", "inspections"] == 1 and table.loc["model_threshold", "replacements"] == 2
    pv = outcome.per_vehicle.set_index(["policy", "vehicle_number"])
    saved = pv.loc[("fixed_schedule", "EMU-0001"), "cost_eur"] - pv.loc[("model_threshold", "EMU-0001"), "cost_eur"]
    assert saved == pytest.approx(certain.failure("brake_unit", "A") - certain.preventive("brake_unit")
                                  - certain.component_inspection("brake_unit"))
    assert table.loc["model_threshold", "availability"] > table.loc["fixed_schedule", "availability"]
    # Where the money goes adds up to the total, and the schedule's share is the same for every policy that keeps it.
    parts = table[[f"{w}_eur_per_1000_vehicle_days" for w in ("schedule", "failure", "action")]].sum(axis=1)
    assert parts.to_numpy() == pytest.approx(table["eur_per_1000_vehicle_days"].to_numpy())
    assert table.loc["model_threshold", "schedule_eur_per_1000_vehicle_days"] == pytest.approx(
        table.loc["fixed_schedule", "schedule_eur_per_1000_vehicle_days"]) and table.loc["run_to_failure", "schedule_eur_per_1000_vehicle_days"] == 0
    # Perfect foresight: one inspection the day before the failure, which it finds; the model paid the same here.
    assert table.loc["perfect_foresight", "failures"] == 0 and table.loc["perfect_foresight", "inspections"] == 1
    assert table.loc["perfect_foresight", "eur_per_1000_vehicle_days"] == pytest.approx(table.loc["model_threshold", "eur_per_1000_vehicle_days"])
    # Run to failure: no visits, and what the visit found worn fails in service too.
    assert table.loc["run_to_failure", "failures"] == 2
    assert pv.loc[("run_to_failure", "EMU-0002"), "cost_eur"] == pytest.approx(certain.failure("wheelset"))

    # Where inspections can find nothing, alerting never pays: the model's threshold is 1 and it acts like the schedule.
    blind = policy_table(simulate_policies(scored, failures, schedule, costs_with(0.0), settings), settings).set_index("policy")
    assert blind.loc["model_threshold", "inspections"] == 0
    assert blind.loc["model_threshold", "eur_per_1000_vehicle_days"] == blind.loc["fixed_schedule", "eur_per_1000_vehicle_days"]
    # Blind inspections find nothing even with foresight: it pays the inspection and the failure.
    assert blind.loc["perfect_foresight", "failures"] == 1
    assert blind.loc["perfect_foresight", "eur_per_1000_vehicle_days"] > blind.loc["fixed_schedule", "eur_per_1000_vehicle_days"]
    # A poor inspection (2 %) still pays at p = 0.9 here; this seed's draws (0.64, 0.27, 0.04) find nothing, so the
    # failure happens; with re-inspection a week after a miss the unit is inspected on days 25, 32 and 39 at its cost.
    weekly = SimulationSettings(bootstrap=200, reinspect_after_days=7)
    poor = policy_table(simulate_policies(scored, failures, schedule, costs_with(0.02), weekly), weekly).set_index("policy")
    assert poor.loc["model_threshold", "failures"] == 1 and poor.loc["model_threshold", "inspections"] == 3
    assert poor.loc["model_threshold", "eur_per_1000_vehicle_days"] > poor.loc["fixed_schedule", "eur_per_1000_vehicle_days"]


def test_the_saving_interval_comes_from_resampling_vehicles():
    scored, failures, schedule = case()
    settings = SimulationSettings(bootstrap=500, seed=1)
    table = policy_table(simulate_policies(scored, failures, schedule, costs_with(1.0), settings), settings).set_index("policy")
    row = table.loc["model_threshold"]
    assert row["ci_low"] <= row["eur_per_1000_vehicle_days"] <= row["ci_high"]
    # Only one vehicle carries the saving: resamples without it save nothing, so the interval reaches zero.
    assert row["saving_ci_low"] == pytest.approx(0.0, abs=1e-9) or row["saving_ci_low"] < 0
    assert row["saving_ci_high"] > 0 and np.isfinite(row["saving_vs_fixed_schedule"])


def test_an_alert_late_in_one_block_finds_a_failure_early_in_the_next():
    """The folds' test blocks follow each other: the fleet does not forget an inspection at a block's end, so an
    alert on the first fold's last days finds a failure in the second fold's first days."""
    scored, _, schedule = case()
    scored["fold"] = np.where(scored["day"] < DAYS[30], 1, 2)
    scored["score_model"] = np.where((scored["vehicle_number"] == "EMU-0001") & scored["day"].between(DAYS[28], DAYS[29]),
                                     0.9, 0.001)
    failures = pd.DataFrame({"vehicle_number": ["EMU-0001"], "component": ["brake_unit"], "failure_day": [DAYS[35]],
                             "fold": [2], "grade": ["A"]})
    settings = SimulationSettings(bootstrap=50)
    outcome = simulate_policies(scored, failures, schedule, costs_with(1.0), settings)
    table = policy_table(outcome, settings).set_index("policy")
    assert table.loc["model_threshold", "failures_avoided"] == 1 and table.loc["model_threshold", "failures"] == 0
    assert table.loc["model_threshold", "inspections"] == 1
    assert outcome.failures["avoided_model_threshold"].tolist() == [True]


def test_record_steps_shorter_than_a_day_count_exposure_in_days():
    """Azure PdM's 3-hour steps: the simulation counts in steps, but costs are per 1,000 vehicle-days and a
    failure's days out weigh against days, not steps."""
    scored, failures, schedule = case()
    per_step = SimulationSettings(bootstrap=50, steps_per_day=8)
    per_day = SimulationSettings(bootstrap=50)
    stepped = policy_table(simulate_policies(scored, failures, schedule, costs_with(1.0), per_step), per_step).set_index("policy")
    daily = policy_table(simulate_policies(scored, failures, schedule, costs_with(1.0), per_day), per_day).set_index("policy")
    assert stepped.loc["fixed_schedule", "eur_per_1000_vehicle_days"] == pytest.approx(
        8 * daily.loc["fixed_schedule", "eur_per_1000_vehicle_days"])
    lost = 1 - daily.loc["fixed_schedule", "availability"]
    assert 1 - stepped.loc["fixed_schedule", "availability"] == pytest.approx(8 * lost)
