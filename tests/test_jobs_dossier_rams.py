"""vehicle_dossier and fleet_rams on small hand-built inputs whose answers are worked out by hand.

Two vehicles, records from 2025-01-01 (the EMU, commissioned long before) and from 2025-06-01 (a wagon
commissioned that day) to 2025-07-19. The EMU runs 100 km a day, the wagon 2,000. The EMU's wheelset fails on
day 50 and day 150 of its 200 record days (100 days apart), each repaired in 6 hours.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from jobs_lake import feed_frame, spark_frame
from railpm import contracts
from railpm.jobs.fleet_rams import build_fault_summary, build_fleet_rams
from railpm.jobs.vehicle_dossier import build_vehicle_dossier

EMU, WAGON = "EMU-0001", "WAGON-0001"
FIRST, LAST = date(2025, 1, 1), date(2025, 7, 19)
WAGON_FIRST = date(2025, 6, 1)
EMU_DAYS = (LAST - FIRST).days + 1  # 200
WAGON_DAYS = (LAST - WAGON_FIRST).days + 1  # 49
FAILURE_1, FAILURE_2 = datetime(2025, 2, 20, 8, tzinfo=timezone.utc), datetime(2025, 5, 31, 8, tzinfo=timezone.utc)


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


def day_of(n: int, start: date = FIRST) -> date:
    return start + timedelta(days=n)


def nullable(schema: T.StructType) -> T.StructType:
    """The schema of a job's output with every field nullable, for the expected rows (some are null)."""
    return T.StructType([T.StructField(f.name, f.dataType, True) for f in schema])


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------

VEHICLE_DAY_SCHEMA = T.StructType([
    T.StructField("vehicle_number", T.StringType()), T.StructField("day", T.DateType()),
    T.StructField("vehicle_type", T.StringType()), T.StructField("home_depot", T.StringType()),
    T.StructField("age_days", T.LongType()), T.StructField("odometer_km", T.DoubleType()),
    T.StructField("km_1d", T.DoubleType()), T.StructField("km_30d", T.DoubleType()),
    T.StructField("faults_major_365d", T.LongType()), T.StructField("recurring_major_flag", T.BooleanType()),
    T.StructField("axle_bearing_temp_c_z_max_7d", T.DoubleType()),
])


def vehicle_day_rows() -> list[tuple]:
    """The columns of vehicle_days the two jobs read, with a signal feature standing for the rest."""
    rows = []
    for vehicle, start, kmd, commissioned in ((EMU, FIRST, 100.0, date(2015, 1, 1)), (WAGON, WAGON_FIRST, 2000.0, WAGON_FIRST)):
        for i in range((LAST - start).days + 1):
            day = day_of(i, start)
            odometer = (10_000.0 if vehicle == EMU else 0.0) + kmd * (i + 1)
            rows.append((vehicle, day, vehicle.split("-")[0], "DEP-NORTH", (day - commissioned).days, odometer, kmd,
                         kmd * min(30, i + 1), 4 if vehicle == EMU else 0, vehicle == EMU, 1.5))
    return rows


@pytest.fixture(scope="module")
def vehicle_days(spark):
    return spark.createDataFrame(vehicle_day_rows(), VEHICLE_DAY_SCHEMA)


@pytest.fixture(scope="module")
def vehicles(spark):
    return spark_frame(spark, contracts.VEHICLES, feed_frame(contracts.VEHICLES, [
        {"vehicle_number": EMU, "vehicle_type": "EMU", "home_depot": "DEP-NORTH", "commissioning_date": "2015-01-01", "daily_km_mean": 100.0},
        {"vehicle_number": WAGON, "vehicle_type": "WAGON", "home_depot": "DEP-NORTH", "commissioning_date": "2025-06-01", "daily_km_mean": 2000.0},
    ]))


def order(n: int, vehicle: str, action: str, opened: datetime, closed: datetime | None, component=None, level=None, km=0.0):
    return {"work_order_id": f"WO-{n}", "vehicle_number": vehicle, "depot": "DEP-NORTH", "action": action,
            "component": component, "maintenance_level": level, "opened_at": opened, "closed_at": closed, "odometer_km": km}


@pytest.fixture(scope="module")
def work_orders(spark):
    six_hours = timedelta(hours=6)
    return spark_frame(spark, contracts.WORK_ORDERS, feed_frame(contracts.WORK_ORDERS, [
        order(1, EMU, "corrective_replacement", FAILURE_1, FAILURE_1 + six_hours, "wheelset", km=15_000.0),
        order(2, EMU, "corrective_replacement", FAILURE_2, FAILURE_2 + six_hours, "wheelset", km=25_000.0),
        order(3, EMU, "preventive_replacement", at(day_of(120), 23), at(day_of(121), 2), "brake_unit", 3, km=22_100.0),
        # A level-3 inspection on day 100 at 20,100 km, a level 2 on day 195 at 29,600 km (it resets level 1 too).
        order(4, EMU, "inspection", at(day_of(100), 23), at(day_of(101), 5), level=3, km=20_100.0),
        order(5, EMU, "inspection", at(day_of(194), 23), at(day_of(195), 4), level=2, km=29_600.0),
        # The wagon's bogie fails on its last day and is still being repaired at the end of the data.
        order(6, WAGON, "corrective_replacement", at(LAST, 18), None, "bogie", km=98_000.0),
    ]))


def fault(n: int, vehicle: str, ts: datetime, code: str) -> dict:
    catalogue = contracts.FAULT_CODE_BY_CODE[code]
    return {"event_id": f"F-{n}", "vehicle_number": vehicle, "vehicle_type": vehicle.split("-")[0], "depot": "DEP-NORTH",
            "ts": ts, "fault_code": code, "subsystem": catalogue.subsystem, "grade": catalogue.typical_grade}


@pytest.fixture(scope="module")
def faults(spark):
    rows = [
        fault(1, EMU, FAILURE_1, "RG-190"), fault(2, EMU, FAILURE_2, "RG-190"),  # grade A, the failures
        fault(3, EMU, at(date(2025, 3, 1), 10), "BR-190"),  # grade A
        fault(4, EMU, at(date(2025, 4, 1), 10), "DR-190"),  # grade B: 4 A/B faults within 365 days
        fault(5, EMU, at(date(2025, 4, 20), 10), "CT-410"),  # one day before the 90-day window
        fault(6, EMU, at(date(2025, 4, 21), 10), "CT-410"),  # its first day (LAST - 89)
        # CM-301 recurred in February (3 within 30 days), not any more; RG-110 recurs now (LAST - 29 .. LAST).
        fault(7, EMU, at(date(2025, 2, 1), 9), "CM-301"), fault(8, EMU, at(date(2025, 2, 10), 9), "CM-301"),
        fault(9, EMU, at(date(2025, 3, 2), 9), "CM-301"),
        fault(10, EMU, at(date(2025, 6, 20), 9), "RG-110"), fault(11, EMU, at(date(2025, 7, 1), 9), "RG-110"),
        fault(12, EMU, at(LAST, 21), "RG-110"),
        fault(13, WAGON, at(LAST, 17), "RG-290"),  # grade A, the bogie failure
    ]
    return spark_frame(spark, contracts.FAULTS, feed_frame(contracts.FAULTS, rows))


# ------------------------------------------------------------------------------------------------
# vehicle_dossier
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dossier(vehicle_days, work_orders, faults, vehicles):
    return build_vehicle_dossier(vehicle_days, work_orders, faults, vehicles).cache()


def test_dossier_is_the_latest_record_with_history_counts(dossier, spark):
    columns = ["vehicle_number", "day", "commissioning_date", "odometer_km", "first_record_day", "observed_days",
               "observed_km", "failures_total", "replacements_total", "preventive_replacements_total", "mtbf_days",
               "mkbf_km", "last_failure_day", "failures_wheelset", "replacements_wheelset", "replacements_brake_unit",
               "failures_bogie", "replacements_doors", "axle_bearing_temp_c_z_max_7d"]
    expected = spark.createDataFrame([
        # 200 days and 20,000 km with two failures: MTBF 100 days, 10,000 km between failures.
        (EMU, LAST, date(2015, 1, 1), 30_000.0, FIRST, EMU_DAYS, 20_000.0, 2, 3, 1, 100.0, 10_000.0, FAILURE_2.date(),
         2, 2, 1, 0, 0, 1.5),
        # 49 days, one failure (still open); a wagon has no doors.
        (WAGON, LAST, WAGON_FIRST, 98_000.0, WAGON_FIRST, WAGON_DAYS, 98_000.0, 1, 1, 0, 49.0, 98_000.0, LAST,
         0, 0, 0, 1, None, 1.5),
    ], nullable(dossier.select(*columns).schema))
    assert_df_equality(dossier.select(*columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_dossier_counts_faults_of_the_last_90_days_and_recurring_codes(dossier, spark):
    columns = ["vehicle_number", "faults_90d", "faults_grade_a_90d", "faults_grade_b_90d", "faults_grade_c_90d",
               "recurring_fault_codes", "faults_major_365d", "recurring_major_flag", "faults_major_worst_365d",
               "recurring_major_ever"]
    expected = spark.createDataFrame([
        # In LAST-89 .. LAST: RG-190 on May 31 (A); CT-410 on Apr 21 and RG-110 three times (C).
        (EMU, 5, 1, 0, 4, "RG-110", 4, True, 4, True),
        (WAGON, 1, 1, 0, 0, None, 0, False, 1, False),
    ], nullable(dossier.select(*columns).schema))
    assert_df_equality(dossier.select(*columns), expected, ignore_row_order=True, ignore_nullable=True)

    history = {r["vehicle_number"]: r["recurring_fault_history"] for r in dossier.select("vehicle_number", "recurring_fault_history").collect()}
    assert [(c.fault_code, c.worst_30d, c.occurrences, c.last_30d) for c in history[EMU]] == [
        ("CM-301", 3, 3, 0), ("RG-110", 3, 3, 3)]
    assert history[WAGON] == []


def test_dossier_lists_open_work_orders(dossier):
    rows = {r["vehicle_number"]: r["open_work_orders"] for r in dossier.select("vehicle_number", "open_work_orders").collect()}
    assert rows[EMU] == []
    assert [(w.work_order_id, w.action, w.component) for w in rows[WAGON]] == [("WO-6", "corrective_replacement", "bogie")]


def test_next_due_inspection_per_level_by_time_or_distance_whichever_first(dossier):
    row = {r["vehicle_number"]: r.asDict() for r in dossier.collect()}
    emu, wagon = row[EMU], row[WAGON]
    # Level 2 done on day 195 (closed 2025-07-15) at 29,600 km: 14 days (07-29) come before 20,000 km
    # (19,600 km to go at 100 km a day). Level 1 counts from it too: 2 days (07-17), already 2 days overdue.
    l2_done = day_of(195)
    assert (emu["last_inspection_l2_day"], emu["last_inspection_l2_km"]) == (l2_done, 29_600.0)
    assert (emu["next_due_l2_day"], emu["next_due_l2_km"], emu["next_due_l2_by"]) == (l2_done + timedelta(days=14), 49_600.0, "time")
    assert (emu["days_to_due_l2"], emu["km_to_due_l2"]) == (10, 19_600.0)
    assert (emu["next_due_l1_day"], emu["days_to_due_l1"], emu["next_due_l1_by"]) == (l2_done + timedelta(days=2), -2, "time")
    # Level 3 done on day 101 at 20,100 km: due 90 days later (07-11), 8 days overdue.
    assert (emu["next_due_l3_day"], emu["days_to_due_l3"], emu["next_due_l3_km"]) == (day_of(101) + timedelta(days=90), -8, 120_100.0)
    # Levels 4 and 5: no inspection in the lake and commissioned before the records: unknown, not invented.
    assert emu["next_due_l4_day"] is None and emu["next_due_l4_by"] is None and emu["last_inspection_l4_day"] is None
    # The wagon, commissioned within the records at 0 km, runs 2,000 km a day: level 5 (2,000,000 km or 8 years)
    # falls due by distance, (2,000,000 - 98,000) / 2,000 = 951 days after its latest day.
    assert (wagon["next_due_l5_day"], wagon["next_due_l5_by"], wagon["km_to_due_l5"]) == (LAST + timedelta(days=951), "distance", 1_902_000.0)
    # Level 1 (3,000 km) was due by distance 47.5 days of running before the latest day: floor(-47.5) = -48.
    assert (wagon["next_due_l1_day"], wagon["next_due_l1_by"]) == (LAST - timedelta(days=48), "distance")


def test_dossier_puts_the_summary_first_and_keeps_every_record_column(dossier, vehicle_days):
    assert dossier.columns[:3] == ["vehicle_number", "day", "vehicle_type"]
    assert len(dossier.columns) == len(set(dossier.columns))
    assert set(vehicle_days.columns) <= set(dossier.columns)
    assert dossier.columns[-1] == "axle_bearing_temp_c_z_max_7d"


# ------------------------------------------------------------------------------------------------
# fleet_rams
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rams(vehicle_days, work_orders):
    return build_fleet_rams(vehicle_days, work_orders).cache()


def test_mtbf_mttr_and_availability_of_a_component_over_the_year(rams, spark):
    columns = ["period", "vehicle_type", "component", "mtbf_days", "mttr_hours", "availability", "mkbf_km",
               "vehicles", "vehicle_days", "km", "failures", "repairs", "repair_hours", "downtime_hours"]
    got = rams.where("period_type = 'year' AND component IN ('wheelset', 'bogie', 'all')").select(*columns)
    wagon_down = 6.0  # the bogie's work order, open from 18:00 on the last day to the end of the data
    expected = spark.createDataFrame([
        # Two wheelset failures in 200 EMU days, 6 h each: MTBF 100 d, MTTR 6 h, 12 h down in 4,800 h.
        ("2025", "EMU", "wheelset", 100.0, 6.0, 1 - 12 / 4800, 10_000.0, 1, EMU_DAYS, 20_000.0, 2, 2, 12.0, 12.0),
        ("2025", "EMU", "bogie", None, None, 1.0, None, 1, EMU_DAYS, 20_000.0, 0, 0, 0.0, 0.0),
        ("2025", "EMU", "all", 100.0, 6.0, 1 - 12 / 4800, 10_000.0, 1, EMU_DAYS, 20_000.0, 2, 2, 12.0, 12.0),
        ("2025", "WAGON", "wheelset", None, None, 1.0, None, 1, WAGON_DAYS, 98_000.0, 0, 0, 0.0, 0.0),
        ("2025", "WAGON", "bogie", 49.0, None, 1 - wagon_down / (WAGON_DAYS * 24), 98_000.0, 1, WAGON_DAYS, 98_000.0, 1, 0, 0.0, wagon_down),
        ("2025", "WAGON", "all", 49.0, None, 1 - wagon_down / (WAGON_DAYS * 24), 98_000.0, 1, WAGON_DAYS, 98_000.0, 1, 0, 0.0, wagon_down),
        # The fleet: the wheelset is fitted to both types, 249 vehicle-days; the bogie too.
        ("2025", "all", "wheelset", 124.5, 6.0, 1 - 12 / (249 * 24), 59_000.0, 2, 249, 118_000.0, 2, 2, 12.0, 12.0),
        ("2025", "all", "bogie", 249.0, None, 1 - wagon_down / (249 * 24), 118_000.0, 2, 249, 118_000.0, 1, 0, 0.0, wagon_down),
        ("2025", "all", "all", 83.0, 6.0, 1 - 18 / (249 * 24), 118_000.0 / 3, 2, 249, 118_000.0, 3, 2, 12.0, 18.0),
    ], nullable(got.schema))
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)


def test_rams_splits_periods_and_fits_components_to_vehicle_types(rams):
    months = rams.where("period_type = 'month' AND vehicle_type = 'EMU' AND component = 'wheelset'")
    by_month = {r["period"]: (r["vehicle_days"], r["failures"]) for r in months.collect()}
    assert by_month["2025-02"] == (28, 1) and by_month["2025-05"] == (31, 1) and by_month["2025-07"] == (19, 0)
    quarters = rams.where("period_type = 'quarter' AND vehicle_type = 'EMU' AND component = 'wheelset'")
    assert sorted((r["period"], r["failures"]) for r in quarters.collect()) == [("2025 Q1", 1), ("2025 Q2", 1), ("2025 Q3", 0)]
    fitted = {(r["vehicle_type"], r["component"]) for r in rams.select("vehicle_type", "component").distinct().collect()}
    assert ("WAGON", "doors") not in fitted and ("EMU", "doors") in fitted and ("all", "doors") in fitted


def test_downtime_is_split_at_period_boundaries_and_overlaps_count_once(spark, vehicle_days):
    """A repair open from Jan 31 18:00 to Feb 1 06:00 is 6 h in January and 6 h in February; a second work
    order open at the same time adds its component's downtime but not the vehicle's."""
    start = datetime(2025, 1, 31, 18, tzinfo=timezone.utc)
    orders = spark_frame(spark, contracts.WORK_ORDERS, feed_frame(contracts.WORK_ORDERS, [
        order(1, EMU, "corrective_replacement", start, start + timedelta(hours=12), "wheelset"),
        order(2, EMU, "corrective_replacement", start + timedelta(hours=2), start + timedelta(hours=8), "doors"),
    ]))
    rams = build_fleet_rams(vehicle_days, orders).where("period_type = 'month' AND vehicle_type = 'EMU'")
    down = {(r["period"], r["component"]): r["downtime_hours"] for r in rams.collect()}
    assert (down[("2025-01", "wheelset")], down[("2025-02", "wheelset")]) == (6.0, 6.0)
    assert (down[("2025-01", "doors")], down[("2025-02", "doors")]) == (4.0, 2.0)
    assert (down[("2025-01", "all")], down[("2025-02", "all")]) == (6.0, 6.0)
    mttr = {(r["period"], r["component"]): r["mttr_hours"] for r in rams.collect()}
    assert mttr[("2025-01", "all")] == 9.0  # (12 + 6) / 2, both opened in January


def test_fault_summary_counts_by_grade_subsystem_depot_and_ranks_codes(spark, vehicle_days, faults):
    summary = build_fault_summary(vehicle_days, faults).where("period_type = 'year'")
    rows = {(r["dimension"], r["category"]): r for r in summary.collect()}
    assert rows[("all", "all")]["faults"] == 13 and rows[("all", "all")]["vehicles"] == 2
    assert {g: rows[("grade", g)]["faults"] for g in ("A", "B", "C")} == {"A": 4, "B": 1, "C": 8}
    assert rows[("grade", "A")]["share"] == pytest.approx(4 / 13)
    assert rows[("subsystem", "running_gear")]["faults"] == 6 and rows[("depot", "DEP-NORTH")]["faults"] == 13
    # Rates: per 1000 vehicle-days of the fleet (249), or of the type's own vehicles.
    assert rows[("all", "all")]["faults_per_1000_vehicle_days"] == pytest.approx(13_000 / 249)
    assert rows[("vehicle_type", "WAGON")]["faults_per_1000_vehicle_days"] == pytest.approx(1_000 / WAGON_DAYS)
    top = sorted((r["rank"], r["category"], r["faults"]) for (d, _), r in rows.items() if d == "fault_code")
    assert top[:3] == [(1, "CM-301", 3), (2, "RG-110", 3), (3, "CT-410", 2)]
    assert rows[("fault_code", "RG-110")]["description"] == contracts.FAULT_CODE_BY_CODE["RG-110"].description
    months = build_fault_summary(vehicle_days, faults).where("period_type = 'month' AND dimension = 'all'")
    assert {r["period"]: r["faults"] for r in months.collect()}["2025-07"] == 3
