"""The README's main command, end to end on a small fleet: generate, then the real Airflow DAGs it chains
(ingest, Spark records by spark-submit, training with MLflow, scoring, planning and the static report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from railpm.config import Settings
from railpm.deploy.demo import PIPELINE_DAGS
from railpm.models.tracking import CHAMPION
from railpm.deploy.orchestration import PROGRESS_MARKER, TaskEvent, task_event, task_progress
from railpm.jobs.records import RECORD_JOBS

RAILPM = Path(sys.executable).with_name("railpm")


@pytest.mark.slow
def test_demo_generates_the_fleet_and_runs_every_chained_dag(main_job_run):
    """The session's one run of the main job (tests/conftest.py: the model fleet, 40 vehicles x 300 days, a
    cut-down recipe; the models' own tests judge quality on the version it registered)."""
    data_root, stdout = main_job_run.settings.data_root, main_job_run.stdout
    # Each step is reported live as it starts and ends, its tasks as they finish, all before the summary table.
    table = stdout.index("railpm demo: steps")
    for dag_id in PIPELINE_DAGS:
        started, ended = stdout.index(f"▶ {dag_id} started"), stdout.index(f"✓ {dag_id} done in")
        assert started < ended < table, dag_id
        assert started < stdout.find(f"    {dag_id} › ", started) < ended, dag_id
    for job in RECORD_JOBS:
        assert f"fleet_records › {job} finished (" in stdout  # the one application's progress, live
    folds = main_job_run.settings.model.backtest_folds
    assert "fleet_train › train_and_register started at" in stdout
    assert f"fleet_train › backtest fold {folds} of {folds} done at" in stdout
    summary = json.loads((data_root / "truth" / "fleet_summary.json").read_text())
    runs = [json.loads(p.read_text()) for p in (data_root / "runs").glob("ingest-*.json")]
    assert {r["feed"] for r in runs} == {"vehicles", "parts", "stock", "telemetry", "faults", "work_orders"}
    assert sum(r["accepted"] for r in runs if r["feed"] == "vehicles") == summary["vehicles"] == main_job_run.settings.fleet.vehicles
    assert sum(r["accepted"] for r in runs if r["feed"] == "telemetry") > 0
    assert all(r["rows_in"] == r["accepted"] + r["quarantined"] + r["duplicates_removed"] + r.get("held", 0) for r in runs)
    assert (data_root / "data_docs" / "index.html").exists()
    # Each later layer was written by its DAG (fleet_records by one spark-submit of the four jobs), and the demo says
    # where to look. The records' content is tested in test_fleet_records.py and the jobs' own tests.
    for table_name in ("vehicle_days", "component_days", "vehicle_dossier", "fleet_rams", "fault_summary"):
        assert next((data_root / "records" / table_name).rglob("*.parquet"), None) is not None, table_name
    # fleet_train registered one version, and as champion: it beat both baselines (test_models_fleet.py measures by how much).
    settings = Settings(data_root=data_root)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    name = settings.model.registered_model_name
    versions = client.search_model_versions(f"name='{name}'")  # (search results carry no aliases)
    assert len(versions) == 1
    assert client.get_registered_model(name).aliases == {CHAMPION: versions[0].version}
    # fleet_score's predictions carry alerts, and fleet_plan planned inspections for them.
    predictions = pd.concat(pd.read_parquet(p) for p in (data_root / "predictions").glob("predictions-*.parquet"))
    assert predictions["alert"].any()
    plans = list((data_root / "plans").glob("*/inspection_plan.parquet"))
    assert plans and len(pd.read_parquet(plans[-1])) > 0
    assert (data_root / "reports" / "index.html").exists()
    flat = " ".join(stdout.split())
    assert "railpm review --data-root" in flat and "mlflow ui --backend-store-uri" in flat


def test_demo_refuses_an_unknown_dag(tmp_path):
    done = subprocess.run([str(RAILPM), "demo", "--data-root", str(tmp_path), "--until", "no_such_dag"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "--until must name one of the pipeline DAGs" in done.stderr


def test_airflow_output_lines_become_task_events_and_progress():
    """What the main job reads from `airflow dags test` as it runs: task starts and ends, and tasks' own progress."""
    start = task_event("[2026-12-02T06:00:01] INFO - [DAG TEST] starting task_id=ingest_events map_index=3 [airflow]")
    end = task_event("INFO - [DAG TEST] end task task_id=train_and_register map_index=-1")
    assert start == TaskEvent("ingest_events", 3, ended=False) and start.name == "ingest_events[3]"
    assert end == TaskEvent("train_and_register", -1, ended=True) and end.name == "train_and_register"
    assert task_event("INFO - [DAG TEST] running task <TaskInstance: x>") is None
    assert task_progress(f"[2026] INFO - {PROGRESS_MARKER}backtest fold 2 of 4 done") == "backtest fold 2 of 4 done"
    assert task_progress("railpm records built") is None and task_progress(PROGRESS_MARKER) is None
    relayed = (f"[2026] INFO - {PROGRESS_MARKER}vehicle_days finished (12.5 s) "
               "[airflow.task.hooks.airflow.providers.apache.spark.hooks.spark_submit.SparkSubmitHook] loc=spark_submit.py:965")
    assert task_progress(relayed) == "vehicle_days finished (12.5 s)"  # the records job's line, as the Spark hook relays it
