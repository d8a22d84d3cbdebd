"""The ingest step on tiny landing files: nothing lost, counts reconcile, reruns add nothing, bad files set aside."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import FAULT, land_registry, lake_rows, telemetry_row, write_csv, write_jsonl

from railpm import contracts
from railpm.config import FleetSettings, Settings
from railpm.ingest import ingest_file, ingest_landing, landing_batches, new_landing_files_by_stage, summarise
from railpm.ingest.lake import ARRIVAL_COLUMNS, INGESTED_AT, contract_schema
from railpm.ingest.runs import read_run_records

REFERENCE_TIME = datetime(2025, 6, 1, tzinfo=timezone.utc)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_root=tmp_path / "data", fleet=FleetSettings(days=31))


def quarantined(settings: Settings, feed: str, part: str) -> dict[int, str]:
    table = pd.read_parquet(settings.quarantine_dir / feed / f"{part}.parquet")
    return dict(zip(table["_source_row"], table["_rules"]))


def test_malformed_lines_are_quarantined_with_their_record_number_and_counts_reconcile(settings):
    land_registry(settings)
    rows = [telemetry_row("EMU-0001", h) for h in range(5)] + [telemetry_row("EMU-0009", 5)]
    rows.append(dict(rows[1]))  # an exact re-send inside the file
    broken = "EMU-0001,2025-01-01T07:00:00Z,120280"  # fields lost in transmission
    write_csv(settings.landing_dir / "telemetry" / "telemetry-0001.csv", contracts.TELEMETRY, rows, {3: broken})
    write_jsonl(
        settings.landing_dir / "faults" / "faults-2025-01.jsonl",
        [FAULT, '{"event_id": "F-000002", "vehicle_nu', {**FAULT, "event_id": "F-000003", "grade": "Z"}],
    )

    records = {r["file"]: r for r in ingest_landing(settings, REFERENCE_TIME)}

    telemetry = records["telemetry/telemetry-0001.csv"]
    counts = ("rows_in", "accepted", "quarantined", "duplicates_removed", "held")
    assert tuple(telemetry[k] for k in counts) == (8, 5, 1, 1, 1)
    assert telemetry["rules"] == {"malformed_line": 1}
    assert quarantined(settings, "telemetry", "telemetry-0001") == {3: "malformed_line"}
    raw = pd.read_parquet(settings.quarantine_dir / "telemetry" / "telemetry-0001.parquet").set_index("_source_row")
    assert raw.loc[3, "_raw_line"] == broken
    held = pd.read_parquet(settings.held_dir / "telemetry" / "telemetry-0001.parquet").set_index("_source_row")
    assert held.loc[7, "vehicle_number"] == "EMU-0009" and held.loc[7, "_rules"] == "vehicle_known"
    assert len(lake_rows(settings, "telemetry")) == telemetry["accepted"]

    faults = records["faults/faults-2025-01.jsonl"]
    assert (faults["rows_in"], faults["accepted"], faults["quarantined"]) == (3, 1, 2)
    assert quarantined(settings, "faults", "faults-2025-01") == {2: "malformed_line", 3: "grade_allowed"}
    assert summarise(list(records.values()))["rules"] == {"grade_allowed": 1, "malformed_line": 2}


def test_an_ingest_task_takes_a_bounded_batch_of_one_feed_in_landing_order(settings):
    files = [f"telemetry/t-{i}.csv" for i in range(5)] + ["faults/f-0.jsonl"] + [f"work_orders/w-{i}.csv" for i in range(3)]
    small = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"files_per_task": 2})})
    batches = landing_batches(small, files)
    assert batches == [["telemetry/t-0.csv", "telemetry/t-1.csv"], ["telemetry/t-2.csv", "telemetry/t-3.csv"], ["telemetry/t-4.csv"],
                       ["faults/f-0.jsonl"], ["work_orders/w-0.csv", "work_orders/w-1.csv"], ["work_orders/w-2.csv"]]
    assert sorted(f for batch in batches for f in batch) == sorted(files)
    assert landing_batches(small, []) == []


def test_rerunning_adds_nothing(settings):
    land_registry(settings)
    write_csv(settings.landing_dir / "telemetry" / "telemetry-0001.csv", contracts.TELEMETRY, [telemetry_row("EMU-0001", h) for h in range(30)])
    first = ingest_landing(settings, REFERENCE_TIME)
    written = {p: p.read_bytes() for p in settings.data_root.rglob("*.parquet")}

    assert new_landing_files_by_stage(settings) == {"registry": [], "catalogue": [], "events": [], "feeds": []}
    assert ingest_landing(settings, REFERENCE_TIME) == []
    again = ingest_file(settings, "telemetry/telemetry-0001.csv", REFERENCE_TIME)
    assert again["skipped"] and again["accepted"] == 30
    assert {p: p.read_bytes() for p in settings.data_root.rglob("*.parquet")} == written
    assert len(read_run_records(settings.runs_dir)) == len(first) == 2
    assert len(lake_rows(settings, "telemetry")) == 30


def test_a_file_that_cannot_be_read_is_moved_aside_and_the_others_go_on(settings):
    land_registry(settings)
    (settings.landing_dir / "faults").mkdir(parents=True)
    (settings.landing_dir / "faults" / "faults-2025-01.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    wrong_header = settings.landing_dir / "work_orders" / "work_orders-2025-01.csv"
    wrong_header.parent.mkdir(parents=True)
    wrong_header.write_text("id,vehicle,when\nWO-1,EMU-0001,2025-01-03\n")
    write_jsonl(settings.landing_dir / "faults" / "faults-2025-02.jsonl", [FAULT])
    write_csv(settings.landing_dir / "parts" / "parts.csv", contracts.PARTS, [
        {"part_number": "P-1", "component": "doors", "vehicle_type": "EMU", "unit_cost_eur": 900, "lead_time_days": 30, "stock_category": "planned"}
    ])

    records = {r["file"]: r for r in ingest_landing(settings, REFERENCE_TIME)}

    garbage = records["faults/faults-2025-01.jsonl"]
    assert garbage["status"] == "rejected" and "faults-2025-01.jsonl" in garbage["error"] and "line 1" in garbage["error"]
    header = records["work_orders/work_orders-2025-01.csv"]
    assert header["status"] == "rejected" and "line 1" in header["error"] and "work_order_id" in header["error"]
    for relative in ("faults/faults-2025-01.jsonl", "work_orders/work_orders-2025-01.csv"):
        assert not (settings.landing_dir / relative).exists()
        assert (settings.rejected_files_dir / relative).exists()
        assert "line 1" in (settings.rejected_files_dir / f"{relative}.error.txt").read_text()
    assert records["faults/faults-2025-02.jsonl"]["accepted"] == 1
    assert ingest_landing(settings, REFERENCE_TIME) == []


def test_late_and_out_of_order_records_land_in_the_day_of_their_event(settings):
    land_registry(settings)
    rows = [telemetry_row("EMU-0001", h) for h in range(48)]
    late = rows.pop(5)  # delivered later, in another file, in another format
    rows[10], rows[40] = rows[40], rows[10]  # out of order within the file
    write_csv(settings.landing_dir / "telemetry" / "telemetry-0001.csv", contracts.TELEMETRY, rows)
    write_jsonl(settings.landing_dir / "telemetry" / "telemetry-late-0001.jsonl", [late])

    ingest_landing(settings, REFERENCE_TIME)

    day1 = settings.lake_dir / "telemetry" / "day=2025-01-01"
    assert sorted(p.name for p in day1.iterdir()) == ["telemetry-0001.parquet", "telemetry-late-0001.parquet"]
    for path in (settings.lake_dir / "telemetry").glob("day=*/*.parquet"):
        ts = pq.read_table(path).column("ts").to_pandas()
        assert (ts.dt.strftime("day=%Y-%m-%d") == path.parent.name).all()
    lake = lake_rows(settings, "telemetry")
    assert len(lake) == 48 and lake["ts"].is_unique
    assert pq.read_table(day1 / "telemetry-late-0001.parquet").column("ts")[0].as_py() == datetime(2025, 1, 1, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("late_first", [False, True])
def test_a_resent_key_is_resolved_by_file_name_whatever_the_ingest_order(settings, late_first):
    land_registry(settings)
    ingest_landing(settings, REFERENCE_TIME)
    original = [FAULT, {**FAULT, "event_id": "F-000002"}]
    resend = [{**FAULT, "grade": "B", "description": "corrected"}, {**FAULT, "event_id": "F-000002"}]
    write_jsonl(settings.landing_dir / "faults" / "faults-2025-01.jsonl", original)
    write_jsonl(settings.landing_dir / "faults" / "faults-late-2025-01.jsonl", resend)
    order = ["faults/faults-late-2025-01.jsonl", "faults/faults-2025-01.jsonl"]
    for relative in order if late_first else reversed(order):
        ingest_file(settings, relative, REFERENCE_TIME)

    lake = lake_rows(settings, "faults").set_index("event_id")
    assert sorted(lake.index) == ["F-000001", "F-000002"]
    assert lake.loc["F-000001", "grade"] == "B"  # the later-named file's correction wins
    assert quarantined(settings, "faults", "faults-2025-01") == {1: "superseded_by_resend"}
    records = {r["file"]: r for r in read_run_records(settings.runs_dir)}
    first, late = records["faults/faults-2025-01.jsonl"], records["faults/faults-late-2025-01.jsonl"]
    assert (first["accepted"], first["quarantined"], first["duplicates_removed"]) == (1, 1, 0)
    assert (late["accepted"], late["quarantined"], late["duplicates_removed"]) == (1, 0, 1)  # exact copy of the original
    for record in (first, late):
        assert record["rows_in"] == record["accepted"] + record["quarantined"] + record["duplicates_removed"] + record.get("held", 0)


def test_parquet_landing_is_read_typed_and_the_lake_has_the_contract_schema(settings):
    land_registry(settings)
    rows = [telemetry_row("EMU-0002", h) for h in range(3)] + [telemetry_row("WAGON-0001", 0, wheel_flange_mm="1.1")]
    frame = pd.DataFrame(rows)
    for column in contracts.TELEMETRY.columns:
        if column.dtype == "float64":
            frame[column.name] = frame[column.name].astype(float)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    path = settings.landing_dir / "telemetry" / "telemetry-0001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=contract_schema(contracts.TELEMETRY), preserve_index=False), path)

    record = ingest_landing(settings, REFERENCE_TIME)[-1]

    assert (record["accepted"], record["rules"]) == (3, {"wheel_flange_mm_in_range": 1})
    part = pq.read_table(settings.lake_dir / "telemetry" / "day=2025-01-01" / "telemetry-0001.parquet")
    assert part.select(contracts.TELEMETRY.column_names).schema.equals(contract_schema(contracts.TELEMETRY), check_metadata=False)
    assert part.column_names == [*contracts.TELEMETRY.column_names, *ARRIVAL_COLUMNS]
    assert set(part.column(INGESTED_AT).to_pylist()) == {REFERENCE_TIME}
    assert part.column("odometer_km").to_pylist() == [120000.0, 120040.0, 120080.0]
    assert quarantined(settings, "telemetry", "telemetry-0001") == {4: "wheel_flange_mm_in_range"}
    vehicles = pq.read_table(settings.lake_dir / "vehicles" / "vehicles.parquet").drop_columns(list(ARRIVAL_COLUMNS))
    assert vehicles.schema.equals(contract_schema(contracts.VEHICLES), check_metadata=False)


def test_events_before_the_registry_is_ingested_wait_in_landing_with_a_clear_reason(settings):
    write_jsonl(settings.landing_dir / "faults" / "faults-2025-01.jsonl", [FAULT])
    record = ingest_file(settings, "faults/faults-2025-01.jsonl", REFERENCE_TIME)
    assert record["status"] == "waiting" and "vehicle registry is not in the lake" in record["error"]
    assert (settings.landing_dir / "faults" / "faults-2025-01.jsonl").exists()
    land_registry(settings)
    assert [r["status"] for r in ingest_landing(settings, REFERENCE_TIME)] == ["ingested", "ingested"]


def test_the_ingest_command_reports_per_feed_and_per_rule_counts_and_where_things_are(settings):
    from typer.testing import CliRunner

    from railpm.cli import app

    land_registry(settings)
    rows = [telemetry_row("EMU-0001", h) for h in range(3)] + [telemetry_row("EMU-0042", 3)]
    write_csv(settings.landing_dir / "telemetry" / "telemetry-0001.csv", contracts.TELEMETRY, rows)
    (settings.landing_dir / "faults").mkdir(parents=True)
    (settings.landing_dir / "faults" / "faults-2025-01.jsonl").write_bytes(b"\xff\xfe not json at all\n")

    runner = CliRunner()
    done = runner.invoke(app, ["ingest", "--data-root", str(settings.data_root)], terminal_width=200)
    assert done.exit_code == 0, done.output
    assert "ingested 3 new landing files" in done.output
    assert "held 1 records of vehicles not in the registry yet" in done.output and "faults-2025-01.jsonl" in done.output
    assert str(settings.data_docs_dir / "index.html") in done.output and (settings.data_docs_dir / "index.html").exists()
    telemetry_line = next(line for line in done.output.splitlines() if "telemetry" in line and "│" in line)
    assert [cell.strip() for cell in telemetry_line.split("│")[1:-1]] == ["telemetry", "1", "0", "4", "3", "0", "0"]

    again = runner.invoke(app, ["ingest", "--data-root", str(settings.data_root)], terminal_width=200)
    assert again.exit_code == 0 and "ingested 0 new landing files" in again.output
