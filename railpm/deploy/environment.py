"""The environments the topology's processes run with: the caller's without another installation's Airflow and
Spark settings, railpm's settings pointing at the topology, and Airflow's configuration for every component."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from railpm.config import Settings
from railpm.deploy.endpoints import Endpoints
from railpm.deploy.orchestration import REPO_DAGS_FOLDER, migrate_metadata_db

AIRFLOW_USER = "railpm"
"""The Airflow admin (simple auth manager) the REST API is called as; its password is a topology secret."""


def base_environment(host: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without Airflow settings of another installation; railpm settings stay."""
    import pyspark

    environ = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in environ.items() if not k.startswith(("AIRFLOW", "SPARK_"))}
    env.update(SPARK_HOME=str(Path(pyspark.__path__[0])), SPARK_LOCAL_IP=host,
               PYSPARK_PYTHON=env.get("PYSPARK_PYTHON", sys.executable),
               PYSPARK_DRIVER_PYTHON=env.get("PYSPARK_DRIVER_PYTHON", sys.executable))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def railpm_environment(settings: Settings, endpoints: Endpoints) -> dict[str, str]:
    """What every railpm task needs to use the topology: the data root, the Spark master, the MLflow server."""
    return {
        "RAILPM_DATA_ROOT": str(settings.data_root.resolve()),
        "RAILPM_SPARK__MASTER": endpoints.spark_master_url,
        "RAILPM_MLFLOW_TRACKING_URI": endpoints.mlflow_url,
    }


def airflow_environment(
    home: Path, settings: Settings, endpoints: Endpoints, secrets: dict[str, str], base: dict[str, str]
) -> dict[str, str]:
    """Airflow's configuration, the same for the API server, scheduler, DAG processor and triggerer."""
    t = settings.topology
    return {
        **base,
        **railpm_environment(settings, endpoints),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(t.airflow_parallelism),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": endpoints.database_url(secrets["db_password"], "airflow"),
        "AIRFLOW__API__HOST": endpoints.host,
        "AIRFLOW__API__PORT": str(t.airflow_port),
        "AIRFLOW__API__BASE_URL": endpoints.airflow_url,
        # Workers reach the Execution API at the API server's own address, whatever port it was given.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{endpoints.airflow_url}/execution/",
        # One signing key for every component, or tokens one issues the next rejects.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets["jwt_secret"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # A task whose runner died with a killed scheduler is failed (and retried) after this, not 5 minutes.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(t.task_heartbeat_timeout_s),
        # What a failed task waits before its next try where its DAG says nothing (railpm.deploy.dag_defaults).
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": str(t.task_retry_delay_s),
        # A restarted scheduler looks for the dead one's tasks within this, not 5 minutes.
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # A task that cannot reach the MLflow server fails within seconds and is retried by Airflow, instead
        # of MLflow's own back-off of several minutes.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    }


def init_airflow(env: dict[str, str], admin_password: str) -> None:
    """The admin's password file, then Airflow's metadata DB migrated (both idempotent)."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "passwords.json"
    passwords.touch(mode=0o600)
    passwords.write_text(json.dumps({AIRFLOW_USER: admin_password}))
    migrate_metadata_db(env)
