"""Component-day records as the models see them: which columns are features, labels and keys.

Everything is derived from the record contract (``contracts.COMPONENT_DAY_KEY``, ``CATEGORICAL_FEATURES``,
``LABEL_COLUMNS``): every other column of ``records/component_days`` is a numeric feature known on its day,
so the models follow whatever features the Spark jobs add without a hard-coded list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from railpm import contracts
from railpm.errors import BadInputError

KEY = list(contracts.COMPONENT_DAY_KEY)
CATEGORICAL = list(contracts.CATEGORICAL_FEATURES)
LABEL = contracts.LABEL_FAILS_WITHIN_HORIZON
TIME = contracts.LABEL_TIME_OBSERVED
EVENT = contracts.LABEL_EVENT_OBSERVED
DAYS_TO_FAILURE = contracts.LABEL_DAYS_TO_FAILURE
FEATURE_DTYPE = "float32"
WEIGHT = "sample_weight"
"""Optional per-row training weight (engineers' feedback, ``railpm.feedback.training_labels``): not a feature."""


def is_label(column: str) -> bool:
    return column in contracts.LABEL_COLUMNS or column.startswith(contracts.NON_FEATURE_PREFIXES)


def numeric_feature_columns(columns) -> list[str]:
    """Every column that is neither a key, a categorical nor a label, in a stable (sorted) order."""
    reserved = set(KEY) | set(CATEGORICAL) | {WEIGHT, contracts.RECORD_PARTITION}
    return sorted(c for c in columns if c not in reserved and not is_label(c) and not c.startswith("_"))


def check_component_days(frame: pd.DataFrame, source: str = "records/component_days") -> None:
    """Refuse records that break the contract the models rely on, naming the column and rule."""
    missing = [c for c in (*KEY, *CATEGORICAL) if c not in frame.columns]
    if missing:
        raise BadInputError(f"component-day records lack columns {missing}", file=source, rule="record_contract")
    if frame.empty:
        raise BadInputError("component-day records are empty", file=source, rule="record_contract")
    features = numeric_feature_columns(frame.columns)
    if not features:
        raise BadInputError("component-day records carry no numeric feature", file=source, rule="record_contract")
    non_numeric = [c for c in features if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if non_numeric:
        raise BadInputError(
            f"feature columns {non_numeric[:5]} are not numeric (every non-key, non-categorical, non-label column is a"
            " numeric feature)", file=source, rule="record_contract",
        )
    dupes = frame.duplicated(KEY)
    if dupes.any():
        first = frame.loc[dupes, KEY].iloc[0].to_dict()
        raise BadInputError(f"{int(dupes.sum())} duplicate component-days, first {first}", file=source, rule="unique_key")


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Types the models can rely on: ``day`` as midnight timestamps, categoricals as text, features as float32.

    Features become floats so that a null in an integer count at serving time cannot break the model's
    signature, and booleans become 0/1; float32 halves the memory of a fleet's records at no cost to trees.
    """
    features = numeric_feature_columns(frame.columns)
    out = frame.copy()
    day = pd.to_datetime(out["day"])
    if day.dt.tz is not None:
        day = day.dt.tz_convert(None)
    out["day"] = day.dt.normalize().astype("datetime64[ns]")
    out[CATEGORICAL] = out[CATEGORICAL].astype("string").astype(object)
    out[features] = out[features].astype(FEATURE_DTYPE)
    for c in (LABEL, EVENT):
        if c in out.columns:
            out[c] = out[c].astype("boolean")
    for c in (TIME, DAYS_TO_FAILURE, WEIGHT):
        if c in out.columns:
            out[c] = pd.to_numeric(out[c]).astype("float64")
    order = np.lexsort((out["component"].to_numpy(), out["vehicle_number"].to_numpy(), out["day"].to_numpy()))
    if np.array_equal(order, np.arange(len(out))):  # records arrive sorted by day: skip copying 400 columns
        return out.reset_index(drop=True)
    return out.take(order).reset_index(drop=True)


def model_input(frame: pd.DataFrame, numeric: list[str] | None = None) -> pd.DataFrame:
    """The exact frame the fitted pipelines take: categoricals then numeric features, in a fixed order.

    Records that lack a feature the model was trained on are refused (a model silently scoring on nulls
    would look healthy and be wrong); extra columns are ignored.
    """
    numeric = numeric_feature_columns(frame.columns) if numeric is None else list(numeric)
    missing = [c for c in (*CATEGORICAL, *numeric) if c not in frame.columns]
    if missing:
        raise BadInputError(f"component-day records lack {len(missing)} feature(s) the model needs, e.g. {missing[:5]}",
                            file="records/component_days", rule="model_features")
    return pd.concat([frame[CATEGORICAL].astype(object), frame[numeric].astype(FEATURE_DTYPE)], axis=1)


def read_component_days(path: Path, days: list | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """Read ``records/component_days`` (Parquet, optionally hive-partitioned) into a normalised frame.

    ``days`` restricts the read to those days (pushed down to the Parquet scan), so that daily scoring
    reads one day and not the fleet's whole history.
    """
    path = Path(path)
    if not path.exists():
        raise BadInputError("no component-day records: run `railpm records` first", file=path, rule="records_exist")
    dataset = pads.dataset(path, format="parquet", partitioning="hive")
    names = dataset.schema.names
    if "day" not in names:
        raise BadInputError("component-day records have no `day` column", file=path, rule="record_contract")
    scan_filter = None
    if days is not None:
        day_type = dataset.schema.field("day").type
        values = [pd.Timestamp(d).date() for d in days]
        if str(day_type) == "string":
            values = [d.isoformat() for d in values]
        scan_filter = pads.field("day").isin(values)
        if contracts.RECORD_PARTITION in names:  # prune whole months before reading row groups
            months = sorted({pd.Timestamp(d).strftime("%Y-%m") for d in values})
            scan_filter &= pads.field(contracts.RECORD_PARTITION).isin(months)
    table = dataset.to_table(columns=columns, filter=scan_filter)
    # Cast features in Arrow (one pass in C++), not column by column in pandas.
    schema = table.schema
    for name in numeric_feature_columns(schema.names):
        kind = schema.field(name).type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            table = table.set_column(schema.get_field_index(name), name, table.column(name).cast(pa.float32()))
    frame = table.to_pandas()
    check_component_days(frame, source=str(path))
    return normalise(frame)


def latest_day(path: Path) -> pd.Timestamp:
    """The most recent day present in the component-day records (reads the ``day`` column only)."""
    path = Path(path)
    if not path.exists():
        raise BadInputError("no component-day records: run `railpm records` first", file=path, rule="records_exist")
    days = pads.dataset(path, format="parquet", partitioning="hive").to_table(columns=["day"]).column("day")
    if len(days) == 0:
        raise BadInputError("component-day records are empty", file=path, rule="record_contract")
    return pd.Timestamp(pd.to_datetime(pd.Series(days.unique().to_pylist())).max()).normalize()


def failure_events(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per observed failure (vehicle, component, failure day), read back from the labels.

    A row whose observation ends in a failure points at it: ``day + label_time_observed_days``.
    """
    hit = frame[frame[EVENT].fillna(False).astype(bool)]
    events = hit[["vehicle_number", "component"]].copy()
    events["failure_day"] = hit["day"] + pd.to_timedelta(hit[TIME], unit="D")
    return events.drop_duplicates().sort_values(["failure_day", "vehicle_number", "component"]).reset_index(drop=True)


def censor_at(frame: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """The labels as they were known on ``cutoff``: nothing after it may reach a training row.

    The survival pair is censored administratively at the cutoff; the horizon label of a row whose horizon
    passes the cutoff becomes unknown unless the failure was already seen.
    """
    out = frame.copy()
    room = (cutoff - out["day"]).dt.days.astype("float64")
    time = out[TIME].astype("float64")
    event = out[EVENT].fillna(False).astype(bool)
    beyond = time > room
    out[TIME] = np.minimum(time, room)
    out[EVENT] = (event & ~beyond).astype("boolean")
    if LABEL in out.columns:
        label = out[LABEL].copy()
        unknown = (room < horizon_days) & ~(out[EVENT].astype(bool) & (out[TIME] <= horizon_days))
        label[unknown] = pd.NA
        out[LABEL] = label
    return out
