"""Model building blocks on small hand-built frames of the component-day contract's shape.

The acceptance tests on a generated fleet's real records are in ``test_models_fleet.py``; these pin down
each block's rule (folds, censoring, survival, metrics, alert policy, gate) where the right answer is known.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from railpm import contracts
from railpm.config import ComponentCost, CostSettings, GradeConsequence, ModelSettings
from railpm.costs import CostModel
from railpm.errors import BadInputError
from railpm.models import tracking
from railpm.models.backtest import rolling_origin_folds
from railpm.models.baselines import schedule_risk
from railpm.models.explain import contributions
from railpm.models.fleet_scoring import reasons_json
from railpm.models.fit import weighted_rows
from railpm.models.frames import (
    EVENT, LABEL, TIME, censor_at, check_component_days, failure_events, model_input, normalise,
    numeric_feature_columns,
)
from railpm.models.metrics import alarm_episodes, policy_scores, warnings_for_events, weekly_capacity_alerts
from railpm.models.pipeline import AGE_USAGE_PATTERN, ModelParams, age_usage_features, build_pipeline
from railpm.models.policy import break_even_probability, risk_bands, select_alerts
from railpm.models.survival import DiscreteTimeHazard, interval_coverage, kaplan_meier


def component_days(rows: list[dict]) -> pd.DataFrame:
    """A frame of the contract's shape from a few hand-written rows (defaults for what a test does not care about)."""
    base = {"vehicle_type": "EMU", "home_depot": "DEP-NORTH", "age_days": 100.0, "bearing_temp_mean_7d": 0.0,
            LABEL: False, contracts.LABEL_DAYS_TO_FAILURE: None, TIME: 100.0, EVENT: False}
    frame = pd.DataFrame([{**base, **r} for r in rows])
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def test_features_are_every_column_but_keys_categoricals_and_labels():
    frame = component_days([{"vehicle_number": "EMU-0001", "day": "2025-01-01", "component": "doors",
                             "new_signal_slope_30d": 1.5, "_source": "x"}])
    features = numeric_feature_columns(frame.columns)
    assert features == ["age_days", "bearing_temp_mean_7d", "new_signal_slope_30d"]
    X = model_input(normalise(frame))
    assert list(X.columns) == [*contracts.CATEGORICAL_FEATURES, *features]
    assert all(X[c].dtype == "float32" for c in features)


def test_records_breaking_the_contract_are_refused_with_the_rule():
    frame = component_days([{"vehicle_number": "EMU-0001", "day": "2025-01-01", "component": "doors"}] * 2)
    with pytest.raises(BadInputError, match="unique_key"):
        check_component_days(frame)
    with pytest.raises(BadInputError, match="lack columns.*home_depot"):
        check_component_days(frame.drop(columns=["home_depot"]).iloc[:1])
    with pytest.raises(BadInputError, match="not numeric"):
        check_component_days(frame.iloc[:1].assign(age_days="old"))


def test_rolling_origin_folds_leave_a_horizon_between_train_and_test():
    first, last = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-12-31")
    folds = rolling_origin_folds(first, last, n_folds=4, horizon_days=30, min_train_days=90)
    assert [f.number for f in folds] == [1, 2, 3, 4]
    assert folds[-1].test_end == last - pd.Timedelta(days=30)
    assert (folds[0].train_end - first).days + 1 >= 90
    for before, after in zip(folds, folds[1:]):
        assert after.test_start == before.test_end + pd.Timedelta(days=1)
        assert after.train_end > before.train_end
    for fold in folds:
        assert (fold.test_start - fold.train_end).days > 30  # no training label reaches into the test block
    with pytest.raises(ValueError, match="cannot hold 4 test blocks"):
        rolling_origin_folds(first, first + pd.Timedelta(days=100), 4, 30, 60)


def test_censor_at_hides_failures_after_the_cutoff():
    frame = normalise(component_days([
        # fails 20 days later, after the cutoff: becomes censored at the cutoff, label unknown
        {"vehicle_number": "V1", "day": "2025-03-01", "component": "doors", LABEL: True, TIME: 20.0, EVENT: True},
        # fails 5 days later, before the cutoff: stays a known failure
        {"vehicle_number": "V2", "day": "2025-03-01", "component": "doors", LABEL: True, TIME: 5.0, EVENT: True},
        # observed working 60 days on: censored at the cutoff (10 days), label unknown for a 30-day horizon
        {"vehicle_number": "V3", "day": "2025-03-01", "component": "doors", LABEL: False, TIME: 60.0, EVENT: False},
        # an old row whose horizon ended before the cutoff keeps its label
        {"vehicle_number": "V4", "day": "2025-01-01", "component": "doors", LABEL: False, TIME: 60.0, EVENT: False},
    ]))
    out = censor_at(frame, pd.Timestamp("2025-03-11"), horizon_days=30).set_index("vehicle_number")
    assert out.loc["V1", TIME] == 10 and not out.loc["V1", EVENT] and pd.isna(out.loc["V1", LABEL])
    assert out.loc["V2", TIME] == 5 and out.loc["V2", EVENT] and out.loc["V2", LABEL]
    assert out.loc["V3", TIME] == 10 and pd.isna(out.loc["V3", LABEL])
    assert out.loc["V4", TIME] == 60 and out.loc["V4", LABEL] == False  # noqa: E712


def test_failure_events_are_read_back_from_the_labels():
    frame = normalise(component_days([
        {"vehicle_number": "V1", "day": d, "component": "doors", TIME: float(t), EVENT: True}
        for d, t in (("2025-01-01", 9), ("2025-01-05", 5), ("2025-01-09", 1))
    ] + [{"vehicle_number": "V1", "day": "2025-01-11", "component": "doors", TIME: 30.0, EVENT: False}]))
    events = failure_events(frame)
    assert events.to_dict("records") == [
        {"vehicle_number": "V1", "component": "doors", "failure_day": pd.Timestamp("2025-01-10")}]


def _exponential_lives(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Lifetimes with a known law: daily hazard 1/20 or 1/80 by a feature, censored at random and at 150 days."""
    rng = np.random.default_rng(seed)
    worn = rng.integers(0, 2, n)
    rate = np.where(worn == 1, 1 / 20, 1 / 80)
    life = rng.exponential(1 / rate)
    censor = np.minimum(rng.exponential(120, n), 150)
    time = np.minimum(life, censor)
    return pd.DataFrame({"worn": worn.astype(float)}), time, life <= censor, life


def test_discrete_time_hazard_recovers_a_known_remaining_life_and_its_interval_covers():
    X, time, event, _ = _exponential_lives(3000, seed=1)
    model = DiscreteTimeHazard(LogisticRegression(), bin_edges=(0, 7, 14, 30, 60, 120, 240), quantiles=(0.1, 0.5, 0.9))
    model.fit(X, np.column_stack([time, event]))
    low, median, high = model.predict(pd.DataFrame({"worn": [1.0, 0.0]})).T
    # True medians: ln 2 / rate = 13.9 and 55.5 days; the model is only piecewise-constant, allow 20%.
    assert median[0] == pytest.approx(20 * np.log(2), rel=0.2)
    assert median[1] == pytest.approx(80 * np.log(2), rel=0.2)
    assert (low < median).all() and (median < high).all()
    # Coverage on fresh data, measured from the censored observations, against the truth no test can see.
    X2, time2, event2, life2 = _exponential_lives(3000, seed=2)
    low2, _, high2 = model.predict(X2).T
    measured = interval_coverage(low2, high2, time2, event2)
    truth = float(((low2 <= life2) & (life2 <= high2)).mean())
    assert truth == pytest.approx(0.8, abs=0.05)
    assert measured["censored_aware"] == pytest.approx(truth, abs=0.05)
    # The naive share over observed failures is biased (only the early failures are observed).
    assert abs(measured["among_failures"] - truth) > abs(measured["censored_aware"] - truth)


def test_kaplan_meier_matches_a_hand_computed_curve():
    # Times 1, 2+, 3, 4 (2 censored): S(1) = 3/4, S(3) = 3/4 * 1/2, S(4) = 0.
    values, surv = kaplan_meier(np.array([3, 1, 2, 4.0]), np.array([True, True, False, True]))
    assert list(values) == [1, 3, 4]
    assert surv == pytest.approx([0.75, 0.375, 0.0])


def _one_component_costs(inspection: float, detection: float, part: float, recovery: float) -> CostModel:
    """Doors only, every failure grade A, no labour, delay or downtime: the threshold's arithmetic by hand."""
    return CostModel(CostSettings(
        labour_eur_per_hour=0, delay_eur_per_minute=0, unavailable_vehicle_eur_per_day=0,
        inspection_eur_by_level={lvl: float(inspection) for lvl in range(1, 6)},
        detection_probability_by_level={lvl: detection for lvl in range(1, 6)},
        components={"doors": ComponentCost(part_eur=part, preventive_labour_hours=0, corrective_labour_hours=0,
                                           collateral_eur=0, grade_a_share=1.0)},
        consequences={"A": GradeConsequence(recovery_eur=recovery), "B": GradeConsequence(), "C": GradeConsequence()},
    ))


def test_alerts_respect_the_cost_threshold_and_each_depots_daily_budget():
    costs = _one_component_costs(inspection=600, detection=0.8, part=3_000, recovery=4_500)
    # failure 3,000 + 4,500, preventive 3,000: a find saves 0.8 x 4,500 = 3,600 against an inspection of 600.
    threshold = break_even_probability(costs, pd.Series(["doors"] * 6))
    assert threshold.tolist() == pytest.approx([600 / 3_600] * 6)
    frame = pd.DataFrame({
        "day": pd.to_datetime(["2025-01-01"] * 5 + ["2025-01-02"]),
        "home_depot": ["N", "N", "N", "S", "S", "N"],
        "p": [0.9, 0.5, 0.2, 0.1, 0.13, 0.3],
    })
    alerts = select_alerts(frame, "p", threshold, budget_per_depot_per_day=2)
    assert alerts.tolist() == [True, True, False, False, False, True]
    assert risk_bands(frame["p"], threshold, base_rate=0.11).tolist() == ["high", "high", "high", "low", "medium", "high"]
    assert risk_bands([0.12, 0.05], threshold[:2], base_rate=0.11).tolist() == ["medium", "low"]


def test_event_scores_count_each_failure_once_with_its_warning_time():
    settings = ModelSettings(horizon_days=10, warning_lead_days=[3, 7])
    costs = _one_component_costs(inspection=1, detection=0.5, part=10, recovery=90)
    days = pd.date_range("2025-01-01", periods=20)
    test = pd.DataFrame({"vehicle_number": "V1", "component": "doors", "day": days,
                         LABEL: [d >= pd.Timestamp("2025-01-05") for d in days]})
    events = pd.DataFrame({"vehicle_number": ["V1", "V2"], "component": ["doors", "doors"],
                           "failure_day": pd.to_datetime(["2025-01-15", "2025-01-12"])})
    # Alerts on Jan 1 (false: no failure within 10 days), and Jan 9, 10, 11 (6, 5, 4 days before the failure).
    alerted = test["day"].isin(pd.to_datetime(["2025-01-01", "2025-01-09", "2025-01-10", "2025-01-11"]))
    lead = warnings_for_events(events, test[alerted], settings.horizon_days)
    assert lead.tolist()[0] == 6 and np.isnan(lead.tolist()[1])
    scores = policy_scores(test, alerted, events, LABEL, settings, exposure_days=2000, costs=costs)
    assert scores["failures"] == 2 and scores["recall"] == 0.5
    assert scores["warned_3d"] == 0.5 and scores["warned_7d"] == 0.0
    assert scores["median_warning_days"] == 6
    assert scores["precision"] == 0.75
    # Two alarms (Jan 1 alone, Jan 9-11 together: a week apart makes a new alarm), one false, per 2,000 vehicle-days.
    assert scores["false_alarms_per_1000_vehicle_days"] == 0.5
    # Four inspections at 1; the warned failure found half the time (preventive 10, else failure 100); one missed.
    assert scores["expected_cost"] == 4 * 1 + (0.5 * 10 + 0.5 * 100) + 1 * 100
    assert scores["cost_saving"] == 2 * 100 - scores["expected_cost"]
    episodes = alarm_episodes(test[alerted], LABEL)
    assert episodes["false_alarm"].tolist() == [True, False]


def test_weekly_capacity_picks_the_fleets_top_k_on_decision_days_only():
    days = pd.date_range("2025-01-01", periods=8)
    test = pd.DataFrame({"day": np.repeat(days, 3), "vehicle_number": np.tile(["A", "B", "C"], 8),
                         "score": np.tile([0.1, 0.9, 0.5], 8)})
    picked = weekly_capacity_alerts(test, "score", top_k=2, first_day=days[0])
    assert test[picked][["day", "vehicle_number"]].values.tolist() == [
        [days[0], "B"], [days[0], "C"], [days[7], "B"], [days[7], "C"]]


def test_schedule_risk_is_the_most_elapsed_interval_that_inspects_the_component():
    rows = pd.DataFrame({"component": ["doors", "traction_motor", "traction_motor"],
                         "days_since_inspection_l3": [45.0, 45.0, 90.0], "km_since_inspection_l3": [0.0, 90_000.0, 0.0],
                         "days_since_inspection_l4": [0.0, 0.0, np.nan]})
    risk = schedule_risk(rows)
    # doors: level 3 (90 days) half elapsed; traction: 90,000 of 100,000 km; level 4 never done -> due.
    assert risk[0] == pytest.approx(0.5)
    assert risk[1] == pytest.approx(0.9)
    assert risk[2] == pytest.approx(1.0)
    with pytest.raises(BadInputError, match="schedule_features"):
        schedule_risk(rows[["component"]])


def test_age_usage_baseline_sees_only_age_and_usage_features():
    names = ["age_days", "odometer_km", "days_since_replacement", "km_since_inspection_l3", "bearing_temp_mean_7d",
             "faults_major_365d", "speed_kmh_mean_1d"]
    assert age_usage_features(names) == ["age_days", "odometer_km", "days_since_replacement", "km_since_inspection_l3"]
    assert AGE_USAGE_PATTERN


def _toy_training_frame(n_days: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(8):
        for d, day in enumerate(pd.date_range("2025-01-01", periods=n_days)):
            signal = rng.normal()
            rows.append({"vehicle_number": f"V{v}", "day": day, "component": ["doors", "hvac"][v % 2],
                         "bearing_temp_mean_7d": signal, "age_days": float(d), LABEL: bool(signal + rng.normal(0, .5) > 1),
                         TIME: 10.0, EVENT: False})
    return normalise(component_days(rows))


def test_pipeline_ranks_an_informative_signal_and_calibrates():
    frame = _toy_training_frame()
    X, y = model_input(frame), frame[LABEL].astype(bool)
    fitted = build_pipeline(ModelParams(max_iter=40)).fit(X, y)
    p = fitted.predict_proba(X)[:, 1]
    assert np.corrcoef(p, X["bearing_temp_mean_7d"])[0, 1] > 0.7
    assert p.mean() == pytest.approx(y.mean(), abs=0.03)  # calibrated: mean probability = base rate


def test_reasons_name_the_feature_that_drives_the_probability():
    frame = _toy_training_frame()
    X = model_input(frame)
    fitted = build_pipeline(ModelParams(max_iter=40)).fit(X, frame[LABEL].astype(bool))
    hot = X.iloc[:1].assign(bearing_temp_mean_7d=3.0)

    def predict(rows):
        return fitted.predict_proba(rows)[:, 1]

    features = ["age_days", "bearing_temp_mean_7d"]
    contrib = contributions(predict, hot, {"age_days": 60.0, "bearing_temp_mean_7d": 0.0}, features)
    reasons = json.loads(reasons_json(hot[features].to_numpy(dtype=float), contrib, features, top_n=2)[0])
    assert reasons[0]["feature"] == "bearing_temp_mean_7d" and reasons[0]["value"] == 3.0
    assert reasons[0]["contribution"] == pytest.approx(predict(hot)[0] - predict(hot.assign(bearing_temp_mean_7d=0.0))[0],
                                                       abs=1e-4)


def test_gate_needs_the_margin_over_both_baselines_and_the_champion():
    baselines = {"schedule": 0.20, "age_usage": 0.40}
    assert tracking.decide(0.50, baselines, None, 0.02).alias == tracking.CHAMPION
    assert tracking.decide(0.41, baselines, None, 0.02).alias == tracking.CHALLENGER
    assert tracking.decide(0.50, baselines, 0.49, 0.02).alias == tracking.CHALLENGER
    assert tracking.decide(0.52, baselines, 0.49, 0.02).alias == tracking.CHAMPION
    assert "age_usage baseline" in tracking.decide(0.30, baselines, None, 0.02).reason


def test_feedback_weights_become_repeated_training_rows_and_are_no_feature():
    frame = normalise(component_days([
        {"vehicle_number": "V1", "day": "2025-01-01", "component": "doors", "sample_weight": 2.0},
        {"vehicle_number": "V2", "day": "2025-01-01", "component": "doors", "sample_weight": 1.0},
    ]))
    assert "sample_weight" not in numeric_feature_columns(frame.columns)
    assert weighted_rows(frame)["vehicle_number"].tolist() == ["V1", "V1", "V2"]
    assert weighted_rows(frame.drop(columns=["sample_weight"]))["vehicle_number"].tolist() == ["V1", "V2"]


def test_importance_is_measured_only_on_features_some_tree_splits_on():
    from railpm.models.backtest import _split_counts
    from railpm.models.pipeline import build_pipeline

    rng = np.random.default_rng(0)
    n = 2000
    X = pd.DataFrame({"vehicle_type": rng.choice(["EMU", "DMU"], n), "home_depot": rng.choice(["A", "B"], n),
                      "component": rng.choice(["wheelset", "bogie"], n), "signal": rng.normal(size=n),
                      "constant": np.ones(n)})
    y = X["signal"] + rng.normal(size=n) * 0.3 > 1.0
    fitted = build_pipeline(ModelParams(max_iter=15, calibration_folds=2, max_features=1.0)).fit(X, y)
    prepared = fitted[:-1].transform(X)
    used = {prepared.columns[i] for i in _split_counts(fitted[-1], prepared.shape[1])}
    assert "signal" in used and "constant" not in used
