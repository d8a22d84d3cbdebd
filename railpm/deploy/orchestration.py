"""Run railpm's Airflow DAGs for real on one machine, without a scheduler: ``airflow dags test``.

The demo and the test suite share this so that what the README shows is what the tests prove. Airflow 3
runs every task of a ``dags test`` in-process against its metadata DB, so a private AIRFLOW_HOME with a
migrated SQLite DB is all it needs; the production topology (scheduler, API server) is configured elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from railpm.errors import RailpmError

REPO_DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")


def airflow_environment(home: Path, dags_folder: Path = REPO_DAGS_FOLDER, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Airflow subprocesses: a private AIRFLOW_HOME and SQLite DB, railpm's dags/ folder."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **(os.environ if base is None else base),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Two shared cores: parsing a DAG folder can be slow, do not let the 30 s default kill it.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable),
    }
    return env


def migrate_metadata_db(env: dict[str, str]) -> None:
    done = subprocess.run([str(AIRFLOW_BIN), "db", "migrate"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RailpmError(f"airflow db migrate failed:\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}")


@dataclass
class DagRunResult:
    dag_id: str
    succeeded: bool
    exit_code: int
    output: str

    @property
    def stdout(self) -> str:
        """Airflow's combined output (the name subprocess results use, for callers that read it)."""
        return self.output

    def tail(self, lines: int = 200) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def run_dag(env: dict[str, str], dag_id: str, logical_date: str | None = None, cwd: Path | None = None) -> DagRunResult:
    """Run ``airflow dags test <dag_id> [logical_date]``; success means Airflow reports the run finished in success."""
    cmd = [str(AIRFLOW_BIN), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(cwd) if cwd else None)
    output = done.stdout + done.stderr
    finished = [line for line in output.splitlines() if "DagRun Finished" in line]
    succeeded = done.returncode == 0 and bool(finished) and "state=success" in finished[-1]
    return DagRunResult(dag_id, succeeded, done.returncode, output)
