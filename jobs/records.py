"""The record tables and the Spark jobs that build them, in the order each needs the one before.

Both ways of building records run this list in one Spark application: ``railpm records`` in a local
SparkSession, the ``fleet_records`` DAG by ``spark-submit`` of this module's file to any master (``main``). One
application, not one per job: each start of a JVM and a driver costs seconds, and a cluster's queue would take
four turns. Importing this module stays cheap (no pyspark) because the DAG imports it when it is parsed.
"""

from __future__ import annotations

import importlib
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


@dataclass(frozen=True)
class JobTiming:
    job: str
    seconds: float
    tables: tuple[Path, ...]


def build_records(
    settings: Settings,
    jobs: tuple[str, ...] = tuple(RECORD_JOBS),
    on_job: Callable[..., None] | None = None,
    local: bool = True,
) -> list[JobTiming]:
    """Run the record jobs in order in one SparkSession; time each.

    ``on_job(job)`` is called as a job starts and ``on_job(job, timing)`` as it ends. ``local=False`` under
    ``spark-submit``: the command line, not ``settings.spark``, names the master.

    A SparkSession already active in this process (a notebook's, a test's) is used and left running; one
    started here is stopped at the end.
    """
    from pyspark.sql import SparkSession

    from railpm.jobs.spark import build_session

    for job in jobs:
        job_module(job)
    existing = SparkSession.getActiveSession()
    session = build_session(settings.spark, "railpm-records", local=local)
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


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - exercised through spark-submit by the DAG tests
    """``spark-submit .../railpm/jobs/records.py [JOB ...]``: the named jobs (all by default) in one application,
    each start and end printed as a progress line for whoever runs the DAG (``airflow dags test``, the demo)."""
    import argparse

    from railpm.config import get_settings
    from railpm.deploy.orchestration import PROGRESS_MARKER

    parser = argparse.ArgumentParser(prog="railpm.jobs.records", description=main.__doc__)
    parser.add_argument("jobs", nargs="*", default=list(RECORD_JOBS), choices=list(RECORD_JOBS), metavar="JOB")
    jobs = tuple(parser.parse_args(argv).jobs)

    def on_job(job: str, timing: JobTiming | None = None) -> None:
        said = "started" if timing is None else f"finished ({timing.seconds:.1f} s)"
        print(f"{PROGRESS_MARKER}{job} {said}", flush=True)

    build_records(get_settings(), jobs, on_job=on_job, local=False)


if __name__ == "__main__":  # pragma: no cover
    main()
