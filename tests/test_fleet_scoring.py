"""Fleet-speed scoring (``railpm.models.fleet_scoring``) gives the served pipelines' own answers.

A small fleet is fitted with the real recipe (calibrated boosted trees, the hazard model); the binned fast path
must reproduce ``predict`` and the occlusion reasons computed the plain way, row by row, as scoring did before.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from railpm.models import fleet_scoring
from railpm.models.explain import contributions
from railpm.models.fit import fit_models
from railpm.models.frames import EVENT, LABEL, TIME, normalise
from railpm.models.pipeline import ModelParams, interval_quantiles
from railpm.models.serving import FailureModel

COMPONENTS = ["doors", "hvac", "pantograph"]


def small_fleet(vehicles: int = 30, days: int = 90, seed: int = 3) -> pd.DataFrame:
    """Component-days with two informative signals, noise features, nulls and a categorical mix."""
    rng = np.random.default_rng(seed)
    n = vehicles * days * len(COMPONENTS)
    frame = pd.DataFrame({
        "vehicle_number": np.repeat([f"EMU-{v:04d}" for v in range(vehicles)], days * len(COMPONENTS)),
        "day": np.tile(np.repeat(pd.date_range("2025-01-01", periods=days), len(COMPONENTS)), vehicles),
        "component": np.tile(COMPONENTS, vehicles * days),
        "vehicle_type": rng.choice(["EMU", "DMU"], n),
        "home_depot": rng.choice(["DEP-NORTH", "DEP-SOUTH", "DEP-EAST"], n),
    })
    for j in range(12):
        values = rng.normal(size=n)
        values[rng.random(n) < 0.05] = np.nan
        frame[f"signal_{j:02d}_mean_7d"] = values
    frame["age_days"] = rng.integers(0, 4000, n).astype(float)
    risk = np.nan_to_num(frame["signal_00_mean_7d"]) + 0.7 * np.nan_to_num(frame["signal_01_mean_7d"]) + \
        frame["age_days"] / 4000 + (frame["component"] == "doors")
    failing = risk + rng.normal(0, 0.6, n) > 2.0
    frame[LABEL] = failing
    frame[TIME] = np.where(failing, rng.integers(1, 30, n), rng.integers(30, 200, n)).astype(float)
    frame[EVENT] = failing | (rng.random(n) < 0.2)
    return normalise(frame)


@pytest.fixture(scope="module", params=[1.0, 0.3], ids=["every-healthy-day", "healthy-sampled"])
def served(request) -> FailureModel:
    """The recipe fitted on every day, and on a share of the healthy days with the probabilities corrected back."""
    records = small_fleet()
    params = ModelParams(max_iter=40, life_max_iter=20, min_samples_leaf=20, healthy_sample_share=request.param)
    fitted = fit_models(records, params, interval_quantiles(0.8))
    reference = records[fitted.numeric_features].median().to_dict()
    reasons = fitted.numeric_features[:6] + ["age_days"]
    return FailureModel(fitted, reference, list(dict.fromkeys(reasons)), horizon_days=30, interval_coverage=0.8)


def day_to_score(served: FailureModel) -> pd.DataFrame:
    day = small_fleet(vehicles=25, days=1, seed=99)
    day.loc[3, "home_depot"] = "DEP-NEW"  # a depot the model never saw
    day.loc[4, served.reason_features[0]] = np.nan
    day.loc[5, served.reason_features[1]] = served.reference[served.reason_features[1]]
    return day


def reasons_row_by_row(rows: pd.DataFrame, contrib: np.ndarray, features: list[str], top_n: int) -> list[str]:
    """The reasons as scoring wrote them before fleet-speed scoring: one Python loop per row."""
    out = []
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top_n]
    values = rows[features].to_numpy(dtype=float)
    for r in range(len(rows)):
        items = []
        for j in order[r]:
            contribution = round(float(contrib[r, j]), 4)
            if contribution <= 0:
                break
            value = values[r, j]
            items.append({"feature": features[j], "value": None if math.isnan(value) else round(float(value), 4),
                          "contribution": contribution})
        out.append(json.dumps(items))
    return out


def test_fast_path_applies_to_the_recipe(served):
    assert fleet_scoring.fast_path_fits(served.classifier, served.life)


def test_fleet_speed_predictions_equal_the_pipelines_predict(served):
    rows = day_to_score(served)
    fast = served.predict_with_reasons(rows)
    plain = served.predict(None, served.features(rows))
    pd.testing.assert_frame_equal(fast.drop(columns="reasons"), plain, check_exact=False, rtol=1e-9, atol=1e-9)


def test_permuted_columns_rescored_on_the_trees_equal_predict_proba(served):
    """The backtest's permutation importance re-walks only the trees a permuted column reaches; the
    probabilities are the calibrated classifier's own."""
    calibrated = served.classifier[-1]
    prepared = served.classifier[:-1].transform(served.features(small_fleet(vehicles=10, days=5, seed=11)))
    rng = np.random.default_rng(0)
    permuted = [(name, rng.permutation(prepared[name].to_numpy())) for name in prepared.columns[-4:]]
    X = np.asfortranarray(prepared.to_numpy(dtype=np.float64))
    base, replaced = fleet_scoring.calibrated_probability(
        calibrated, X, [(list(prepared.columns).index(n), v) for n, v in permuted])
    np.testing.assert_allclose(base, calibrated.predict_proba(prepared)[:, 1], rtol=0, atol=1e-12)
    for k, (name, values) in enumerate(permuted):
        np.testing.assert_allclose(replaced[:, k], calibrated.predict_proba(prepared.assign(**{name: values}))[:, 1],
                                   rtol=0, atol=1e-12)
    assert not np.allclose(replaced, base[:, None])  # some permutation changed some probability


def test_vectorised_reasons_equal_the_row_by_row_reasons(served):
    rows = day_to_score(served)
    features = served.features(rows).reset_index(drop=True)
    plain = contributions(served.probability, features, served.reference, served.reason_features)
    _, fast = fleet_scoring.predict_and_explain(served, features)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-12)
    expected = reasons_row_by_row(features, plain, served.reason_features, top_n=3)
    written = list(served.predict_with_reasons(rows)["reasons"])
    assert written == expected
    assert any(json.loads(r) for r in written) and any(not json.loads(r) for r in written)
    assert max(len(json.loads(r)) for r in written) == 3


def test_reasons_json_writes_what_json_dumps_writes():
    values = np.array([[71.2, np.nan, -0.0], [1e-05, 3.0, 12345678.9]])
    contrib = np.array([[0.18, 0.3, -0.1], [0.00004, 0.5, 2e-4]])
    features = ["bearing_temp_mean_7d", 'quote"d', "age_days"]
    assert list(fleet_scoring.reasons_json(values, contrib, features, top_n=3)) == \
        reasons_row_by_row(pd.DataFrame(values, columns=features), contrib, features, top_n=3)
    assert list(fleet_scoring.reasons_json(values[:, :0], contrib[:, :0], [], top_n=3)) == ["[]", "[]"]


def test_healthy_sampling_fits_on_fewer_rows_and_keeps_the_probabilities_honest():
    """A fleet-sized history fits on a share of its healthy days, corrected back by the prior: the calibrated
    probabilities still average to the fleet's failure rate, where the sample's own would be several times higher."""
    records = small_fleet(seed=5)
    labelled = records[LABEL].astype(bool)
    params = ModelParams(max_iter=40, min_samples_leaf=20, train_row_stride_days=1, healthy_sample_share=1.0)
    full = fit_models(records, params, None)
    sampled = fit_models(records, params.model_copy(update={"healthy_sample_share": 0.25}), None)
    assert sampled.training_rows < 0.45 * full.training_rows
    assert sampled.training_rows > labelled.sum()  # every failing day is kept
    assert sampled.base_rate == pytest.approx(labelled.mean(), rel=0.15)
    probability = sampled.classifier.predict_proba(served_input(records, sampled))[:, 1]
    assert probability.mean() == pytest.approx(labelled.mean(), abs=0.02)
    sample_rate = labelled.sum() / sampled.training_rows
    assert sample_rate > 2 * labelled.mean()  # what the sample's own calibration would have said
    life = fit_models(records, params.model_copy(update={"healthy_sample_share": 0.25}), interval_quantiles(0.8)).life
    full_life = fit_models(records, params, interval_quantiles(0.8)).life
    hazards, full_hazards = (m[-1].hazards(m[:-1].transform(records)) for m in (life, full_life))
    assert life[-1].n_person_periods_ < 0.5 * full_life[-1].n_person_periods_
    assert hazards.mean(axis=0) == pytest.approx(full_hazards.mean(axis=0), rel=0.25)  # per bin, the fleet's hazard


def test_sampling_is_refused_with_a_calibration_it_cannot_correct():
    with pytest.raises(ValueError, match="needs calibration 'sigmoid'"):
        ModelParams(healthy_sample_share=0.5, calibration="isotonic")


def served_input(records: pd.DataFrame, fitted) -> pd.DataFrame:
    from railpm.models.frames import model_input

    return model_input(records, fitted.numeric_features)


def test_the_model_page_states_the_training_sample_from_the_runs_params():
    from railpm.review.quality import training_sampling

    sampled = training_sampling(ModelParams(healthy_sample_share=0.25).flat())
    assert "one day in 2" in sampled and "25% of the healthy component-days" in sampled and "divided by 4x" in sampled
    assert "every healthy component-day" in training_sampling(ModelParams(healthy_sample_share=1).flat())
    assert training_sampling({}) == ""  # a run that logged no recipe states no sample
