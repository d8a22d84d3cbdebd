"""Shared fixtures: a private data root per test, and one small synthetic fleet per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from railpm.config import DirtRates, FleetSettings, Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose every data layer lives under a fresh temporary folder."""
    return Settings(data_root=tmp_path / "data")


def small_fleet_settings(**dirt) -> FleetSettings:
    """A fleet small enough for unit tests yet with several failures of most components."""
    rates = DirtRates(**dirt) if dirt else DirtRates()
    return FleetSettings(vehicles=12, days=120, seed=11, vehicles_per_file=6, dirt=rates)


# --------------------------------------------------------------------------------------------------
# Airflow: one private AIRFLOW_HOME per test session, and real `airflow dags test` runs in it
# --------------------------------------------------------------------------------------------------
# Airflow 3.3 runs `airflow dags test` against SQLite out of the box: the command executes every task
# in-process (no scheduler, no executor, no API server), so a migrated SQLite metadata DB is all it
# needs. `airflow db migrate` costs about 6 s once per session; each `dags test` run costs ~15 s of
# start-up (CLI import, DAG-folder parse, in-process execution API) plus the tasks' own work.

AIRFLOW_BIN = Path(sys.executable).with_name("airflow")


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """Environment for Airflow subprocesses: temporary AIRFLOW_HOME, SQLite DB, the repo's dags/ folder."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Two shared cores: parsing a DAG folder can be slow, do not let the 30 s default kill it.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable),
    }
    env = {k: v for k, v in env.items() if not k.startswith("RAILPM_")}
    done = subprocess.run([str(AIRFLOW_BIN), "db", "migrate"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}")
    return env


def run_dag_test(
    env: dict[str, str],
    dag_id: str,
    data_root: Path | str,
    logical_date: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run the real ``airflow dags test <dag_id> [logical_date]`` with ``RAILPM_DATA_ROOT`` set.

    Fails the test with the tail of Airflow's output unless the run ends in success.
    """
    cmd = [str(AIRFLOW_BIN), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    run_env = {**env, "RAILPM_DATA_ROOT": str(data_root), **(extra_env or {})}
    done = subprocess.run(cmd, env=run_env, capture_output=True, text=True, cwd=str(REPO_ROOT))
    output = done.stdout + done.stderr
    finished = [line for line in output.splitlines() if "DagRun Finished" in line]
    if done.returncode != 0 or not finished or "state=success" not in finished[-1]:
        tail = "\n".join(output.splitlines()[-200:])
        pytest.fail(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{tail}")
    return done
