"""Held records: a vehicle's records that arrived before the registry knew the vehicle, released once it does.

A real registry often learns of a vehicle a day after its first telemetry. Those records are not bad data,
so the gate holds them (``held/<feed>/<part>.parquet``, the quarantine's shape, rule ``vehicle_known``)
instead of quarantining them, and every ingest run releases the ones whose vehicle the registry now knows:
they go through the same gate and the same key resolution as a delivery of their own, under the lake part
``<part>~released-<logical date>`` (``~`` sorts after every landing name, so a release counts as a delivery
of its own file, ahead of later-named ones), with a run record of their own (``status: released``). The
original file's run record keeps ``held`` as it was at ingest and lists its releases under ``released``.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from railpm import contracts
from railpm.config import Settings
from railpm.expectations import ROW_ID
from railpm.ingest import lake, runs
from railpm.ingest.step import fleet_suite_inputs, store_rows, validate_rows

RELEASE_MARK = "~released-"


def held_parts(settings: Settings) -> list[tuple[contracts.Feed, str]]:
    """(feed, part) of every held file, in name order."""
    folder = settings.held_dir
    if not folder.is_dir():
        return []
    return [(contracts.FEEDS[p.parent.name], p.stem) for p in sorted(folder.glob("*/*.parquet")) if p.parent.name in contracts.FEEDS]


def read_held(settings: Settings) -> pd.DataFrame:
    """Every record held now, with its feed, file and record number (for the CLI and the review app)."""
    frames = []
    for feed, part in held_parts(settings):
        table = pq.read_table(lake.quarantine_path(settings.held_dir, feed, part)).to_pandas()
        frames.append(table[["vehicle_number", lake.SOURCE_FILE, ROW_ID, lake.RULES]].assign(feed=feed.name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["vehicle_number", lake.SOURCE_FILE, ROW_ID, lake.RULES, "feed"])


def release_held(settings: Settings, reference_time: datetime, run_id: str | None = None) -> list[dict]:
    """Ingest the held records whose vehicle the registry knows now; returns the release run records."""
    parts = held_parts(settings)
    if not parts:
        return []
    known = set(lake.registry_vehicle_types(settings.lake_dir))
    stamp = reference_time.strftime("%Y%m%dT%H%M%S")
    releases = []
    gates = {}  # one suite input per feed: the registry and catalogue do not change while releasing
    for feed, part in parts:
        path = lake.quarantine_path(settings.held_dir, feed, part)
        held = pq.read_table(path).to_pandas()
        now_known = held["vehicle_number"].isin(known).to_numpy()
        if not now_known.any():
            continue
        source = str(held[lake.SOURCE_FILE].iloc[0])
        rows = held.loc[now_known, [ROW_ID, *feed.column_names]].reset_index(drop=True)
        release_part = f"{part.split(RELEASE_MARK)[0]}{RELEASE_MARK}{stamp}"
        if feed.name not in gates:
            gates[feed.name] = fleet_suite_inputs(settings, feed, reference_time)
        frame, verdict = validate_rows(feed, rows, gates[feed.name], f"{source} (released)")
        stored = store_rows(settings, feed, source, release_part, frame, verdict, pd.DataFrame({ROW_ID: pd.Series(dtype="int64"), lake.RAW_LINE: pd.Series(dtype=object)}), 0, reference_time, run_id)
        record = {
            "file": source,
            "feed": feed.name,
            "part": release_part,
            "status": "released",
            "released_from": part,
            "rows_in": len(rows),
            **stored,
        }
        runs.check_reconciles(record)
        runs.write_run_record(settings.runs_dir, record)
        lake.write_quarantine(settings.held_dir, feed, part, pa.Table.from_pandas(held[~now_known], preserve_index=False))
        original = runs.read_run_record(settings.runs_dir, feed.name, part)
        if original is not None:
            entry = {"part": release_part, "rows": len(rows), "reference_time": reference_time.isoformat()}
            original["released"] = [e for e in original.get("released", []) if e["part"] != release_part] + [entry]
            runs.write_run_record(settings.runs_dir, original)
        releases.append(record)
    return releases
