"""The README's main command, end to end on a small fleet: generate, then the real Airflow DAGs it chains
(ingest, Spark records by spark-submit, training with MLflow, scoring, planning and the static report)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from railpm.config import Settings
from railpm.deploy.demo import PIPELINE_DAGS
from railpm.models.tracking import CHALLENGER, CHAMPION

RAILPM = Path(sys.executable).with_name("railpm")


@pytest.mark.slow
def test_demo_generates_the_fleet_and_runs_every_chained_dag(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAILPM_", "AIRFLOW"))}
    # Small, but with failures enough for a backtest; the recipe is cut down (the models' own tests judge quality).
    env |= {"RAILPM_FLEET__VEHICLES": "12", "RAILPM_FLEET__DAYS": "150", "RAILPM_SPARK__MASTER": "local[2]",
            "RAILPM_MODEL__BACKTEST_FOLDS": "2",
            "RAILPM_MODEL__RECIPE": json.dumps({"max_iter": 40, "life_max_iter": 30, "calibration_folds": 2,
                                                "importance_rows": 500})}
    data_root = tmp_path / "data"
    done = subprocess.run([str(RAILPM), "demo", "--data-root", str(data_root)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for dag_id in PIPELINE_DAGS:
        assert dag_id in done.stdout
    summary = json.loads((data_root / "truth" / "fleet_summary.json").read_text())
    runs = [json.loads(p.read_text()) for p in (data_root / "runs").glob("ingest-*.json")]
    assert {r["feed"] for r in runs} == {"vehicles", "parts", "stock", "telemetry", "faults", "work_orders"}
    assert sum(r["accepted"] for r in runs if r["feed"] == "vehicles") == summary["vehicles"] == 12
    assert sum(r["accepted"] for r in runs if r["feed"] == "telemetry") > 0
    assert all(r["rows_in"] == r["accepted"] + r["quarantined"] + r["duplicates_removed"] for r in runs)
    assert (data_root / "data_docs" / "index.html").exists()
    # Each later layer was written by its DAG (fleet_records by one spark-submit per job), and the demo says
    # where to look. The records' content is tested in test_fleet_records.py and the jobs' own tests.
    for table in ("vehicle_days", "component_days", "vehicle_dossier", "fleet_rams", "fault_summary"):
        assert next((data_root / "records" / table).rglob("*.parquet"), None) is not None, table
    # fleet_train registered a version and gave it an alias (champion or challenger: the first version faces only
    # the baselines).
    settings = Settings(data_root=data_root)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    name = settings.model.registered_model_name
    versions = client.search_model_versions(f"name='{name}'")  # (search results carry no aliases)
    assert len(versions) == 1
    aliases = client.get_registered_model(name).aliases
    assert set(aliases) <= {CHAMPION, CHALLENGER} and {str(v) for v in aliases.values()} == {str(versions[0].version)}
    assert list((data_root / "predictions").glob("predictions-*.parquet"))
    assert list((data_root / "plans").glob("*/inspection_plan.parquet"))
    assert (data_root / "reports" / "index.html").exists()
    flat = " ".join(done.stdout.split())
    assert "railpm review --data-root" in flat and "mlflow ui --backend-store-uri" in flat


def test_demo_refuses_an_unknown_dag(tmp_path):
    done = subprocess.run([str(RAILPM), "demo", "--data-root", str(tmp_path), "--until", "no_such_dag"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "--until must name one of the pipeline DAGs" in done.stderr
