"""Landing files: find them, and read each one into strings without losing a record.

Text formats (CSV, JSON lines) are read with every column as a string, so that a bad value reaches a rule
instead of crashing the reader. A record that cannot be split into the contract's fields (wrong field
count, broken JSON, not UTF-8) is kept aside with its record number and raw text for the
``malformed_line`` rule. Record numbers are 1-based within the file, the CSV header excluded, one record
per line. A file that cannot be read at all (not the format its name says, a header that is not the
contract's, no record that parses) raises :class:`UnreadableFileError` naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from railpm import contracts
from railpm.contracts import Feed
from railpm.errors import BadInputError
from railpm.expectations import ROW_ID

FORMATS = ("csv", "jsonl", "parquet")
RAW_LINE = "_raw_line"
TEXT = pd.ArrowDtype(pa.string())

STAGES: tuple[tuple[str, ...], ...] = (
    ("vehicles",),
    ("parts",),
    ("stock", "telemetry", "faults", "work_orders"),
)
"""Ingest order: the registry first (other feeds' vehicles are checked against it), then the parts
catalogue (stock and work orders name its parts), then the rest, which may run in parallel."""
assert {f for stage in STAGES for f in stage} == set(contracts.FEEDS)


class UnreadableFileError(BadInputError):
    """A landing file that cannot be parsed at all; it is moved aside whole."""


@dataclass(frozen=True)
class LandingFile:
    feed: str
    path: Path
    relative: str
    """Path relative to the landing folder, e.g. ``telemetry/telemetry-0001.csv`` (as in truth/dirt)."""

    @property
    def part(self) -> str:
        """The lake/quarantine part name derived from the source file, so re-ingesting overwrites."""
        return self.path.stem

    @property
    def format(self) -> str:
        return self.path.suffix.lstrip(".").lower()


def landing_file(landing_dir: Path, relative: str) -> LandingFile:
    path = Path(landing_dir) / relative
    feed = Path(relative).parts[0]
    if feed not in contracts.FEEDS:
        raise BadInputError(f"{relative} is not under a feed folder ({', '.join(contracts.FEEDS)})", file=path)
    return LandingFile(feed, path, Path(relative).as_posix())


def list_landing_files(landing_dir: Path) -> list[LandingFile]:
    """Every landing file of every feed, in ingest order (see :data:`STAGES`), then by name."""
    landing_dir = Path(landing_dir)
    files = []
    for stage in STAGES:
        for feed in stage:
            folder = landing_dir / feed
            if not folder.is_dir():
                continue
            found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lstrip(".").lower() in FORMATS)
            stems: dict[str, Path] = {}
            for path in found:
                if path.stem in stems:
                    raise BadInputError(
                        f"{path.name} and {stems[path.stem].name} would write the same lake part {path.stem!r}",
                        file=path,
                    )
                stems[path.stem] = path
                files.append(LandingFile(feed, path, f"{feed}/{path.name}"))
    return files


@dataclass
class LandingRecords:
    """One landing file's records: those split into fields, and those that could not be."""

    rows: pd.DataFrame
    """``ROW_ID`` + the contract's columns, as strings (text formats) or as stored (Parquet)."""
    malformed: pd.DataFrame
    """``ROW_ID`` + ``RAW_LINE`` of records that do not split into the contract's fields."""

    @property
    def records(self) -> int:
        return len(self.rows) + len(self.malformed)


def read_landing_file(landing: LandingFile) -> LandingRecords:
    feed = contracts.FEEDS[landing.feed]
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}.get(landing.format)
    if reader is None:
        raise UnreadableFileError(f"unknown landing format {landing.format!r}", file=landing.path)
    return reader(feed, landing.path)


def _malformed(rows: list[tuple[int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {ROW_ID: np.array([r for r, _ in rows], dtype="int64"), RAW_LINE: pd.Series([t for _, t in rows], dtype=TEXT)}
    )


def _frame(columns: dict[str, pa.Array], row_ids: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(array, dtype=TEXT) for name, array in columns.items()})
    frame.insert(0, ROW_ID, row_ids.astype("int64"))
    return frame


def _check_columns(feed: Feed, found: list[str], path: Path, row: int | None) -> None:
    if sorted(found) != sorted(feed.column_names) or len(set(found)) != len(found):
        missing = [c for c in feed.column_names if c not in found]
        extra = [c for c in found if c not in feed.column_names]
        raise UnreadableFileError(
            f"columns are not the {feed.name} contract's (missing: {missing or 'none'}, unexpected: {extra or 'none'})",
            file=path,
            row=row,
            rule="columns_match_contract",
        )


def _read_csv(feed: Feed, path: Path) -> LandingRecords:
    with open(path, "rb") as handle:
        first = handle.readline()
    try:
        header_text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not UTF-8 text: {exc.reason}", file=path, row=1) from exc
    header = [h.strip() for h in next(csv.reader([header_text]), [])]
    _check_columns(feed, header, path, 1)

    invalid: list[tuple[int, str]] = []

    def keep_aside(row) -> str:
        if row.number is None:
            raise ValueError("row number unknown")
        invalid.append((row.number - 1, row.text))  # physical line -> record number (header is line 1)
        return "skip"

    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=False, column_names=header, skip_rows=1),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=keep_aside, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return _read_csv_line_by_line(feed, path, header)
    bad = {r for r, _ in invalid}
    total = table.num_rows + len(invalid)
    row_ids = np.array([r for r in range(1, total + 1) if r not in bad], dtype="int64") if bad else np.arange(1, total + 1)
    columns = {c: table.column(c).combine_chunks() if table.num_rows else pa.array([], pa.string()) for c in feed.column_names}
    return LandingRecords(_frame(columns, row_ids), _malformed(invalid))


def _read_csv_line_by_line(feed: Feed, path: Path, header: list[str]) -> LandingRecords:
    """Slow path for files Arrow refuses (e.g. a line that is not UTF-8): decide line by line."""
    values: dict[str, list] = {c: [] for c in header}
    row_ids: list[int] = []
    invalid: list[tuple[int, str]] = []
    with open(path, "rb") as handle:
        handle.readline()
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            try:
                text = line.decode("utf-8")
                fields = next(csv.reader(io.StringIO(text)), [])
            except (UnicodeDecodeError, csv.Error):
                invalid.append((number, line.decode("utf-8", errors="replace")))
                continue
            if len(fields) != len(header):
                invalid.append((number, text))
                continue
            row_ids.append(number)
            for name, value in zip(header, fields):
                values[name].append(value if value != "" else None)
    if not row_ids and invalid:
        raise UnreadableFileError("no line parses as CSV", file=path, row=invalid[0][0] + 1)
    columns = {c: pa.array(values[c], type=pa.string()) for c in feed.column_names}
    return LandingRecords(_frame(columns, np.array(row_ids, dtype="int64")), _malformed(invalid))


def _as_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def _read_jsonl(feed: Feed, path: Path) -> LandingRecords:
    expected = set(feed.column_names)
    values: dict[str, list] = {c: [] for c in feed.column_names}
    row_ids: list[int] = []
    invalid: list[tuple[int, str]] = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            invalid.append((number, raw.decode("utf-8", errors="replace")))
            continue
        if not isinstance(record, dict) or record.keys() != expected:
            invalid.append((number, raw.decode("utf-8", errors="replace")))
            continue
        row_ids.append(number)
        for name in feed.column_names:
            values[name].append(_as_text(record[name]))
    if not row_ids and invalid:
        first = invalid[0]
        raise UnreadableFileError(
            "no line is a JSON object with the contract's fields", file=path, row=first[0]
        )
    columns = {c: pa.array(values[c], type=pa.string()) for c in feed.column_names}
    return LandingRecords(_frame(columns, np.array(row_ids, dtype="int64")), _malformed(invalid))


def _read_parquet(feed: Feed, path: Path) -> LandingRecords:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {exc}", file=path) from exc
    _check_columns(feed, table.column_names, path, None)
    table = table.select(feed.column_names)
    strings = (pa.types.is_string, pa.types.is_large_string)
    frame = table.to_pandas(types_mapper=lambda t: TEXT if any(check(t) for check in strings) else None)
    frame.insert(0, ROW_ID, np.arange(1, len(frame) + 1, dtype="int64"))
    return LandingRecords(frame, _malformed([]))
