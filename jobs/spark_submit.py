"""Submitting railpm's Spark jobs from Airflow with the Spark provider's ``SparkSubmitOperator``.

Everything a submission depends on is resolved on the worker when the task runs, not when the DAG file is
parsed: the application is the installed file of ``railpm.jobs.<job>`` on that worker, the environment is
the worker's (``RAILPM_*`` settings reach the job; on YARN/Kubernetes the provider forwards them to the
driver), and the master is

- the Airflow connection ``railpm_spark`` when the deployment defines one (UI, secrets backend or
  ``AIRFLOW_CONN_RAILPM_SPARK``): its host and port, and extras such as ``deploy-mode``, ``queue`` or
  ``namespace``, as the provider documents for Spark connections;
- otherwise ``Settings.spark.master`` (``RAILPM_SPARK__MASTER``, ``local[*]`` by default), so that one
  setting decides the master for the CLI, the tests and Airflow alike.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

SPARK_CONN_ID = "railpm_spark"
FORWARDED_ENV_PREFIXES = ("RAILPM_", "PYSPARK_")
"""Environment the job needs wherever its driver runs: railpm's settings and the Python to run."""


def forwarded_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """railpm's settings and the Python interpreter for the driver (this worker's, unless set)."""
    environ = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", env["PYSPARK_PYTHON"])
    return env


class RecordsJobOperator(SparkSubmitOperator):
    """``spark-submit`` the record jobs (``railpm.jobs.records``, all of them by default) as one application:
    application, master and environment from railpm's settings on the worker."""

    def __init__(self, *, jobs: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        from railpm.jobs.records import RECORD_JOBS, job_module

        self.jobs = tuple(jobs or RECORD_JOBS)
        for job in self.jobs:
            job_module(job)  # an unknown job fails when the DAG is parsed, not on the worker
        kwargs.setdefault("conn_id", SPARK_CONN_ID)
        kwargs.setdefault("name", "railpm-records")
        kwargs.setdefault("application_args", list(self.jobs))
        super().__init__(**kwargs)
        self.spark_conn_id = kwargs["conn_id"]

    def execute(self, context: Any) -> None:
        import railpm.jobs.records
        from railpm.config import get_settings

        settings = get_settings()
        self.application = railpm.jobs.records.__file__
        self.env_vars = {**forwarded_environment(), **(self.env_vars or {})}
        # A local driver's heap is fixed when its JVM starts: it has to be given at submission.
        self.conf = {"spark.driver.memory": settings.spark.driver_memory, **(self.conf or {})}
        self._default_master(settings.spark.master)
        self._find_spark_submit()
        self.log.info("submitting %s (records jobs %s)", self.application, ", ".join(self.jobs))
        super().execute(context)

    def _default_master(self, master: str) -> None:
        """Without a ``railpm_spark`` connection, define it for this task from the settings' master."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            BaseHook.get_connection(self.spark_conn_id)
            self.log.info("Spark master from the Airflow connection %r", self.spark_conn_id)
        except AirflowNotFoundException:
            os.environ[f"AIRFLOW_CONN_{self.spark_conn_id.upper()}"] = json.dumps({"conn_type": "spark", "host": master})
            self.log.info("Spark master %s from railpm's settings (no Airflow connection %r)", master, self.spark_conn_id)

    def _find_spark_submit(self) -> None:
        """The pyspark wheel installs ``spark-submit`` beside this interpreter, which is not on PATH when the
        worker runs from an unactivated virtualenv."""
        here = Path(sys.executable).parent
        if shutil.which("spark-submit") is None and (here / "spark-submit").exists():
            os.environ["PATH"] = f"{here}{os.pathsep}{os.environ.get('PATH', '')}"
