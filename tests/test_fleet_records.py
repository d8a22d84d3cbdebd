"""Building the records end to end on a tiny ingested fleet: ``railpm records`` in one local session, the
``fleet_records`` DAG through ``spark-submit`` (real ``airflow dags test``), and ``railpm vehicle`` on them."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from helpers import run_marked
from railpm import contracts
from railpm.cli import app
from railpm.config import DirtRates, FleetSettings, Settings, SparkSettings
from railpm.jobs.records import RECORD_JOBS

TEST_SPARK = SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="1g")
"""The session fixture's settings: `railpm records` in this process reuses that session, unchanged."""
TABLES = [table for tables in RECORD_JOBS.values() for table in tables]

SHAPE = """
import json
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
bag = DagBag(dag_folder="dags/fleet_records.py")
dag = bag.dags["fleet_records"]
print("SHAPE " + json.dumps({
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
    "outlets": {t.task_id: [o.name for o in t.outlets] for t in dag.tasks},
    "operators": sorted({type(t).__name__ for t in dag.tasks}),
    "spark_submit": all(isinstance(t, SparkSubmitOperator) for t in dag.tasks),
    "jobs": {t.task_id: [list(t.jobs), t.spark_conn_id, t.application_args] for t in dag.tasks},
    "condition": type(dag.timetable.asset_condition).__name__,
    "assets": [a.name for a in dag.timetable.asset_condition.objects],
}))
"""


@pytest.mark.airflow
def test_fleet_records_runs_on_the_lake_and_submits_the_jobs_in_order_as_one_application(airflow_env):
    shape = run_marked(SHAPE, "SHAPE", airflow_env)
    assert shape["errors"] == {}
    # Any of the four lake tables fleet_ingest publishes starts it (not all four: vehicles rarely change).
    assert shape["condition"] == "AssetAny"
    assert sorted(shape["assets"]) == sorted(f"railpm.lake.{f}" for f in ("telemetry", "faults", "work_orders", "vehicles"))
    # One task, one Spark application for the four jobs in order; it publishes every record table it writes.
    assert shape["tasks"] == {"build_records": []}
    assert shape["outlets"] == {"build_records": [f"railpm.records.{job}" for job in RECORD_JOBS]}
    assert shape["operators"] == ["RecordsJobOperator"] and shape["spark_submit"]
    assert shape["jobs"] == {"build_records": [list(RECORD_JOBS), "railpm_spark", list(RECORD_JOBS)]}


# ------------------------------------------------------------------------------------------------
# A tiny fleet through ingest, then through both ways of building records
# ------------------------------------------------------------------------------------------------


def tiny_fleet_settings(data_root: Path) -> Settings:
    return Settings(data_root=data_root, spark=TEST_SPARK,
                    fleet=FleetSettings(vehicles=4, days=60, seed=3, vehicles_per_file=4, dirt=DirtRates.clean()))


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory) -> Settings:
    from railpm.ingest import ingest_landing
    from railpm.synth import generate_fleet

    settings = tiny_fleet_settings(tmp_path_factory.mktemp("records_fleet") / "data")
    generate_fleet(settings.fleet, settings.landing_dir, settings.truth_dir)
    data_end = datetime.combine(settings.fleet.start + timedelta(days=settings.fleet.days), time(), tzinfo=timezone.utc)
    ingest_landing(settings, reference_time=data_end)
    return settings


@pytest.fixture(scope="module")
def records_built(tiny_lake, spark):
    """`railpm records` run once on the tiny lake; its result (the records stay under the data root)."""
    result = CliRunner().invoke(app, ["records", "--data-root", str(tiny_lake.data_root)],
                                env={"COLUMNS": "200", "RAILPM_SPARK__MASTER": TEST_SPARK.master,
                                     "RAILPM_SPARK__SHUFFLE_PARTITIONS": str(TEST_SPARK.shuffle_partitions)})
    assert result.exit_code == 0, result.output
    return result


def read_table(path: Path) -> pd.DataFrame:
    return ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()


@pytest.mark.slow  # `railpm records` end to end: the unit lane's, not the fast lane's
def test_railpm_records_builds_every_table_and_times_each_job(records_built, tiny_lake):
    output = records_built.output
    for job in RECORD_JOBS:
        assert f"{job}: " in output and " s" in output
    vehicles = read_table(tiny_lake.lake_dir / "vehicles")
    days = tiny_lake.fleet.days
    for table in TABLES:
        assert (tiny_lake.records_dir / table).is_dir() and table in output
    assert len(read_table(tiny_lake.records_dir / "vehicle_days")) == len(vehicles) * days
    dossier = read_table(tiny_lake.records_dir / "vehicle_dossier")
    assert sorted(dossier["vehicle_number"]) == sorted(vehicles["vehicle_number"])
    assert len(list((tiny_lake.records_dir / "vehicle_dossier").glob("*.parquet"))) == 1
    # Every corrective work order in the lake is one failure, in the dossier and in the fleet's RAMS figures.
    orders = read_table(tiny_lake.lake_dir / "work_orders")
    corrective = int((orders["action"] == "corrective_replacement").sum())
    assert dossier["failures_total"].sum() == corrective
    rams = read_table(tiny_lake.records_dir / "fleet_rams")
    fleet_year = rams[(rams["period_type"] == "year") & (rams["vehicle_type"] == "all") & (rams["component"] == "all")]
    assert fleet_year["failures"].sum() == corrective and fleet_year["vehicle_days"].sum() == len(vehicles) * days
    faults = read_table(tiny_lake.records_dir / "fault_summary")
    every = faults[(faults["period_type"] == "year") & (faults["dimension"] == "all")]
    assert every["faults"].sum() == len(read_table(tiny_lake.lake_dir / "faults"))


@pytest.mark.slow  # `railpm records` end to end: the unit lane's, not the fast lane's
def test_railpm_vehicle_prints_the_dossier_for_a_reliability_engineer(records_built, tiny_lake):
    dossier = read_table(tiny_lake.records_dir / "vehicle_dossier").set_index("vehicle_number")
    number = dossier["failures_total"].idxmax()  # a vehicle with a failure, if any
    row = dossier.loc[number]
    result = CliRunner().invoke(app, ["vehicle", number, "--data-root", str(tiny_lake.data_root)], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"{number} dossier as of {row['day']}" in out
    for section in ("faults, last 90 days", "recurring faults", "failures and replacements so far",
                    "next due inspections", "condition signals"):
        assert section in out, section
    assert f"{row['vehicle_type']} / {row['home_depot']}" in out and f"{row['odometer_km']:,.0f} km" in out
    if row["failures_total"]:
        assert f"MTBF {row['mtbf_days']:.0f} days" in out
    else:
        assert "MTBF –," in out
    for level in contracts.MAINTENANCE_LEVELS:
        due = row[f"next_due_l{level.level}_day"]
        assert f"{level.level} {level.name}" in out
        if due is not None and not pd.isna(due):
            assert str(due) in out
    for code in (row["recurring_fault_codes"] or "").split(", "):
        assert code in out
    for signal in contracts.signals_for_type(row["vehicle_type"]):
        assert signal.column in out


@pytest.mark.slow  # `railpm records` end to end: the unit lane's, not the fast lane's
def test_an_unknown_vehicle_says_which_numbers_exist(records_built, tiny_lake):
    result = CliRunner().invoke(app, ["vehicle", "EMU-001", "--data-root", str(tiny_lake.data_root)], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "vehicle 'EMU-001' is not in" in message and "the dossier holds 4 vehicles, EMU-0001 to WAGON-0001" in message
    assert "did you mean EMU-0001" in message and "lake/vehicles" in message
    lower = CliRunner().invoke(app, ["vehicle", "emu-0001", "--data-root", str(tiny_lake.data_root)], env={"COLUMNS": "200"})
    assert lower.exit_code == 0 and "EMU-0001 dossier" in lower.output


def test_railpm_vehicle_before_any_records_names_the_command(tmp_path):
    result = CliRunner().invoke(app, ["vehicle", "EMU-0001", "--data-root", str(tmp_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and "railpm records" in result.output
