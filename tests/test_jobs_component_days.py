"""component_days: survival labels on a hand-built sequence of failures, preventive replacements and the data
end, the component's own features, and the labels of a generated fleet against the generator's truth."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from chispa import assert_df_equality
from jobs_lake import feed_frame, spark_frame
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from railpm import contracts
from railpm.jobs.component_days import build_component_days
from railpm.jobs.records_io import record_path
from railpm.jobs.vehicle_days import build_vehicle_days

START = pd.Timestamp("2024-01-01", tz="UTC")
LAST_DAY = 99
"""Both wagons report daily on days 0-99: day 99 is the end of the data."""
HORIZON = 30
LABELS = [contracts.LABEL_FAILS_WITHIN_HORIZON, contracts.LABEL_DAYS_TO_FAILURE, contracts.LABEL_TIME_OBSERVED,
          contracts.LABEL_EVENT_OBSERVED]


def at(day: int, hour: float = 12.0) -> pd.Timestamp:
    return START + pd.Timedelta(days=day) + pd.Timedelta(hours=hour)


def on(day: int) -> date:
    return (START + pd.Timedelta(days=day)).date()


def order(number: int, vehicle: str, action: str, component: str, opened: int, closed: int) -> dict:
    return {"work_order_id": f"WO-{number:06d}", "vehicle_number": vehicle, "depot": "DEP-SOUTH", "action": action,
            "component": component, "part_number": None, "maintenance_level": None, "opened_at": at(opened, 8),
            "closed_at": at(closed, 16), "odometer_km": 1_000.0 + 100.0 * opened}


WORK_ORDERS = [
    # WAGON-0001: the wheelset fails on day 40 and is replaced preventively on day 70; the brake unit fails on
    # days 5 and 20; the bogie never fails.
    order(1, "WAGON-0001", "corrective_replacement", "wheelset", 40, 41),
    order(2, "WAGON-0001", "preventive_replacement", "wheelset", 70, 70),
    order(3, "WAGON-0001", "corrective_replacement", "brake_unit", 5, 5),
    order(4, "WAGON-0001", "corrective_replacement", "brake_unit", 20, 22),
    # WAGON-0002: the bogie fails on day 50 and on the last day; the wheelset fails on the day it was due for
    # preventive replacement (60).
    order(5, "WAGON-0002", "corrective_replacement", "bogie", 50, 51),
    order(6, "WAGON-0002", "corrective_replacement", "bogie", LAST_DAY, LAST_DAY),
    order(7, "WAGON-0002", "corrective_replacement", "wheelset", 60, 60),
    order(8, "WAGON-0002", "preventive_replacement", "wheelset", 60, 61),
]


def inputs(spark) -> tuple[DataFrame, ...]:
    vehicles = feed_frame(contracts.VEHICLES, [
        {"vehicle_number": v, "vehicle_type": "WAGON", "home_depot": "DEP-SOUTH", "commissioning_date": "2020-01-01",
         "daily_km_mean": 100.0} for v in ("WAGON-0001", "WAGON-0002")
    ])
    telemetry = feed_frame(contracts.TELEMETRY, [
        {"vehicle_number": v, "ts": at(d), "odometer_km": 1_000.0 + 100.0 * d, "speed_kmh": 50.0, "load_pct": 60.0,
         "ambient_temp_c": 12.0} for v in ("WAGON-0001", "WAGON-0002") for d in range(LAST_DAY + 1)
    ])
    warning = contracts.FAULT_CODE_BY_CODE["BR-110"]
    faults = feed_frame(contracts.FAULTS, [
        {"event_id": "F-00000001", "vehicle_number": "WAGON-0001", "vehicle_type": "WAGON", "depot": "DEP-SOUTH",
         "ts": at(3), "fault_code": warning.code, "subsystem": warning.subsystem, "grade": warning.typical_grade}
    ])
    return (spark_frame(spark, contracts.TELEMETRY, telemetry), spark_frame(spark, contracts.FAULTS, faults),
            spark_frame(spark, contracts.WORK_ORDERS, feed_frame(contracts.WORK_ORDERS, WORK_ORDERS)),
            spark_frame(spark, contracts.VEHICLES, vehicles))


@pytest.fixture(scope="module")
def vehicle_days(spark) -> tuple[DataFrame, DataFrame]:
    telemetry, faults, work_orders, vehicles = inputs(spark)
    return build_vehicle_days(telemetry, faults, work_orders, vehicles).cache(), work_orders


@pytest.fixture(scope="module")
def component_days(vehicle_days) -> DataFrame:
    records, work_orders = vehicle_days
    return build_component_days(records, work_orders, HORIZON).cache()


def labels_on(frame: DataFrame, rows: list[tuple]) -> DataFrame:
    wanted = F.lit(False)
    for vehicle, component, day, *_ in rows:
        wanted = wanted | ((F.col("vehicle_number") == vehicle) & (F.col("component") == component)
                           & (F.col("day") == on(day)))
    return frame.where(wanted).select("vehicle_number", "component", "day", *LABELS).orderBy(
        "vehicle_number", "component", "day")


def expected(spark, actual: DataFrame, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame([(v, c, on(d), *labels) for v, c, d, *labels in rows], schema=actual.schema)


# (vehicle, component, day, fails within 30 days, days to failure, time observed, event observed)
LABELLED_ROWS = [
    ("WAGON-0001", "brake_unit", 0, True, 5, 5, True),
    ("WAGON-0001", "brake_unit", 4, True, 1, 1, True),
    ("WAGON-0001", "brake_unit", 5, True, 15, 15, True),  # the day of a failure looks to the next one
    ("WAGON-0001", "brake_unit", 19, True, 1, 1, True),
    ("WAGON-0001", "brake_unit", 20, False, None, 79, False),  # no more failures: censored by the data end
    ("WAGON-0001", "brake_unit", 69, False, None, 30, False),  # 30 days seen without failure: known False
    ("WAGON-0001", "brake_unit", 70, None, None, 29, False),  # 29 days to the data end: unknown
    ("WAGON-0001", "bogie", 0, False, None, 99, False),
    ("WAGON-0001", "bogie", 69, False, None, 30, False),
    ("WAGON-0001", "bogie", 70, None, None, 29, False),
    ("WAGON-0001", "bogie", LAST_DAY, None, None, 0, False),
    ("WAGON-0001", "wheelset", 0, False, 40, 40, True),
    ("WAGON-0001", "wheelset", 9, False, 31, 31, True),  # fails on day 31 after: outside the horizon
    ("WAGON-0001", "wheelset", 10, True, 30, 30, True),  # fails on day 30 after: inside
    ("WAGON-0001", "wheelset", 39, True, 1, 1, True),
    ("WAGON-0001", "wheelset", 40, False, None, 30, False),  # censored by the preventive replacement 30 days on
    ("WAGON-0001", "wheelset", 41, None, None, 29, False),
    ("WAGON-0001", "wheelset", 69, None, None, 1, False),
    ("WAGON-0001", "wheelset", 70, None, None, 29, False),  # after the replacement: censored by the data end
    ("WAGON-0002", "bogie", 50, False, 49, 49, True),
    ("WAGON-0002", "bogie", 68, False, 31, 31, True),
    ("WAGON-0002", "bogie", 69, True, 30, 30, True),  # a failure on the last day of the data is seen
    ("WAGON-0002", "bogie", 98, True, 1, 1, True),
    ("WAGON-0002", "bogie", LAST_DAY, None, None, 0, False),
    ("WAGON-0002", "brake_unit", 0, False, None, 99, False),
    ("WAGON-0002", "wheelset", 30, True, 30, 30, True),  # fails the day it is replaced: the failure counts
    ("WAGON-0002", "wheelset", 59, True, 1, 1, True),
    ("WAGON-0002", "wheelset", 60, False, None, 39, False),
]


def test_labels_from_failures_preventive_replacements_and_the_data_end(spark, component_days):
    actual = labels_on(component_days, LABELLED_ROWS)
    assert_df_equality(actual, expected(spark, actual, sorted(LABELLED_ROWS, key=lambda r: r[:3])))


def test_the_horizon_is_a_setting(spark, vehicle_days):
    records, work_orders = vehicle_days
    rows = [
        ("WAGON-0001", "brake_unit", 0, True, 5, 5, True),
        ("WAGON-0001", "brake_unit", 5, False, 15, 15, True),
        ("WAGON-0001", "wheelset", 29, False, 11, 11, True),
        ("WAGON-0001", "wheelset", 30, True, 10, 10, True),
        ("WAGON-0001", "bogie", 89, False, None, 10, False),
        ("WAGON-0001", "bogie", 90, None, None, 9, False),
    ]
    actual = labels_on(build_component_days(records, work_orders, 10), rows)
    assert_df_equality(actual, expected(spark, actual, sorted(rows, key=lambda r: r[:3])))


def test_one_row_per_fitted_component_and_day(component_days):
    counts = {(r.vehicle_number, r.component): r["count"] for r in
              component_days.groupBy("vehicle_number", "component").count().collect()}
    fitted = contracts.VEHICLE_TYPE_COMPONENTS["WAGON"]
    assert counts == {(v, c): LAST_DAY + 1 for v in ("WAGON-0001", "WAGON-0002") for c in fitted}


def test_component_features_are_the_components_own(spark, component_days):
    """The wheelset was replaced on day 41, the brake unit on days 5 and 22; BR-110 (the brake unit's warning)
    came on day 3."""
    actual = (component_days.where((F.col("vehicle_number") == "WAGON-0001") & F.col("day").isin(on(5), on(45)))
              .select("day", "component", "comp_days_since_replacement", "comp_km_since_replacement",
                      "comp_precursor_faults_7d", "comp_failure_faults_30d")
              .orderBy("day", "component"))
    since_commissioning = (date(2024, 1, 1) - date(2020, 1, 1)).days
    assert_df_equality(actual, spark.createDataFrame([
        (on(5), "bogie", since_commissioning + 5, 1_500.0, 0, 0),
        (on(5), "brake_unit", 0, 0.0, 1, 0),
        (on(5), "wheelset", since_commissioning + 5, 1_500.0, 0, 0),
        (on(45), "bogie", since_commissioning + 45, 5_500.0, 0, 0),
        (on(45), "brake_unit", 23, 2_500.0, 0, 0),
        (on(45), "wheelset", 4, 500.0, 0, 0),
    ], schema=actual.schema))


# --------------------------------------------------------------------------------------------------
# A generated fleet: the labels against the generator's ground truth
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_observed_failures_are_the_generators_failures(spark, model_fleet):
    """Every failure the labels see (day + days to failure, where the event is observed) is a true failure of
    that vehicle's component on that day, and every true failure after a vehicle's first record day is seen."""
    records = spark.read.parquet(str(record_path(model_fleet, "component_days")))
    seen = (records.where(F.col(contracts.LABEL_EVENT_OBSERVED))
            .select("vehicle_number", "component",
                    F.date_add("day", F.col(contracts.LABEL_DAYS_TO_FAILURE).cast("int")).alias("failed_on"))
            .distinct())
    observed = {tuple(r) for r in seen.collect()}
    truth_frame = pd.read_parquet(model_fleet.truth_dir / "failures.parquet")
    truth = {(v, c, ts.date()) for v, c, ts in
             zip(truth_frame["vehicle_number"], truth_frame["component"], truth_frame["failed_at"])}

    assert len(observed) >= 20
    assert observed <= truth, f"failures in the labels the generator never made: {sorted(observed - truth)[:10]}"
    spans = {r.vehicle_number: (r.first, r.last) for r in records.groupBy("vehicle_number").agg(
        F.min("day").alias("first"), F.max("day").alias("last")).collect()}
    in_records = {t for t in truth if t[0] in spans and spans[t[0]][0] < t[2] <= spans[t[0]][1]}
    assert in_records <= observed, f"true failures the labels miss: {sorted(in_records - observed)[:10]}"

    horizon = model_fleet.model.horizon_days
    inconsistent = records.where(
        F.col(contracts.LABEL_DAYS_TO_FAILURE).isNotNull()
        & (F.col(contracts.LABEL_FAILS_WITHIN_HORIZON) != (F.col(contracts.LABEL_DAYS_TO_FAILURE) <= horizon))
    )
    assert inconsistent.count() == 0
    assert records.where(F.col(contracts.LABEL_TIME_OBSERVED) < 0).count() == 0
    assert spans and all(last - first >= timedelta(days=1) for first, last in spans.values())
