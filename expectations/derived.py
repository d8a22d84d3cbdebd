"""Derived columns the suites validate: typed values of string fields, registry look-ups, run lengths.

Landing values arrive as strings (CSV, JSON lines) so that a bad value is seen by a rule rather than
crashing the reader. Before validation each number, timestamp and date gets a typed twin
``<column>__value`` (null where the text does not parse), ``_line_well_formed`` says whether every numeric
field of the row parsed, and telemetry gets the registry's ``_vehicle_type`` and, per signal, the length
of the run of identical readings each row belongs to (per vehicle, in time order), so that a stuck sensor
is a plain range rule on ``<signal>__run_hours``.

Strings are cast with Arrow first (fast, strict); only a column holding a value Arrow refuses is parsed
again leniently by pandas, value by value, so the bad values become nulls for the rules to see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from railpm import contracts
from railpm.contracts import Feed
from railpm.expectations.suites import LINE_WELL_FORMED, VEHICLE_TYPE, SuiteInputs, naive_column, run_column, value_column

_ARROW_TYPE = {"float64": pa.float64(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32()}


def _is_text(raw: pd.Series) -> bool:
    if isinstance(raw.dtype, pd.ArrowDtype):
        return pa.types.is_string(raw.dtype.pyarrow_dtype) or pa.types.is_large_string(raw.dtype.pyarrow_dtype)
    if raw.dtype == object:
        present = raw.dropna()
        return present.empty or isinstance(present.iloc[0], str)
    return pd.api.types.is_string_dtype(raw.dtype)


def _lenient(column: contracts.Column, raw: pd.Series) -> pd.Series:
    text = raw.astype("object")
    text = text.where(text.isna(), text.astype(str).str.strip())
    if column.dtype in ("float64", "int64"):
        return pd.to_numeric(text, errors="coerce").astype("float64")
    return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")


def typed_value(column: contracts.Column, raw: pd.Series) -> pd.Series:
    """The contract-typed value of one landing column (float64 or UTC datetime); null where it does not parse.

    Integers are carried as float64 (nullable); a fractional value in an integer column does not parse.
    """
    if column.dtype == "int64":
        value = typed_value(contracts.Column(column.name, "float64"), raw)
        return value.where(value == np.floor(value))
    if column.dtype == "float64":
        if not _is_text(raw):
            return pd.to_numeric(raw, errors="coerce").astype("float64")
    elif column.dtype in ("timestamp", "date"):
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            value = raw.dt.tz_convert("UTC")
            return value.dt.floor("D") if column.dtype == "date" else value
        if not _is_text(raw):  # dates read from Parquet, as datetime.date objects
            value = pd.to_datetime(raw, errors="coerce", utc=True)
            return value.dt.floor("D") if column.dtype == "date" else value
    else:
        return raw
    try:
        cast = pc.cast(pa.array(raw, type=pa.string(), from_pandas=True), _ARROW_TYPE[column.dtype])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        value = _lenient(column, raw)
    else:
        if column.dtype == "float64":
            value = pd.Series(cast.to_numpy(zero_copy_only=False), index=raw.index, dtype="float64")
        else:
            value = pd.to_datetime(pd.Series(cast.to_pandas().to_numpy(), index=raw.index), utc=True)
    if column.dtype == "date":
        value = value.dt.floor("D")
    return value


_ZONED = r"[T ][0-9]{2}(:?[0-9]{2}){0,2}([.,][0-9]+)?\s*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)\s*$"
"""A timestamp text whose time of day ends in a zone: Z or an offset (+01, +0100, +01:00)."""


def naive_times(raw: pd.Series) -> pd.Series:
    """True where a timestamp carries no zone (offset-less text that parses as a time, or a zone-less
    Parquet time); text that is no time at all is left to the parseable rule."""
    present = raw.notna().to_numpy()
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        naive = np.zeros(len(raw), dtype=bool)
    elif _is_text(raw):
        zoned = pc.match_substring_regex(pa.array(raw, type=pa.string(), from_pandas=True), _ZONED)
        naive = ~zoned.fill_null(True).to_numpy(zero_copy_only=False)
        if naive.any():
            naive[naive] = _parse_local(raw[naive]).notna().to_numpy()
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        naive = present
    else:  # objects read from Parquet: datetimes or dates
        naive = np.array([getattr(v, "tzinfo", 1) is None for v in raw], dtype=bool)
    return pd.Series(naive & present, index=raw.index)


def _parse_local(raw: pd.Series) -> pd.Series:
    text = raw.astype("object")
    text = text.where(text.isna(), text.astype(str).str.strip())
    return pd.to_datetime(text, errors="coerce", format="ISO8601")


def local_times(raw: pd.Series, zone: str) -> pd.Series:
    """Offset-less times read in the fleet's declared zone, as UTC; a time the zone skips or repeats (a DST
    change) is null, so the parseable rule rejects it rather than a guess placing it."""
    return _parse_local(raw).dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")


def line_well_formed(feed: Feed, raw: pd.DataFrame, values: dict[str, pd.Series]) -> pd.Series:
    """True where every present numeric field parsed (integer fields: as a whole number)."""
    ok = np.ones(len(raw), dtype=bool)
    for c in feed.columns:
        if c.dtype not in ("float64", "int64"):
            continue
        value = values[c.name].to_numpy()
        present = raw[c.name].notna().to_numpy()
        ok &= ~present | ~np.isnan(value)
    return pd.Series(ok, index=raw.index)


def run_hours(order: np.ndarray, vehicle_codes: np.ndarray, reading: np.ndarray) -> np.ndarray:
    """Length of the run of identical consecutive readings each row belongs to.

    ``order`` sorts the rows by vehicle and time; ``vehicle_codes`` are the rows' vehicle ids. Null
    readings belong to no run (0): a dropout is a different rule.
    """
    v = reading[order]
    veh = vehicle_codes[order]
    starts = np.ones(len(v), dtype=bool)
    if len(v) > 1:
        starts[1:] = (v[1:] != v[:-1]) | (veh[1:] != veh[:-1]) | np.isnan(v[1:]) | np.isnan(v[:-1])
    run_id = np.cumsum(starts) - 1
    lengths = np.bincount(run_id)[run_id] if len(v) else np.zeros(0, dtype="int64")
    lengths[np.isnan(v)] = 0
    out = np.empty(len(v), dtype="int64")
    out[order] = lengths
    return out


def add_derived_columns(feed: Feed, raw: pd.DataFrame, inputs: SuiteInputs) -> pd.DataFrame:
    """The frame the feed's suite validates: the landing columns as read plus their derived twins."""
    values = {c.name: typed_value(c, raw[c.name]) for c in feed.columns if c.dtype != "string"}
    derived = {value_column(name): value for name, value in values.items()}
    for c in feed.columns:
        if c.dtype == "timestamp":
            naive = naive_times(raw[c.name])
            derived[naive_column(c.name)] = naive
            if inputs.naive_time_zone and naive.any():
                derived[value_column(c.name)] = values[c.name].where(~naive, local_times(raw[c.name][naive], inputs.naive_time_zone))
    derived[LINE_WELL_FORMED] = line_well_formed(feed, raw, values)
    if feed.name == contracts.TELEMETRY.name:
        vehicle = raw["vehicle_number"]
        # categorical: the signal_present row conditions test membership on it ten times per file
        derived[VEHICLE_TYPE] = pd.Categorical(vehicle.astype("object").map(inputs.vehicle_types), categories=contracts.VEHICLE_TYPES)
        codes, _ = pd.factorize(vehicle)
        ts = values["ts"]
        # Rows whose time did not parse take part in no run (another rule rejects them).
        timed = ts.notna().to_numpy()
        order = np.lexsort((ts.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")).astype("int64"), codes))
        for signal in contracts.SIGNALS:
            reading = np.where(timed, values[signal.column].to_numpy(dtype="float64", na_value=np.nan), np.nan)
            derived[run_column(signal.column)] = pd.Series(run_hours(order, codes, reading), index=raw.index)
    return pd.concat([raw, pd.DataFrame(derived, index=raw.index)], axis=1)
