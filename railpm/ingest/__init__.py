"""Validated ingest: landing files -> GX gate -> partitioned Parquet lake, quarantine, run records, Data Docs.

Entry points call these with values from ``Settings`` and the run's reference time (never ``now()`` here):

- :func:`new_landing_files` lists the files not ingested yet, in stages (registry, catalogue, the rest);
- :func:`ingest_file` ingests one of them (one Airflow mapped task per file);
- :func:`ingest_landing` ingests all new files in order, then releases held records (the ``railpm ingest`` command);
- :func:`release_held` ingests held records whose vehicle the registry knows now (a task of its own in the DAG);
- :func:`build_data_docs` renders the GX validation results as a static site.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from railpm.config import Settings
from railpm.ingest import runs
from railpm.ingest.landing import STAGES, IgnoredFile, LandingFile, shown_name, survey_landing
from railpm.ingest.held import release_held
from railpm.ingest.step import SUPERSEDED, ingest_file

STAGE_NAMES = ("registry", "catalogue", "events")
"""Names of :data:`railpm.ingest.landing.STAGES`, in order."""


def new_landing_files(settings: Settings) -> list[LandingFile]:
    """Landing files whose current content has not been ingested, in ingest order; refused ones (a link out
    of the landing folder, not a regular file) are listed too, unread, so that ingesting sets them aside."""
    return [
        f
        for f in survey_landing(settings.landing_dir).files
        if f.refused or not runs.already_ingested(settings.runs_dir, f, runs.file_sha256(f.path))
    ]


def record_ignored_files(settings: Settings, reference_time: datetime) -> list[dict]:
    """List what lies in the landing folder but is no landing file (a subfolder, another extension, a hidden
    upload) in ``runs/ignored.json``, each with its reason, so that nothing there is passed over unsaid."""
    ignored: list[IgnoredFile] = survey_landing(settings.landing_dir).ignored
    listed = [{"file": shown_name(i.relative), "reason": i.reason} for i in ignored]
    runs.write_ignored(settings.runs_dir, {"reference_time": reference_time.isoformat(), "ignored": listed})
    return listed


def new_landing_files_by_stage(settings: Settings) -> dict[str, list[str]]:
    """New landing files (paths relative to ``landing/``) per stage, plus ``feeds``: the feeds they touch."""
    files = new_landing_files(settings)
    out = {name: [f.relative for f in files if f.feed in stage] for name, stage in zip(STAGE_NAMES, STAGES)}
    out["feeds"] = sorted({f.feed for f in files})
    return out


def landing_batches(settings: Settings, relatives: list[str]) -> list[list[str]]:
    """Landing files (in ingest order) as the batches one ingest task each takes: never two feeds in a batch, at
    most ``settings.ingest.files_per_task`` files."""
    by_feed: dict[str, list[str]] = {}
    for relative in relatives:
        by_feed.setdefault(relative.partition("/")[0], []).append(relative)
    size = settings.ingest.files_per_task
    return [files[i:i + size] for files in by_feed.values() for i in range(0, len(files), size)]


def ingest_landing(
    settings: Settings,
    reference_time: datetime,
    on_file: Callable[[LandingFile, dict | None], None] | None = None,
    run_id: str | None = None,
) -> list[dict]:
    """Ingest every new landing file, registry first, then release the held records the registry now knows;
    returns their run records (releases last).

    ``on_file(file, None)`` is called before each file and ``on_file(file, record)`` after it.
    """
    records = []
    record_ignored_files(settings, reference_time)
    for landing in new_landing_files(settings):
        if on_file:
            on_file(landing, None)
        record = ingest_file(settings, landing.relative, reference_time, run_id)
        records.append(record)
        if on_file:
            on_file(landing, record)
    return records + release_held(settings, reference_time, run_id)


def build_data_docs(settings: Settings):
    """Render every stored GX validation result to ``settings.data_docs_dir``; returns the index page."""
    from railpm.ingest.docs import build_data_docs as build

    return build(settings.runs_dir, settings.data_docs_dir)


def summarise(records: list[dict]) -> dict:
    """Totals per feed and per rule over run records (as the CLI and the benchmark print them)."""
    feeds: dict[str, dict] = {}
    rules: dict[str, int] = {}
    for record in records:
        totals = feeds.setdefault(
            record["feed"],
            {"files": 0, "rejected_files": 0, "rows_in": 0, "accepted": 0, "quarantined": 0, "duplicates_removed": 0, "held": 0, "released": 0},
        )
        if record.get("status") == "released":  # records counted in by their file's run record, as held
            totals["released"] += record["rows_in"]
            for name in ("accepted", "quarantined", "duplicates_removed"):
                totals[name] += record[name]
            continue
        totals["files"] += 1
        if record.get("status") == "rejected":
            totals["rejected_files"] += 1
            continue
        if record.get("status") != "ingested":
            continue
        for name in ("rows_in", "accepted", "quarantined", "duplicates_removed", "held"):
            totals[name] += record.get(name, 0)
        for rule, count in record.get("rules", {}).items():
            rules[rule] = rules.get(rule, 0) + count
    return {"feeds": feeds, "rules": dict(sorted(rules.items()))}


__all__ = [
    "STAGE_NAMES",
    "SUPERSEDED",
    "build_data_docs",
    "ingest_file",
    "ingest_landing",
    "release_held",
    "new_landing_files",
    "new_landing_files_by_stage",
    "landing_batches",
    "record_ignored_files",
    "summarise",
]
