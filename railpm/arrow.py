"""The Parquet (Arrow) types of the contracts' column types: one map, so every writer agrees on them."""

from __future__ import annotations

import pyarrow as pa

from railpm import contracts

ARROW_TYPES = {
    "string": pa.string(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "bool": pa.bool_(),
}


def arrow_schema(feed: contracts.Feed) -> pa.Schema:
    """The Arrow schema of a contract, nullability included."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.dtype], nullable=c.nullable) for c in feed.columns])


INGEST_RUN = "_ingest_run"
INGESTED_AT = "_ingested_at"
ARRIVAL_COLUMNS = (INGEST_RUN, INGESTED_AT)
"""Every lake record's arrival: the ingest run that wrote it and that run's logical date, so that records,
backtests and the audit trail can be rebuilt as known at a past date (``Settings.as_of``)."""
