"""The public data sets through the adapters and the unchanged pipeline, on small slices.

Needs ``../shared/datasets`` (NASA C-MAPSS FD001, Microsoft Azure PdM); skips when it is absent and never
downloads anything. The pipeline runs in a child process (``benchmarks/public_datasets.py``) because a data
set's catalogue fixes the contracts when railpm is imported; the figures of a slice mean nothing, the tests
check that every layer holds what the data set says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from railpm import contracts
from railpm.adapters import CATALOGUE_FILE, ENV_FILE
from railpm.adapters import azure_pdm, cmapss
from railpm.cli import app
from railpm.errors import BadInputError

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
BENCHMARK = REPO / "benchmarks" / "public_datasets.py"

needs_data = pytest.mark.skipif(
    not (DATASETS / "cmapss").is_dir() or not (DATASETS / "azure-pdm").is_dir(),
    reason=f"public data sets not available at {DATASETS} (provided beside the project; never downloaded)",
)


def test_a_catalogue_round_trips_through_json_and_railway_is_the_default():
    assert contracts.CATALOGUE == contracts.RAILWAY or os.environ.get("RAILPM_CATALOGUE")
    assert contracts.Catalogue.from_json(contracts.RAILWAY.to_json()) == contracts.RAILWAY
    assert contracts.Catalogue.from_json(cmapss.CATALOGUE.to_json()) == cmapss.CATALOGUE
    with pytest.raises(BadInputError, match="not a railpm catalogue"):
        contracts.Catalogue.from_json('{"name": "x"}')


@needs_data
def test_cmapss_engines_become_vehicles_with_one_reading_per_cycle():
    landing = cmapss.cmapss_landing(DATASETS / "cmapss", engines=3)
    raw = cmapss.read_cycles(DATASETS / "cmapss" / "train_FD001.txt")
    raw = raw[raw["unit"] <= 3]
    vehicles, telemetry, orders = (landing.feeds[f] for f in ("vehicles", "telemetry", "work_orders"))
    assert sorted(vehicles["vehicle_number"]) == [*(f"TEST-00{i}" for i in (1, 2, 3)), *(f"TRAIN-00{i}" for i in (1, 2, 3))]
    train_1 = telemetry[telemetry["vehicle_number"] == "TRAIN-001"].sort_values("ts")
    cycles = raw[raw["unit"] == 1]
    # cycle c is record step c: one reading per day, the sensor as in the file
    assert len(train_1) == len(cycles)
    assert (train_1["ts"].dt.normalize().diff().dropna() == pd.Timedelta(days=1)).all()
    assert train_1["t30_hpc_outlet_temp"].tolist() == cycles["sensor_3"].tolist()
    assert "fault" not in landing.feeds and "faults" not in landing.feeds
    # a training engine fails at the end of its last cycle: the work order opens on the next step
    order = orders.set_index("vehicle_number").loc["TRAIN-001"]
    assert order["action"] == "corrective_replacement" and order["component"] == cmapss.COMPONENT
    assert (order["opened_at"].normalize() - train_1["ts"].max().normalize()) == pd.Timedelta(days=1)
    assert set(orders["vehicle_number"]) == {"TRAIN-001", "TRAIN-002", "TRAIN-003"}
    assert cmapss.remaining_cycles(DATASETS / "cmapss", 3).tolist() == [112, 98, 69]
    assert contracts.Catalogue.from_json(landing.catalogue.to_json()) == landing.catalogue


@needs_data
def test_azure_failures_become_corrective_work_orders_on_a_3_hour_axis():
    landing = azure_pdm.azure_pdm_landing(DATASETS / "azure-pdm", machines=3)
    tables = {k: t[t["machineID"] <= 3] for k, t in azure_pdm.read_tables(DATASETS / "azure-pdm").items()}
    assert "telemetry" not in landing.feeds  # PdM_telemetry.csv is not available: nothing is made up
    faults, orders = landing.feeds["faults"], landing.feeds["work_orders"]
    assert len(faults) == len(tables["errors"]) and set(faults["grade"]) == {"C"}
    corrective = orders[orders["action"] == "corrective_replacement"]
    assert len(corrective) == len(tables["failures"])
    # every replacement in the log is one work order: the failure's own or a preventive one
    assert corrective["closed_at"].notna().all()
    assert len(orders) - len(corrective) + (corrective["closed_at"] != corrective["opened_at"]).sum() <= len(tables["maint"])
    # one 3-hour step per record day, and back
    real = tables["failures"]["datetime"].iloc[0]
    step = azure_pdm.to_steps([real]).iloc[0]
    assert step - azure_pdm.ORIGIN == (real - azure_pdm.ORIGIN) * 8
    assert azure_pdm.from_steps([step]).iloc[0] == real
    assert landing.horizon_days == 8 and landing.catalogue.record_step == "3 hours"


@needs_data
def test_import_command_writes_landing_files_catalogue_and_settings(tmp_path):
    result = CliRunner().invoke(app, ["import", "cmapss", str(DATASETS / "cmapss"), "--engines", "2", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.parent.name for p in (tmp_path / "landing").glob("*/*.parquet")) == ["telemetry", "vehicles", "work_orders"]
    env = dict(line.split("=", 1) for line in (tmp_path / ENV_FILE).read_text().splitlines())
    assert env["RAILPM_CATALOGUE"] == str((tmp_path / CATALOGUE_FILE).resolve())
    assert contracts.Catalogue.from_json((tmp_path / CATALOGUE_FILE).read_text()).record_step == "1 operating cycle"


@needs_data
@pytest.mark.slow  # ingest and the four record jobs end to end: the unit lane's, not the fast lane's
def test_azure_slice_runs_through_ingest_and_the_record_jobs_without_telemetry(tmp_path):
    """The fleet without telemetry, end to end in a child process: GX ingest, Spark vehicle_days and
    component_days, and the failure classifier of railpm.models fitted on split 1 (3 machines: ~10 s of
    fitting; ``--pipeline-models`` adds railpm train and score, left to the benchmark for CI time)."""
    out = tmp_path / "results.json"
    env = {**os.environ, "RAILPM_SPARK__MASTER": "local[2]", "RAILPM_SPARK__SHUFFLE_PARTITIONS": "2",
           "RAILPM_MODEL__RECIPE": '{"max_iter": 20, "calibration_folds": 2}'}
    completed = subprocess.run(
        [sys.executable, str(BENCHMARK), "--only", "azure-pdm", "--machines=3", "--work", str(tmp_path / "work"),
         "--json", str(out)],
        env=env, cwd=REPO, capture_output=True, text=True,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads(out.read_text())["azure-pdm"]
    assert result["record_step"] == "3 hours"
    assert set(result["per_component"]) == set(azure_pdm.COMPONENTS)
    # every 3-hour step of 3 machines x 4 components has a record (labels known up to the data end)
    assert result["train_rows"] + result["test_rows"] > 3 * 4 * 300 * azure_pdm.STEPS_PER_DAY
    assert result["events"]["failures"] > 0
    records = tmp_path / "work" / "azure-pdm" / "records" / "vehicle_days"
    import pyarrow.dataset as pads

    table = pads.dataset(records, format="parquet", partitioning="hive").to_table(
        columns=["vehicle_number", "readings_1d", "volt_z_mean_7d", "faults_code_error1_30d"])
    assert set(table.column("vehicle_number").to_pylist()) == {"M-001", "M-002", "M-003"}
    assert set(table.column("readings_1d").to_pylist()) == {0}  # no telemetry
    assert table.column("volt_z_mean_7d").null_count == table.num_rows  # its features present and null
    assert sum(table.column("faults_code_error1_30d").to_pylist()) > 0  # the fault log carries the model


def test_vehicle_days_of_a_fleet_without_telemetry_start_at_its_first_fault(spark, tmp_path):
    """No telemetry file at all (railway catalogue, no data set needed): the absent feed reads as empty, the
    records run from the first fault to the last event, signal features are null, fault counts and
    replacement clocks are there (component_days on such records: the Azure slice above)."""
    from jobs_lake import feed_frame, write_lake_feed

    from railpm.config import Settings
    from railpm.jobs import vehicle_days
    from railpm.jobs.records_io import read_records, record_path

    settings = Settings(data_root=tmp_path)
    day = pd.Timestamp("2024-03-01", tz="UTC")
    write_lake_feed(settings.lake_dir, contracts.VEHICLES, feed_frame(contracts.VEHICLES, [
        {"vehicle_number": "WAGON-0001", "vehicle_type": "WAGON", "home_depot": "DEP-NORTH", "commissioning_date": "2020-01-01"},
    ]))
    write_lake_feed(settings.lake_dir, contracts.FAULTS, feed_frame(contracts.FAULTS, [
        {"event_id": f"F{i}", "vehicle_number": "WAGON-0001", "ts": day + pd.Timedelta(days=i, hours=8),
         "fault_code": "BR-110", "subsystem": "brakes", "grade": "C"} for i in (0, 1, 5)
    ]))
    write_lake_feed(settings.lake_dir, contracts.WORK_ORDERS, feed_frame(contracts.WORK_ORDERS, [
        {"work_order_id": "W1", "vehicle_number": "WAGON-0001", "action": "corrective_replacement",
         "component": "brake_unit", "opened_at": day + pd.Timedelta(days=9), "closed_at": day + pd.Timedelta(days=9, hours=6)},
    ]))
    vehicle_days.run(spark, settings)
    rows = read_records(spark, record_path(settings, "vehicle_days")).orderBy("day").toPandas()
    assert [d.isoformat() for d in (rows["day"].iloc[0], rows["day"].iloc[-1])] == ["2024-03-01", "2024-03-10"]
    assert (rows["readings_1d"] == 0).all() and rows["brake_release_s_z_mean_7d"].isna().all()
    assert rows["faults_code_br_110_7d"].tolist() == [1, 2, 2, 2, 2, 3, 3, 2, 1, 1]
    assert rows["days_since_replacement_brake_unit"].iloc[-1] == 0


def test_cmapss_variant_is_chosen_on_held_out_training_engines_cut_like_the_test_engines():
    """The cross-validation that picks the C-MAPSS variant never scores an engine it was fitted on, cuts each
    held-out engine at a fixed number of random cycles (fewer if it has fewer), and draws the same cuts each run."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("public_datasets", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    lengths = {"TRAIN-001": 30, "TRAIN-002": 8, "TRAIN-003": 50, "TRAIN-004": 20, "TRAIN-005": 40, "TRAIN-006": 25}
    engines = np.repeat(list(lengths), list(lengths.values()))
    folds = list(benchmark.cmapss_cv_folds(engines, folds=5, cuts_per_engine=10))
    assert len(folds) == 5
    held_out = []
    for fit_rows, cut_rows in folds:
        assert not set(engines[fit_rows]) & set(engines[cut_rows])
        held_out += sorted(set(engines[cut_rows]))
    assert sorted(held_out) == sorted(lengths)  # every engine held out exactly once
    cuts = np.concatenate([c for _, c in folds])
    per_engine = dict(zip(*np.unique(engines[cuts], return_counts=True)))
    assert per_engine == {e: min(10, n) for e, n in lengths.items()}
    again = np.concatenate([c for _, c in benchmark.cmapss_cv_folds(engines, folds=5, cuts_per_engine=10)])
    assert np.array_equal(np.sort(cuts), np.sort(again))
    assert len(list(benchmark.cmapss_cv_folds(engines[:38], folds=5))) == 2  # a 2-engine slice: 2 folds
    with pytest.raises(ValueError, match="at least 2 training engines"):
        list(benchmark.cmapss_cv_folds(engines[:30]))
