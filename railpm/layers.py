"""The one owner of what lies inside each data layer: table names, paths, and the pandas readers.

``Settings`` says where each layer's root is (``lake_dir``, ``records_dir``, ``predictions_dir``, ``plans_dir``;
all under ``data_root`` unless configured); this module says what is inside a root. Stages ask it for a
table's path or rows and never build a path or glob a folder themselves, so renaming a table or a file
pattern is a change here only:

- lake: ``lake/<feed>/`` (one folder per contract feed; feedback is the ``feedback`` feed)
- records: ``records/<table>/`` for the tables in ``RECORD_TABLES``
- predictions: ``predictions/predictions-YYYY-MM-DD.parquet``, one file per scored day
- plans: ``plans/YYYY-MM-DD/<plan>.parquet`` (and ``.csv``), one folder per scored day

Importing this module stays cheap (pyarrow and pandas only): the DAG files and the review app use it. The
Spark jobs read and write through ``railpm.jobs.records_io``, which takes its paths from here.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from railpm import contracts
from railpm.config import Settings
from railpm.errors import BadInputError, RailpmError
from railpm.escaping import spreadsheet_frame

# --------------------------------------------------------------------------------------------------
# Records: the tables the Spark jobs build
# --------------------------------------------------------------------------------------------------

VEHICLE_DAYS = "vehicle_days"
COMPONENT_DAYS = "component_days"
VEHICLE_DOSSIER = "vehicle_dossier"
FLEET_RAMS = "fleet_rams"
FAULT_SUMMARY = "fault_summary"
RESPONSE_CLOCKS = "response_clocks"
RECORD_TABLES = (VEHICLE_DAYS, COMPONENT_DAYS, VEHICLE_DOSSIER, FLEET_RAMS, FAULT_SUMMARY, RESPONSE_CLOCKS)


def record_dir(settings: Settings, table: str) -> Path:
    """``records/<table>``; an unknown table name is a programming error caught here, not a silent new folder."""
    if table not in RECORD_TABLES:
        raise RailpmError(f"unknown record table {table!r}: one of {', '.join(RECORD_TABLES)}")
    return settings.records_dir / table


# --------------------------------------------------------------------------------------------------
# Lake
# --------------------------------------------------------------------------------------------------

def lake_dir_of(lake_dir: Path, feed: contracts.Feed) -> Path:
    return Path(lake_dir) / feed.name


def lake_table(settings: Settings, feed: contracts.Feed) -> Path:
    return lake_dir_of(settings.lake_dir, feed)


def feedback_dir_of(lake_dir: Path) -> Path:
    """Engineers' feedback is a lake feed of its own: training reads it back with the rest of the lake."""
    return lake_dir_of(lake_dir, contracts.FEEDBACK)


# --------------------------------------------------------------------------------------------------
# Predictions and plans
# --------------------------------------------------------------------------------------------------

PREDICTIONS_PATTERN = "predictions-????-??-??.parquet"


def predictions_path(predictions_dir: Path, day: date | pd.Timestamp) -> Path:
    return Path(predictions_dir) / f"predictions-{pd.Timestamp(day):%Y-%m-%d}.parquet"


def predictions_files(predictions_dir: Path) -> list[Path]:
    """One file per scored day, oldest first."""
    folder = Path(predictions_dir)
    return sorted(folder.glob(PREDICTIONS_PATTERN)) if folder.is_dir() else []


def plan_folder(plans_dir: Path, scored_day: date) -> Path:
    return Path(plans_dir) / scored_day.isoformat()


def plan_files(plans_dir: Path, plan: str) -> list[Path]:
    """``plans/<day>/<plan>.parquet`` of every scored day, oldest first."""
    folder = Path(plans_dir)
    return sorted(folder.glob(f"????-??-??/{plan}.parquet")) if folder.is_dir() else []


# --------------------------------------------------------------------------------------------------
# Readers and writers (pandas, for tables that are small by nature)
# --------------------------------------------------------------------------------------------------

def _dataset(path: Path) -> pads.Dataset:
    """Every Parquet file under ``path``; ``key=value`` folders become columns unless the files carry them."""
    files = sorted(f for f in path.rglob("*.parquet") if not f.name.startswith(".")) if path.is_dir() else []
    if not files:
        raise RailpmError(f"no Parquet files under {path}")
    keys = {part.split("=", 1)[0] for part in files[0].relative_to(path).parts[:-1] if "=" in part}
    hive = bool(keys) and not keys & set(pq.read_schema(files[0]).names)
    return pads.dataset(
        [str(f) for f in files], format="parquet", partitioning="hive" if hive else None,
        partition_base_dir=str(path) if hive else None,
    )


def read_table(path: Path, columns: list[str] | None = None, filter=None) -> pd.DataFrame:
    """A lake, records or predictions table as pandas; a missing column fails naming the table."""
    dataset = _dataset(Path(path))
    if columns:
        absent = [c for c in columns if c not in dataset.schema.names]
        if absent:
            raise BadInputError(f"{path} lacks columns {absent}", file=path, rule="columns_present")
    return dataset.to_table(columns=columns, filter=filter).to_pandas()


def _as_date(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.astype(str)).dt.date


def read_predictions(predictions_dir: Path, scored_day: date | None = None) -> pd.DataFrame:
    """The predictions of one scored day (the one asked for, or the latest), in the contract's columns.

    Strict, for the steps that act on them (plan, feedback, trace): no predictions, no such day or a file
    without the contract's columns is an error naming the folder.
    """
    dataset = _dataset(Path(predictions_dir))
    if "scored_day" not in dataset.schema.names:
        raise BadInputError(f"predictions under {predictions_dir} carry no scored_day", file=predictions_dir, rule="predictions_contract")
    days = _as_date(dataset.to_table(columns=["scored_day"]).column("scored_day").to_pandas()).unique()
    if scored_day is None:
        scored_day = max(days)
    elif scored_day not in set(days):
        latest = max(days)
        raise RailpmError(f"no predictions for {scored_day} under {predictions_dir} (latest: {latest})")
    table = dataset.to_table().to_pandas()
    table["scored_day"] = _as_date(table["scored_day"])
    frame = table.loc[table["scored_day"] == scored_day].reset_index(drop=True)
    missing = [c for c in contracts.PREDICTIONS.column_names if c not in frame.columns]
    if missing:
        raise BadInputError(f"predictions lack columns {missing}", file=predictions_dir, rule="predictions_contract")
    return frame[contracts.PREDICTIONS.column_names]


def read_prediction_history(predictions_dir: Path) -> pd.DataFrame:
    """Every scored day's predictions as written (for analysis); none yet is an empty frame, not an error."""
    files = predictions_files(predictions_dir)
    if not files:
        return pd.DataFrame(columns=contracts.PREDICTIONS.column_names)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def write_atomically(frame: pd.DataFrame, folder: Path, name: str, csv: bool = True) -> list[Path]:
    """``<name>.parquet`` (and ``.csv`` for planners' spreadsheets), written beside and then renamed: a
    reader never sees half a file."""
    written = []
    for suffix in (".parquet", ".csv") if csv else (".parquet",):
        target = folder / f"{name}{suffix}"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}", suffix=suffix)
        os.close(fd)
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            # planners open these in Excel: no live formula, and a CR or LF inside a cell is quoted (CRLF lines)
            spreadsheet_frame(frame).to_csv(tmp, index=False, lineterminator="\r\n")
        os.replace(tmp, target)
        written.append(target)
    return written
