"""The main job: the built-in synthetic fleet through every Airflow DAG, as a planner would run it daily.

Each DAG runs for real (``airflow dags test``, every task in-process against a private SQLite metadata DB
under the data root), so the demo exercises exactly the DAG files that production schedules; all of them in one
process (``railpm.deploy.orchestration.run_dags``), which pays Airflow's start and railpm's imports once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.deploy.orchestration import (
    TaskEvent, airflow_environment, dag_marker, migrate_metadata_db, run_dags_process, task_event, task_progress,
)

PIPELINE_DAGS = ("fleet_ingest", "fleet_records", "fleet_train", "fleet_score", "fleet_plan")
"""The DAGs the main job chains, in data order: landing -> lake -> records -> model -> predictions -> plans
and report. In production each is started by its schedule or by the Asset the previous one publishes."""


@dataclass
class StepTiming:
    step: str
    seconds: float


def airflow_home(settings: Settings) -> Path:
    return settings.data_root.resolve() / "airflow"


def run_pipeline_dags(
    settings: Settings,
    dags=PIPELINE_DAGS,
    on_step: Callable[..., None] | None = None,
    on_task: Callable[[str, TaskEvent], None] | None = None,
    on_progress: Callable[[str, str], None] | None = None,
    logical_date: str | None = None,
) -> list[StepTiming]:
    """Run the DAGs in order on ``settings.data_root``; stop at the first failure with Airflow's output.

    As it goes, ``on_step(step)`` is called when a step starts and ``on_step(step, timing)`` when it ends;
    ``on_task(dag_id, event)`` when a task of the running DAG starts or ends, ``on_progress(dag_id, message)``
    when a task reports its own progress (both read live from Airflow's output). ``logical_date`` is the
    runs' (a day of ``railpm replay``); without it each run is for now.
    """
    home = airflow_home(settings)
    env = airflow_environment(home)
    env["RAILPM_DATA_ROOT"] = str(settings.data_root.resolve())
    timings = []

    def step(name: str, run: Callable[[], None]) -> None:
        if on_step:
            on_step(name)
        started = time.perf_counter()
        run()
        timings.append(StepTiming(name, time.perf_counter() - started))
        if on_step:
            on_step(name, timings[-1])

    if not (home / "airflow.db").exists():
        step("airflow db migrate", lambda: migrate_metadata_db(env))
    started: dict[str, float] = {}
    current = ""  # the DAG whose output is being read

    def line(text: str) -> None:
        nonlocal current
        if marker := dag_marker(text):
            event, dag_id, state = marker
            if event == "started":
                current, started[dag_id] = dag_id, time.perf_counter()
                if on_step:
                    on_step(dag_id)
            elif state == "success":
                timings.append(StepTiming(dag_id, time.perf_counter() - started[dag_id]))
                if on_step:
                    on_step(dag_id, timings[-1])
        elif on_task and (event := task_event(text)):
            on_task(current, event)
        elif on_progress and (message := task_progress(text)):
            on_progress(current, message)

    result = run_dags_process(env, list(dags), logical_date, on_line=line)
    if not result.succeeded:
        failed = current or "the DAG runner"
        raise RailpmError(f"DAG {failed} failed (exit {result.exit_code}); Airflow's output ends:\n{result.tail(60)}")
    return timings


def where_things_are(settings: Settings, dags=PIPELINE_DAGS) -> dict[str, str]:
    """The outputs a person opens after the demo, by what they are (absolute paths or commands), for the DAGs
    that ran."""
    root = settings.data_root.resolve()
    places: dict[str, Path | str] = {
        "lake (accepted records by feed and day)": settings.lake_dir,
        "quarantine (rejected records with their rules)": settings.quarantine_dir,
        "run records (counts reconciled per file)": settings.runs_dir,
        "files set aside whole": settings.rejected_files_dir,
        "GX Data Docs (open in a browser)": settings.data_docs_dir / "index.html",
    }
    if "fleet_records" in dags:
        places["vehicle records (vehicle_days, component_days, dossier, RAMS)"] = settings.records_dir
        places["a vehicle's dossier"] = f"railpm vehicle <number> --data-root {root}"
    if "fleet_train" in dags:
        places["MLflow runs and registered model (champion / challenger)"] = f"mlflow ui --backend-store-uri {settings.tracking_uri}"
    if "fleet_score" in dags:
        places["predictions (risk, remaining life, reasons)"] = settings.predictions_dir
    if "fleet_plan" in dags:
        places["inspection and spares plans"] = settings.plans_dir
        places["static report (opens without a server)"] = settings.reports_dir / "index.html"
        places["review app (then open http://127.0.0.1:8050)"] = f"railpm review --data-root {root}"
    return {what: str(place.resolve()) if isinstance(place, Path) else place for what, place in places.items()}
