"""Ingest one landing file: parse, drop exact duplicates, validate with GX, write lake, quarantine, run record.

Every record of the file ends in exactly one place: the lake (accepted, cast to the contract, stamped with
its arrival), the quarantine (with the rules it broke), the held area (its vehicle is not in the registry
yet: released later by :mod:`railpm.ingest.held`) or the duplicate count, and the step checks
``rows_in = accepted + quarantined + duplicates_removed + held`` before it reports success.

Keys delivered by more than one file (a late re-send, a corrected file) are resolved by the files' names,
never by the order they happen to be ingested in, so any order gives the same lake:

- an exact copy (same content under the same key) is a duplicate of the record in the file whose name sorts
  first, the original: the later-named file's copy is removed and counted in that file's run record;
- a changed record under a key another file already delivered is a correction: the version in the file whose
  name sorts last wins (``*-late-*`` files sort after the regular ones of their feed), and the losing version
  is quarantined in its own file's quarantine under the rule ``superseded_by_resend``.

When the loser sits in a file ingested earlier, its lake part, key index, quarantine and run record are
revised (the run record lists the revision under ``revised_by``), so every run record still reconciles.
A file whose content was ingested before (same content hash) is skipped; a changed file under the same name
replaces its own parts.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from time import perf_counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from railpm import contracts
from railpm.config import Settings
from railpm.contracts import Feed
from railpm.errors import RailpmError
from railpm.expectations import ROW_ID, SuiteInputs, add_derived_columns, suite_for, validate_frame
from railpm.expectations.suites import MALFORMED_LINE, VEHICLE_KNOWN
from railpm.arrow import arrow_schema as contract_schema
from railpm.ingest import lake, runs
from railpm.ingest.landing import LandingFile, UnreadableFileError, landing_file, part_name, read_landing_file, shown_name

SUPERSEDED = "superseded_by_resend"
"""Rule of a record replaced by a changed version of the same key in a later-named file."""
DROPPED = "dropped_by_redelivery"
"""Rule of a record a changed re-delivery of the same file no longer holds (kept under ``revisions/``)."""
CHANGED = "changed_by_redelivery"
"""Rule of a record's earlier version that a changed re-delivery of the same file replaced."""


class MissingReferenceError(RailpmError):
    """The reference data a feed is checked against (registry, catalogue) is not in the lake yet."""


def fleet_suite_inputs(settings: Settings, feed: Feed, reference_time: datetime) -> SuiteInputs:
    """The suite inputs of one feed: the deployment's history start, the run's logical date, the registry and
    catalogue it needs (never the synthetic generator's settings: a real fleet's history has no fixed end)."""
    vehicle_types: dict[str, str] = {}
    part_numbers: frozenset[str] = frozenset()
    if feed.references_registry:
        vehicle_types = lake.registry_vehicle_types(settings.lake_dir)
        if not vehicle_types:
            raise MissingReferenceError(f"{feed.name}: the vehicle registry is not in the lake yet; ingest landing/vehicles first")
    if "part_number" in feed.column_names and feed.name != contracts.PARTS.name:
        part_numbers = lake.catalogue_part_numbers(settings.lake_dir)
        # Work orders of a fleet without a parts catalogue are fine as long as they name no part (the suite's
        # part_known rule rejects any that does); stock without a catalogue is meaningless.
        if not part_numbers and feed.name == contracts.STOCK.name:
            raise MissingReferenceError(f"{feed.name}: the parts catalogue is not in the lake yet; ingest landing/parts first")
    return SuiteInputs.for_deployment(
        settings.history_start,
        reference_time,
        vehicle_types=vehicle_types,
        part_numbers=part_numbers,
        naive_time_zone=settings.ingest.naive_time_zone(feed.name),
    )


_suites: dict[tuple, object] = {}


def _suite(feed: Feed, inputs: SuiteInputs):
    """The feed's suite, built once per distinct inputs (files of one run share it)."""
    key = (
        feed.name,
        inputs.period_start,
        inputs.period_end,
        inputs.reference_time,
        frozenset(inputs.vehicle_types.items()),
        inputs.part_numbers,
        inputs.naive_time_zone,
    )
    if key not in _suites:
        if len(_suites) > 16:
            _suites.clear()
        _suites[key] = suite_for(feed.name, inputs)
    return _suites[key]


def drop_exact_duplicates(rows: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """Keep the first of records identical in every field."""
    repeated = rows.duplicated(subset=columns, keep="first").to_numpy()
    return rows[~repeated], int(repeated.sum())


def rules_per_row(row_ids: np.ndarray, failed_rows: dict[str, np.ndarray]) -> np.ndarray:
    """Comma-separated names of the rules each row broke ("" for a clean row), in suite order."""
    out = np.full(len(row_ids), "", dtype=object)
    for rule, rows in failed_rows.items():
        hit = np.isin(row_ids, rows)
        current = out[hit]
        out[hit] = np.where(current == "", rule, current + "," + rule)
    return out


def _text_table(feed: Feed, frame: pd.DataFrame) -> dict[str, pa.Array]:
    return lake.as_text(pa.Table.from_pandas(frame[feed.column_names], preserve_index=False))


def quarantine_table(feed: Feed, source: str, rows: pd.DataFrame, rules: np.ndarray, malformed: pd.DataFrame) -> pa.Table:
    """Rejected records as strings, with where they came from and which rules they broke."""
    schema = lake.quarantine_schema(feed)
    parts = []
    if len(rows):
        columns = _text_table(feed, rows)
        columns[lake.RAW_LINE] = pa.nulls(len(rows), pa.string())
        columns[lake.SOURCE_FILE] = pa.array([source] * len(rows), pa.string())
        columns[ROW_ID] = pa.array(rows[ROW_ID].to_numpy(), pa.int64())
        columns[lake.RULES] = pa.array(list(rules), pa.string())
        parts.append(pa.table(columns).select(schema.names).cast(schema))
    if len(malformed):
        n = len(malformed)
        columns = {c: pa.nulls(n, pa.string()) for c in feed.column_names}
        columns[lake.RAW_LINE] = pa.array(malformed[lake.RAW_LINE], pa.string(), from_pandas=True)
        columns[lake.SOURCE_FILE] = pa.array([source] * n, pa.string())
        columns[ROW_ID] = pa.array(malformed[ROW_ID].to_numpy(), pa.int64())
        columns[lake.RULES] = pa.array([MALFORMED_LINE] * n, pa.string())
        parts.append(pa.table(columns).cast(schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def reject_file(settings: Settings, landing: LandingFile, sha256: str | None, error: Exception, reference_time: datetime) -> dict:
    """Move a file that cannot be read at all to ``rejected_files/`` beside a note of why, and record it.

    A link is moved as the link (its target is never opened); a name already set aside keeps its earlier
    file, the new one gets the content hash (or a counter) in its name.
    """
    folder = settings.rejected_files_dir / landing.feed
    folder.mkdir(parents=True, exist_ok=True)
    name = landing.path.name
    target, n = folder / name, 1
    while os.path.lexists(target) or os.path.lexists(folder / f"{target.name}.error.txt"):
        n += 1
        target = folder / f"{name}.{n}"
    shutil.move(landing.path, target)
    target.with_name(f"{target.name}.error.txt").write_text(f"{error}\n", encoding="utf-8", errors="backslashreplace")
    record = {
        "file": landing.relative,
        "feed": landing.feed,
        "part": f"{part_name(target.name)}-rejected",  # as unique as the name it was set aside under
        "sha256": sha256,
        "status": "rejected",
        "error": str(error),
        "moved_to": shown_name(str(target.relative_to(settings.data_root))),
        "reference_time": reference_time.isoformat(),
    }
    runs.write_run_record(settings.runs_dir, record)
    return record


def waiting_record(settings: Settings, landing: LandingFile, sha256: str, error: Exception, reference_time: datetime) -> dict:
    """A file that waits in ``landing/`` for the reference data it is checked against; a later run ingests it."""
    record = {
        "file": landing.relative,
        "feed": landing.feed,
        "part": landing.part,
        "sha256": sha256,
        "status": "waiting",
        "error": f"{error}; the file stays in landing/ and is ingested by a later run",
        "reference_time": reference_time.isoformat(),
    }
    runs.write_run_record(settings.runs_dir, record)
    return record


def _trimmed_validation(result, limit: int = 20) -> dict:
    """The GX result for Data Docs, with unexpected lists cut short (the quarantine holds every row)."""
    document = result.to_json_dict()
    for outcome in document.get("results", []):
        details = outcome.get("result") or {}
        for name in ("unexpected_list", "unexpected_index_list", "partial_unexpected_list", "partial_unexpected_index_list"):
            if isinstance(details.get(name), list):
                details[name] = details[name][:limit]
    return json.loads(json.dumps(document, default=str))


def ingest_file(settings: Settings, relative: str, reference_time: datetime, run_id: str | None = None) -> dict:
    """Ingest one landing file (path relative to the landing folder); returns its run record.

    ``reference_time`` is the run's logical date (nothing may be later); ``run_id`` names the run, and both are
    kept on every lake record as its arrival (:data:`railpm.ingest.lake.ARRIVAL_COLUMNS`).
    """
    landing = landing_file(settings.landing_dir, relative)
    feed = contracts.FEEDS[landing.feed]
    if not os.path.lexists(landing.path):
        raise RailpmError(f"landing file {landing.shown} does not exist")
    if landing.refused:
        return reject_file(settings, landing, None, UnreadableFileError(landing.refused, file=landing.shown, rule="inside_landing"), reference_time)
    sha256 = runs.file_sha256(landing.path)
    done = runs.already_ingested(settings.runs_dir, landing, sha256)
    if done:
        return {**done, "skipped": True}

    clock = perf_counter()
    try:
        inputs = fleet_suite_inputs(settings, feed, reference_time)
    except MissingReferenceError as exc:
        return waiting_record(settings, landing, sha256, exc, reference_time)
    try:
        records = read_landing_file(landing, settings.ingest)
    except UnreadableFileError as exc:
        return reject_file(settings, landing, sha256, exc, reference_time)
    rows, duplicates = drop_exact_duplicates(records.rows, feed.column_names)
    parsed = perf_counter()

    frame, verdict = validate_rows(feed, rows, inputs, landing.shown)
    if verdict.table_failures:
        error = UnreadableFileError("the file's columns break the contract", file=landing.shown, rule=",".join(verdict.table_failures))
        return reject_file(settings, landing, sha256, error, reference_time)
    validated = perf_counter()
    stored = store_rows(settings, feed, landing.shown, landing.part, frame, verdict, records.malformed, duplicates, reference_time,
                        run_id, delivery=(landing, sha256))
    record = {
        "file": landing.relative,
        "feed": feed.name,
        "part": landing.part,
        "format": landing.format,
        "sha256": sha256,
        "status": "ingested",
        "rows_in": records.records,
        **stored,
        "seconds": {"parse": round(parsed - clock, 3), "validate": round(validated - parsed, 3), "write": stored["seconds"]["write"]},
    }
    runs.check_reconciles(record)
    runs.write_run_record(settings.runs_dir, record)
    return record


def validate_rows(feed: Feed, rows: pd.DataFrame, inputs: SuiteInputs, batch_name: str):
    """Landing rows (strings + record numbers) with their derived columns, and the GX verdict on them."""
    frame = add_derived_columns(feed, rows, inputs)
    return frame, validate_frame(_suite(feed, inputs), frame, asset_name=feed.name, batch_name=batch_name)


def store_rows(
    settings: Settings,
    feed: Feed,
    source: str,
    part: str,
    frame: pd.DataFrame,
    verdict,
    malformed: pd.DataFrame,
    duplicates: int,
    reference_time: datetime,
    run_id: str | None,
    delivery: tuple[LandingFile, str] | None = None,
) -> dict:
    """Put validated rows where they belong (lake, quarantine, held) under lake part ``part``; returns the counts.

    ``delivery`` (the landing file and its hash) marks rows that came in a delivery rather than a release of held
    rows: a changed re-delivery of a file ingested before keeps what it replaces as a revision.

    A record whose only fault is a vehicle the registry does not know yet is held, not quarantined: the registry
    often learns of a vehicle a day after its first telemetry, and :func:`railpm.ingest.held.release_held`
    ingests it once the registry knows the vehicle.
    """
    started = perf_counter()
    row_ids = frame[ROW_ID].to_numpy()
    rules = rules_per_row(row_ids, verdict.failed_rows)
    failed = rules != ""
    holding = rules == VEHICLE_KNOWN
    accepted = frame[~failed]
    quarantine = quarantine_table(feed, source, frame[failed & ~holding], rules[failed & ~holding], malformed)
    held = quarantine_table(feed, source, frame[holding], rules[holding], malformed[:0])
    rule_counts = {rule: int(len(rows_)) for rule, rows_ in verdict.failed_rows.items()}
    if holding.any():
        rule_counts[VEHICLE_KNOWN] -= int(holding.sum())
        if not rule_counts[VEHICLE_KNOWN]:
            del rule_counts[VEHICLE_KNOWN]
    if len(malformed):
        rule_counts[MALFORMED_LINE] = rule_counts.get(MALFORMED_LINE, 0) + len(malformed)

    revised: list[dict] = []
    with lake.feed_lock(settings.runs_dir, feed.name):
        typed = lake.typed_table(feed, accepted)
        index = lake.key_index(feed, typed, accepted[ROW_ID].to_numpy())
        found = lake.find_delivered_keys(settings.runs_dir, feed, part, index)
        found = found.merge(index[[*feed.key, ROW_ID]], on=ROW_ID, how="left")
        identical = found["identical"].astype(bool)
        later_elsewhere = found["other_part"] > part
        my_duplicates = found.loc[identical & ~later_elsewhere, ROW_ID].to_numpy()
        my_superseded = found.loc[~identical & later_elsewhere, ROW_ID].to_numpy()
        if len(my_duplicates) or len(my_superseded):
            keep = ~np.isin(index[ROW_ID].to_numpy(), np.concatenate([my_duplicates, my_superseded]))
            typed, index = typed.filter(pa.array(keep)), index[keep].reset_index(drop=True)
            duplicates += len(my_duplicates)
        if len(my_superseded):
            replaced = frame[frame[ROW_ID].isin(my_superseded)]
            quarantine = pa.concat_tables(
                [quarantine, quarantine_table(feed, source, replaced, np.full(len(replaced), SUPERSEDED), malformed[:0])]
            )
            rule_counts[SUPERSEDED] = len(my_superseded)
        theirs = found[(identical & later_elsewhere) | (~identical & ~later_elsewhere)]
        if len(theirs):
            revised = _revise_other_files(settings, feed, source, theirs, reference_time)
        redelivery = _keep_earlier_delivery(settings, feed, delivery[0], index, delivery[1]) if delivery else None
        arrived = lake.with_arrival(typed, run_id or f"manual__{reference_time.isoformat()}", reference_time)
        lake_files = lake.write_lake_part(settings.lake_dir, feed, part, arrived)
        lake.write_key_index(settings.runs_dir, feed, part, index)
        quarantine_file = lake.write_quarantine(settings.quarantine_dir, feed, part, quarantine)
        held_file = lake.write_quarantine(settings.held_dir, feed, part, held)

    validation_file = runs.write_validation(settings.runs_dir, feed.name, part, _trimmed_validation(verdict.result))
    return {
        "reference_time": reference_time.isoformat(),
        "run_id": run_id,
        "accepted": typed.num_rows,
        "quarantined": quarantine.num_rows,
        "duplicates_removed": duplicates,
        "held": held.num_rows,
        "rules": dict(sorted(rule_counts.items())),
        "seconds": {"write": round(perf_counter() - started, 3)},
        "lake_files": lake_files,
        "quarantine_file": str(quarantine_file.relative_to(settings.data_root)) if quarantine_file else None,
        "held_file": str(held_file.relative_to(settings.data_root)) if held_file else None,
        "validation_file": str(validation_file.relative_to(settings.data_root)),
        "revised": revised,
        "revised_by": [],
        **({"redelivery": redelivery} if redelivery else {}),
    }


def _keep_earlier_delivery(settings: Settings, feed: Feed, landing: LandingFile, index: pd.DataFrame, sha256: str) -> dict | None:
    """A changed re-delivery of a file ingested before is a revision: the part as that delivery left it is kept
    under ``revisions/`` (so the lake's history can be replayed), with the records this one drops or changes
    under their rules, and the earlier quarantine beside them. Nothing leaves the lake unrecorded."""
    previous = runs.read_run_record(settings.runs_dir, feed.name, landing.part)
    if not previous or previous.get("status") != "ingested" or previous.get("sha256") == sha256:
        return None
    old = previous["sha256"][:16]
    folder = settings.revisions_dir / feed.name
    folder.mkdir(parents=True, exist_ok=True)
    parts = lake.lake_parts(settings.lake_dir, feed, landing.part)
    before = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else contract_schema(feed).empty_table()
    lake._write(before, folder / f"{landing.part}@{old}.parquet")
    try:
        old_index = lake.read_key_index(settings.runs_dir, feed, landing.part)
    except FileNotFoundError:
        old_index = pd.DataFrame(columns=[*feed.key, ROW_ID, lake.ROW_HASH])
    both = old_index.merge(index[[*feed.key, lake.ROW_HASH]], on=list(feed.key), how="left", suffixes=("", "_new"), indicator=True)
    dropped = (both["_merge"] == "left_only").to_numpy()
    changed = ((both["_merge"] == "both") & (both[lake.ROW_HASH] != both[f"{lake.ROW_HASH}_new"])).to_numpy()
    revised = both[dropped | changed]
    rule = np.where(dropped[dropped | changed], DROPPED, CHANGED)
    keyed = before.select(list(feed.key)).to_pandas().merge(revised[list(feed.key)].assign(_hit=True), on=list(feed.key), how="left")
    rows = before.filter(pa.array(keyed["_hit"].eq(True).to_numpy()))
    order = rows.select(list(feed.key)).to_pandas().merge(revised[[*feed.key, ROW_ID]].assign(_rule=rule), on=list(feed.key), how="left")
    text = lake.as_text(rows)
    columns = {c: text[c] for c in feed.column_names}
    columns[lake.RAW_LINE] = pa.nulls(rows.num_rows, pa.string())
    columns[lake.SOURCE_FILE] = pa.array([f"{shown_name(previous['file'])}@{old}"] * rows.num_rows, pa.string())
    columns[ROW_ID] = pa.array(order[ROW_ID].astype("int64").to_numpy(), pa.int64())
    columns[lake.RULES] = pa.array(order["_rule"].to_numpy(dtype=object), pa.string())
    lake._write(pa.table(columns).cast(lake.quarantine_schema(feed)), folder / f"{landing.part}@{old}.changes.parquet")
    earlier_quarantine = lake.quarantine_path(settings.quarantine_dir, feed, landing.part)
    if earlier_quarantine.exists():
        shutil.copyfile(earlier_quarantine, folder / f"{landing.part}@{old}.quarantine.parquet")
    return {
        "of": {"file": previous["file"], "sha256": previous["sha256"], "reference_time": previous["reference_time"]},
        "earlier_accepted": before.num_rows,
        "dropped": int(dropped.sum()),
        "changed": int(changed.sum()),
        "kept_in": shown_name(str(folder.relative_to(settings.data_root) / f"{landing.part}@{old}.*")),
    }


def _superseded_rows(feed: Feed, source: str, removed: pa.Table, changed: pd.DataFrame) -> pa.Table:
    """Records taken out of the lake because a later-named file changed them, as quarantine rows."""
    keyed = removed.select(list(feed.key)).to_pandas().merge(changed[[*feed.key, "other_row"]], on=list(feed.key), how="left")
    keep = keyed["other_row"].notna().to_numpy()
    n = int(keep.sum())
    text = lake.as_text(removed.filter(pa.array(keep)))
    columns = {c: text[c] for c in feed.column_names}
    columns[lake.RAW_LINE] = pa.nulls(n, pa.string())
    columns[lake.SOURCE_FILE] = pa.array([source] * n, pa.string())
    columns[ROW_ID] = pa.array(keyed.loc[keep, "other_row"].astype("int64").to_numpy(), pa.int64())
    columns[lake.RULES] = pa.array([SUPERSEDED] * n, pa.string())
    return pa.table(columns).cast(lake.quarantine_schema(feed))


def _revise_other_files(settings: Settings, feed: Feed, source: str, losing: pd.DataFrame, reference_time: datetime) -> list[dict]:
    """Take records that lost to this file out of the earlier-ingested files that delivered them."""
    revisions = []
    for other_part, group in losing.groupby("other_part", sort=True):
        other = runs.read_run_record(settings.runs_dir, feed.name, other_part)
        if other is None:
            raise RailpmError(f"{feed.name}: lake part {other_part} has no run record; cannot revise it")
        superseded = []
        for day, by_day in group.groupby("other_day", dropna=False, sort=True):
            removed = lake.remove_lake_records(
                settings.lake_dir, feed, other_part, None if pd.isna(day) else pd.Timestamp(day).strftime("%Y-%m-%d"), by_day[list(feed.key)]
            )
            changed = by_day[~by_day["identical"].astype(bool)]
            if len(changed):
                superseded.append(_superseded_rows(feed, other["file"], removed, changed))
        index = lake.read_key_index(settings.runs_dir, feed, other_part)
        lake.write_key_index(settings.runs_dir, feed, other_part, index[~index[ROW_ID].isin(group["other_row"])])
        n_duplicates = int(group["identical"].astype(bool).sum())
        n_superseded = len(group) - n_duplicates
        if superseded:
            path = lake.append_quarantine(settings.quarantine_dir, feed, other_part, pa.concat_tables(superseded))
            other["quarantine_file"] = str(path.relative_to(settings.data_root))
        other["accepted"] -= len(group)
        other["duplicates_removed"] += n_duplicates
        other["quarantined"] += n_superseded
        if n_superseded:
            other["rules"] = dict(sorted({**other["rules"], SUPERSEDED: other["rules"].get(SUPERSEDED, 0) + n_superseded}.items()))
        revision = {"file": source, "duplicates": n_duplicates, "superseded": n_superseded}
        other.setdefault("revised_by", []).append({**revision, "reference_time": reference_time.isoformat()})
        runs.check_reconciles(other)
        runs.write_run_record(settings.runs_dir, other, delivery=False)
        revisions.append({**revision, "file": other["file"]})
    return revisions
