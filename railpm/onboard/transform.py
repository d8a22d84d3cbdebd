"""Apply one source of a mapping to one export file: source rows -> contract rows, held rows with reasons.

Every source row ends in exactly one place: the feed's rows, the held rows (skipped by a declared rule, or a
value the mapping could not turn into the contract's type: each with its file, line, column and reason), or
folded into the first row of its key (``one_row_per``). Nothing is dropped without a count.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from railpm import contracts
from railpm.errors import BadInputError
from railpm.onboard import units
from railpm.onboard.mapping import ColumnMap, Located, Source, TimeAxis, _text

LINE = "_line"
"""1-based physical line of a row in its source file (as an editor shows it)."""


@dataclass
class SourceFile:
    """One export file read as text: its header and rows, every value a string (None for an empty field)."""

    path: Path
    header: list[str]
    rows: pd.DataFrame
    """``LINE`` + one column per header field."""
    malformed: pd.DataFrame
    """``LINE``, ``raw``, ``reason`` of lines that do not split into the header's fields."""


def read_source(path: Path, source: Source) -> SourceFile:
    """Read an export with Python's csv module: exact line numbers, and a line of the wrong width is held, not fatal."""
    options = source.read
    values: list[list[str]] = []
    lines: list[int] = []
    malformed: list[tuple[int, str, str]] = []
    try:
        with open(path, encoding=options.encoding, newline="") as handle:
            for _ in range(options.skip_lines):
                handle.readline()
            if options.delimiter == "whitespace":
                records = ((n, line.split(), line) for n, line in enumerate(handle, start=options.skip_lines + 1))
            else:
                reader = csv.reader(handle, delimiter=options.delimiter)
                records = _numbered(reader, options.delimiter, options.skip_lines)
            header = options.names
            for number, fields, raw in records:
                if header is None:
                    header = [h.strip() for h in fields]
                    if header and header[0].startswith("\ufeff"):
                        header[0] = header[0][1:]
                    continue
                if not fields or all(f.strip() == "" for f in fields):
                    malformed.append((number, raw.rstrip("\r\n"), "empty line"))
                elif len(fields) != len(header):
                    malformed.append((number, raw.rstrip("\r\n"), f"{len(fields)} fields where the header has {len(header)}"))
                else:
                    values.append(fields)
                    lines.append(number)
    except UnicodeDecodeError as exc:
        raise BadInputError(f"not {options.encoding} text ({exc.reason}); set read.encoding in the mapping", file=path) from exc
    header = header or []
    frame = pd.DataFrame(values, columns=header, dtype=object) if values else pd.DataFrame(columns=header, dtype=object)
    frame = frame.where(frame != "", None)
    frame.insert(0, LINE, np.array(lines, dtype="int64"))
    return SourceFile(path, header, frame, pd.DataFrame(malformed, columns=[LINE, "raw", "reason"]))


def _numbered(reader, delimiter: str, skipped: int):
    """CSV records with the physical line each starts on (a quoted field may span lines)."""
    end = 0
    for fields in reader:
        yield skipped + end + 1, fields, delimiter.join(fields)
        end = reader.line_num


@dataclass
class Mapped:
    """A source file through a source mapping."""

    rows: pd.DataFrame
    """The feed's contract columns (typed), plus ``LINE``."""
    held: pd.DataFrame
    """``LINE``, ``reason`` and the raw fields of every row not in ``rows``."""
    folded: int = 0
    """Rows merged into the first row of their ``one_row_per`` key."""
    used_columns: set[str] = field(default_factory=set)
    header: list[str] = field(default_factory=list)


class _Held:
    """Per-row reason a row is held (None: still fine); the first reason wins."""

    def __init__(self, index: pd.Index):
        self.reason = pd.Series(None, index=index, dtype=object)

    def mark(self, bad: pd.Series, reason) -> None:
        bad = bad & self.reason.isna()
        if bad.any():
            self.reason[bad] = reason[bad] if isinstance(reason, pd.Series) else reason


def _text_series(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else _text(v), na_action="ignore")


def _format_groups(template: str):
    def apply(value: str | None, regex: re.Pattern) -> str | None:
        if value is None:
            return None
        match = regex.search(value)
        if match is None:
            return None
        named = {k: int(v) if v is not None and v.isdigit() else v for k, v in match.groupdict().items()}
        groups = [int(g) if g is not None and g.isdigit() else g for g in match.groups()]
        return template.format(*groups, **named)

    return apply


def _parse_times(text: pd.Series, spec, name: str, held: _Held) -> pd.Series:
    """Text -> UTC timestamps: values with an offset keep it, the others are in the declared zone."""
    fmt = spec.format if spec and spec.format else "ISO8601"
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    present = text.notna()
    has_offset = present & text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False)
    if has_offset.any():
        parsed = pd.to_datetime(text[has_offset], format=fmt, utc=True, errors="coerce")
        out[has_offset] = parsed
    naive = present & ~has_offset
    if naive.any():
        parsed = pd.to_datetime(text[naive], format=fmt, errors="coerce")
        zone = spec.timezone if spec else None
        if zone is None:
            held.mark(naive & pd.Series(parsed.notna(), index=text[naive].index).reindex(text.index, fill_value=False),
                      f"{name}: a local time without a time zone; declare {name}.timestamp.timezone")
        else:
            local = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
            lost = parsed.notna() & local.isna()
            held.mark(lost.reindex(text.index, fill_value=False),
                      text.map(lambda v: f"{name}: {v!r} does not exist or is ambiguous in {zone} (clock change)"))
            out[naive] = local.dt.tz_convert("UTC")
    bad = present & out.isna()
    held.mark(bad, text.map(lambda v: f"{name}: {v!r} is not a time in format {fmt}"))
    return out


def _numbers(values: pd.Series, spec: ColumnMap, name: str, held: _Held) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    text = values.astype(object)
    if spec.decimal != ".":
        text = text.map(lambda v: v.replace(".", "").replace(spec.decimal, ".") if isinstance(v, str) else v)
    out = pd.to_numeric(text, errors="coerce").astype("float64")
    held.mark(text.notna() & out.isna(), text.map(lambda v: f"{name}: {v!r} is not a number"))
    return out


@dataclass
class Context:
    """What a column may refer to beyond its own row: the onboarded registry and the fleet's fault codes."""

    registry: pd.DataFrame | None = None
    fault_codes: dict[str, contracts.FaultCode] = field(default_factory=dict)
    time_axis: TimeAxis | None = None


def _source_values(spec: ColumnMap, raw: pd.DataFrame, done: dict[str, pd.Series], context: Context) -> pd.Series:
    if spec.from_ is not None:
        return raw[spec.from_]
    if spec.constant is not None:
        value = spec.constant.isoformat() if hasattr(spec.constant, "isoformat") else _text(spec.constant)
        return pd.Series(value, index=raw.index, dtype=object)
    if spec.concat is not None:
        parts = [raw[p.column] if p.column is not None else pd.Series(p.constant, index=raw.index, dtype=object) for p in spec.concat]
        joined = [spec.separator.join(v for v in values if v is not None and v != "") for values in zip(*parts)]
        read = [raw[p.column].notna() for p in spec.concat if p.column is not None]
        present = pd.concat(read, axis=1).any(axis=1) if read else pd.Series(True, index=raw.index)
        return pd.Series(joined, index=raw.index, dtype=object).where(present, None)
    if spec.registry is not None:
        if context.registry is None or not len(context.registry):
            return pd.Series(None, index=raw.index, dtype=object)
        table = context.registry.drop_duplicates("vehicle_number").set_index("vehicle_number")[spec.registry]
        return done["vehicle_number"].map(table)
    if spec.catalogue is not None:
        field_name = spec.catalogue
        return done["fault_code"].map(lambda c: getattr(context.fault_codes[c], field_name) if c in context.fault_codes else None)
    return pd.Series(None, index=raw.index, dtype=object)  # row_number: filled after sorting


def apply_column(name: str, dtype: str, spec: ColumnMap, raw: pd.DataFrame, done: dict, context: Context, held: _Held) -> pd.Series:
    """One contract column through the declared operations, in their fixed order."""
    values = _source_values(spec, raw, done, context)
    if values.dtype == object:
        values = _text_series(values)
        if spec.strip:
            values = values.map(lambda v: (v.strip() or None) if isinstance(v, str) else v)
    pattern = spec.vehicle or spec.extract
    if pattern is not None:
        regex = re.compile(pattern.pattern)
        out = values.map(lambda v: _format_groups(pattern.format)(v, regex))
        held.mark(values.notna() & out.isna(), values.map(lambda v: f"{name}: {v!r} does not match {pattern.pattern}"))
        values = out
    if spec.lookup is not None:
        table = spec.lookup
        found = values.map(lambda v: v in table)
        out = values.map(lambda v: table.get(v) if v in table else v)
        missing = values.notna() & ~found
        if spec.default is not None:
            out[missing] = spec.default
        elif spec.unmatched == "hold":
            held.mark(missing, values.map(lambda v: f"{name}: {v!r} is not in the lookup"))
        values = out
    if spec.unit is not None or spec.offset is not None or dtype in ("float64", "int64"):
        if spec.unit is not None or spec.offset is not None or values.dtype == object:
            values = _numbers(values, spec, name, held)
        if spec.unit is not None:
            values = units.convert(values, spec.unit.from_, spec.unit.to)
    if spec.offset is not None:
        origin = pd.Timestamp(spec.offset.origin)
        origin = origin.tz_localize("UTC") if origin.tzinfo is None else origin.tz_convert("UTC")
        steps = (values - spec.offset.first) * spec.offset.scale
        values = origin + pd.to_timedelta(steps, unit=spec.offset.unit)
    if dtype in ("timestamp", "date") and values.dtype == object:
        values = _parse_times(values, spec.timestamp, name, held) if dtype == "timestamp" \
            else _parse_dates(values, spec.date_, name, held)
    if dtype in ("timestamp", "date") and context.time_axis is not None:
        axis = pd.Timestamp(context.time_axis.origin)
        axis = axis.tz_localize("UTC") if axis.tzinfo is None else axis.tz_convert("UTC")
        values = axis + (values - axis) * context.time_axis.steps_per_day
    if dtype == "date":
        values = pd.Series(values).map(lambda v: None if pd.isna(v) else (v.date() if hasattr(v, "date") else v))
    if dtype == "int64":
        whole = values.isna() | (values == values.round())
        held.mark(~whole, values.map(lambda v: f"{name}: {v!r} is not a whole number"))
        values = values.where(whole).astype("Int64")
    if dtype == "bool" and values.dtype == object:
        truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        out = values.map(lambda v: truth.get(v.lower()) if isinstance(v, str) else v)
        held.mark(values.notna() & out.isna(), values.map(lambda v: f"{name}: {v!r} is not true/false"))
        values = out
    return values


def _parse_dates(text: pd.Series, spec, name: str, held: _Held) -> pd.Series:
    fmt = spec.format if spec and spec.format else "ISO8601"
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    held.mark(text.notna() & parsed.isna(), text.map(lambda v: f"{name}: {v!r} is not a date in format {fmt}"))
    return parsed.dt.tz_localize("UTC")


def _skipped(source: Source, raw: pd.DataFrame, located: Located, index: int, held: _Held) -> None:
    for j, rule in enumerate(source.skip):
        if rule.column not in raw.columns:
            raise located.error(("sources", index, "skip", j, "column"), f"the file has no column {rule.column!r}")
        values = raw[rule.column]
        if rule.equals is not None:
            hit = values == rule.equals
        elif rule.in_ is not None:
            hit = values.isin(rule.in_)
        elif rule.not_in is not None:
            hit = ~values.isin(rule.not_in)
        elif rule.empty is not None:
            hit = values.isna() == rule.empty
        else:
            hit = values.fillna("").str.contains(rule.matches, regex=True)
        held.mark(hit.fillna(False).astype(bool), f"skipped: {rule.reason}")


def map_source(file: SourceFile, source: Source, feed_columns: list[contracts.Column], located: Located, index: int,
               context: Context) -> Mapped:
    """Turn one export file into the feed's rows according to ``source``."""
    raw = file.rows
    for name, spec in source.columns.items():
        for column in spec.source_columns:
            if column not in file.header:
                raise located.error(("sources", index, "columns", name, "from" if spec.from_ is not None else "concat"),
                                    f"{file.path.name} has no column {column!r} (its columns: {', '.join(file.header)})")
    held = _Held(raw.index)
    _skipped(source, raw, located, index, held)
    done: dict[str, pd.Series] = {}
    dtypes = {c.name: c.dtype for c in feed_columns}
    # Columns read from the registry or the catalogue come last: they look up the row's vehicle or fault code.
    order = sorted(source.columns, key=lambda n: source.columns[n].registry is not None or source.columns[n].catalogue is not None)
    for name in order:
        done[name] = apply_column(name, dtypes[name], source.columns[name], raw, done, context, held)
    keep = held.reason.isna()
    rows = pd.DataFrame({LINE: raw[LINE]})
    for column in feed_columns:
        if column.name in done:
            rows[column.name] = done[column.name]
        else:
            rows[column.name] = pd.Series(None, index=raw.index, dtype=object) if column.dtype != "float64" else np.nan
    rows = rows[keep]
    if source.sort_by:
        rows = rows.sort_values(source.sort_by, kind="stable")
    for name, spec in source.columns.items():
        if spec.row_number is not None:
            rows[name] = [spec.row_number.format(n=i + 1) for i in range(len(rows))]
    folded = 0
    if source.one_row_per:
        first = ~rows.duplicated(subset=source.one_row_per, keep="first")
        folded = int((~first).sum())
        rows = rows[first]
    held_rows = raw[~keep].copy()
    held_rows.insert(1, "reason", held.reason[~keep])
    malformed = file.malformed.rename(columns={"raw": "raw_line"})
    held_rows = pd.concat([held_rows, malformed], ignore_index=True) if len(malformed) else held_rows
    used = {c for spec in source.columns.values() for c in spec.source_columns} | {r.column for r in source.skip}
    return Mapped(rows.reset_index(drop=True), held_rows.reset_index(drop=True), folded, used, file.header)
