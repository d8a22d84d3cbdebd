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
import hashlib
import io
import json
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from railpm import contracts
from railpm.config import IngestSettings
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


FILE_READABLE = "file_readable"
"""Rule of a file that does not parse as the format its name says (no record, no header, not the format at all)."""


@dataclass(frozen=True)
class LandingFile:
    feed: str
    path: Path
    relative: str
    """Path relative to the landing folder, e.g. ``telemetry/telemetry-0001.csv`` (as in truth/dirt)."""
    refused: str | None = None
    """Why the file may not be read (a link out of the landing folder, not a regular file...): it is set
    aside unread."""

    @property
    def part(self) -> str:
        """The lake/quarantine part name derived from the source file, so re-ingesting overwrites."""
        return part_name(self.path.stem)

    @property
    def format(self) -> str:
        return self.path.suffix.lstrip(".").lower()

    @property
    def shown(self) -> str:
        """The relative path as text that can be stored and shown anywhere (undecodable bytes as ``\\xNN``)."""
        return shown_name(self.relative)


@dataclass(frozen=True)
class IgnoredFile:
    """A file in the landing folder that is not a landing file of a feed, with the reason; it stays where it is."""

    relative: str
    reason: str


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")


def part_name(stem: str) -> str:
    """The name a landing file's records are stored under: its stem when that is plain (letters, digits,
    ``._-``), else a slug of it plus a hash of every byte. File names are data: what reaches a path that
    Spark, DuckDB, a URL or a shell might read (``*?[]{}:``, markup, control characters, bytes that are
    not UTF-8) never comes from them verbatim."""
    if _PLAIN.fullmatch(stem):
        return stem
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "file"
    return f"{slug}-{hashlib.sha256(os.fsencode(stem)).hexdigest()[:12]}"


def shown_name(name: str) -> str:
    """A file name as valid Unicode text: bytes that are not UTF-8 become ``\\xNN`` (file names are bytes)."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def _refusal(landing_dir: Path, path: Path) -> str | None:
    """Why ``path`` may not be read, without ever opening it: None for a regular file inside the landing folder."""
    try:
        info = path.lstat()
    except OSError as exc:
        return f"cannot be examined: {exc.strerror}"
    if stat.S_ISLNK(info.st_mode):
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return "a symbolic link that leads nowhere (broken or a loop)"
        if not target.is_relative_to(landing_dir):
            return "a symbolic link to a file outside the landing folder: not read"
        info = target.stat()
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a pipe, socket or device): not read"
    return None


def examine(landing_dir: Path, relative: str) -> LandingFile | IgnoredFile:
    """What ``relative`` (a path under the landing folder) is: a feed's landing file, possibly refused, or ignored."""
    landing_dir = Path(landing_dir).resolve()
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise BadInputError(f"{shown_name(relative)!r} is not a path inside the landing folder", file=landing_dir)
    path = landing_dir / relative
    name = parts[-1]
    if len(parts) == 1 and parts[0] in contracts.FEEDS and path.is_symlink():
        return IgnoredFile(relative, "the feed folder is a symbolic link: its files are not read")
    if len(parts) == 1 or parts[0] not in contracts.FEEDS:
        return IgnoredFile(relative, f"not in a feed folder ({', '.join(contracts.FEEDS)})")
    feed_folder = landing_dir / parts[0]
    if feed_folder.is_symlink():
        return LandingFile(parts[0], path, Path(relative).as_posix(), "the feed folder is a symbolic link: not read")
    if len(parts) > 2:
        return IgnoredFile(relative, f"in a subfolder of {parts[0]}/: only files directly in a feed folder are landing files")
    if name.startswith("."):
        return IgnoredFile(relative, "a hidden file (a delivery still being written?)")
    if Path(name).suffix.lstrip(".").lower() not in FORMATS or not Path(name).stem:
        return IgnoredFile(relative, f"not a landing format ({', '.join(FORMATS)})")
    return LandingFile(parts[0], path, Path(relative).as_posix(), _refusal(landing_dir, path))


def landing_file(landing_dir: Path, relative: str) -> LandingFile:
    found = examine(landing_dir, relative)
    if isinstance(found, IgnoredFile):
        raise BadInputError(f"{shown_name(relative)} is not a landing file: {found.reason}", file=Path(landing_dir) / relative)
    return found


@dataclass
class LandingSurvey:
    files: list[LandingFile]
    """Landing files in ingest order (see :data:`STAGES`), then by name; refused ones included, to be set aside."""
    ignored: list[IgnoredFile]


def survey_landing(landing_dir: Path) -> LandingSurvey:
    """Every entry under the landing folder, each a landing file (maybe refused) or ignored with its reason.

    Nothing is followed out of the folder: links are examined, never walked into.
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return LandingSurvey([], [])
    root = landing_dir.resolve()
    found: list[LandingFile] = []
    ignored: list[IgnoredFile] = []
    for folder, directories, names in os.walk(root, followlinks=False):
        base = Path(folder).relative_to(root)
        for name in sorted(directories):
            if (Path(folder) / name).is_symlink():
                names.append(name)  # a link to a folder is examined as an entry, never walked into
        for name in sorted(names):
            entry = examine(root, (base / name).as_posix())
            (ignored if isinstance(entry, IgnoredFile) else found).append(entry)
    order = {feed: i for i, feed in enumerate(f for stage in STAGES for f in stage)}
    found.sort(key=lambda f: (order[f.feed], f.relative))
    files: list[LandingFile] = []
    stems: dict[tuple[str, str], LandingFile] = {}
    for landing in found:
        first = stems.setdefault((landing.feed, landing.part), landing)
        if first is not landing and landing.refused is None:
            landing = replace(landing, refused=f"would write the same lake part as {first.shown}")
        files.append(landing)
    return LandingSurvey(files, sorted(ignored, key=lambda i: i.relative))


def list_landing_files(landing_dir: Path) -> list[LandingFile]:
    """Every readable landing file of every feed, in ingest order (see :data:`STAGES`), then by name."""
    return [f for f in survey_landing(landing_dir).files if f.refused is None]


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


def read_landing_file(landing: LandingFile, limits: IngestSettings | None = None) -> LandingRecords:
    """The file's records, or :class:`UnreadableFileError` when it cannot be read or breaks a bound.

    Whatever a parser raises on hostile bytes becomes that error, so one file never stops the others.
    """
    limits = limits or IngestSettings()
    feed = contracts.FEEDS[landing.feed]
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}.get(landing.format)
    if reader is None:
        raise UnreadableFileError(f"unknown landing format {landing.format!r}", file=landing.shown, rule=FILE_READABLE)
    size = landing.path.stat().st_size
    if size == 0:
        raise UnreadableFileError("empty file (0 bytes): no header and no records", file=landing.shown, rule="file_not_empty")
    if size > limits.max_file_bytes:
        raise UnreadableFileError(
            f"file of {size:,} bytes is over the limit of {limits.max_file_bytes:,}", file=landing.shown, rule="max_file_bytes"
        )
    if landing.format != "parquet":
        _check_lines(landing, limits)
    try:
        records = reader(feed, landing.path, limits)
    except UnreadableFileError:
        raise
    except (csv.Error, pa.ArrowException, UnicodeError, ValueError, RecursionError, OverflowError, OSError) as exc:
        raise UnreadableFileError(f"cannot be parsed as {landing.format}: {type(exc).__name__}: {exc}"[:500], file=landing.shown,
                                  rule=FILE_READABLE) from exc
    _check_fields(landing, records, limits)
    return records


def _check_lines(landing: LandingFile, limits: IngestSettings) -> None:
    """Line length and record count of a text file, checked before any parser holds a line."""
    count = 0
    with open(landing.path, "rb") as handle:
        while line := handle.readline(limits.max_line_bytes + 2):
            count += 1
            if len(line.rstrip(b"\r\n")) > limits.max_line_bytes:
                raise UnreadableFileError(
                    f"a line longer than the limit of {limits.max_line_bytes:,} bytes", file=landing.shown, row=count, rule="max_line_bytes"
                )
    records = count - (landing.format == "csv")
    if records > limits.max_rows:
        raise UnreadableFileError(f"{records:,} records, over the limit of {limits.max_rows:,}", file=landing.shown, rule="max_rows")


def _check_fields(landing: LandingFile, records: LandingRecords, limits: IngestSettings) -> None:
    for name in records.rows.columns:
        column = records.rows[name]
        if not (isinstance(column.dtype, pd.ArrowDtype) and pa.types.is_string(column.dtype.pyarrow_dtype)) or column.empty:
            continue
        lengths = pc.binary_length(pa.array(column, from_pandas=True))
        longest = pc.max(lengths).as_py() or 0
        if longest > limits.max_field_bytes:
            at = int(records.rows[ROW_ID].iloc[pc.index(lengths, longest).as_py()])
            raise UnreadableFileError(
                f"a value of {name} is {longest:,} bytes, over the limit of {limits.max_field_bytes:,}",
                file=landing.shown, row=at + (landing.format == "csv"), rule="max_field_bytes",
            )


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


def _read_csv(feed: Feed, path: Path, limits: IngestSettings) -> LandingRecords:
    with open(path, "rb") as handle:
        first = handle.readline()
    try:
        header_text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not UTF-8 text: {exc.reason}", file=path, row=1, rule=FILE_READABLE) from exc
    try:
        header = [h.strip() for h in next(csv.reader([header_text]), [])]
    except csv.Error as exc:
        raise UnreadableFileError(f"the header does not parse as CSV: {exc}", file=path, row=1, rule=FILE_READABLE) from exc
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
            read_options=pa_csv.ReadOptions(
                use_threads=False, column_names=header, skip_rows=1, block_size=max(1 << 20, 2 * limits.max_line_bytes + 2)
            ),
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
        raise UnreadableFileError("no line parses as CSV", file=path, row=invalid[0][0] + 1, rule=FILE_READABLE)
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


def _read_jsonl(feed: Feed, path: Path, limits: IngestSettings) -> LandingRecords:
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
        except (UnicodeDecodeError, ValueError, RecursionError):
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
            "no line is a JSON object with the contract's fields", file=path, row=first[0], rule=FILE_READABLE
        )
    columns = {c: pa.array(values[c], type=pa.string()) for c in feed.column_names}
    return LandingRecords(_frame(columns, np.array(row_ids, dtype="int64")), _malformed(invalid))


def _read_parquet(feed: Feed, path: Path, limits: IngestSettings) -> LandingRecords:
    try:
        metadata = pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {exc}", file=path, rule=FILE_READABLE) from exc
    if metadata.num_rows > limits.max_rows:
        raise UnreadableFileError(f"{metadata.num_rows:,} records, over the limit of {limits.max_rows:,}", file=path, rule="max_rows")
    unpacked = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if unpacked > limits.max_file_bytes:
        raise UnreadableFileError(
            f"{unpacked:,} bytes once decompressed, over the limit of {limits.max_file_bytes:,}", file=path, rule="max_file_bytes"
        )
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {exc}", file=path, rule=FILE_READABLE) from exc
    _check_columns(feed, table.column_names, path, None)
    table = table.select(feed.column_names)
    strings = (pa.types.is_string, pa.types.is_large_string)
    frame = table.to_pandas(types_mapper=lambda t: TEXT if any(check(t) for check in strings) else None)
    frame.insert(0, ROW_ID, np.arange(1, len(frame) + 1, dtype="int64"))
    return LandingRecords(frame, _malformed([]))
