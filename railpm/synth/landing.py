"""Writing landing files in the formats real feeds use: CSV, JSON lines and Parquet.

Columns are exactly the contract's, in its order; timestamps are ISO-8601 UTC strings in text formats and
``timestamp[us, tz=UTC]`` in Parquet. Malformed lines are produced here, at the text level, because that
is where they exist in real feeds.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from railpm import contracts
from railpm.arrow import ARROW_TYPES, arrow_schema
from railpm.synth.dirt import MALFORMED_TEXT, Malformed, iso_strings

def write_parquet(frame: pd.DataFrame, feed: contracts.Feed, path: Path) -> None:
    table = pa.Table.from_pandas(frame[feed.column_names], schema=arrow_schema(feed), preserve_index=False)
    pq.write_table(table, path)


def _as_text_columns(frame: pd.DataFrame, feed: contracts.Feed) -> pd.DataFrame:
    out = frame[feed.column_names].copy()
    for column in feed.columns:
        if column.dtype == "timestamp":
            out[column.name] = iso_strings(out[column.name])
        elif column.dtype == "date":
            out[column.name] = [None if pd.isna(d) else d.isoformat() for d in out[column.name]]
        elif column.dtype == "int64":
            out[column.name] = out[column.name].astype("Int64")
    return out


TEXT_CHUNK_ROWS = 50_000
"""Text is rendered this many rows at a time so a file batch never exists as one giant string."""


def write_text(
    frame: pd.DataFrame,
    feed: contracts.Feed,
    path: Path,
    fmt: str,
    malformed: dict[int, Malformed] | None = None,
    rng: np.random.Generator | None = None,
) -> None:
    """Write CSV (header line, ``,``-separated, empty = null) or JSON lines; break the lines listed in ``malformed``."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"not a text format: {fmt}")
    malformed = malformed or {}
    with path.open("w", encoding="utf-8", newline="\n") as out:
        if fmt == "csv":
            out.write(",".join(feed.column_names) + "\n")
        for first in range(0, len(frame), TEXT_CHUNK_ROWS):
            chunk = _as_text_columns(frame.iloc[first : first + TEXT_CHUNK_ROWS], feed)
            if fmt == "csv":
                lines, breaker = _csv_lines(chunk, feed), _break_csv
            else:
                body = chunk.to_json(orient="records", lines=True, force_ascii=False).replace("\\/", "/")
                lines, breaker = body.splitlines(), _break_json
            for position in sorted(p for p in malformed if first <= p < first + len(lines)):
                lines[position - first] = breaker(lines[position - first], malformed[position], feed, rng)
            out.write("\n".join(lines) + "\n")


def _csv_lines(text_frame: pd.DataFrame, feed: contracts.Feed) -> list[str]:
    """Data lines without quoting (no field of ours holds a comma; Arrow refuses if one ever does)."""
    schema = pa.schema(
        [pa.field(c.name, pa.string() if c.dtype in ("timestamp", "date") else ARROW_TYPES[c.dtype]) for c in feed.columns]
    )
    table = pa.Table.from_pandas(text_frame, schema=schema, preserve_index=False)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return sink.getvalue().decode("utf-8").splitlines()


def _break_csv(line: str, spec: Malformed, feed: contracts.Feed, rng: np.random.Generator) -> str:
    fields = line.split(",")
    if spec.column is None:  # a field lost in transmission: wrong field count
        del fields[int(rng.integers(0, len(fields)))]
    else:
        fields[feed.column_names.index(spec.column)] = str(rng.choice(MALFORMED_TEXT))
    return ",".join(fields)


def _break_json(line: str, spec: Malformed, feed: contracts.Feed, rng: np.random.Generator) -> str:
    if spec.column is None:  # cut off mid-record: not valid JSON
        return line[: int(rng.integers(10, len(line) - 1))]
    record = json.loads(line)
    record[spec.column] = str(rng.choice(MALFORMED_TEXT))
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def write_feed_file(frame, feed, path: Path, fmt: str, malformed=None, rng=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        if malformed:
            raise ValueError("malformed lines exist only in text formats")
        write_parquet(frame, feed, path)
    else:
        write_text(frame, feed, path, fmt, malformed, rng)
