"""The ``fleet_train`` and ``fleet_score`` DAGs: their shape, and their real ``airflow dags test`` runs in the main job."""

from __future__ import annotations


import pandas as pd
import pytest
from mlflow import MlflowClient

from helpers import run_marked
from railpm import contracts
from railpm.layers import predictions_files
from railpm.models.tracking import CHAMPION, version_by_alias


SHAPE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
out = {}
for dag_id in sys.argv[1:]:
    bag = DagBag(dag_folder=f"dags/{dag_id}.py")
    dag = bag.dags[dag_id]
    condition = dag.timetable.asset_condition
    out[dag_id] = {
        "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
        "outlets": {t.task_id: [o.name for o in t.outlets] for t in dag.tasks},
        "assets": [a.name for a in condition.objects] if condition is not None else [],
        "cron": getattr(dag.timetable, "expression", None),
    }
print("SHAPE " + json.dumps(out))
"""


@pytest.mark.airflow
def test_train_runs_weekly_and_score_runs_on_the_records_or_a_new_model_and_publishes_predictions(airflow_env):
    shape = run_marked(SHAPE, "SHAPE", airflow_env, "fleet_train", "fleet_score")
    train, score = shape["fleet_train"], shape["fleet_score"]
    assert train["errors"] == {} and score["errors"] == {}
    assert train["tasks"] == {"train_and_register": []} and train["outlets"] == {"train_and_register": ["railpm.model"]}
    assert train["cron"] == "0 0 * * 0"  # @weekly; on demand is any manual trigger
    assert sorted(score["assets"]) == ["railpm.model", "railpm.records.component_days"]
    assert score["tasks"] == {"score_latest_records": []}
    assert score["outlets"] == {"score_latest_records": ["railpm.predictions"]}


@pytest.mark.slow
def test_airflow_scores_the_fleet_with_the_champion_for_real(main_job_run, trained_fleet):
    """fleet_score, run by Airflow in the main job (tests/conftest.py) after fleet_train, wrote the latest day's
    predictions with the version the champion alias points at."""
    model_fleet = main_job_run.settings
    assert "fleet_score › score_latest_records finished" in main_job_run.stdout
    name = model_fleet.model.registered_model_name
    client = MlflowClient(tracking_uri=model_fleet.tracking_uri, registry_uri=model_fleet.tracking_uri)
    champion = version_by_alias(client, name, CHAMPION)
    assert champion is not None and str(champion.version) == trained_fleet.model_version

    written = predictions_files(model_fleet.predictions_dir)
    assert written, "fleet_score wrote no predictions"
    predictions = pd.read_parquet(written[-1])
    assert list(predictions.columns) == contracts.PREDICTIONS.column_names
    assert len(predictions) > 0 and set(predictions["model_version"]) == {str(champion.version)}
