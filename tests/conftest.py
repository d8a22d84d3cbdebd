"""Shared fixtures: a private data root per test, and one small synthetic fleet per test session.

Plain helper functions (no fixture) live in ``helpers.py``: test modules import them from there, never from
this file or from one another.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from railpm.config import DirtRates, FleetSettings, Settings
from railpm.errors import RailpmError
from railpm.deploy.orchestration import airflow_environment, migrate_metadata_db

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose every data layer lives under a fresh temporary folder."""
    return Settings(data_root=tmp_path / "data")


# --------------------------------------------------------------------------------------------------
# Airflow: one private AIRFLOW_HOME per test session, and real `airflow dags test` runs in it
# --------------------------------------------------------------------------------------------------
# Airflow 3.3 runs `airflow dags test` against SQLite out of the box: the command executes every task
# in-process (no scheduler, no executor, no API server), so a migrated SQLite metadata DB is all it
# needs. `airflow db migrate` costs about 6 s once per session; each `dags test` run costs ~15 s of
# start-up (CLI import, DAG-folder parse, in-process execution API) plus the tasks' own work.

@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """Environment for Airflow subprocesses: temporary AIRFLOW_HOME, SQLite DB, the repo's dags/ folder."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAILPM_")}
    env = airflow_environment(tmp_path_factory.mktemp("airflow_home"), REPO_ROOT / "dags", base=base)
    try:
        migrate_metadata_db(env)
    except RailpmError as exc:
        pytest.fail(str(exc))
    return env


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole run: local[2], two shuffle partitions, no UI, UTC."""
    from railpm.config import SparkSettings
    from railpm.jobs.spark import build_session

    session = build_session(
        SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="1g"), app_name="railpm-tests"
    )
    yield session
    session.stop()


# --------------------------------------------------------------------------------------------------
# A generated fleet taken through ingest and the Spark jobs once: the records the model tests train on
# --------------------------------------------------------------------------------------------------

def model_fleet_settings(data_root: Path) -> Settings:
    """Big enough for a few dozen failures per backtest fold, small enough to build in a couple of minutes.

    Clean feeds: the label audit compares the records with the generator's truth, and dirt handling is
    ingest's to test.
    """
    from railpm.config import ModelSettings

    return Settings(
        data_root=data_root,
        fleet=FleetSettings(vehicles=40, days=300, seed=23, vehicles_per_file=20, dirt=DirtRates.clean()),
        model=ModelSettings(backtest_folds=3, capacity_top_k_per_week=10,
                            recipe={"max_iter": 60, "life_max_iter": 40, "calibration_folds": 2,
                                                                 "train_row_stride_days": 2, "importance_rows": 1500}),
    )


@pytest.fixture(scope="session")
def model_fleet(tmp_path_factory, spark) -> Settings:
    """Settings of a generated fleet whose landing, lake and records (vehicle_days, component_days) exist."""
    from datetime import datetime, time, timedelta, timezone

    from railpm.ingest import ingest_landing
    from railpm.jobs import component_days, vehicle_days
    from railpm.synth import generate_fleet

    settings = model_fleet_settings(tmp_path_factory.mktemp("model_fleet") / "data")
    fleet = settings.fleet
    generate_fleet(fleet, settings.landing_dir, settings.truth_dir)
    data_end = datetime.combine(fleet.start + timedelta(days=fleet.days), time(), tzinfo=timezone.utc)
    ingest_landing(settings, reference_time=data_end)
    vehicle_days.run(spark, settings)
    component_days.run(spark, settings)
    return settings


@pytest.fixture(scope="session")
def trained_fleet(model_fleet):
    """The model fleet trained once, into its default MLflow store: the model tests, the fleet_score DAG run and
    the notebooks share this run and its registered version (training is the suite's dearest step)."""
    from railpm.models.tasks import train_fleet

    return train_fleet(model_fleet)
