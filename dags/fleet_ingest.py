"""fleet_ingest: new landing files through the Great Expectations gate into the partitioned Parquet lake.

Every hour it ingests the landing files whose content was not ingested yet: in one task the vehicle registry
first (the other feeds' vehicles are checked against it), then the parts catalogue (stock and work orders name
its parts); then telemetry, faults, work orders and stock in mapped tasks of up to
``RAILPM_INGEST__FILES_PER_TASK`` files of one feed (a task start costs seconds on a scheduler). Each file
is one call to ``railpm.ingest.ingest_file``: accepted records go to ``lake/<feed>/``, rejected ones to
``quarantine/<feed>/`` with the rules they broke, unreadable files to ``rejected_files/``, and a run record
that reconciles every record to ``runs/``; records of a vehicle the registry does not know yet are held
(``held/``) and released by the first run after the registry knows it (``release_held_records``). The gate's
period runs from the deployment's ``RAILPM_HISTORY_START`` to the run's logical date. Then the GX Data Docs (``data_docs/index.html``) are rebuilt and
one task publishes the Asset of each lake table with new files (``railpm.deploy.assets.LAKE``, through the alias
``LAKE_UPDATES``: all in one go, so one ingest run starts one ``fleet_records`` run). Re-running adds nothing: files already ingested are recognised by their content hash.
The data root comes from ``RAILPM_DATA_ROOT``, read inside the tasks.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from railpm.deploy.assets import LAKE, LAKE_UPDATES
from railpm.deploy.dag_defaults import dag_defaults


@dag(schedule="@hourly", doc_md=__doc__, **dag_defaults("ingest", "great-expectations", retry_delay=timedelta(minutes=1)))
def fleet_ingest():
    @task
    def ingest_reference_files(dag_run=None) -> list[str]:
        """The vehicle registry, then the parts catalogue: every event file is checked against them. Few small files,
        so one task (a task start costs seconds on a scheduler); it also records what lies in landing/ but is no
        landing file, with its reason."""
        from railpm.config import get_settings
        from railpm.ingest import ingest_file, new_landing_files_by_stage, record_ignored_files

        settings = get_settings()
        record_ignored_files(settings, dag_run.run_after)
        new = new_landing_files_by_stage(settings)
        reference = new["registry"] + new["catalogue"]
        for relative in reference:
            ingest_file(settings, relative, reference_time=dag_run.logical_date or dag_run.run_after, run_id=dag_run.run_id)
        return reference

    @task(trigger_rule="none_failed")
    def list_new_event_files() -> list[list[str]]:
        from railpm.config import get_settings
        from railpm.ingest import landing_batches, new_landing_files_by_stage

        settings = get_settings()
        return landing_batches(settings, new_landing_files_by_stage(settings)["events"])

    @task(map_index_template="{% set batch = task.op_kwargs['batch'] %}{{ batch[0] }}"
                             "{% if batch | length > 1 %} and {{ batch | length - 1 }} more{% endif %}")
    def ingest_landing_files(batch: list[str], dag_run=None) -> list[dict]:
        from railpm.config import get_settings
        from railpm.ingest import ingest_file

        settings, summaries = get_settings(), []
        for relative in batch:
            record = ingest_file(settings, relative, reference_time=dag_run.logical_date or dag_run.run_after, run_id=dag_run.run_id)
            summaries.append({k: record.get(k) for k in ("file", "status", "rows_in", "accepted", "quarantined", "duplicates_removed", "held", "error")})
        return summaries

    @task(trigger_rule="none_failed")
    def release_held_records(dag_run=None) -> list[str]:
        from railpm.config import get_settings
        from railpm.ingest import release_held

        released = release_held(get_settings(), reference_time=dag_run.logical_date or dag_run.run_after, run_id=dag_run.run_id)
        return sorted({record["file"] for record in released})

    @task(trigger_rule="none_failed")
    def build_data_docs(*new_files: list) -> str | None:
        if not any(new_files):
            raise AirflowSkipException("no new landing files in this run: the Data Docs are current")
        from railpm.config import get_settings
        from railpm.ingest import build_data_docs as build

        index = build(get_settings())
        return str(index) if index else None

    @task(trigger_rule="none_failed", outlets=[LAKE_UPDATES])
    def publish_lake_tables(*new_files: list, outlet_events=None) -> list[str]:
        by_feed: dict[str, list[str]] = {}
        flat = (item for files in new_files for item in files)  # names (reference files, releases) and batches
        for relative in (r for item in flat for r in ([item] if isinstance(item, str) else item)):
            by_feed.setdefault(relative.partition("/")[0], []).append(relative)
        feeds = sorted(set(by_feed) & set(LAKE))
        if not feeds:
            raise AirflowSkipException("no new landing files in this run: nothing to publish")
        for feed in feeds:
            outlet_events[LAKE_UPDATES].add(LAKE[feed], extra={"landing_files": by_feed[feed]})
        return [f"lake/{feed}" for feed in feeds]

    reference = ingest_reference_files()
    batches = list_new_event_files()
    reference >> batches
    ingest = ingest_landing_files.override(task_id="ingest_events", trigger_rule="none_failed").expand(batch=batches)
    released = release_held_records()
    ingest >> released
    released >> build_data_docs(reference, batches, released)
    publish_lake_tables(reference, batches, released)


fleet_ingest()
