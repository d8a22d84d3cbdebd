"""The ``fleet_plan`` DAG: its shape, and its real ``airflow dags test`` run in the main job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import links_of

REPO = Path(__file__).resolve().parents[1]

STRUCTURE = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="dags/fleet_plan.py")
dag = bag.dags["fleet_plan"]
print(json.dumps({
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
    "retries": {t.task_id: t.retries for t in dag.tasks},
    "outlets": {t.task_id: [o.name for o in t.outlets] for t in dag.tasks},
    "schedule": [a.name for a in dag.timetable.asset_condition.objects],
    "tags": sorted(dag.tags), "catchup": dag.catchup, "doc": bool(dag.doc_md),
}))
"""


@pytest.mark.airflow
def test_fleet_plan_runs_after_the_predictions_and_publishes_plans_and_report(airflow_env):
    done = subprocess.run([sys.executable, "-c", STRUCTURE], env=airflow_env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    shape = json.loads(done.stdout.strip().splitlines()[-1])
    assert shape["errors"] == {}
    assert shape["tasks"] == {"plan_inspections_and_spares": ["build_static_report"], "build_static_report": []}
    assert shape["schedule"] == ["railpm.predictions"]
    assert shape["outlets"] == {"plan_inspections_and_spares": ["railpm.plans"], "build_static_report": ["railpm.report"]}
    assert all(retries >= 1 for retries in shape["retries"].values())
    assert "railpm" in shape["tags"] and shape["catchup"] is False and shape["doc"]


@pytest.mark.slow
def test_airflow_runs_fleet_plan_for_real(main_job_run):
    """fleet_plan's real run is the main job's (tests/conftest.py): both plans for the scored day, the report."""
    settings, stdout = main_job_run.settings, main_job_run.stdout
    for task in ("plan_inspections_and_spares", "build_static_report"):
        assert f"fleet_plan › {task} finished" in stdout, task
    scored_day = max(p.name for p in settings.plans_dir.iterdir() if p.is_dir())
    day_folder = settings.plans_dir / scored_day
    assert (day_folder / "inspection_plan.parquet").is_file() and (day_folder / "spares_plan.parquet").is_file()
    summary = json.loads((day_folder / "summary.json").read_text())
    assert summary["scored_day"] == scored_day and summary["inspections"]["solver_status"] in ("OPTIMAL", "FEASIBLE")
    index = settings.reports_dir / "index.html"
    inspections = (settings.reports_dir / "inspections.html").read_text()
    assert index.is_file() and "no inspection plan yet" not in inspections and scored_day in inspections
    for link in links_of(inspections).links:
        assert (settings.reports_dir / link).is_file(), link
