"""Hand-built lake tables for the Spark job tests: a few rows per feed, in the lake layout ingest writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from railpm import contracts
from railpm.arrow import ARROW_TYPES

def arrow_schema(feed: contracts.Feed) -> pa.Schema:
    """The contract's types, every column nullable: hand-built rows leave the columns a test ignores empty."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.dtype]) for c in feed.columns])


def feed_frame(feed: contracts.Feed, rows: list[dict]) -> pd.DataFrame:
    """Rows with only the columns a test cares about; the others are null."""
    frame = pd.DataFrame(rows, columns=feed.column_names)
    for column in feed.columns:
        if column.dtype == "timestamp":
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True)
        elif column.dtype == "date":
            frame[column.name] = pd.to_datetime(frame[column.name]).dt.date
    return frame


def write_lake_feed(lake_dir: Path, feed: contracts.Feed, frame: pd.DataFrame, part: str = "part-0") -> None:
    """Write one feed as ingest does: ``<feed>/day=YYYY-MM-DD/<part>.parquet`` when it has an event time."""
    table = pa.Table.from_pandas(frame[feed.column_names], schema=arrow_schema(feed), preserve_index=False)
    root = Path(lake_dir) / feed.name
    if feed.time_column is None:
        root.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / f"{part}.parquet")
        return
    days = pd.to_datetime(frame[feed.time_column], utc=True).dt.strftime("%Y-%m-%d")
    for day in sorted(days.unique()):
        folder = root / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pa.array((days == day).to_numpy())), folder / f"{part}.parquet")


def spark_frame(spark, feed: contracts.Feed, frame: pd.DataFrame):
    """The same rows as a Spark DataFrame with the contract's types (nullable, as tests leave gaps)."""
    from pyspark.sql import types as T

    from railpm.jobs.spark import spark_schema

    schema = T.StructType([T.StructField(f.name, f.dataType, True) for f in spark_schema(feed)])
    return spark.createDataFrame(frame[feed.column_names].astype(object).where(frame.notna(), None), schema=schema)
