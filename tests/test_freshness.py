"""The weekly retrain's rule: the serving champion against a refit on the newest window neither learnt from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from railpm.models.freshness import MIN_WINDOW_DAYS, Window, freshness_decision, freshness_window, window_pr_auc
from railpm.models.frames import LABEL

WINDOW = Window(pd.Timestamp("2025-05-01"), pd.Timestamp("2025-05-07"))


def test_a_refit_of_the_same_recipe_replaces_the_champion_unless_worse_by_more_than_the_margin():
    assert freshness_decision(0.50, 0.50, True, 0.02, WINDOW).replace  # fresh data wins ties
    assert freshness_decision(0.50, 0.485, True, 0.02, WINDOW).replace
    kept = freshness_decision(0.50, 0.47, True, 0.02, WINDOW)
    assert not kept.replace and "0.4700" in kept.reason and "0.5000" in kept.reason and "2025-05-01..2025-05-07" in kept.reason


def test_a_new_recipe_must_beat_the_champion_by_the_margin():
    assert not freshness_decision(0.50, 0.51, False, 0.02, WINDOW).replace
    assert freshness_decision(0.50, 0.52, False, 0.02, WINDOW).replace
    assert not freshness_decision(np.nan, 0.9, False, 0.02, WINDOW).replace  # nothing to compare on: no new recipe
    assert freshness_decision(np.nan, np.nan, True, 0.02, WINDOW).replace


def test_the_window_starts_at_the_first_outcome_the_champion_could_not_know_and_ends_at_the_last_labelled_day():
    last = pd.Timestamp("2025-06-30")
    weekly = freshness_window(last, last - pd.Timedelta(days=7), 30)
    assert weekly.end == pd.Timestamp("2025-05-31")
    assert (weekly.end - weekly.start).days + 1 == MIN_WINDOW_DAYS
    old = freshness_window(last, pd.Timestamp("2025-03-01"), 30)
    assert old.start == pd.Timestamp("2025-01-31") and old.end == pd.Timestamp("2025-05-31")


def test_window_pr_auc_is_the_mean_over_components_with_a_failure_on_labelled_rows():
    rows = pd.DataFrame({"component": ["a", "a", "a", "b", "b", "c"], LABEL: [True, False, None, True, False, False]})
    perfect = np.array([0.9, 0.1, 0.5, 0.2, 0.8, 0.3])  # a ranked right, b ranked wrong, c has no failure
    assert window_pr_auc(rows, perfect) == (1.0 + 0.5) / 2


@pytest.mark.slow
def test_a_dismissal_reaches_the_next_champion_through_a_refit_of_the_same_recipe(model_fleet, tmp_path):
    """A champion trained two weeks ago; an engineer dismisses a prediction; the weekly retrain of the same recipe
    weighs that dismissal, is compared with the champion as registered on the newest window, and serves."""
    import shutil

    import mlflow
    from mlflow import MlflowClient

    from railpm.config import Settings
    from railpm.feedback import Feedback, feedback_dir_of, record_feedback
    from railpm.models import tracking
    from railpm.layers import COMPONENT_DAYS, record_dir
    from railpm.models.frames import censor_at
    from railpm.models.tasks import artifact_root, recipe, score_fleet, train_fleet, training_records
    from railpm.models.train import FRESH_CHAMPION_METRIC, FRESH_REFIT_METRIC, train_and_register

    # Two backtest folds, not the main job's three: what is followed here is the dismissal, not the backtest.
    settings = Settings(data_root=tmp_path / "data", fleet=model_fleet.fleet,
                        model=model_fleet.model.model_copy(update={"backtest_folds": 2}))
    shutil.copytree(record_dir(model_fleet, COMPONENT_DAYS), record_dir(settings, COMPONENT_DAYS))
    shutil.copytree(model_fleet.lake_dir / "vehicles", settings.lake_dir / "vehicles")
    records = training_records(settings)
    last = records["day"].max()
    cut = last - pd.Timedelta(days=14)  # the champion learnt what was known then: no label saw past its cut
    first = train_and_register(censor_at(records[records["day"] <= cut], cut, settings.model.horizon_days), recipe(settings), settings.model,
                               tracking_uri=settings.tracking_uri, artifact_root=artifact_root(settings), records_source="two weeks ago")
    assert first.decision.alias == tracking.CHAMPION

    survived = records[records[LABEL].notna() & ~records[LABEL].fillna(False).astype(bool)].iloc[0]
    vehicles = pd.read_parquet(settings.lake_dir / "vehicles")
    record_feedback(Feedback("dismiss", survived["vehicle_number"], survived["component"], "a.engineer",
                             scored_day=survived["day"].date(), model_version=first.model_version, reason="no wear on inspection"),
                    feedback_dir_of(settings.lake_dir), vehicles)
    weighted = training_records(settings)
    assert int((weighted["sample_weight"] != 1).sum()) == 1  # the dismissal the facts bear out weighs double

    second = train_fleet(settings)
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(second.run_id)
    assert run.data.params["feedback_weighted_rows"] == "1"
    champion, refit = run.data.metrics.get(FRESH_CHAMPION_METRIC), run.data.metrics.get(FRESH_REFIT_METRIC)
    assert champion is not None and refit is not None, run.data.tags  # both figures logged
    assert run.data.tags["railpm.gate_reason"] == run.data.tags["railpm.freshness_reason"]
    replaced = refit >= champion - settings.model.champion_margin
    assert replaced, f"the weekly refit lost to the champion: {run.data.tags['railpm.gate_reason']}"
    served = tracking.version_by_alias(client, settings.model.registered_model_name, tracking.CHAMPION)
    assert str(served.version) == second.model_version != first.model_version
    mlflow.set_tracking_uri(settings.tracking_uri)
    assert score_fleet(settings).model_version == second.model_version  # what is scored now learnt from the dismissal
