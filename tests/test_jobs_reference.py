"""The Spark vehicle_days job against its independent DuckDB reference (``railpm.jobs.reference_duckdb``).

The two share the feature definitions but none of the mechanics (running-sum differences over a dense spine
against RANGE frames, carried-forward events against ASOF joins, a running balance of open work orders
against a range join), so agreement on every cell is evidence that both compute what the definitions say.
First on the generated fleet the model tests use (ingested through the GX gate), then on a hand-built lake
with the edges a clean generated fleet lacks: telemetry gaps, a partial day, a vehicle commissioned during
the data, one commissioned after it, work orders before the data or the commissioning, still open or closed
after the data, and faults after the last reading.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from jobs_lake import feed_frame, write_lake_feed

from railpm import contracts
from railpm.config import Settings
from railpm.jobs import vehicle_days as vd
from railpm.jobs.records_io import record_path
from railpm.jobs.reference_duckdb import Comparison, build_vehicle_days, compare_vehicle_days

START = pd.Timestamp("2024-03-01", tz="UTC")


def at(day: int, hour: float = 12.0) -> pd.Timestamp:
    return START + pd.Timedelta(days=day) + pd.Timedelta(seconds=round(hour * 3600))


def reference_agrees(settings: Settings, out_dir) -> tuple[Comparison, pd.DataFrame]:
    reference = out_dir / "reference_vehicle_days.parquet"
    rows = build_vehicle_days(settings.lake_dir, reference, threads=2)
    comparison = compare_vehicle_days(record_path(settings, "vehicle_days"), reference)
    assert comparison.agree, f"Spark and DuckDB vehicle_days disagree: {comparison.describe()}"
    assert rows == comparison.rows_spark == comparison.rows_reference > 0
    assert comparison.columns == len(vd.vehicle_day_columns()) - len(contracts.VEHICLE_DAY_KEY)
    return comparison, pd.read_parquet(reference)


@pytest.mark.slow
def test_reference_agrees_with_spark_on_the_generated_fleet(model_fleet, tmp_path):
    _, records = reference_agrees(model_fleet, tmp_path)
    # Agreement means something only where the features carry values: every feature family does here.
    assert records[vd.signal_feature("axle_bearing_temp_c", "slope", 30)].notna().mean() > 0.5
    assert records[vd.signal_feature("brake_release_s", "share_beyond", 7)].gt(0).any()
    assert records[vd.fault_feature("grade_a", 30)].gt(0).any()
    assert records["recurring_code_flag"].any() and records["recurring_major_flag"].any()
    assert records["open_corrective_work_orders"].gt(0).any()
    assert records["days_since_replacement_wheelset"].notna().any()
    assert records["km_since_inspection_l2"].lt(records["odometer_km"]).any()  # some level-2 inspection is known


# --------------------------------------------------------------------------------------------------
# A hand-built lake with the edges
# --------------------------------------------------------------------------------------------------

LAST_TELEMETRY_DAY = 29
VEHICLES = [
    ("EMU-0001", "EMU", "2019-05-01"),
    ("EMU-0002", "EMU", (START + pd.Timedelta(days=8)).date().isoformat()),  # commissioned during the data
    ("WAGON-0001", "WAGON", "2023-01-01"),
    ("LOCO-0001", "LOCO", "2025-01-01"),  # commissioned after the data: no records
]
VEHICLE_TYPE = {v: t for v, t, _ in VEHICLES}


def edge_telemetry(rng: np.random.Generator) -> pd.DataFrame:
    """EMUs hourly across the speed, load and ambient bands (mostly at 30 km/h and 60 % load, so that some
    regimes have a normal within days and others only later or never), EMU-0001 silent on days 10-12 and
    reporting 5 hours on day 20; the wagon every 6 hours."""
    rows = []
    for vehicle, first_day, hours in (("EMU-0001", 0, range(24)), ("EMU-0002", 8, range(24)), ("WAGON-0001", 0, range(0, 24, 6))):
        odometer = {"EMU-0001": 1_000.0, "EMU-0002": 0.0, "WAGON-0001": 3_000.0}[vehicle]
        fitted = {s.column for s in contracts.signals_for_type(VEHICLE_TYPE[vehicle])}
        for day in range(first_day, LAST_TELEMETRY_DAY + 1):
            if vehicle == "EMU-0001" and day in (10, 11, 12):
                continue
            for hour in hours:
                if vehicle == "EMU-0001" and day == 20 and hour >= 5:
                    break
                speed = float(rng.choice([0.0, 30.0, 90.0, 140.0], p=[0.1, 0.6, 0.2, 0.1]))
                odometer += speed
                row = {"vehicle_number": vehicle, "ts": at(day, hour), "odometer_km": odometer, "speed_kmh": speed,
                       "load_pct": float(rng.choice([20.0, 60.0, 100.0], p=[0.1, 0.8, 0.1])), "ambient_temp_c": -5.0 + day + rng.normal(0, 3)}
                for signal in contracts.SIGNALS:
                    if signal.column in fitted:
                        middle = (signal.min + signal.max) / 2
                        spread = (signal.max - signal.min) / 20
                        row[signal.column] = middle + spread * (rng.normal() + 0.01 * speed + 0.1 * day * (vehicle == "EMU-0001"))
                rows.append(row)
    return feed_frame(contracts.TELEMETRY, rows)


def edge_faults(rng: np.random.Generator) -> pd.DataFrame:
    """A spread of codes and grades, one before EMU-0002's commissioning and a few after the last reading."""
    codes = [f.code for f in contracts.FAULT_CODES]
    rows = []
    for vehicle, days in (("EMU-0001", range(0, 34)), ("EMU-0002", range(3, 32)), ("WAGON-0001", range(0, 30))):
        for day in days:
            for _ in range(int(rng.poisson(1.5))):
                spec = contracts.FAULT_CODE_BY_CODE[str(rng.choice(codes[:6] if vehicle.startswith("WAGON") else codes))]
                grade = spec.typical_grade if rng.random() < 0.8 else str(rng.choice(contracts.GRADES))
                rows.append({"vehicle_number": vehicle, "vehicle_type": VEHICLE_TYPE[vehicle], "depot": "DEP-EAST",
                             "ts": at(day, int(rng.integers(0, 86_400)) / 3600), "fault_code": spec.code, "subsystem": spec.subsystem,
                             "grade": grade, "description": spec.description})
    for i, row in enumerate(rows, start=1):
        row["event_id"] = f"F-{i:08d}"
    return feed_frame(contracts.FAULTS, rows)


def edge_work_orders() -> pd.DataFrame:
    """Replacements and inspections before the data, before a commissioning, two on one day, overlapping
    corrective orders (one open since before the data, one never closed, one closed after the data), and a
    work order opened after the last reading and fault (the data's last day)."""
    spec = [
        ("EMU-0001", "preventive_replacement", -40, -40, 900.0, "wheelset", None),
        ("EMU-0001", "inspection", -10, -10, 950.0, None, 4),
        ("EMU-0001", "corrective_replacement", -3, 6, 2_000.0, "doors", None),
        ("EMU-0001", "inspection", 2, 2, 1_500.0, None, 1),
        ("EMU-0001", "corrective_replacement", 5, 9, 1_800.0, "brake_unit", None),
        ("EMU-0001", "preventive_replacement", 9, 9, 1_900.0, "brake_unit", None),  # closed the same day, later
        ("EMU-0001", "inspection", 15, 16, 3_000.0, None, 3),
        ("EMU-0001", "corrective_replacement", 21, None, 4_000.0, "hvac", None),
        ("EMU-0001", "corrective_replacement", 26, 45, 5_000.0, "battery", None),
        ("EMU-0002", "preventive_replacement", 2, 2, 10.0, "pantograph", None),  # before commissioning
        ("EMU-0002", "inspection", 14, 14, 2_500.0, None, 2),
        ("EMU-0002", "corrective_replacement", 18, 19, 3_100.0, "traction_motor", None),
        ("WAGON-0001", "inspection", 0, 1, 3_050.0, None, 2),
        ("WAGON-0001", "corrective_replacement", 12, 12, 3_400.0, "bogie", None),
        ("WAGON-0001", "inspection", 36, 36, 4_200.0, None, 1),  # opened after every reading and fault
    ]
    rows = []
    for i, (vehicle, action, opened, closed, odometer, component, level) in enumerate(spec, start=1):
        rows.append({"work_order_id": f"WO-{i:06d}", "vehicle_number": vehicle, "depot": "DEP-EAST", "action": action,
                     "component": component, "part_number": None, "maintenance_level": level,
                     "opened_at": at(opened, 7), "closed_at": None if closed is None else at(closed, 7 + 3 * (i % 4)),
                     "odometer_km": odometer})
    return feed_frame(contracts.WORK_ORDERS, rows)


def test_reference_agrees_with_spark_on_the_edges(spark, tmp_path):
    rng = np.random.default_rng(5)
    settings = Settings(data_root=tmp_path / "data")
    vehicles = feed_frame(contracts.VEHICLES, [
        {"vehicle_number": v, "vehicle_type": t, "home_depot": "DEP-EAST", "commissioning_date": c, "daily_km_mean": 400.0}
        for v, t, c in VEHICLES
    ])
    for feed, frame in ((contracts.VEHICLES, vehicles), (contracts.TELEMETRY, edge_telemetry(rng)),
                        (contracts.FAULTS, edge_faults(rng)), (contracts.WORK_ORDERS, edge_work_orders())):
        write_lake_feed(settings.lake_dir, feed, frame)
    vd.run(spark, settings)

    comparison, records = reference_agrees(settings, tmp_path)
    assert sorted(records["vehicle_number"].unique()) == ["EMU-0001", "EMU-0002", "WAGON-0001"]
    assert records["day"].max() == at(36).date()
    assert comparison.rows_spark == 37 + (37 - 8) + 37
    gap = records[(records["vehicle_number"] == "EMU-0001") & (records["day"] == at(11).date())]
    assert gap["readings_1d"].item() == 0 and gap[vd.signal_feature("axle_bearing_temp_c", "mean", 7)].notna().item()
    assert records["open_corrective_work_orders"].max() >= 2
