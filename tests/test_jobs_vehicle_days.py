"""vehicle_days on hand-built inputs with known answers.

One small lake (the ``case`` fixture) carries a vehicle per feature family: two EMUs for the condition signals
(one always at speed with hot bearings, one mostly slow with one hot reading at low speed), a wagon with a
planned sequence of faults and work orders over 471 days (window edges, recurring flags, maintenance clocks) and
a wagon commissioned on day 5 (partial windows). It is built once; each test reads its own vehicle's rows.
Then the leakage test, and one run of the job through ``spark-submit`` on a Spark standalone cluster.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from helpers import free_port
from jobs_lake import feed_frame, spark_frame, write_lake_feed
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from railpm import contracts
from railpm.config import Settings
from railpm.jobs import vehicle_days as vd
from railpm.jobs.records_io import record_path
from railpm.deploy.orchestration import PROGRESS_MARKER
from railpm.deploy.processes import group_members, log_tail
from railpm.deploy.processes import stop_group as stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[1]
START = pd.Timestamp("2024-01-01", tz="UTC")
"""Day 0 of every hand-built feed; days below are counted from it."""
LAST_DAY = 470
"""The wagon reports until day 470, so that a 365-day window can drop its first fault."""
TELEMETRY_DAYS = 40
"""The EMUs report hourly on days 0-39 (EMU-0002 not on days 15-16)."""
BEARING, BRAKE = "axle_bearing_temp_c", "brake_release_s"
FEATURE_PRECISION = 1e-9
"""Absolute tolerance where the same sums may be added in another order (other partitions, another cluster)."""


def at(day: int, hour: float = 12.0) -> pd.Timestamp:
    return START + pd.Timedelta(days=day) + pd.Timedelta(hours=hour)


def on(day: int) -> date:
    return (START + pd.Timedelta(days=day)).date()


# --------------------------------------------------------------------------------------------------
# The hand-built fleet
# --------------------------------------------------------------------------------------------------

VEHICLE_ROWS = [
    ("EMU-0001", "EMU", "2020-01-01"),
    ("EMU-0002", "EMU", "2020-01-01"),
    ("WAGON-0001", "WAGON", "2023-12-02"),  # 30 days old on day 0
    ("WAGON-0002", "WAGON", "2024-01-06"),  # commissioned on day 5
]


def vehicles_frame() -> pd.DataFrame:
    return feed_frame(contracts.VEHICLES, [
        {"vehicle_number": v, "vehicle_type": t, "home_depot": "DEP-NORTH", "commissioning_date": c, "daily_km_mean": 500.0}
        for v, t, c in VEHICLE_ROWS
    ])


def reading(vehicle: str, ts: pd.Timestamp, odometer: float, speed: float, load: float = 50.0,
            ambient: float = 10.0, **signals: float) -> dict:
    return {"vehicle_number": vehicle, "ts": ts, "odometer_km": odometer, "speed_kmh": speed, "load_pct": load,
            "ambient_temp_c": ambient, **signals}


def wagon_odometer(day: int) -> float:
    """WAGON-0001 runs 100 km a day and reports daily up to day 59, then once more on the last day."""
    return 5_000.0 + 100.0 * day


def telemetry_frame(seed: int = 7) -> pd.DataFrame:
    """EMU-0001 always at 100 km/h with bearings near 60 degC and a brake release time that drifts up;
    EMU-0002 at 30 km/h with bearings near 30 degC except three fast hours a day (near 60 degC), one hot
    reading at low speed on day 20, a gap on days 15-16 and warmer weather on days 30-31 (a regime with too
    few readings for a normal on its first day). Wagons: one reading a day, odometer only."""
    rng = np.random.default_rng(seed)
    rows = []
    odometer = 20_000.0
    for day in range(TELEMETRY_DAYS):
        for hour in range(24):
            rows.append(reading(
                "EMU-0001", at(day, hour), 10_000.0 + 100.0 * (24 * day + hour), 100.0,
                **{BEARING: 60.0 + rng.uniform(-2, 2), BRAKE: 3.0 + 0.02 * (day + hour / 24) + rng.uniform(-0.3, 0.3)},
            ))
            if day in (15, 16):
                continue
            fast = hour in (12, 13, 14)
            speed = 100.0 if fast else 30.0
            odometer += speed
            bearing = 60.0 if (day, hour) == (20, 10) else (60.0 if fast else 30.0) + rng.uniform(-2, 2)
            ambient = 20.0 if day in (30, 31) else 10.0
            rows.append(reading("EMU-0002", at(day, hour), odometer, speed, ambient=ambient,
                                **{BEARING: bearing, BRAKE: 3.0 + rng.uniform(-0.3, 0.3)}))
    rows += [reading("WAGON-0001", at(day), wagon_odometer(day), 60.0, load=70.0) for day in (*range(60), LAST_DAY)]
    rows += [reading("WAGON-0002", at(day), 50.0 * (day - 5), 60.0, load=70.0) for day in range(5, 16)]
    return feed_frame(contracts.TELEMETRY, rows)


VEHICLE_TYPE = {v: t for v, t, _ in VEHICLE_ROWS}


def fault(vehicle: str, ts: pd.Timestamp, code: str, grade: str | None = None) -> dict:
    spec = contracts.FAULT_CODE_BY_CODE[code]
    return {"vehicle_number": vehicle, "vehicle_type": VEHICLE_TYPE[vehicle], "depot": "DEP-NORTH", "ts": ts,
            "fault_code": code, "subsystem": spec.subsystem, "grade": grade or spec.typical_grade,
            "description": spec.description}


WAGON_FAULTS = [
    # BR-110 (brakes, grade C): window edges. Day 6's fault is one second before midnight.
    (at(0, 8), "BR-110", None), (at(3, 9), "BR-110", None), (at(3, 17), "BR-110", None),
    (at(6, 23 + 3599 / 3600), "BR-110", None),
    # RG-110 three times within 30 days (days 40, 50, 69): a recurring code on day 69, no longer on day 70.
    (at(40, 10), "RG-110", None), (at(50, 10), "RG-110", None), (at(69, 10), "RG-110", None),
    # Four A/B faults within 365 days (days 100, 150, 200, 300): a recurring offender from day 300 to day 464.
    (at(100), "RG-190", "A"), (at(150), "BR-190", "A"), (at(200), "RG-290", "A"), (at(300), "BR-190", "B"),
]


def faults_frame() -> pd.DataFrame:
    rows = [fault("WAGON-0001", ts, code, grade) for ts, code, grade in WAGON_FAULTS]
    rows += [fault("WAGON-0002", at(5, 10), "BR-110"), fault("WAGON-0002", at(8, 10), "BR-110")]
    rows += [fault("EMU-0001", at(10, 3), "TR-110"), fault("EMU-0001", at(33, 4), "TR-110")]
    rows += [fault("EMU-0002", at(day, 9), "DR-150") for day in (20, 21, 22)]
    for i, row in enumerate(rows, start=1):
        row["event_id"] = f"F-{i:08d}"
    return feed_frame(contracts.FAULTS, rows)


def order(number: int, vehicle: str, action: str, opened: pd.Timestamp, closed: pd.Timestamp | None, odometer: float,
          component: str | None = None, level: int | None = None) -> dict:
    return {"work_order_id": f"WO-{number:06d}", "vehicle_number": vehicle, "depot": "DEP-NORTH", "action": action,
            "component": component, "part_number": None, "maintenance_level": level, "opened_at": opened,
            "closed_at": closed, "odometer_km": odometer}


def work_orders_frame() -> pd.DataFrame:
    """WAGON-0001 (odometer 5,000 + 100 km a day): wheelset replaced 12 days before the data (3,800 km) and
    again on day 12 after failing on day 10 (6,000 km); a level-1 inspection on day 5 (5,500 km) and a level-3
    one closed on day 20 (6,950 km); a level-2 inspection still open from day 25; a brake unit failed on
    day 30 and not yet repaired."""
    rows = [
        order(1, "WAGON-0001", "preventive_replacement", at(-12, 8), at(-12, 15), 3_800.0, component="wheelset"),
        order(2, "WAGON-0001", "inspection", at(5, 6), at(5, 10), 5_500.0, level=1),
        order(3, "WAGON-0001", "corrective_replacement", at(10, 8), at(12, 16), 6_000.0, component="wheelset"),
        order(4, "WAGON-0001", "inspection", at(19, 20), at(20, 4), 6_950.0, level=3),
        order(5, "WAGON-0001", "inspection", at(25, 6), None, 7_500.0, level=2),
        order(6, "WAGON-0001", "corrective_replacement", at(30, 9), None, 8_000.0, component="brake_unit"),
        order(7, "EMU-0001", "inspection", at(8, 6), at(8, 12), 29_000.0, level=2),
        order(8, "EMU-0001", "corrective_replacement", at(34, 9), at(37, 12), 91_000.0, component="traction_motor"),
        order(9, "EMU-0002", "preventive_replacement", at(33, 8), at(33, 14), 40_000.0, component="pantograph"),
    ]
    return feed_frame(contracts.WORK_ORDERS, rows)


@dataclass
class Feeds:
    vehicles: pd.DataFrame
    telemetry: pd.DataFrame
    faults: pd.DataFrame
    work_orders: pd.DataFrame

    def write_lake(self, settings: Settings) -> None:
        for feed, frame in ((contracts.VEHICLES, self.vehicles), (contracts.TELEMETRY, self.telemetry),
                            (contracts.FAULTS, self.faults), (contracts.WORK_ORDERS, self.work_orders)):
            write_lake_feed(settings.lake_dir, feed, frame)

    def spark_frames(self, spark) -> dict[str, DataFrame]:
        return {"telemetry": spark_frame(spark, contracts.TELEMETRY, self.telemetry),
                "faults": spark_frame(spark, contracts.FAULTS, self.faults),
                "work_orders": spark_frame(spark, contracts.WORK_ORDERS, self.work_orders),
                "vehicles": spark_frame(spark, contracts.VEHICLES, self.vehicles)}


def case_feeds() -> Feeds:
    return Feeds(vehicles_frame(), telemetry_frame(), faults_frame(), work_orders_frame())


def build_records(spark, feeds: Feeds, data_root: Path) -> DataFrame:
    """Write the feeds as a lake, run the job as the CLI and the DAG do, and read its records back."""
    settings = Settings(data_root=data_root)
    feeds.write_lake(settings)
    vd.run(spark, settings)
    return read_vehicle_days(spark, record_path(settings, "vehicle_days"))


def read_vehicle_days(spark, path: Path) -> DataFrame:
    return spark.read.parquet(str(path)).select(*vd.vehicle_day_columns())


@dataclass
class Case:
    feeds: Feeds
    data_root: Path
    records: DataFrame


@pytest.fixture(scope="module")
def case(spark, tmp_path_factory) -> Case:
    feeds = case_feeds()
    data_root = tmp_path_factory.mktemp("vehicle_days_case") / "data"
    return Case(feeds, data_root, build_records(spark, feeds, data_root).cache())


def rows_of(records: DataFrame, vehicle: str, days: list[int], columns: list[str]) -> DataFrame:
    return (records.where((F.col("vehicle_number") == vehicle) & F.col("day").isin([on(d) for d in days]))
            .select("day", *columns).orderBy("day"))


def expected(spark, actual: DataFrame, rows: list[tuple]) -> DataFrame:
    """Expected rows (day index first) with the actual frame's column types."""
    return spark.createDataFrame([(on(r[0]), *r[1:]) for r in rows], schema=actual.schema)


# --------------------------------------------------------------------------------------------------
# Operating regime: bands, the normal of a regime and the scores
# --------------------------------------------------------------------------------------------------


def test_operating_regime_bands_include_their_lower_edge(spark):
    vehicles = spark_frame(spark, contracts.VEHICLES, vehicles_frame())
    rows = [
        reading("EMU-0001", at(0, 0), 1.0, 4.99, load=39.9, ambient=-0.1),
        reading("EMU-0001", at(0, 6), 2.0, 5.0, load=40.0, ambient=0.0),
        reading("EMU-0001", at(0, 18), 3.0, 60.0, load=80.0, ambient=15.0),
        reading("EMU-0001", at(1, 23), 4.0, 120.0, load=150.0, ambient=25.0),
    ]
    telemetry = spark_frame(spark, contracts.TELEMETRY, feed_frame(contracts.TELEMETRY, rows))
    actual = (vd.with_operating_regime(telemetry, vehicles)
              .select("odometer_km", "vehicle_type", "day", "hour_frac", *vd.REGIME).orderBy("odometer_km"))
    assert_df_equality(actual, spark.createDataFrame([
        (1.0, "EMU", on(0), 0.0, 0, 0, 0),
        (2.0, "EMU", on(0), 0.25, 1, 1, 1),
        (3.0, "EMU", on(0), 0.75, 2, 2, 2),
        (4.0, "EMU", on(1), 23 / 24, 3, 2, 3),
    ], schema=actual.schema))


def regime_readings(spark) -> DataFrame:
    """EMUs at speed: 12 readings at 40 and 12 at 44 degC on day 0, 24 at 42 on day 1. EMUs slow: 12 at 30 on
    day 0, 12 at 32 on day 1. A wagon at speed: 24 readings at 20 on day 0 (no spread at all)."""
    rows = []
    for hour in range(24):
        rows.append(reading("EMU-0001", at(0, hour), 1.0, 100.0, **{BEARING: 40.0 if hour % 2 else 44.0}))
        rows.append(reading("EMU-0001", at(1, hour), 1.0, 100.0, **{BEARING: 42.0}))
        rows.append(reading("WAGON-0001", at(0, hour), 1.0, 100.0, **{BEARING: 20.0}))
    for hour in range(12):
        rows.append(reading("EMU-0002", at(0, hour), 1.0, 30.0, **{BEARING: 30.0}))
        rows.append(reading("EMU-0002", at(1, hour), 1.0, 30.0, **{BEARING: 32.0}))
    telemetry = spark_frame(spark, contracts.TELEMETRY, feed_frame(contracts.TELEMETRY, rows))
    return vd.with_operating_regime(telemetry, spark_frame(spark, contracts.VEHICLES, vehicles_frame()))


def test_regime_normal_expands_day_by_day_and_waits_for_enough_readings(spark):
    normals = vd.fit_regime_normals(regime_readings(spark))
    actual = normals.select("vehicle_type", "speed_band", "day", f"{BEARING}__normal", f"{BEARING}__spread").orderBy(
        "vehicle_type", "speed_band", "day")
    assert_approx_df_equality(actual, spark.createDataFrame([
        ("EMU", 1, on(0), None, None),  # 12 readings: too few for a normal
        ("EMU", 1, on(1), 31.0, math.sqrt(24 / 23)),  # 24 readings: 12 x 30, 12 x 32
        ("EMU", 2, on(0), 42.0, math.sqrt(96 / 23)),
        ("EMU", 2, on(1), 42.0, math.sqrt(96 / 47)),  # day 0's readings still count, day 1 adds none off 42
        ("WAGON", 2, on(0), 20.0, 0.0),  # the same bands, another vehicle type: its own normal
    ], schema=actual.schema), FEATURE_PRECISION)


def test_readings_are_scored_against_their_regime_of_that_day(spark):
    readings = regime_readings(spark)
    scored = vd.score_readings(readings, vd.fit_regime_normals(readings))
    actual = (scored.select("vehicle_number", "day", BEARING, f"{BEARING}__z").distinct()
              .orderBy("vehicle_number", "day", BEARING))
    z_fast_day0, z_slow_day1 = 2 / math.sqrt(96 / 23), 1 / math.sqrt(24 / 23)
    assert_approx_df_equality(actual, spark.createDataFrame([
        ("EMU-0001", on(0), 40.0, -z_fast_day0),
        ("EMU-0001", on(0), 44.0, z_fast_day0),
        ("EMU-0001", on(1), 42.0, 0.0),
        ("EMU-0002", on(0), 30.0, None),  # no normal yet
        ("EMU-0002", on(1), 32.0, z_slow_day1),
        ("WAGON-0001", on(0), 20.0, None),  # no spread: no score
    ], schema=actual.schema), FEATURE_PRECISION)


def test_a_reading_hot_because_of_speed_is_not_anomalous(spark, case):
    """EMU-0002's fast hours read 60 degC like EMU-0001 always does: normal at speed. Its 60 degC at 30 km/h on
    day 20 is the one anomaly, although EMU-0001's bearings are as hot all the time."""
    frames = case.feeds.spark_frames(spark)
    readings = vd.with_operating_regime(frames["telemetry"], frames["vehicles"])
    scored = vd.score_readings(readings, vd.fit_regime_normals(readings))
    hot = (scored.where((F.col("vehicle_number") == "EMU-0002") & (F.col("day") == on(20)) & (F.col(BEARING) >= 58))
           .select("speed_kmh", f"{BEARING}__z").orderBy("speed_kmh").collect())
    assert [r.speed_kmh for r in hot] == [30.0, 100.0, 100.0, 100.0]
    assert hot[0][f"{BEARING}__z"] > 10
    assert max(abs(r[f"{BEARING}__z"]) for r in hot[1:]) < 2

    records = case.records
    emu1 = records.where((F.col("vehicle_number") == "EMU-0001") & (F.col("day") < on(TELEMETRY_DAYS)))
    assert emu1.agg(F.max(vd.signal_feature(BEARING, "share_beyond", 1))).first()[0] == 0.0
    actual = rows_of(records, "EMU-0002", [19, 20, 21], [vd.signal_feature(BEARING, "share_beyond", 1)])
    assert_df_equality(actual, expected(spark, actual, [(19, 0.0), (20, 1 / 24), (21, 0.0)]))
    assert rows_of(records, "EMU-0002", [20], [vd.signal_feature(BEARING, "max", 1)]).first()[1] > 10


# --------------------------------------------------------------------------------------------------
# Signal windows against numpy on the same hand-built readings
# --------------------------------------------------------------------------------------------------


def band(values: pd.Series, edges: tuple[float, ...]) -> pd.Series:
    return sum((values >= edge).astype(int) for edge in edges)


def reference_scores(feeds: Feeds, signal: str) -> pd.DataFrame:
    """Each reading's z-score against the mean and sample std of every reading of its vehicle type and regime
    up to the end of its day, once there are enough of them: the definition, computed reading by reading."""
    r = feeds.telemetry.merge(feeds.vehicles[["vehicle_number", "vehicle_type"]], on="vehicle_number")
    r = r[r[signal].notna()].copy()
    r["day"] = r["ts"].dt.date
    r["hour_frac"] = (r["ts"] - r["ts"].dt.normalize()) / pd.Timedelta(days=1)
    r["regime"] = list(zip(band(r["speed_kmh"], vd.SPEED_BANDS_KMH), band(r["load_pct"], vd.LOAD_BANDS_PCT),
                           band(r["ambient_temp_c"], vd.AMBIENT_BANDS_C)))
    r["normal"], r["z"] = np.nan, np.nan
    for _, group in r.groupby(["vehicle_type", "regime"]):
        for day in group["day"].unique():
            history = group.loc[group["day"] <= day, signal].to_numpy()
            if len(history) < vd.MIN_NORMAL_READINGS:
                continue
            today = group.index[group["day"] == day]
            r.loc[today, "normal"] = history.mean()
            if history.std(ddof=1) > 1e-9:
                r.loc[today, "z"] = (r.loc[today, signal] - history.mean()) / history.std(ddof=1)
    return r[r["z"].notna()]


def reference_window_stats(scores: pd.DataFrame, signal: str, vehicle: str, day: date, first_day: date) -> list:
    """mean, std, min, max, slope (z per day, least squares) and share beyond the limit over each window,
    then the raw mean and the normal's mean over 7 days."""
    mine = scores[scores["vehicle_number"] == vehicle]
    out = []
    for window in vd.WINDOWS:
        inside = mine[(mine["day"] <= day) & (mine["day"] > day - timedelta(days=window))]
        z = inside["z"].to_numpy()
        t = np.array([(d - first_day).days for d in inside["day"]]) + inside["hour_frac"].to_numpy()
        stats = {
            "mean": z.mean() if len(z) else None,
            "std": z.std(ddof=1) if len(z) > 1 else None,
            "min": z.min() if len(z) else None,
            "max": z.max() if len(z) else None,
            "slope": np.polyfit(t, z, 1)[0] if len(z) > 1 and np.ptp(t) > 0 else None,
            "share_beyond": float(np.mean(np.abs(z) > vd.Z_LIMIT)) if len(z) else None,
        }
        out += [None if stats[s] is None else float(stats[s]) for s in vd.SIGNAL_STATS]
    week = mine[(mine["day"] <= day) & (mine["day"] > day - timedelta(days=7))]
    out += [float(week[signal].mean()) if len(week) else None, float(week["normal"].mean()) if len(week) else None]
    return out


def signal_columns(signal: str) -> list[str]:
    return [vd.signal_feature(signal, s, w) for w in vd.WINDOWS for s in vd.SIGNAL_STATS] + [
        f"{signal}_mean_7d", f"{signal}_normal_7d"]


@pytest.mark.parametrize("signal", [BEARING, BRAKE])
def test_signal_window_stats_match_numpy_on_the_same_readings(spark, case, signal):
    """Days 0-45 of both EMUs: full, partial (first days, the gap, warm days) and emptying windows."""
    scores = reference_scores(case.feeds, signal)
    first_day, days = on(0), range(TELEMETRY_DAYS + 6)
    columns = signal_columns(signal)
    actual = (case.records.where(F.col("vehicle_number").startswith("EMU") & (F.col("day") <= on(days[-1])))
              .select("vehicle_number", "day", *columns).orderBy("vehicle_number", "day"))
    rows = [(v, on(d), *reference_window_stats(scores, signal, v, on(d), first_day))
            for v in ("EMU-0001", "EMU-0002") for d in days]
    assert_approx_df_equality(actual, spark.createDataFrame(rows, schema=actual.schema), 1e-7)


def test_first_day_windows_hold_the_first_day_only(spark, case):
    one_day = [vd.signal_feature(BEARING, s, 1) for s in vd.SIGNAL_STATS]
    first = rows_of(case.records, "EMU-0001", [0], one_day).first()
    for window in vd.WINDOWS[1:]:
        longer = rows_of(case.records, "EMU-0001", [0], [vd.signal_feature(BEARING, s, window) for s in vd.SIGNAL_STATS])
        assert longer.first()[1:] == pytest.approx(first[1:], abs=FEATURE_PRECISION)
    # EMU-0002's first warm day (30): its regimes have too few readings for a normal, so no reading of the day
    # is scored, yet its weekly window still holds the days before.
    warm = rows_of(case.records, "EMU-0002", [30], ["readings_1d", *one_day, vd.signal_feature(BEARING, "mean", 7)])
    values = warm.first()
    assert values.readings_1d == 24
    assert [values[c] for c in one_day] == [None] * len(one_day)
    assert values[vd.signal_feature(BEARING, "mean", 7)] is not None


# --------------------------------------------------------------------------------------------------
# Fault counts
# --------------------------------------------------------------------------------------------------


def test_fault_counts_per_code_grade_and_subsystem_over_windows(spark, case):
    """BR-110 on days 0, 3 (twice) and 6 (23:59:59). A fault on day 0 is in the 7-day window of day 6 (the
    7th day) but not of day 7, in the 30-day window of day 29 but not of day 30."""
    columns = ["faults_code_br_110_1d", "faults_code_br_110_7d", "faults_code_br_110_30d", "faults_grade_c_7d",
               "faults_brakes_30d", "faults_running_gear_30d", "faults_grade_a_30d"]
    actual = rows_of(case.records, "WAGON-0001", [0, 3, 6, 7, 9, 10, 13, 29, 30, 33, 36], columns)
    assert_df_equality(actual, expected(spark, actual, [
        (0, 1, 1, 1, 1, 1, 0, 0),
        (3, 2, 3, 3, 3, 3, 0, 0),
        (6, 1, 4, 4, 4, 4, 0, 0),
        (7, 0, 3, 4, 3, 4, 0, 0),
        (9, 0, 3, 4, 3, 4, 0, 0),
        (10, 0, 1, 4, 1, 4, 0, 0),
        (13, 0, 0, 4, 0, 4, 0, 0),
        (29, 0, 0, 4, 0, 4, 0, 0),
        (30, 0, 0, 3, 0, 3, 0, 0),
        (33, 0, 0, 1, 0, 1, 0, 0),
        (36, 0, 0, 0, 0, 0, 0, 0),
    ]))
    majors = ["faults_grade_a_1d", "faults_grade_a_30d", "faults_grade_b_1d", "faults_running_gear_30d",
              "faults_brakes_7d", "faults_code_br_190_30d"]
    actual = rows_of(case.records, "WAGON-0001", [100, 129, 130, 150, 300], majors)
    assert_df_equality(actual, expected(spark, actual, [
        (100, 1, 1, 0, 1, 0, 0),
        (129, 0, 1, 0, 1, 0, 0),
        (130, 0, 0, 0, 0, 0, 0),
        (150, 1, 1, 0, 0, 1, 1),
        (300, 0, 0, 1, 0, 1, 1),
    ]))


def test_windows_of_a_vehicle_commissioned_during_the_data_start_on_its_first_day(spark, case):
    """WAGON-0002 enters service on day 5 (BR-110 on days 5 and 8; 50 km a day from day 5)."""
    wagon2 = case.records.where(F.col("vehicle_number") == "WAGON-0002")
    assert wagon2.agg(F.min("day")).first()[0] == on(5)
    columns = ["age_days", "faults_code_br_110_7d", "faults_code_br_110_30d", "km_1d", "km_7d", "km_30d",
               "days_since_inspection_l1", "days_since_replacement_wheelset"]
    actual = rows_of(case.records, "WAGON-0002", [5, 6, 8, 11, 12], columns)
    assert_df_equality(actual, expected(spark, actual, [
        (5, 0, 1, 1, 0.0, 0.0, 0.0, 0, 0),
        (6, 1, 1, 1, 50.0, 50.0, 50.0, 1, 1),
        (8, 3, 2, 2, 50.0, 150.0, 150.0, 3, 3),
        (11, 6, 2, 2, 50.0, 300.0, 300.0, 6, 6),
        (12, 7, 1, 2, 50.0, 350.0, 350.0, 7, 7),
    ]))


def test_recurring_code_flag_needs_three_of_a_code_within_30_days(spark, case):
    """RG-110 on days 40, 50 and 69: recurring on day 69; on day 70 (the 31st day from day 40) it is two."""
    columns = ["faults_code_rg_110_30d", "recurring_codes_30d", "recurring_code_flag"]
    actual = rows_of(case.records, "WAGON-0001", [40, 50, 68, 69, 70, 79], columns)
    assert_df_equality(actual, expected(spark, actual, [
        (40, 1, 0, False), (50, 2, 0, False), (68, 2, 0, False), (69, 3, 1, True), (70, 2, 0, False),
        (79, 2, 0, False),
    ]))
    emu2 = rows_of(case.records, "EMU-0002", [21, 22, 49, 50], ["faults_code_dr_150_30d", "recurring_code_flag"])
    assert_df_equality(emu2, expected(spark, emu2, [(21, 2, False), (22, 3, True), (49, 3, True), (50, 2, False)]))


def test_recurring_major_flag_needs_four_a_or_b_faults_within_365_days(spark, case):
    """A/B faults on days 100, 150, 200 and 300: three is not enough (day 299), four is (day 300), and day
    465, the 366th day from day 100, has dropped the first."""
    columns = ["faults_major_365d", "recurring_major_flag"]
    actual = rows_of(case.records, "WAGON-0001", [99, 100, 299, 300, 464, 465, LAST_DAY], columns)
    assert_df_equality(actual, expected(spark, actual, [
        (99, 0, False), (100, 1, False), (299, 3, False), (300, 4, True), (464, 4, True), (465, 3, False),
        (LAST_DAY, 3, False),
    ]))


# --------------------------------------------------------------------------------------------------
# Maintenance clocks
# --------------------------------------------------------------------------------------------------


def wagon_maintenance(day: int) -> tuple:
    """WAGON-0001's clocks on a day, from the work orders of ``work_orders_frame`` (odometer 5,000 + 100/day,
    commissioned 30 days before day 0)."""
    odometer, age = wagon_odometer(day), day + 30
    wheelset = (day + 12, odometer - 3_800.0) if day < 12 else (day - 12, odometer - 6_000.0)
    level1 = (age, odometer) if day < 5 else (day - 5, odometer - 5_500.0) if day < 20 else (day - 20, odometer - 6_950.0)
    level2_3 = (age, odometer) if day < 20 else (day - 20, odometer - 6_950.0)  # the open level-2 order counts not
    open_orders = 1 if 10 <= day < 12 else 1 if day >= 30 else 0
    return (day, age, odometer, *wheelset, age, odometer, age, None, *level1, *level2_3, *level2_3, age, odometer,
            age, odometer, open_orders)


MAINTENANCE_COLUMNS = [
    "age_days", "odometer_km",
    "days_since_replacement_wheelset", "km_since_replacement_wheelset",
    "days_since_replacement_bogie", "km_since_replacement_bogie",
    "days_since_replacement_brake_unit",  # failed on day 30, still open: not replaced
    "days_since_replacement_doors",  # a wagon has no doors
    *(f"{k}_since_inspection_l{lvl}" for lvl in contracts.LEVELS for k in ("days", "km")),
    "open_corrective_work_orders",
]


def test_days_and_km_since_replacement_and_inspection(spark, case):
    """Replacement before the data counts from its own date; a level-3 inspection resets levels 1-3 but not 4
    and 5; an inspection still open resets nothing; a corrective order is open from its opening day to its
    closing day."""
    days = [0, 4, 5, 9, 10, 11, 12, 19, 20, 25, 29, 30, 59]
    actual = rows_of(case.records, "WAGON-0001", days, MAINTENANCE_COLUMNS)
    assert_df_equality(actual, expected(spark, actual, [wagon_maintenance(d) for d in days]))
    emu = rows_of(case.records, "EMU-0001", [7, 8, 33, 34, 36, 37],
                  ["days_since_inspection_l1", "days_since_inspection_l2", "days_since_inspection_l3",
                   "days_since_replacement_traction_motor", "open_corrective_work_orders"])
    since = (date(2024, 1, 1) - date(2020, 1, 1)).days
    assert_df_equality(emu, expected(spark, emu, [
        (7, since + 7, since + 7, since + 7, since + 7, 0),
        (8, 0, 0, since + 8, since + 8, 0),
        (33, 25, 25, since + 33, since + 33, 0),
        (34, 26, 26, since + 34, since + 34, 1),
        (36, 28, 28, since + 36, since + 36, 1),
        (37, 29, 29, since + 37, 0, 0),
    ]))


def test_distance_windows_and_odometer_carry_forward(spark, case):
    """WAGON-0001: 100 km a day to day 59, silent until day 470, whose reading adds the whole distance since."""
    actual = rows_of(case.records, "WAGON-0001", [0, 3, 6, 7, 29, 30, 60, 66, LAST_DAY],
                     ["km_1d", "km_7d", "km_30d", "odometer_km"])
    assert_df_equality(actual, expected(spark, actual, [
        (0, 0.0, 0.0, 0.0, 5_000.0), (3, 100.0, 300.0, 300.0, 5_300.0), (6, 100.0, 600.0, 600.0, 5_600.0),
        (7, 100.0, 700.0, 700.0, 5_700.0), (29, 100.0, 700.0, 2_900.0, 7_900.0), (30, 100.0, 700.0, 3_000.0, 8_000.0),
        (60, 0.0, 600.0, 2_900.0, 10_900.0), (66, 0.0, 0.0, 2_300.0, 10_900.0),
        (LAST_DAY, 41_100.0, 41_100.0, 41_100.0, 52_000.0),
    ]))
    # EMU-0002 reports nothing on days 15-16: no distance, the odometer holds; day 17 adds what it ran since.
    gap = rows_of(case.records, "EMU-0002", [14, 15, 16, 17], ["readings_1d", "km_1d", "odometer_km"]).collect()
    assert [r.readings_1d for r in gap] == [24, 0, 0, 24]
    assert [r.km_1d for r in gap][1:3] == [0.0, 0.0]
    assert gap[1].odometer_km == gap[2].odometer_km == gap[0].odometer_km
    assert gap[3].km_1d == 21 * 30.0 + 3 * 100.0


def test_one_row_per_vehicle_and_day_from_the_data_start_to_its_end(spark, case):
    per_vehicle = {r.vehicle_number: (r.first, r.last, r.n) for r in case.records.groupBy("vehicle_number").agg(
        F.min("day").alias("first"), F.max("day").alias("last"), F.count("*").alias("n")).collect()}
    assert per_vehicle == {
        "EMU-0001": (on(0), on(LAST_DAY), LAST_DAY + 1),
        "EMU-0002": (on(0), on(LAST_DAY), LAST_DAY + 1),
        "WAGON-0001": (on(0), on(LAST_DAY), LAST_DAY + 1),
        "WAGON-0002": (on(5), on(LAST_DAY), LAST_DAY - 4),
    }


# --------------------------------------------------------------------------------------------------
# Leakage: a day's features use only what was known at its end
# --------------------------------------------------------------------------------------------------

KNOWN_UNTIL = 35
"""The leakage test rewrites everything after this day."""


def rewritten_after(feeds: Feeds, last_known: int, seed: int = 99) -> Feeds:
    """The same history up to the end of ``last_known``, another future after it: other readings (hotter, in
    other regimes, from a vehicle back from silence, for 40 more days), other faults (four grade-A ones at
    once), other work orders, and other closing times for the orders still open at the end of that day."""
    cut = at(last_known + 1, 0)
    rng = np.random.default_rng(seed)
    future = []
    for day in range(last_known + 1, LAST_DAY + 40):
        future.append(reading("WAGON-0001", at(day), 20_000.0 + 300.0 * day, 90.0, load=120.0))
        if day > last_known + 30:
            continue
        for hour in range(0, 24, 2):
            for vehicle in ("EMU-0001", "EMU-0002"):
                future.append(reading(
                    vehicle, at(day, hour), 200_000.0 + 1_000.0 * day + hour, rng.choice([3.0, 30.0, 100.0, 130.0]),
                    load=rng.uniform(0, 120), ambient=rng.uniform(-10, 35),
                    **{BEARING: rng.uniform(20, 120), BRAKE: rng.uniform(1, 20)},
                ))
        future.append(reading("WAGON-0002", at(day), 9_999.0 * day, 50.0))
    telemetry = pd.concat([feeds.telemetry[feeds.telemetry["ts"] < cut],
                           feed_frame(contracts.TELEMETRY, future)], ignore_index=True)

    new_faults = [fault("WAGON-0001", at(last_known + 1, h), "RG-190", "A") for h in (1, 2, 3, 4)]
    new_faults += [fault("WAGON-0002", at(last_known + 2, h), "BR-110") for h in range(5)]
    new_faults += [fault("EMU-0002", at(day, 9), "DR-150") for day in range(last_known + 1, last_known + 4)]
    for i, row in enumerate(new_faults, start=1):
        row["event_id"] = f"F-9{i:07d}"
    faults = pd.concat([feeds.faults[feeds.faults["ts"] < cut], feed_frame(contracts.FAULTS, new_faults)],
                       ignore_index=True)

    orders = feeds.work_orders[feeds.work_orders["opened_at"] < cut].copy()
    still_open = orders["closed_at"].isna() | (orders["closed_at"] >= cut)
    assert still_open.sum() >= 3, "the case must have orders open across the cut for this test to mean anything"
    orders.loc[still_open, "closed_at"] = [at(last_known + 1 + i, 1) for i in range(still_open.sum())]
    new_orders = [
        order(901, "WAGON-0001", "inspection", at(last_known + 1, 1), at(last_known + 1, 5), 1.0, level=5),
        order(902, "WAGON-0001", "preventive_replacement", at(last_known + 2), at(last_known + 2, 14), 2.0,
              component="bogie"),
        order(903, "EMU-0002", "corrective_replacement", at(last_known + 1), None, 3.0, component="doors"),
    ]
    work_orders = pd.concat([orders, feed_frame(contracts.WORK_ORDERS, new_orders)], ignore_index=True)
    return Feeds(feeds.vehicles, telemetry, faults, work_orders)


def test_features_of_a_day_do_not_change_when_the_future_does(spark, case, tmp_path):
    """Rebuild on a lake whose telemetry, faults and work orders after day D differ: every column of every
    record up to day D is the same (regime normals included: they are fitted on the fleet up to each day)."""
    rewritten = build_records(spark, rewritten_after(case.feeds, KNOWN_UNTIL), tmp_path / "data")

    def known(records: DataFrame) -> DataFrame:
        return records.where(F.col("day") <= on(KNOWN_UNTIL)).orderBy("vehicle_number", "day")

    assert known(case.records).count() == 4 * (KNOWN_UNTIL + 1) - 5
    assert_approx_df_equality(known(rewritten), known(case.records), FEATURE_PRECISION)

    # The future did change: the records after day D differ.
    changed = rows_of(rewritten, "WAGON-0001", [KNOWN_UNTIL + 1], ["faults_major_365d", "recurring_major_flag",
                                                                   "days_since_inspection_l5"]).first()
    assert (changed.faults_major_365d, changed.recurring_major_flag, changed.days_since_inspection_l5) == (4, True, 0)
    before = rows_of(case.records, "EMU-0001", [KNOWN_UNTIL + 1], [vd.signal_feature(BEARING, "mean", 1)]).first()
    after = rows_of(rewritten, "EMU-0001", [KNOWN_UNTIL + 1], [vd.signal_feature(BEARING, "mean", 1)]).first()
    assert before[1] != pytest.approx(after[1])


# --------------------------------------------------------------------------------------------------
# The job under spark-submit on a Spark standalone cluster (master + one worker on 127.0.0.1)
# --------------------------------------------------------------------------------------------------

CLUSTER_START_S = 180
"""How long the master and the worker may take to come up before the test gives up (a wait, not a check)."""
SUBMIT_TIMEOUT_S = 1_800


def stop_group(process: subprocess.Popen) -> None:
    """Stop a daemon and whatever it started (the worker's executors) by its process group, SIGKILL if need be."""
    stop_process_group(process.pid)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def master_state(web_port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/json/", timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


@dataclass
class Cluster:
    url: str
    web_port: int

    def state(self) -> dict:
        return master_state(self.web_port) or {}


@contextmanager
def standalone_cluster(spark_home: Path, env: dict[str, str], work: Path) -> Iterator[Cluster]:
    """A Spark master and one worker (1 core, 1 GB) bound to 127.0.0.1, each in its own process group."""
    port, web_port, worker_web_port = free_port(), free_port(), free_port()
    spark_class = str(spark_home / "bin" / "spark-class")
    commands = {
        "master": [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                   "--webui-port", str(web_port)],
        "worker": [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host",
                   "127.0.0.1", "--cores", "1", "--memory", "1g", "--work-dir", str(work / "worker"),
                   "--webui-port", str(worker_web_port)],
    }
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            with (work / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                   start_new_session=True)
        deadline = time.monotonic() + CLUSTER_START_S
        while (master_state(web_port) or {}).get("aliveworkers", 0) < 1:
            for name, process in processes.items():
                if process.poll() is not None:
                    pytest.fail(f"Spark {name} exited with {process.returncode}:\n{log_tail(work / f'{name}.log')}")
            if time.monotonic() > deadline:
                pytest.fail(f"no worker registered with the master:\n{log_tail(work / 'worker.log')}")
            time.sleep(0.5)
        yield Cluster(f"spark://127.0.0.1:{port}", web_port)
    finally:
        for name in ("worker", "master"):
            if name in processes:
                stop_group(processes[name])
        leftovers = [p.pid for process in processes.values() for p in group_members(process.pid)]
        assert not leftovers, f"Spark processes left running: {leftovers}"


@pytest.mark.slow
def test_vehicle_days_job_runs_on_a_standalone_cluster(spark, case, tmp_path):
    """spark-submit --master spark://... jobs/records.py vehicle_days (the application the fleet_records DAG
    submits, here with one job) writes the records the local session builds, and reports its progress."""
    import pyspark

    spark_home = Path(pyspark.__path__[0])
    for tool in ("spark-class", "spark-submit"):
        assert (spark_home / "bin" / tool).exists(), f"the pyspark wheel at {spark_home} lacks bin/{tool}"
    data_root = tmp_path / "data"
    shutil.copytree(Settings(data_root=case.data_root).lake_dir, Settings(data_root=data_root).lake_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAILPM_", "SPARK_", "PYSPARK_"))}
    env.update(SPARK_HOME=str(spark_home), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable)

    with standalone_cluster(spark_home, env, tmp_path) as cluster:
        submit_env = {**env, "RAILPM_DATA_ROOT": str(data_root), "RAILPM_SPARK__SHUFFLE_PARTITIONS": "2"}
        command = [str(spark_home / "bin" / "spark-submit"), "--master", cluster.url,
                   str(REPO_ROOT / "jobs" / "records.py"), "vehicle_days"]
        with (tmp_path / "submit.log").open("wb") as log:
            submit = subprocess.Popen(command, env=submit_env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
            try:
                returncode = submit.wait(timeout=SUBMIT_TIMEOUT_S)
            finally:
                stop_group(submit)
        assert returncode == 0, f"spark-submit failed ({returncode}):\n{log_tail(tmp_path / 'submit.log')}"
        deadline = time.monotonic() + 60  # the master files the app as completed when the driver unregisters it
        while not cluster.state().get("completedapps") and time.monotonic() < deadline:
            time.sleep(0.5)
        apps = cluster.state()["completedapps"]
        assert [(a["name"], a["state"]) for a in apps] == [("railpm-records", "FINISHED")]
        said = (tmp_path / "submit.log").read_text()
        assert f"{PROGRESS_MARKER}vehicle_days started" in said and f"{PROGRESS_MARKER}vehicle_days finished (" in said
        assert f"{PROGRESS_MARKER}component_days" not in said  # only the job named

    on_cluster = read_vehicle_days(spark, record_path(Settings(data_root=data_root), "vehicle_days"))
    assert_approx_df_equality(on_cluster.orderBy("vehicle_number", "day"), case.records.orderBy("vehicle_number", "day"),
                              FEATURE_PRECISION)
