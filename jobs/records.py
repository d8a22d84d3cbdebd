"""The record tables and the Spark jobs that build them, in the order each needs the one before.

Both ways of building records use this list: ``railpm records`` runs every job in one local SparkSession,
the ``fleet_records`` DAG submits each job's module file with ``spark-submit`` to any master. Importing this
module stays cheap (no pyspark) because the DAG imports it when it is parsed.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.layers import COMPONENT_DAYS, FAULT_SUMMARY, FLEET_RAMS, RESPONSE_CLOCKS, VEHICLE_DAYS, VEHICLE_DOSSIER, record_dir

RECORD_JOBS: dict[str, tuple[str, ...]] = {
    "vehicle_days": (VEHICLE_DAYS,),
    "component_days": (COMPONENT_DAYS,),
    "vehicle_dossier": (VEHICLE_DOSSIER,),
    "fleet_rams": (FLEET_RAMS, FAULT_SUMMARY, RESPONSE_CLOCKS),
}
"""Job (module ``railpm.jobs.<job>``) -> the tables it writes under ``records/``, in the order they run."""


def job_module(job: str) -> str:
    if job not in RECORD_JOBS:
        raise RailpmError(f"unknown records job {job!r}: one of {', '.join(RECORD_JOBS)}")
    return f"railpm.jobs.{job}"


def job_path(job: str) -> Path:
    """The installed file of a job's module, the application ``spark-submit`` runs (found without importing it)."""
    spec = importlib.util.find_spec(job_module(job))
    if spec is None or spec.origin is None:
        raise RailpmError(f"{job_module(job)} is not installed: pip install railpm")
    return Path(spec.origin)


@dataclass(frozen=True)
class JobTiming:
    job: str
    seconds: float
    tables: tuple[Path, ...]


def build_records(
    settings: Settings,
    jobs: tuple[str, ...] = tuple(RECORD_JOBS),
    on_job: Callable[..., None] | None = None,
) -> list[JobTiming]:
    """Run the record jobs in order in one local SparkSession (``settings.spark``); time each.

    ``on_job(job)`` is called as a job starts and ``on_job(job, timing)`` as it ends.

    A SparkSession already active in this process (a notebook's, a test's) is used and left running; one
    started here is stopped at the end.
    """
    from pyspark.sql import SparkSession

    from railpm.jobs.spark import build_session

    existing = SparkSession.getActiveSession()
    session = build_session(settings.spark, "railpm-records")
    timings = []
    try:
        for job in jobs:
            module = importlib.import_module(job_module(job))
            if on_job:
                on_job(job)
            started = time.perf_counter()
            module.run(session, settings)
            tables = tuple(record_dir(settings, table) for table in RECORD_JOBS[job])
            timings.append(JobTiming(job, time.perf_counter() - started, tables))
            if on_job:
                on_job(job, timings[-1])
    finally:
        if existing is None:
            session.stop()
    return timings
