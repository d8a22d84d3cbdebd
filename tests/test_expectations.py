"""Real GX validations of the suites: a good three-row frame passes, and each rule catches the row that breaks it."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from railpm import contracts
from railpm.expectations import ROW_ID, SUITES, SuiteInputs, add_derived_columns, rule_of, suite_for, validate_frame
from railpm.expectations.derived import run_hours
from railpm.expectations.suites import STUCK_MIN_HOURS

from helpers import FAULT, REGISTRY, telemetry_row

PARTS = frozenset({"P-WHEEL-EMU", "P-DOOR-EMU"})


@pytest.fixture(scope="module")
def inputs() -> SuiteInputs:
    return SuiteInputs.for_fleet(
        date(2025, 1, 1), 31, datetime(2025, 6, 1, tzinfo=timezone.utc), vehicle_types=REGISTRY, part_numbers=PARTS
    )


def frame_of(feed: contracts.Feed, rows: list[dict]) -> pd.DataFrame:
    """Landing rows as the readers deliver them: every column a string, plus the record number."""
    text = pd.ArrowDtype(pa.string())
    frame = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=text) for c in feed.column_names})
    frame.insert(0, ROW_ID, np.arange(1, len(rows) + 1))
    return frame


def failures(feed: contracts.Feed, rows: list[dict], inputs: SuiteInputs) -> dict[str, list[int]]:
    frame = add_derived_columns(feed, frame_of(feed, rows), inputs)
    verdict = validate_frame(suite_for(feed.name, inputs), frame, asset_name=feed.name, batch_name="test")
    assert verdict.table_failures == []
    assert verdict.result.statistics["evaluated_expectations"] == len(suite_for(feed.name, inputs).expectations)
    return {rule: sorted(int(r) for r in rows_) for rule, rows_ in verdict.failed_rows.items()}




def test_every_expectation_names_its_rule_and_every_contract_range_is_checked(inputs):
    for feed_name, build in SUITES.items():
        suite = build(inputs)
        rules = [rule_of(e) for e in suite.expectations]
        assert all(rules), feed_name
        feed = contracts.FEEDS[feed_name]
        for column in feed.columns:
            if column.min is not None or column.max is not None:
                assert f"{column.name}_in_range" in rules
            if column.allowed is not None:
                assert f"{column.name}_allowed" in rules
            if not column.nullable:
                assert f"{column.name}_not_null" in rules
        assert ("vehicle_known" in rules) == feed.references_registry


def test_telemetry_suite_passes_good_rows_and_flags_each_rule(inputs):
    good = [telemetry_row("EMU-0001", 0), telemetry_row("EMU-0001", 1), telemetry_row("WAGON-0001", 0)]
    assert failures(contracts.TELEMETRY, good, inputs) == {}

    bad = [
        telemetry_row("EMU-0001", 0, ambient_temp_c="277.4"),  # 1: kelvin, not degC
        telemetry_row("EMU-0001", 1, wheel_flange_mm="1.201"),  # 2: inches, not mm
        telemetry_row("EMU-0009", 2),  # 3: not in the registry
        telemetry_row("EMU-0001", 3, battery_voltage_v=None),  # 4: an EMU reports its battery
        telemetry_row("WAGON-0001", 3),  # 5: a wagon has no battery signal: fine
        telemetry_row("EMU-0001", 4, speed_kmh="ERR"),  # 6: text in a numeric field
        telemetry_row("EMU-0001", 5, ts="yesterday"),  # 7
        telemetry_row("EMU-0001", 6, ts="2024-12-31T23:00:00Z"),  # 8: before the fleet period
        telemetry_row("EMU-0001", 7, odometer_km="-5"),  # 9
        telemetry_row("EMU-0001", 8, speed_kmh="1.5"),  # 10: same vehicle and hour as 11
        telemetry_row("EMU-0001", 8, speed_kmh="2.5"),  # 11
        telemetry_row("EMU-0001", 9, vehicle_number=None),  # 12
    ]
    assert failures(contracts.TELEMETRY, bad, inputs) == {
        "ambient_temp_c_in_range": [1],
        "wheel_flange_mm_in_range": [2],
        "vehicle_known": [3],
        "signal_present": [4],
        "malformed_line": [6],
        "ts_parseable": [7],
        "ts_in_period": [8],
        "odometer_km_in_range": [9],
        "key_unique": [10, 11],
        "vehicle_number_not_null": [12],
    }


def test_stuck_sensor_needs_six_identical_hours_of_one_vehicle(inputs):
    frozen = "55.555"
    hours = [*range(10), *range(8)]
    rows = [telemetry_row("EMU-0001", h) for h in range(10)] + [telemetry_row("EMU-0002", h) for h in range(8)]
    for row, hour in zip(rows, hours):  # six frozen hours on EMU-0001, only five on EMU-0002
        frozen_hours = range(2, 2 + STUCK_MIN_HOURS) if row["vehicle_number"] == "EMU-0001" else range(STUCK_MIN_HOURS - 1)
        if hour in frozen_hours:
            row["door_close_time_s"] = frozen
    rows.reverse()  # order in the file does not matter: runs are taken per vehicle in time order
    found = failures(contracts.TELEMETRY, rows, inputs)
    stuck_rows = sorted(i + 1 for i, r in enumerate(rows) if r["vehicle_number"] == "EMU-0001" and r["door_close_time_s"] == frozen)
    assert len(stuck_rows) == STUCK_MIN_HOURS
    assert found == {"signal_not_stuck": stuck_rows}


def test_timestamps_later_than_the_reference_time_are_rejected():
    early = SuiteInputs.for_fleet(date(2025, 1, 1), 31, datetime(2025, 1, 1, 12, tzinfo=timezone.utc), vehicle_types=REGISTRY)
    rows = [telemetry_row("EMU-0001", 11), telemetry_row("EMU-0001", 13)]
    assert failures(contracts.TELEMETRY, rows, early) == {"ts_not_future": [2]}


def test_run_hours_counts_identical_consecutive_readings_per_vehicle():
    vehicle = np.array([0, 0, 0, 0, 1, 1, 1])
    ts = np.array([3, 1, 2, 4, 1, 2, 3])
    reading = np.array([7.0, 7.0, 7.0, 8.0, 7.0, np.nan, np.nan])
    order = np.lexsort((ts, vehicle))
    assert run_hours(order, vehicle, reading).tolist() == [3, 3, 3, 1, 1, 0, 0]




def test_fault_suite_checks_codes_grades_and_unique_event_ids(inputs):
    good = [FAULT, {**FAULT, "event_id": "F-000002", "grade": "A", "fault_code": "BR-190"}, {**FAULT, "event_id": "F-000003", "description": None}]
    assert failures(contracts.FAULTS, good, inputs) == {}
    bad = [
        {**FAULT, "event_id": "F-1", "grade": "D"},
        {**FAULT, "event_id": "F-2", "fault_code": "XX-999"},
        {**FAULT, "event_id": "F-3", "subsystem": "engine"},
        {**FAULT, "event_id": "F-4"},
        {**FAULT, "event_id": "F-4", "grade": "B"},
        {**FAULT, "event_id": None},
        {**FAULT, "event_id": "F-6", "depot": "DEP-MOON"},
    ]
    assert failures(contracts.FAULTS, bad, inputs) == {
        "grade_allowed": [1],
        "fault_code_allowed": [2],
        "subsystem_allowed": [3],
        "key_unique": [4, 5],
        "event_id_not_null": [6],
        "depot_allowed": [7],
    }


WORK_ORDER = {
    "work_order_id": "WO-000001",
    "vehicle_number": "EMU-0002",
    "depot": "DEP-SOUTH",
    "action": "corrective_replacement",
    "component": "wheelset",
    "part_number": "P-WHEEL-EMU",
    "maintenance_level": "3",
    "opened_at": "2025-01-10T08:00:00Z",
    "closed_at": "2025-01-10T16:00:00Z",
    "odometer_km": "250000.5",
}


def test_work_order_suite_checks_levels_parts_and_closing_after_opening(inputs):
    good = [WORK_ORDER, {**WORK_ORDER, "work_order_id": "WO-2", "closed_at": None}, {**WORK_ORDER, "work_order_id": "WO-3", "action": "inspection", "component": None, "part_number": None}]
    assert failures(contracts.WORK_ORDERS, good, inputs) == {}
    bad = [
        {**WORK_ORDER, "work_order_id": "WO-1", "maintenance_level": "6"},
        {**WORK_ORDER, "work_order_id": "WO-2", "maintenance_level": "2.5"},
        {**WORK_ORDER, "work_order_id": "WO-3", "closed_at": "2025-01-09T08:00:00Z"},
        {**WORK_ORDER, "work_order_id": "WO-4", "part_number": "P-UNKNOWN"},
        {**WORK_ORDER, "work_order_id": "WO-5", "component": "engine"},
        {**WORK_ORDER, "work_order_id": "WO-6", "action": "repaint"},
    ]
    assert failures(contracts.WORK_ORDERS, bad, inputs) == {
        "maintenance_level_allowed": [1],
        "malformed_line": [2],
        "closed_after_opened": [3],
        "part_known": [4],
        "component_allowed": [5],
        "action_allowed": [6],
    }


def test_reference_feed_suites_check_types_ranges_and_the_catalogue(inputs):
    vehicle = {"vehicle_number": "EMU-0001", "vehicle_type": "EMU", "home_depot": "DEP-EAST", "commissioning_date": "2012-04-01", "daily_km_mean": "650.5"}
    assert failures(contracts.VEHICLES, [vehicle], inputs) == {}
    bad_vehicles = [
        {**vehicle, "vehicle_number": "BUS-1", "vehicle_type": "BUS"},
        {**vehicle, "vehicle_number": "EMU-2", "daily_km_mean": "-3"},
        {**vehicle, "vehicle_number": "EMU-3", "commissioning_date": "01/04/2012"},
        {**vehicle, "vehicle_number": "EMU-4", "commissioning_date": "2031-01-01"},
    ]
    assert failures(contracts.VEHICLES, bad_vehicles, inputs) == {
        "vehicle_type_allowed": [1],
        "daily_km_mean_in_range": [2],
        "commissioning_date_parseable": [3],
        "commissioning_date_not_future": [4],
    }
    stock = {"depot": "DEP-EAST", "part_number": "P-DOOR-EMU", "on_hand": "4", "as_of": "2025-01-01"}
    bad_stock = [stock, {**stock, "depot": "DEP-WEST", "part_number": "P-OTHER"}, {**stock, "depot": "DEP-NORTH", "on_hand": "-1"}]
    assert failures(contracts.STOCK, bad_stock, inputs) == {"part_known": [2], "on_hand_in_range": [3]}
