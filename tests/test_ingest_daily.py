"""The gate of a running fleet: a deployment's history start and the run's logical date; held and released records."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
import pytest
from helpers import land_registry, lake_rows, telemetry_row, write_csv

from railpm import contracts
from railpm.config import FleetSettings, Settings
from railpm.ingest import ingest_landing, summarise
from railpm.ingest.lake import INGEST_RUN, INGESTED_AT
from railpm.ingest.runs import read_run_records

DAY_1 = datetime(2025, 1, 2, tzinfo=timezone.utc)
DAY_2 = datetime(2025, 1, 3, tzinfo=timezone.utc)


@pytest.fixture
def settings(tmp_path) -> Settings:
    # The generator's fleet period (a 31-day synthetic fleet from 2025-01-01) has no say in the gate.
    return Settings(data_root=tmp_path / "data", history_start=date(2024, 12, 1), fleet=FleetSettings(days=31))


def quarantined_rules(settings: Settings, feed: str, part: str) -> dict[int, str]:
    table = pd.read_parquet(settings.quarantine_dir / feed / f"{part}.parquet")
    return dict(zip(table["_source_row"], table["_rules"]))


def test_the_period_runs_from_the_deployments_history_start_to_the_runs_logical_date(settings):
    land_registry(settings)
    rows = [
        telemetry_row("EMU-0001", 0, ts="2024-11-30T23:00:00Z"),  # 1: before the history start
        telemetry_row("EMU-0001", 0, ts="2024-12-01T00:00:00Z"),  # 2: its first hour
        telemetry_row("EMU-0001", 0, ts="2026-03-01T09:00:00Z"),  # 3: long after the generator's 31 days
        telemetry_row("EMU-0001", 0, ts="2026-03-01T13:00:00Z"),  # 4: after the run's logical date
    ]
    write_csv(settings.landing_dir / "telemetry" / "telemetry-0001.csv", contracts.TELEMETRY, rows)

    record = ingest_landing(settings, datetime(2026, 3, 1, 12, tzinfo=timezone.utc))[-1]

    assert quarantined_rules(settings, "telemetry", "telemetry-0001") == {1: "ts_in_period", 4: "ts_not_future"}
    assert (record["accepted"], record["quarantined"]) == (2, 2)


def test_records_of_a_vehicle_the_registry_does_not_know_yet_are_held_then_released_once(settings):
    land_registry(settings)
    rows = [telemetry_row("EMU-0001", h) for h in range(4)] + [telemetry_row("EMU-0003", h) for h in range(3)]
    rows.append(telemetry_row("EMU-0003", 3, wheel_flange_mm="1.1"))  # broken as well: quarantined, never held
    write_csv(settings.landing_dir / "telemetry" / "telemetry-0001.csv", contracts.TELEMETRY, rows)

    first = {r["file"]: r for r in ingest_landing(settings, DAY_1, run_id="day-1")}["telemetry/telemetry-0001.csv"]
    assert (first["rows_in"], first["accepted"], first["quarantined"], first["duplicates_removed"], first["held"]) == (8, 4, 1, 0, 3)
    held = pd.read_parquet(settings.held_dir / "telemetry" / "telemetry-0001.parquet")
    assert sorted(held["_source_row"]) == [5, 6, 7] and set(held["_rules"]) == {"vehicle_known"}
    assert quarantined_rules(settings, "telemetry", "telemetry-0001") == {8: "wheel_flange_mm_in_range,vehicle_known"}
    assert ingest_landing(settings, DAY_1, run_id="day-1 again") == []  # the registry still does not know it

    # The registry learns of the vehicle a day later: the next run releases its records, as a line of its own.
    registry = {"vehicle_number": "EMU-0003", "vehicle_type": "EMU", "home_depot": "DEP-NORTH", "commissioning_date": "2024-12-20",
                "daily_km_mean": 600}
    write_csv(settings.landing_dir / "vehicles" / "vehicles-2025-01-03.csv", contracts.VEHICLES, [registry])
    ran = ingest_landing(settings, DAY_2, run_id="day-2")

    release = ran[-1]
    assert release["status"] == "released" and release["file"] == "telemetry/telemetry-0001.csv"
    assert (release["rows_in"], release["accepted"], release["quarantined"], release["duplicates_removed"], release["held"]) == (3, 3, 0, 0, 0)
    assert not (settings.held_dir / "telemetry" / "telemetry-0001.parquet").exists()
    lake = lake_rows(settings, "telemetry")
    assert len(lake) == 7 and not lake.duplicated(["vehicle_number", "ts"]).any()
    arrivals = lake.groupby("vehicle_number")[[INGEST_RUN, INGESTED_AT]].agg(lambda c: set(c))
    assert arrivals.loc["EMU-0001", INGEST_RUN] == {"day-1"} and arrivals.loc["EMU-0003", INGEST_RUN] == {"day-2"}
    assert arrivals.loc["EMU-0003", INGESTED_AT] == {pd.Timestamp(DAY_2)}

    records = {(r["feed"], r["part"]): r for r in read_run_records(settings.runs_dir)}
    original = records[("telemetry", "telemetry-0001")]
    assert original["held"] == 3 and [e["rows"] for e in original["released"]] == [3]
    assert records[("telemetry", original["released"][0]["part"])] == release
    totals = summarise(list(records.values()))["feeds"]["telemetry"]
    assert (totals["rows_in"], totals["accepted"], totals["quarantined"], totals["held"], totals["released"]) == (8, 7, 1, 3, 3)

    # Counted once: a rerun of the day releases nothing more and changes no file.
    written = {p: p.read_bytes() for p in settings.data_root.rglob("*.parquet")}
    assert ingest_landing(settings, DAY_2, run_id="day-2 again") == []
    assert {p: p.read_bytes() for p in settings.data_root.rglob("*.parquet")} == written


def test_a_late_record_changes_the_records_as_of_today_but_not_as_of_yesterday(settings, spark):
    from railpm.jobs import vehicle_days

    land_registry(settings)
    rows = [telemetry_row("EMU-0001", h) for h in range(24)]
    late = rows.pop(5)
    write_csv(settings.landing_dir / "telemetry" / "telemetry-2025-01-01.csv", contracts.TELEMETRY, rows)
    ingest_landing(settings, DAY_1, run_id="day-1")
    write_csv(settings.landing_dir / "telemetry" / "telemetry-late-2025-01-01.csv", contracts.TELEMETRY, [late])
    ingest_landing(settings, DAY_2, run_id="day-2")

    def readings_on_the_first(as_of: datetime) -> int:
        known = Settings(data_root=settings.data_root, history_start=settings.history_start, as_of=as_of)
        vehicle_days.run(spark, known)
        assert known.records_dir.parent == settings.data_root / "records_as_of"  # the serving records are not touched
        days = pd.read_parquet(known.records_dir / "vehicle_days")
        return int(days.loc[days["day"].astype(str) == "2025-01-01", "readings_1d"].iloc[0])

    assert readings_on_the_first(DAY_1) == 23  # as known yesterday: the late hour had not arrived
    assert readings_on_the_first(DAY_2) == 24
    assert not (settings.records_dir).exists()


def test_the_held_command_lists_held_records_per_vehicle_and_file(settings):
    from typer.testing import CliRunner

    from railpm.cli import app

    land_registry(settings)
    rows = [telemetry_row("EMU-0001", 0)] + [telemetry_row("EMU-0007", h) for h in range(2)]
    write_csv(settings.landing_dir / "telemetry" / "telemetry-0001.csv", contracts.TELEMETRY, rows)
    ingest_landing(settings, DAY_1)
    done = CliRunner().invoke(app, ["held", "--data-root", str(settings.data_root)], terminal_width=200)
    assert done.exit_code == 0, done.output
    assert "2 records held" in done.output
    line = next(line for line in done.output.splitlines() if "EMU-0007" in line)
    assert [cell.strip() for cell in line.split("│")[1:-1]][-1] == "2"
