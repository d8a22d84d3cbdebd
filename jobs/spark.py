"""The one way railpm opens a SparkSession, and the contracts' schemas in Spark's terms.

Jobs launched by ``spark-submit`` must not pin a master: the cluster manager given on the command line
decides where they run. Local runs (CLI, tests, benchmarks) name the master from ``Settings.spark``.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from railpm import contracts
from railpm.arrow import INGESTED_AT
from railpm.config import SparkSettings
from railpm.errors import BadInputError, RailpmError
from railpm.layers import lake_dir_of

_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "float64": T.DoubleType(),
    "int64": T.LongType(),
    "timestamp": T.TimestampType(),
    "date": T.DateType(),
    "bool": T.BooleanType(),
}


def build_session(
    spark: SparkSettings,
    app_name: str = "railpm",
    *,
    local: bool = True,
    ui: bool = False,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """A SparkSession in UTC with few shuffle partitions (the fleet's daily tables are small).

    ``local=False`` leaves master and driver memory to ``spark-submit`` (a cluster decides those).
    """
    builder = SparkSession.builder.appName(app_name)
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # Records are a few hundred columns wide; past 100 fields Spark drops whole-stage code generation and
        # interprets row by row (measured: half the CPU of the vehicle-day aggregation with this raised).
        "spark.sql.codegen.maxFields": "2000",
        "spark.ui.enabled": str(ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if local:
        conf["spark.master"] = spark.master
        conf["spark.driver.memory"] = spark.driver_memory
        conf["spark.pyspark.python"] = sys.executable
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def spark_schema(feed: contracts.Feed) -> T.StructType:
    """The feed's contract as a Spark schema, so that a lake table is read with exactly its contract types."""
    return T.StructType(
        [T.StructField(c.name, _SPARK_TYPES[c.dtype], nullable=c.nullable) for c in feed.columns]
    )


def read_lake_feed(
    session: SparkSession, lake_dir: Path | str, feed: contracts.Feed, optional: bool = False, as_of: datetime | None = None
) -> DataFrame:
    """A lake table with its contract's columns (the ``day=`` partition folder is not a column of the feed).

    ``optional``: a fleet may not send this feed at all (no telemetry, no fault log); its table is then empty.
    ``as_of``: only the records ingested by then (their ``_ingested_at``), so records rebuilt as known at a past
    date do not see a record that arrived late.
    """
    path = lake_dir_of(lake_dir, feed)
    if optional and not path.exists():
        return session.createDataFrame([], spark_schema(feed))
    if not path.exists():
        raise RailpmError(f"lake table {path} does not exist: run the ingest first")
    frame = session.read.option("recursiveFileLookup", "false").parquet(str(path))
    missing = [c for c in feed.column_names if c not in frame.columns]
    if missing:
        raise BadInputError(f"lake table {feed.name} lacks columns {missing}", file=path, rule="contract_columns")
    if as_of is not None:
        if INGESTED_AT not in frame.columns:
            raise BadInputError(f"lake table {feed.name} has no arrival times to read it as of {as_of}", file=path, rule="arrival_known")
        frame = frame.where(frame[INGESTED_AT] <= F.lit(as_of).cast(T.TimestampType()))
    return frame.select(
        *(frame[c.name].cast(_SPARK_TYPES[c.dtype]).alias(c.name) for c in feed.columns)
    )
