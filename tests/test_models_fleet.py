"""Acceptance tests of the failure models on a generated fleet's real records (the session's ``model_fleet``).

Training runs once per session (``trained_fleet``) against the fleet's real SQLite MLflow store; scoring
loads the champion by alias from it. Every assertion is on what the code measured or wrote.
"""

from __future__ import annotations

import json
import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy import stats

from railpm import contracts
from railpm.config import Settings
from railpm.models.backtest import ALL, primary_metric
from railpm.models.frames import DAYS_TO_FAILURE, EVENT, LABEL, TIME, read_component_days
from railpm.costs import CostModel
from railpm.models.policy import break_even_probability
from railpm.models.score import predictions_schema
from railpm.layers import COMPONENT_DAYS, read_prediction_history, record_dir
from railpm.models.tasks import recipe, score_fleet, train_fleet, training_records
from railpm.models.tracking import CHALLENGER, CHAMPION, version_by_alias

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(model_fleet) -> Settings:
    return model_fleet


@pytest.fixture(scope="module")
def trained(trained_fleet):
    return trained_fleet


@pytest.fixture(scope="module")
def client(store, trained) -> MlflowClient:
    return MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri)


@pytest.fixture(scope="module")
def records(model_fleet) -> pd.DataFrame:
    return read_component_days(record_dir(model_fleet, COMPONENT_DAYS))


def _lower_bound_of_mean(differences: np.ndarray) -> float:
    """Lower end of the two-sided 95% t-interval of the mean per-fold difference."""
    n = len(differences)
    return float(differences.mean() - stats.t.ppf(0.975, n - 1) * differences.std(ddof=1) / math.sqrt(n))


def test_model_beats_the_schedule_and_the_age_usage_model_on_the_backtest(trained, store):
    """The margin: the per-fold gain in mean PR-AUC must exceed the gate's margin on average, and its 95%
    t-interval over the folds must exclude zero, so the gain is larger than the fold-to-fold noise."""
    table = trained.backtest.table
    assert table["fold"].nunique() == store.model.backtest_folds
    per_fold = {m: table[(table["method"] == m) & (table["component"] != ALL)].groupby("fold")["pr_auc"].mean()
                for m in ("model", "age_usage", "schedule")}
    for baseline in ("age_usage", "schedule"):
        gain = (per_fold["model"] - per_fold[baseline]).to_numpy()
        assert gain.mean() >= store.model.champion_margin, (baseline, per_fold)
        assert _lower_bound_of_mean(gain) > 0, (baseline, gain)
    fleet = table[table["component"] == ALL].groupby("method")[["expected_cost", "recall_at_capacity"]].sum()
    assert fleet.loc["model", "expected_cost"] < fleet.loc["age_usage", "expected_cost"]
    assert fleet.loc["model", "expected_cost"] < fleet.loc["schedule", "expected_cost"]
    assert trained.decision.alias == CHAMPION  # the first version still had to beat both baselines
    assert trained.decision.candidate == pytest.approx(primary_metric(table, "model"))


def test_remaining_life_interval_covers_about_its_nominal_share(trained, store):
    life = trained.backtest.life
    nominal = store.model.remaining_life_interval
    assert (life["rows"] > 0).all()
    # Censoring-aware coverage per fold near nominal; a few dozen failures per fold make +-0.15 the noise.
    assert life["censored_aware"].mean() == pytest.approx(nominal, abs=0.15), life


def test_a_model_trained_on_shuffled_labels_does_not_become_champion(store, trained, client):
    name = store.model.registered_model_name
    champion_before = str(version_by_alias(client, name, CHAMPION).version)
    # Fewer boosting iterations: on shuffled labels no recipe can win, and this is a second training run.
    shuffled = train_fleet(store, recipe(store, shuffle_training_labels=True, max_iter=20, life_max_iter=10))
    assert shuffled.decision.alias == CHALLENGER, shuffled.decision
    assert str(version_by_alias(client, name, CHAMPION).version) == champion_before == trained.model_version
    assert str(version_by_alias(client, name, CHALLENGER).version) == shuffled.model_version
    # It lost on measured figures, by far more than the margin, on the same folds as the champion.
    assert shuffled.decision.candidate < trained.decision.candidate - store.model.champion_margin
    run = client.get_run(shuffled.run_id)
    assert "railpm.freshness_reason" in run.data.tags  # and it was compared with the serving champion
    assert run.data.tags["railpm.gate"] == CHALLENGER and run.data.params["shuffle_training_labels"] == "True"


def test_champion_loaded_by_alias_reproduces_the_predictions_logged_at_training(store, trained, client):
    mlflow.set_tracking_uri(store.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{store.model.registered_model_name}@{CHAMPION}")
    logged_input = pd.read_parquet(client.download_artifacts(trained.run_id, "reference/input.parquet"))
    logged_output = pd.read_parquet(client.download_artifacts(trained.run_id, "reference/predictions.parquet"))
    assert len(logged_input) > 0
    assert list(model.metadata.get_input_schema().input_names()) == list(logged_input.columns)
    pd.testing.assert_frame_equal(model.predict(logged_input), logged_output, check_exact=False, rtol=1e-9)


def test_training_run_logs_the_backtest_plots_data_and_model(store, trained, client):
    run = client.get_run(trained.run_id)
    assert run.data.params["max_iter"] == str(recipe(store).max_iter)
    history = client.get_metric_history(trained.run_id, "model.all.pr_auc")
    assert sorted(m.step for m in history) == list(range(1, store.model.backtest_folds + 1))
    for component in trained.backtest.table["component"].unique():
        assert client.get_metric_history(trained.run_id, f"schedule.{component}.precision_at_capacity") or \
            trained.backtest.table.query("component == @component and method == 'schedule'")[
                "precision_at_capacity"].isna().all()
    plots = {a.path for a in client.list_artifacts(trained.run_id, "plots")}
    assert plots == {f"plots/{p}.png" for p in ("pr_curves", "calibration", "lead_times", "feature_importance")}
    datasets = run.inputs.dataset_inputs
    assert [d.dataset.name for d in datasets] == ["component_days"]
    component_days = read_component_days(record_dir(store, COMPONENT_DAYS))
    assert json.loads(datasets[0].dataset.profile)["num_rows"] == len(component_days)
    schema = {c["name"]: c for c in json.loads(datasets[0].dataset.schema)["mlflow_colspec"]}
    logged = training_records(store)
    assert list(schema) == list(logged.columns)
    assert {n for n, c in schema.items() if not c["required"]} == set(logged.columns[logged.isna().any()])
    version = client.get_model_version(store.model.registered_model_name, trained.model_version)
    assert version.run_id == trained.run_id and CHAMPION in version.aliases


def test_scoring_writes_the_latest_day_per_the_predictions_contract(store, trained, records):
    result = score_fleet(store)
    latest = records["day"].max()
    assert result.day == latest and result.model_version == trained.model_version
    written = pd.read_parquet(result.path)
    import pyarrow.parquet as pq

    assert pq.read_schema(result.path).remove_metadata() == predictions_schema()
    day_rows = records[records["day"] == latest]
    assert len(written) == len(day_rows) == result.rows
    assert not written.duplicated(list(contracts.PREDICTIONS.key)).any()
    assert set(zip(written["vehicle_number"], written["component"])) == set(zip(day_rows["vehicle_number"], day_rows["component"]))
    assert written["failure_probability"].between(0, 1).all()
    assert (written["remaining_life_low_days"] <= written["remaining_life_days"]).all()
    assert (written["remaining_life_days"] <= written["remaining_life_high_days"]).all()
    # Alerts: above the cost model's break-even probability, within each depot's daily budget.
    alerts = written[written["alert"]]
    assert (alerts["failure_probability"] >= break_even_probability(CostModel.default(), alerts["component"])).all()
    assert (written.groupby("home_depot")["alert"].sum() <= store.model.alert_budget_per_depot_per_day).all()
    assert (alerts["risk_band"] == "high").all()
    # Reasons: features of the record with their values, contributions positive and in decreasing order.
    values = day_rows.set_index(["vehicle_number", "component"])
    explained = 0
    for row in written.itertuples():
        reasons = json.loads(row.reasons)
        contributions = [r["contribution"] for r in reasons]
        assert contributions == sorted(contributions, reverse=True) and all(c > 0 for c in contributions)
        for reason in reasons:
            value = values.loc[(row.vehicle_number, row.component), reason["feature"]]
            assert (reason["value"] is None and pd.isna(value)) or reason["value"] == pytest.approx(float(value), abs=1e-3)
        explained += bool(reasons)
    assert explained >= len(alerts)
    # Rescoring the day replaces its file: same content, still one file for the day.
    again = score_fleet(store)
    pd.testing.assert_frame_equal(pd.read_parquet(again.path), written)
    assert len(read_prediction_history(store.predictions_dir)) == len(written)


def test_every_label_matches_the_failure_log(model_fleet, records):
    """Point-in-time audit of the labels against the generator's truth: every failure the labels point at
    happened, every failure that happened is pointed at, and each horizon label says what the truth says."""
    truth = pd.read_parquet(model_fleet.truth_dir / "failures.parquet")
    truth["failure_day"] = pd.to_datetime(truth["failed_at"]).dt.tz_convert(None).dt.normalize()
    first, last = records["day"].min(), records["day"].max()
    true_days = truth.groupby(["vehicle_number", "component"])["failure_day"].apply(lambda s: np.sort(s.to_numpy()))

    labelled_events = records[records[EVENT].fillna(False).astype(bool)]
    pointed = set(zip(labelled_events["vehicle_number"], labelled_events["component"],
                      labelled_events["day"] + pd.to_timedelta(labelled_events[TIME], unit="D")))
    happened = {(r.vehicle_number, r.component, r.failure_day) for r in truth.itertuples()
                if first < r.failure_day <= last}
    assert pointed == happened

    horizon = model_fleet.model.horizon_days
    for (vehicle, component), rows in records.groupby(["vehicle_number", "component"]):
        failures = true_days.get((vehicle, component), np.array([], dtype="datetime64[ns]"))
        day = rows["day"].to_numpy()
        nxt = np.searchsorted(failures, day, side="right")  # first failure strictly after the day
        gap = np.full(len(day), np.inf)
        has = nxt < len(failures)
        gap[has] = (failures[nxt[has]] - day[has]) / np.timedelta64(1, "D")
        label = rows[LABEL]
        known = label.notna().to_numpy()
        assert (label[known].astype(bool).to_numpy() == (gap[known] <= horizon)).all(), (vehicle, component)
        observed = rows[EVENT].fillna(False).astype(bool).to_numpy()
        assert (rows[DAYS_TO_FAILURE].to_numpy()[observed] == gap[observed]).all(), (vehicle, component)
