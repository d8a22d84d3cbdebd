"""The dirt real feeds carry, injected at configured rates and recorded record by record.

Every spoilt record is listed in the dirt manifest (``truth/dirt.parquet``) with the file and 1-based
record number it ends up at, so ingest can be checked to quarantine exactly those and nothing else.
Rules that keep the manifest exact:

- a record carries at most one kind of dirt, and duplicates copy clean records only;
- records that report a failure or a replacement are never made unreadable (``protected``): they may
  arrive twice, late or out of order, but not malformed or with an unknown vehicle, so the ground truth
  stays consistent with what ingest accepts;
- malformed lines exist only in text formats (CSV, JSON lines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from railpm import contracts
from railpm.config import DirtRates

DIRT_KINDS = tuple(DirtRates.model_fields)
MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("feed", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("column", pa.string()),
        pa.field("key", pa.string(), nullable=False),
    ]
)
"""truth/dirt.parquet: one row per spoilt record; ``row`` is 1-based within ``file`` (relative to landing/)."""
MANIFEST_COLUMNS = MANIFEST_SCHEMA.names
SPOILING = ("dropout", "wrong_unit", "unknown_vehicle", "malformed")
"""Kinds that make a record fail a rule (quarantined); the others are accepted after ordering/deduplication."""
QUARANTINE_RULES: dict[str, str] = {
    "dropout": "signal_present",
    "stuck": "signal_not_stuck",
    "unknown_vehicle": "vehicle_known",
    "malformed": "malformed_line",
    "wrong_unit": "{column}_in_range",
}
"""Dirt kind -> the ingest rule (``railpm.expectations.suites``) that quarantines a record spoilt so (``{column}``:
the spoilt column). A stuck sensor is a run of records, caught across rows; kinds not listed are accepted."""
STUCK_HOURS = (6, 48)
WRONG_UNITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ambient_temp_c": lambda celsius: celsius + 273.15,  # kelvin
    "wheel_flange_mm": lambda mm: mm / 25.4,  # inches
}
MALFORMED_TEXT = ("ERR", "#VALUE!", "1.2.3", "sensor fault")


def quarantine_rule(kind: str, column: str | None = None) -> str | None:
    """The rule a record spoilt by ``kind`` must be quarantined under, or None for a kind ingest accepts."""
    rule = QUARANTINE_RULES.get(kind)
    return rule.format(column=column) if rule else None


@dataclass
class Malformed:
    column: str | None
    """The numeric column given text, or None when the line's structure is broken."""


@dataclass
class SpoiltFile:
    frame: pd.DataFrame
    """Rows of the file, in the order written."""
    late: pd.DataFrame
    """Rows moved to the feed's late file."""
    malformed: dict[int, Malformed]
    """0-based position in ``frame`` -> how to break that line when it is written as text."""
    manifest: list[dict] = field(default_factory=list)


def spoil(
    frame: pd.DataFrame,
    feed: contracts.Feed,
    rates: DirtRates,
    rng: np.random.Generator,
    *,
    file: str,
    late_file: str,
    text_format: bool,
    unknown_vehicle_number: Callable[[str, np.random.Generator], str],
    protected: np.ndarray | None = None,
) -> SpoiltFile:
    """Spoil one landing file's records; ``frame`` must be clean and in its natural order."""
    frame = frame.reset_index(drop=True)  # a new frame: the caller's stays clean
    n = len(frame)
    taken = np.zeros(n, dtype=bool)
    guarded = np.zeros(n, dtype=bool) if protected is None else np.asarray(protected, dtype=bool)
    dirty: list[tuple[int, str, str | None]] = []  # (source row, kind, column) of records in the main file
    malformed_rows: dict[int, Malformed] = {}
    signal_columns = [s.column for s in contracts.SIGNALS if feed is contracts.TELEMETRY]

    if signal_columns and rates.stuck > 0:
        dirty += _freeze_spells(frame, signal_columns, rates.stuck, taken, rng)

    def pick(kind: str, eligible: np.ndarray | None = None) -> np.ndarray:
        rate = getattr(rates, kind)
        count = int(rng.binomial(n, rate)) if rate > 0 and n else 0
        pool = np.flatnonzero(~taken & (True if eligible is None else eligible))
        chosen = np.sort(rng.choice(pool, size=min(count, len(pool)), replace=False)) if count else np.array([], dtype=np.int64)
        taken[chosen] = True
        return chosen

    if signal_columns:
        rows = pick("dropout", ~guarded)
        present = frame[signal_columns].iloc[rows].notna().to_numpy()
        columns = np.array([signal_columns[int(rng.choice(np.flatnonzero(p)))] for p in present], dtype=object)
        for column in sorted(set(columns)):
            frame.loc[rows[columns == column], column] = np.nan
        dirty += [(int(row), "dropout", str(column)) for row, column in zip(rows, columns, strict=True)]

        rows = pick("wrong_unit", ~guarded)
        columns = rng.choice(list(WRONG_UNITS), size=len(rows))
        for column in sorted(set(columns)):
            chosen = rows[columns == column]
            frame.loc[chosen, column] = np.round(WRONG_UNITS[column](frame.loc[chosen, column].to_numpy()), 3)
        dirty += [(int(row), "wrong_unit", str(column)) for row, column in zip(rows, columns, strict=True)]

    if "vehicle_number" in frame:
        rows = pick("unknown_vehicle", ~guarded)
        known = frame["vehicle_number"].to_numpy()[rows]
        frame.loc[rows, "vehicle_number"] = [unknown_vehicle_number(number, rng) for number in known]
        dirty += [(int(row), "unknown_vehicle", None) for row in rows]

    if text_format:
        numeric = [c.name for c in feed.columns if c.dtype in ("float64", "int64")]
        for row in pick("malformed", ~guarded):
            filled = [c for c in numeric if pd.notna(frame.at[row, c])]
            column = str(rng.choice(filled)) if filled and rng.random() < 0.5 else None
            malformed_rows[row] = Malformed(column)
            dirty.append((row, "malformed", column))

    late_rows = pick("late")
    duplicate_rows = pick("duplicate")
    shuffled_rows = pick("out_of_order")

    # Final order: every kept row keeps its place (sort key = its index) except shuffled rows and the
    # duplicate copies, which get a random place far from their original one.
    keep = np.ones(n, dtype=bool)
    keep[late_rows] = False
    source = np.concatenate([np.flatnonzero(keep), duplicate_rows])
    is_copy = np.concatenate([np.zeros(keep.sum(), dtype=bool), np.ones(len(duplicate_rows), dtype=bool)])
    sort_key = source.astype(float)
    moved = is_copy | np.isin(source, shuffled_rows)
    sort_key[moved] = _far_positions(source[moved], n, rng)
    order = np.argsort(sort_key, kind="stable")
    source, is_copy = source[order], is_copy[order]

    position = np.full(n, -1, dtype=np.int64)
    position[source[~is_copy]] = np.flatnonzero(~is_copy)
    out = frame.iloc[source].reset_index(drop=True)
    late = frame.iloc[late_rows].reset_index(drop=True)

    entries = [(kind, int(position[row]), column) for row, kind, column in dirty]
    entries += [("out_of_order", int(position[row]), None) for row in shuffled_rows]
    entries += [("duplicate", int(p), None) for p in np.flatnonzero(is_copy)]
    keys = record_keys(out.iloc[[p for _, p, _ in entries]], feed)
    manifest = [_entry(feed, kind, file, p, column, key) for (kind, p, column), key in zip(entries, keys, strict=True)]
    keys_late = record_keys(late, feed)
    manifest += [_entry(feed, "late", late_file, i, None, keys_late[i]) for i in range(len(late))]
    malformed = {int(position[row]): spec for row, spec in malformed_rows.items()}
    return SpoiltFile(out, late, malformed, manifest)


def _entry(feed, kind, file, position, column, key) -> dict:
    return {"feed": feed.name, "kind": kind, "file": file, "row": position + 1, "column": column, "key": key}


def _far_positions(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random places in the file, redrawn once when they land within two records of the original."""
    keys = rng.uniform(-0.5, n - 0.5, len(rows))
    near = np.abs(keys - rows) < 2.5
    keys[near] = rng.uniform(-0.5, n - 0.5, near.sum())
    return keys


def _freeze_spells(frame, signal_columns, probability, taken, rng) -> list[tuple[int, str, str]]:
    """Per vehicle and fitted signal, with the given probability, one spell of 6-48 h frozen at one value."""
    dirty = []
    vehicles = frame["vehicle_number"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, vehicles[1:] != vehicles[:-1], True])
    for first, end in zip(bounds[:-1], bounds[1:], strict=True):
        for column in signal_columns:
            values = frame[column].to_numpy()
            if np.isnan(values[first]) or rng.random() >= probability:
                continue
            length = int(rng.integers(STUCK_HOURS[0], STUCK_HOURS[1] + 1))
            if end - first <= length:
                continue
            s = int(rng.integers(first, end - length + 1))
            if taken[s : s + length].any():
                continue
            # A clean neighbour equal to the frozen value would lengthen the run beyond the recorded spell.
            neighbours = [values[i] for i in (s - 1, s + length) if first <= i < end]
            if any(value == values[s] for value in neighbours):
                continue
            frame.loc[s : s + length - 1, column] = values[s]
            taken[s : s + length] = True
            dirty += [(row, "stuck", column) for row in range(s, s + length)]
    return dirty


def record_keys(frame: pd.DataFrame, feed: contracts.Feed) -> np.ndarray:
    """The manifest key of each record: ``vehicle_number|ts`` for telemetry, the id otherwise."""
    if feed is contracts.TELEMETRY:
        ts = iso_strings(frame["ts"])
        return (frame["vehicle_number"].astype(str) + "|" + ts).to_numpy()
    return frame[feed.key[0]].astype(str).to_numpy()


def iso_strings(timestamps: pd.Series) -> pd.Series:
    """ISO-8601 UTC strings (``2025-03-04T05:00:00Z``); null stays null."""
    values = timestamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]")
    text = pd.Series(np.datetime_as_string(values, unit="s", timezone="UTC"), index=timestamps.index, dtype=object)
    return text.where(timestamps.notna(), None)
