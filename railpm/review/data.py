"""Small reads of every data layer the review pages show, each tolerant of a layer not built yet.

A page must open on a fresh checkout and on a fleet of thousands of vehicles alike, so every reader reads
only what its page shows: the latest scored day of the predictions, one vehicle's rows of the lake (DuckDB
pushes the vehicle filter down to Parquet row groups) or daily aggregates computed inside DuckDB, and the
small record tables (dossier, RAMS, plans). A missing layer raises ``LayerMissing`` whose message names the
command that builds it; the pages show that message instead of failing.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterable

import duckdb
import numpy as np
import pandas as pd

from railpm import contracts, rules
from railpm.errors import RailpmError
from railpm.layers import lake_dir_of, predictions_files


class LayerMissing(RailpmError):
    """A layer a page needs has not been built yet; the message says which command builds it."""


HINTS = {
    "vehicles": "no vehicle registry in the lake yet: run `railpm generate` and `railpm ingest`",
    "telemetry": "no telemetry in the lake yet: run `railpm ingest`",
    "faults": "no faults in the lake yet: run `railpm ingest`",
    "work_orders": "no work orders in the lake yet: run `railpm ingest`",
    "predictions": "no predictions yet: run `railpm score`",
    "vehicle_dossier": "no vehicle dossiers yet: run `railpm records`",
    "fleet_rams": "no RAMS figures yet: run `railpm records`",
    "response_clocks": "no A-grade response clocks yet: run `railpm records`",
    "inspection_plan": "no inspection plan yet: run `railpm plan`",
    "spares_plan": "no spares plan yet: run `railpm plan`",
    "models": "no registered model yet: run `railpm train`",
    "feedback": "no feedback recorded yet",
}


def _parquet_source(path: Path, layer: str) -> str:
    """A DuckDB ``read_parquet`` call over a table folder (hive ``key=value`` partitions) or a single file."""
    if path.is_file():
        files = str(path)
    elif path.is_dir() and next(path.rglob("*.parquet"), None) is not None:
        files = str(path / "**" / "*.parquet")
    else:
        raise LayerMissing(HINTS.get(layer, f"{path} does not exist yet"))
    quoted = files.replace("'", "''")
    return f"read_parquet('{quoted}', hive_partitioning = true, union_by_name = true)"


_DATABASE: duckdb.DuckDBPyConnection | None = None
_DATABASE_PID: int | None = None
_DATABASE_LOCK = threading.Lock()


def _connect() -> duckdb.DuckDBPyConnection:
    """A cursor on the process's one in-memory DuckDB: opening a database costs ~0.1 s, a cursor nothing, and
    each cursor is its own connection (safe to use from the request's thread while others query)."""
    global _DATABASE, _DATABASE_PID
    with _DATABASE_LOCK:
        if _DATABASE is None or _DATABASE_PID != os.getpid():  # a forked report worker opens its own
            _DATABASE, _DATABASE_PID = duckdb.connect(), os.getpid()
            _DATABASE.execute("SET threads = 2")
    cursor = _DATABASE.cursor()
    cursor.execute("SET TimeZone = 'UTC'")
    return cursor


def fingerprint(path: Path) -> tuple:
    """What changes when a layer's data does: each Parquet file's name, inode, size and modification time.

    Writers replace files whole (``layers.write_atomically``, new partition files), so a new or rewritten file
    always changes this; a stat per file is microseconds, the read it saves is a DuckDB scan."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(path.rglob("*.parquet"))
    else:
        return ()
    out = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:  # replaced while we looked: the next look sees the new one
            continue
        out.append((str(file), stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


_RESULTS: "OrderedDict[tuple, pd.DataFrame]" = OrderedDict()
RESULTS_CACHED = 256
"""Query results kept per process (one vehicle's reads are a few KiB; fleet-wide ones are aggregates)."""
_RESULTS_LOCK = threading.Lock()
ROWS_CACHED = 100_000
"""Bigger results (the static report's fleet-wide telemetry) are read once by design: not kept."""


def query(path: Path, layer: str, sql: str, params: Iterable = ()) -> pd.DataFrame:
    """Run ``sql`` with ``{src}`` standing for the table at ``path``; a small result comes back as pandas.

    A result is kept until a file under ``path`` changes (``fingerprint``), so a page loaded again, or the next
    page reading the same layer, does not scan it again; every caller gets its own copy to change."""
    source = _parquet_source(path, layer)
    params = list(params)
    key = (sql, source, repr(params), fingerprint(path))
    with _RESULTS_LOCK:
        if key in _RESULTS:
            _RESULTS.move_to_end(key)
            return _RESULTS[key].copy()
    cursor = _connect()
    try:
        frame = cursor.execute(sql.format(src=source), params).df()
    finally:
        cursor.close()
    if len(frame) <= ROWS_CACHED:
        with _RESULTS_LOCK:
            _RESULTS[key] = frame
            while len(_RESULTS) > RESULTS_CACHED:
                _RESULTS.popitem(last=False)
        return frame.copy()
    return frame


def _columns(path: Path, layer: str) -> list[str]:
    return list(query(path, layer, "SELECT * FROM {src} LIMIT 0").columns)


def read_layer_table(path: Path, layer: str, where: str = "", params: Iterable = ()) -> pd.DataFrame:
    """A small table (dossier, RAMS, plans, registry), optionally filtered; hive partition keys included.

    Unlike ``railpm.layers.read_table`` (strict, for the steps that act on the rows), a table not built yet
    is ``LayerMissing`` with the command that builds it, which a page shows instead of failing."""
    return query(path, layer, f"SELECT * FROM {{src}} {('WHERE ' + where) if where else ''}", params)


# --------------------------------------------------------------------------------------------------
# Lake
# --------------------------------------------------------------------------------------------------

def read_vehicles(lake_dir: Path) -> pd.DataFrame:
    frame = read_layer_table(lake_dir_of(lake_dir, contracts.VEHICLES), contracts.VEHICLES.name)
    return frame[contracts.VEHICLES.column_names].sort_values("vehicle_number").reset_index(drop=True)


def read_vehicle_events(lake_dir: Path, feed: contracts.Feed, vehicle_number: str | None = None) -> pd.DataFrame:
    """One vehicle's rows of an event feed (faults, work orders), oldest first, in the contract's columns.

    Without a vehicle: the whole fleet's (event feeds are thousands of rows a year, not millions).
    """
    columns = ", ".join(f'"{c}"' for c in feed.column_names)
    where = "WHERE vehicle_number = ?" if vehicle_number is not None else ""
    frame = query(
        lake_dir_of(lake_dir, feed),
        feed.name,
        f"SELECT {columns} FROM {{src}} {where} ORDER BY vehicle_number, \"{feed.time_column}\"",
        [vehicle_number] if vehicle_number is not None else [],
    )
    return frame.reset_index(drop=True)


def read_telemetry_daily(
    lake_dir: Path, vehicle_numbers: list[str] | None = None, since: date | None = None
) -> pd.DataFrame:
    """Daily mean, min and max of every condition signal per vehicle, aggregated inside DuckDB.

    Hourly telemetry never reaches pandas: one vehicle's year is 365 rows here instead of 8,760 readings.
    Columns: ``vehicle_number``, ``day`` and ``<signal>__mean|min|max`` for each signal of the contract.
    """
    aggregates = ", ".join(
        f'avg("{s.column}") AS "{s.column}__mean", min("{s.column}") AS "{s.column}__min", '
        f'max("{s.column}") AS "{s.column}__max"'
        for s in contracts.SIGNALS
    )
    where, params = [], []
    if vehicle_numbers is not None:
        where.append(f"vehicle_number IN ({', '.join('?' for _ in vehicle_numbers) or 'NULL'})")
        params.extend(vehicle_numbers)
    if since is not None:
        where.append("ts >= ?")
        params.append(pd.Timestamp(since, tz="UTC").to_pydatetime())
    sql = (
        f"SELECT vehicle_number, CAST(ts AS DATE) AS day, {aggregates} FROM {{src}} "
        f"{('WHERE ' + ' AND '.join(where)) if where else ''} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    frame = query(lake_dir_of(lake_dir, contracts.TELEMETRY), contracts.TELEMETRY.name, sql, params)
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def fault_counts(lake_dir: Path, period: str) -> pd.DataFrame:
    """Faults per period (``month`` or ``quarter``), vehicle type, subsystem and grade, counted in DuckDB."""
    if period not in ("month", "quarter"):
        raise ValueError(f"period must be month or quarter, not {period!r}")
    frame = query(
        lake_dir_of(lake_dir, contracts.FAULTS),
        contracts.FAULTS.name,
        f"SELECT CAST(date_trunc('{period}', ts) AS DATE) AS period, vehicle_type, subsystem, grade, "
        "count(*) AS faults FROM {src} GROUP BY ALL ORDER BY ALL",
    )
    frame["period"] = pd.to_datetime(frame["period"])
    return frame


def recurring_faults(lake_dir: Path) -> pd.DataFrame:
    """Vehicles with a recurring fault, by the service rule of ``railpm.rules`` (calendar-day windows).

    The same fault code on the same vehicle 3 times within 30 days, or 4 or more A/B faults within 365 days.
    One row per vehicle and code (``fault_code`` is ``A/B`` for the major-fault rule) with the number of
    occurrences in the worst window and when it last happened; repeated A/B faults first, then codes naming a
    component, then nuisance codes (passenger-caused, IT resets).
    """
    sql = f"""
    WITH f AS (SELECT vehicle_number, vehicle_type, depot, fault_code, grade, ts, {rules.DUCKDB_DAY} AS day_number
               FROM {{src}}),
    same_code AS (
        SELECT vehicle_number, any_value(vehicle_type) AS vehicle_type, any_value(depot) AS depot,
               fault_code, 'same code {rules.RECURRING_CODE_COUNT}x in {rules.RECURRING_WINDOW_DAYS} d' AS rule,
               max(n) AS occurrences, max(ts) AS last_seen
        FROM (SELECT *, {rules.same_code_count('day_number')} AS n FROM f)
        GROUP BY vehicle_number, fault_code HAVING max(n) >= {rules.RECURRING_CODE_COUNT}
    ),
    major AS (
        SELECT vehicle_number, any_value(vehicle_type) AS vehicle_type, any_value(depot) AS depot,
               'A/B' AS fault_code, '{rules.MAJOR_COUNT}+ A/B faults in {rules.MAJOR_WINDOW_DAYS} d' AS rule,
               max(n) AS occurrences, max(ts) AS last_seen
        FROM (SELECT *, {rules.major_count('day_number')} AS n FROM f WHERE grade IN ({rules.MAJORS_SQL}))
        GROUP BY vehicle_number HAVING max(n) >= {rules.MAJOR_COUNT}
    )
    SELECT * FROM same_code UNION ALL SELECT * FROM major
    """
    frame = query(lake_dir_of(lake_dir, contracts.FAULTS), contracts.FAULTS.name, sql)
    catalogue = contracts.FAULT_CODE_BY_CODE
    frame["component"] = frame["fault_code"].map(lambda code: catalogue[code].component if code in catalogue else None)
    frame["description"] = frame["fault_code"].map(lambda code: catalogue[code].description if code in catalogue else "repeated major (A/B) faults")
    # Component health first: repeated A/B faults, then codes that point at a component, then nuisance codes.
    frame["_rank"] = np.where(frame["fault_code"] == "A/B", 0, np.where(frame["component"].notna(), 1, 2))
    frame = frame.sort_values(["_rank", "occurrences", "vehicle_number", "fault_code"], ascending=[True, False, True, True])
    return frame.drop(columns="_rank").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScoredDay:
    day: date
    frame: pd.DataFrame


def latest_predictions_source(predictions_dir: Path) -> Path:
    """The file or folder holding the latest scored day: scoring writes ``predictions-YYYY-MM-DD.parquet``
    (or ``scored_day=YYYY-MM-DD/`` folders); anything else is the whole folder, filtered in DuckDB."""
    if not predictions_dir.is_dir():
        raise LayerMissing(HINTS["predictions"])
    days = predictions_files(predictions_dir) or sorted(p for p in predictions_dir.glob("scored_day=*") if p.is_dir())
    return days[-1] if days else predictions_dir


def read_latest_predictions(predictions_dir: Path, vehicle_number: str | None = None) -> ScoredDay:
    """The latest scored day only (optionally one vehicle's rows of it), riskiest first."""
    source = latest_predictions_source(predictions_dir)
    names = contracts.PREDICTIONS.column_names
    where = ["CAST(scored_day AS DATE) = (SELECT max(CAST(scored_day AS DATE)) FROM {src})"]
    params: list = []
    if vehicle_number is not None:
        where.append("vehicle_number = ?")
        params.append(vehicle_number)
    columns = ", ".join(f'"{c}"' for c in names if c != "scored_day")
    frame = query(
        source,
        "predictions",
        f"SELECT CAST(scored_day AS DATE) AS scored_day, {columns} FROM {{src}} WHERE {' AND '.join(where)} "
        "ORDER BY failure_probability DESC, vehicle_number, component",
        params,
    )
    if vehicle_number is None and frame.empty:
        raise LayerMissing(HINTS["predictions"])
    if frame.empty:
        day = query(source, "predictions", "SELECT max(CAST(scored_day AS DATE)) AS d FROM {src}")["d"].iloc[0]
    else:
        day = frame["scored_day"].iloc[0]
    frame["scored_day"] = pd.to_datetime(frame["scored_day"]).dt.date
    return ScoredDay(pd.Timestamp(day).date(), frame.reset_index(drop=True))


def read_predictions_on(predictions_dir: Path, vehicle_number: str, scored_day: date) -> pd.DataFrame:
    """One vehicle's predictions of one scored day, whichever file holds them (to check feedback against)."""
    return query(
        predictions_dir,
        "predictions",
        "SELECT CAST(scored_day AS DATE) AS scored_day, vehicle_number, component, model_version FROM {src} "
        "WHERE vehicle_number = ? AND CAST(scored_day AS DATE) = ?",
        [vehicle_number, scored_day],
    )


def read_traced_predictions(predictions_dir: Path, feedback: pd.DataFrame) -> pd.DataFrame:
    """Every alert of every scored day plus the predictions feedback refers to: what the audit trail follows."""
    judged = feedback.dropna(subset=["scored_day"])
    keys = sorted({f"{v}|{c}|{pd.Timestamp(d).date().isoformat()}" for v, c, d in
                   zip(judged["vehicle_number"], judged["component"], judged["scored_day"])})
    names = ", ".join(f'"{c}"' for c in contracts.PREDICTIONS.column_names if c != "scored_day")
    frame = query(
        predictions_dir,
        "predictions",
        f"SELECT CAST(scored_day AS DATE) AS scored_day, {names} FROM {{src}} WHERE alert"
        f"{' OR vehicle_number || chr(124) || component || chr(124) || CAST(CAST(scored_day AS DATE) AS VARCHAR) IN (SELECT unnest(?))' if keys else ''}",
        [keys] if keys else [],
    )
    frame["scored_day"] = pd.to_datetime(frame["scored_day"]).dt.date
    return frame


def read_corrective_orders(lake_dir: Path) -> pd.DataFrame:
    """Corrective work orders, the columns the failure definition (``railpm.failures``) reads."""
    return query(lake_dir / "work_orders", "work_orders",
                 "SELECT work_order_id, vehicle_number, component, action, opened_at, closed_at FROM {src}"
                 " WHERE action = 'corrective_replacement'")


def read_major_faults(lake_dir: Path) -> pd.DataFrame:
    """A/B faults (the failures the fault log reports), four columns only."""
    grades = ", ".join(f"'{g}'" for g in contracts.MAJOR_GRADES)
    return query(lake_dir_of(lake_dir, contracts.FAULTS), contracts.FAULTS.name,
                 f"SELECT vehicle_number, fault_code, grade, ts FROM {{src}} WHERE grade IN ({grades})")
