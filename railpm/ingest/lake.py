"""The lake and the quarantine on disk: contract-typed Parquet parts named after their source file.

``lake/<feed>/day=YYYY-MM-DD/<part>.parquet`` for feeds with an event time (the UTC day of that time, so
late and out-of-order records land in their own day), ``lake/<feed>/<part>.parquet`` for reference feeds;
Each lake record carries its arrival (:data:`ARRIVAL_COLUMNS`).
``quarantine/<feed>/<part>.parquet`` holds rejected records as strings with ``_source_file``,
``_source_row`` and ``_rules``. ``<part>`` is the landing file's stem, so re-ingesting a file replaces its
parts instead of adding to them. Every file is written to a hidden temporary name and renamed into place,
so a reader never sees half a part. ``held/<feed>/<part>.parquet`` has the quarantine's shape and holds
records waiting for the registry to know their vehicle.

Beside each lake part, ``runs/keys/<feed>/<part>.parquet`` indexes its records (key, source record number,
content hash, day): it finds a key that another file already delivered without reading the lake.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from railpm import contracts
from railpm.contracts import Feed
from railpm.expectations import ROW_ID
from railpm.expectations.suites import value_column
from railpm.arrow import ARRIVAL_COLUMNS, ARROW_TYPES, INGEST_RUN, INGESTED_AT, arrow_schema as contract_schema  # noqa: F401 (re-exported)
from railpm.layers import lake_dir_of

SOURCE_FILE = "_source_file"
RULES = "_rules"
RAW_LINE = "_raw_line"
ROW_HASH = "_row_hash"
DAY = "_day"

def quarantine_schema(feed: Feed) -> pa.Schema:
    return pa.schema(
        [pa.field(c, pa.string()) for c in feed.column_names]
        + [pa.field(RAW_LINE, pa.string()), pa.field(SOURCE_FILE, pa.string()), pa.field(ROW_ID, pa.int64()), pa.field(RULES, pa.string())]
    )


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)


@contextmanager
def feed_lock(runs_dir: Path, feed: str):
    """Serialise the key check and the writes of one feed (mapped Airflow tasks may run in parallel)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / f".lock-{feed}", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------------
# Typed records
# --------------------------------------------------------------------------------------------------


def typed_table(feed: Feed, frame: pd.DataFrame) -> pa.Table:
    """Validated rows cast to the contract's types (from the typed twins the suite checked)."""
    arrays = []
    for c in feed.columns:
        if c.dtype == "string":
            arrays.append(pa.array(frame[c.name], type=pa.string(), from_pandas=True))
            continue
        value = frame[value_column(c.name)]
        if c.dtype == "float64":
            arrays.append(pa.array(value.to_numpy(dtype="float64"), type=pa.float64(), from_pandas=True))
        elif c.dtype == "int64":
            arrays.append(pc.cast(pa.array(value.to_numpy(dtype="float64"), from_pandas=True), pa.int64()))
        elif c.dtype == "timestamp":
            arrays.append(pa.array(value, from_pandas=True).cast(ARROW_TYPES["timestamp"]))
        elif c.dtype == "date":
            naive = pa.array(value.dt.tz_convert("UTC").dt.tz_localize(None), from_pandas=True)
            arrays.append(pc.cast(naive, pa.date32()))
        else:
            arrays.append(pa.array(value, type=ARROW_TYPES[c.dtype], from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=contract_schema(feed))


def with_arrival(table: pa.Table, run_id: str, ingested_at) -> pa.Table:
    """Typed records stamped with the run that ingested them and its logical date."""
    n = table.num_rows
    table = table.append_column(INGEST_RUN, pa.array([run_id] * n, pa.string()))
    return table.append_column(INGESTED_AT, pa.array([ingested_at] * n, ARROW_TYPES["timestamp"]))


def event_days(feed: Feed, table: pa.Table) -> np.ndarray:
    """The UTC day (``datetime64[D]``) of each record's event time."""
    utc = pc.cast(table.column(feed.time_column), pa.timestamp("us"))  # the same instants, zone dropped
    return pc.cast(utc, pa.date32()).to_numpy()


def row_hashes(table: pa.Table) -> np.ndarray:
    """A content hash per record, to tell an exact re-send from a changed one."""
    return pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy()


def as_text(table: pa.Table) -> dict[str, pa.Array]:
    """Typed values back as strings (ISO-8601 UTC times), for quarantine rows that left the lake."""
    out = {}
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_timestamp(column.type):
            out[name] = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
        else:
            out[name] = pc.cast(column, pa.string())
    return out


# --------------------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------------------


def lake_parts(lake_dir: Path, feed: Feed, part: str) -> list[Path]:
    """The lake files of one part. The part name is data (any byte a file name may hold), so it is joined
    to each day folder literally, never matched as a pattern."""
    folder = lake_dir_of(lake_dir, feed)
    if not feed.time_column:
        candidates = [folder / f"{part}.parquet"]
    else:
        candidates = [day / f"{part}.parquet" for day in folder.glob("day=*")] if folder.is_dir() else []
    return sorted(path for path in candidates if path.is_file())


def lake_part_path(lake_dir: Path, feed: Feed, part: str, day: str | None) -> Path:
    folder = lake_dir_of(lake_dir, feed)
    return folder / f"day={day}" / f"{part}.parquet" if feed.time_column else folder / f"{part}.parquet"


def write_lake_part(lake_dir: Path, feed: Feed, part: str, table: pa.Table) -> int:
    """Replace the part's lake files with ``table``, split by event day; returns the number of files."""
    for old in lake_parts(lake_dir, feed, part):
        old.unlink()
    if table.num_rows == 0:
        return 0
    table = table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in feed.key]))
    if not feed.time_column:
        _write(table, lake_part_path(lake_dir, feed, part, None))
        return 1
    days = event_days(feed, table)
    order = np.argsort(days, kind="stable")
    days = days[order]
    table = table.take(pa.array(order))
    names, starts = np.unique(days, return_index=True)
    ends = list(starts[1:]) + [len(days)]
    for day, start, end in zip(names, starts, ends):
        _write(table.slice(start, end - start), lake_part_path(lake_dir, feed, part, str(day)))
    return len(names)


def remove_lake_records(lake_dir: Path, feed: Feed, part: str, day: str | None, keys: pd.DataFrame) -> pa.Table:
    """Take records (by key) out of one lake file of a part; returns the removed records."""
    path = lake_part_path(lake_dir, feed, part, day)
    table = pq.read_table(path)
    current = table.select(list(feed.key)).to_pandas()
    matched = current.merge(keys.drop_duplicates(), on=list(feed.key), how="left", indicator=True)
    hit = (matched["_merge"] == "both").to_numpy()
    kept = table.filter(pa.array(~hit))
    if kept.num_rows:
        _write(kept, path)
    else:
        path.unlink()
    return table.filter(pa.array(hit))


def quarantine_path(quarantine_dir: Path, feed: Feed, part: str) -> Path:
    return quarantine_dir / feed.name / f"{part}.parquet"


def write_quarantine(quarantine_dir: Path, feed: Feed, part: str, table: pa.Table | None) -> Path | None:
    path = quarantine_path(quarantine_dir, feed, part)
    if table is None or table.num_rows == 0:
        path.unlink(missing_ok=True)
        return None
    table = table.cast(quarantine_schema(feed)).sort_by([(ROW_ID, "ascending")])
    _write(table, path)
    return path


def append_quarantine(quarantine_dir: Path, feed: Feed, part: str, table: pa.Table) -> Path:
    path = quarantine_path(quarantine_dir, feed, part)
    if path.exists():
        table = pa.concat_tables([pq.read_table(path), table.cast(quarantine_schema(feed))])
    return write_quarantine(quarantine_dir, feed, part, table)


# --------------------------------------------------------------------------------------------------
# Key index
# --------------------------------------------------------------------------------------------------


def key_index_path(runs_dir: Path, feed: Feed, part: str) -> Path:
    return runs_dir / "keys" / feed.name / f"{part}.parquet"


def key_index(feed: Feed, table: pa.Table, row_ids: np.ndarray) -> pd.DataFrame:
    """Key, source record number, content hash and event day of each accepted record."""
    index = table.select(list(feed.key)).to_pandas()
    index[ROW_ID] = row_ids.astype("int64")
    index[ROW_HASH] = row_hashes(table)
    index[DAY] = event_days(feed, table) if feed.time_column else None
    return index


def write_key_index(runs_dir: Path, feed: Feed, part: str, index: pd.DataFrame) -> None:
    path = key_index_path(runs_dir, feed, part)
    if index.empty:
        path.unlink(missing_ok=True)
        return
    _write(pa.Table.from_pandas(index, preserve_index=False), path)


def read_key_index(runs_dir: Path, feed: Feed, part: str) -> pd.DataFrame:
    return pq.read_table(key_index_path(runs_dir, feed, part)).to_pandas()


def find_delivered_keys(runs_dir: Path, feed: Feed, part: str, index: pd.DataFrame) -> pd.DataFrame:
    """Records of ``index`` whose key another part already holds in the lake.

    Columns: ``_source_row`` (this file), ``other_part``, ``other_row``, ``other_day``, ``identical``.
    """
    import duckdb

    folder = runs_dir / "keys" / feed.name
    # Listed and read here rather than handed to DuckDB as paths: DuckDB would expand * ? [ in a part name.
    others = sorted(p for p in folder.iterdir() if p.suffix == ".parquet" and p.stem != part and not p.name.startswith(".")) if folder.is_dir() else []
    columns = ["_source_row", "other_part", "other_row", "other_day", "identical"]
    if not others or index.empty:
        return pd.DataFrame(columns=columns)
    tables = []
    for path in others:
        table = pq.read_table(path)
        tables.append(table.append_column("other_part", pa.array([path.stem] * table.num_rows, pa.string())))
    delivered = pa.concat_tables(tables, promote_options="permissive")
    on = " AND ".join(f'o."{k}" = n."{k}"' for k in feed.key)
    with duckdb.connect() as con:
        con.register("n", index)
        con.register("o", delivered)
        found = con.execute(
            f"""
            SELECT n."{ROW_ID}" AS _source_row, o.other_part,
                   o."{ROW_ID}" AS other_row, o."{DAY}" AS other_day,
                   o."{ROW_HASH}" = n."{ROW_HASH}" AS identical
            FROM o JOIN n ON {on}
            ORDER BY 1
            """
        ).df()
    return found[columns]


# --------------------------------------------------------------------------------------------------
# Reference data for the suites
# --------------------------------------------------------------------------------------------------


def read_lake_table(lake_dir: Path, feed: Feed, columns: list[str]) -> pd.DataFrame:
    folder = lake_dir_of(lake_dir, feed)
    files = sorted(folder.glob("day=*/*.parquet" if feed.time_column else "*.parquet")) if folder.is_dir() else []
    if not files:
        return pd.DataFrame(columns=columns)
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files]).to_pandas()


def registry_vehicle_types(lake_dir: Path) -> dict[str, str]:
    vehicles = read_lake_table(lake_dir, contracts.VEHICLES, ["vehicle_number", "vehicle_type"])
    return dict(zip(vehicles["vehicle_number"], vehicles["vehicle_type"]))


def catalogue_part_numbers(lake_dir: Path) -> frozenset[str]:
    return frozenset(read_lake_table(lake_dir, contracts.PARTS, ["part_number"])["part_number"])
