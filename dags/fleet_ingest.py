"""fleet_ingest: new landing files through the Great Expectations gate into the partitioned Parquet lake.

Every hour it lists the landing files whose content was not ingested yet and ingests each in its own mapped
task, stage by stage: the vehicle registry first (the other feeds' vehicles are checked against it), then the parts
catalogue (stock and work orders name its parts), then telemetry, faults, work orders and stock. Each task
is one call to ``railpm.ingest.ingest_file``: accepted records go to ``lake/<feed>/``, rejected ones to
``quarantine/<feed>/`` with the rules they broke, unreadable files to ``rejected_files/``, and a run record
that reconciles every record to ``runs/``. Then the GX Data Docs (``data_docs/index.html``) are rebuilt and
one Asset per lake table with new files is published (``railpm.assets.LAKE``), on which ``fleet_records``
is scheduled. Re-running adds nothing: files already ingested are recognised by their content hash.
The data root comes from ``RAILPM_DATA_ROOT``, read inside the tasks.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from railpm.assets import LAKE


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["railpm", "ingest", "great-expectations"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
)
def fleet_ingest():
    @task(trigger_rule="none_failed")
    def list_new_landing_files(stage: str) -> list[str]:
        from railpm.config import get_settings
        from railpm.ingest import new_landing_files_by_stage

        return new_landing_files_by_stage(get_settings())[stage]

    @task(map_index_template="{{ task.op_kwargs['relative'] }}")
    def ingest_landing_file(relative: str, dag_run=None) -> dict:
        from railpm.config import get_settings
        from railpm.ingest import ingest_file

        record = ingest_file(get_settings(), relative, reference_time=dag_run.run_after)
        return {k: record.get(k) for k in ("file", "status", "rows_in", "accepted", "quarantined", "duplicates_removed", "error")}

    @task(trigger_rule="none_failed")
    def build_data_docs(*new_files: list[str]) -> str | None:
        if not any(new_files):
            raise AirflowSkipException("no new landing files in this run: the Data Docs are current")
        from railpm.config import get_settings
        from railpm.ingest import build_data_docs as build

        index = build(get_settings())
        return str(index) if index else None

    @task(trigger_rule="none_failed")
    def publish_lake_table(feed: str, *new_files: list[str]) -> str:
        if not any(relative.startswith(f"{feed}/") for files in new_files for relative in files):
            raise AirflowSkipException(f"no new {feed} landing files in this run: nothing to publish")
        return f"lake/{feed}"

    stages = []
    for stage in ("registry", "catalogue", "events"):
        files = list_new_landing_files.override(task_id=f"list_new_{stage}_files")(stage)
        ingest = ingest_landing_file.override(task_id=f"ingest_{stage}", trigger_rule="none_failed").expand(relative=files)
        if stages:
            stages[-1][1] >> files
        stages.append((files, ingest))
    last_ingest = stages[-1][1]
    last_ingest >> build_data_docs(*(files for files, _ in stages))
    for feed, asset in LAKE.items():
        publish = publish_lake_table.override(task_id=f"publish_{feed}", outlets=[asset])
        last_ingest >> publish(feed, *(files for files, _ in stages))


fleet_ingest()
