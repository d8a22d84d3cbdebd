"""Shared fixtures: a private data root per test, and one small synthetic fleet per test session.

Plain helper functions (no fixture) live in ``helpers.py``: test modules import them from there, never from
this file or from one another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from railpm.config import DirtRates, FleetSettings, Settings
from railpm.errors import RailpmError
from railpm.deploy.orchestration import airflow_environment, migrate_metadata_db

REPO_ROOT = Path(__file__).resolve().parents[1]
RAILPM = Path(sys.executable).with_name("railpm")


# --------------------------------------------------------------------------------------------------
# Lanes: `make check` runs `-m "not slow and not airflow"` (one shared SparkSession at most), `make unit` all
# but the integration step. A test that needs a dear fixture must say so with its marker, or collection fails.
# --------------------------------------------------------------------------------------------------
NEEDS_MARKER = {"airflow_env": ("airflow", "slow"), "main_job_run": ("slow",), "model_fleet": ("slow",),
                "trained_fleet": ("slow",)}


def pytest_collection_modifyitems(config, items):
    unmarked = [f"{item.nodeid} uses {fixture} but is not marked {' or '.join(markers)}"
                for item in items for fixture, markers in NEEDS_MARKER.items()
                if fixture in getattr(item, "fixturenames", ()) and not any(item.get_closest_marker(m) for m in markers)]
    if unmarked:
        raise pytest.UsageError("tests that start dear fixtures must be marked:\n" + "\n".join(unmarked))


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
# The main job run once per session on a generated fleet: the one end-to-end chain of the unit lane
# --------------------------------------------------------------------------------------------------
# `railpm demo` takes the fleet through every DAG for real (`airflow dags test`: ingest, records by
# spark-submit, fleet_train with MLflow, fleet_score, fleet_plan and the report). The main command's test, the
# model acceptance tests (on the version fleet_train registered), the scoring checks, the records' audits and
# the notebooks all read this one data root instead of each building their own.

def model_fleet_settings(data_root: Path) -> Settings:
    """Big enough for a few dozen failures per backtest fold, small enough to build in a couple of minutes.

    Clean feeds: the label audit compares the records with the generator's truth, and dirt handling is
    ingest's to test (tests/test_ingest_fleet.py runs a dirty fleet through the ingest DAG).
    """
    from railpm.config import ModelSettings, SparkSettings

    return Settings(
        data_root=data_root,
        spark=SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="1g"),
        fleet=FleetSettings(vehicles=40, days=300, seed=23, vehicles_per_file=20, dirt=DirtRates.clean()),
        model=ModelSettings(backtest_folds=3, capacity_top_k_per_week=10,
                            recipe={"max_iter": 60, "life_max_iter": 40, "calibration_folds": 2,
                                                                 "train_row_stride_days": 2, "importance_rows": 1500}),
    )


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``RAILPM_`` environment a child process (the CLI, a DAG's task) reads them from."""
    env = {"RAILPM_DATA_ROOT": str(settings.data_root)}
    for section in ("fleet", "model", "spark"):
        for name, value in getattr(settings, section).model_dump(mode="json").items():
            if value is not None:
                text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
                env[f"RAILPM_{section.upper()}__{name.upper()}"] = text
    return env


@dataclass(frozen=True)
class MainJobRun:
    settings: Settings
    stdout: str


@pytest.fixture(scope="session")
def main_job_run(tmp_path_factory) -> MainJobRun:
    """``railpm demo`` on the model fleet, as a person runs it: the fleet generated, then every chained DAG."""
    settings = model_fleet_settings(tmp_path_factory.mktemp("model_fleet") / "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAILPM_", "AIRFLOW"))}
    env |= settings_environment(settings) | {"COLUMNS": "200"}
    done = subprocess.run([str(RAILPM), "demo", "--data-root", str(settings.data_root)], env=env,
                          capture_output=True, text=True, cwd=REPO_ROOT)
    if done.returncode != 0:
        pytest.fail(f"`railpm demo` failed (exit {done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    return MainJobRun(settings, done.stdout)


@pytest.fixture(scope="session")
def model_fleet(main_job_run) -> Settings:
    """Settings of the main job's fleet: landing, lake, records, MLflow store, predictions and plans exist."""
    return main_job_run.settings


@dataclass(frozen=True)
class LoggedBacktest:
    table: pd.DataFrame
    life: pd.DataFrame


@dataclass(frozen=True)
class LoggedTraining:
    """What fleet_train's run logged and registered, read back from the MLflow store (the shape of
    ``railpm.models.train.TrainingResult`` that the model tests read)."""

    run_id: str
    model_version: str
    decision: object  # railpm.models.tracking.GateDecision
    backtest: LoggedBacktest


@pytest.fixture(scope="session")
def trained_fleet(model_fleet) -> LoggedTraining:
    """The version the main job's fleet_train DAG registered (training is the suite's dearest step: once)."""
    from mlflow import MlflowClient

    from railpm.models.backtest import METHODS
    from railpm.models.tracking import PRIMARY_METRIC, GateDecision, logged_table

    client = MlflowClient(tracking_uri=model_fleet.tracking_uri, registry_uri=model_fleet.tracking_uri)
    versions = client.search_model_versions(f"name='{model_fleet.model.registered_model_name}'")
    assert len(versions) == 1, "the main job registers exactly one version"
    run = client.get_run(versions[0].run_id)
    table, life = (logged_table(client, run.info.run_id, f"backtest/{name}.json") for name in ("folds", "life_coverage"))
    metrics, tags = run.data.metrics, run.data.tags
    best_baseline = max(metrics[f"{method}.primary_pr_auc"] for method in METHODS if method != "model")
    decision = GateDecision(tags["railpm.gate"], tags["railpm.gate_reason"], metrics[PRIMARY_METRIC],
                            best_baseline, metrics.get("champion.primary_pr_auc_same_backtest"))
    return LoggedTraining(run.info.run_id, str(versions[0].version), decision, LoggedBacktest(table, life))


@pytest.fixture
def fleet_settings(settings: Settings) -> Settings:
    """A fresh tiny review fleet per test (``helpers.write_review_fleet``), for tests that write (feedback)."""
    from helpers import write_review_fleet

    write_review_fleet(settings)
    return settings
