"""The service rules of ``railpm.rules``: one window each, the same answer in every place that applies them, and the
work they create."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from jobs_lake import feed_frame, spark_frame, write_lake_feed

from railpm import contracts, rules

START = datetime(2025, 3, 1, tzinfo=timezone.utc)
VEHICLES = ("EMU-0001", "EMU-0002", "EMU-0003")


def at(day: float) -> datetime:
    return START + timedelta(days=day)


def fault(n: int, vehicle: str, day: float, code: str = "BR-110", grade: str | None = None) -> dict:
    meta = contracts.FAULT_CODE_BY_CODE[code]
    return {"event_id": f"F-{n}", "vehicle_number": vehicle, "vehicle_type": "EMU", "depot": "DEP-NORTH", "ts": at(day),
            "fault_code": code, "subsystem": meta.subsystem, "grade": grade or meta.typical_grade}


def edge_case() -> pd.DataFrame:
    """EMU-0001: a code on days 0, 15 and 30 (late in the day): not recurring. EMU-0002: days 0, 15 and 29: recurring.
    EMU-0003: days 0 (late) and 15 and 29 (early): recurring (calendar days, not hours)."""
    rows = [fault(0, "EMU-0001", 0.1), fault(1, "EMU-0001", 15.5), fault(2, "EMU-0001", 30.95),
            fault(3, "EMU-0002", 0.5), fault(4, "EMU-0002", 15.5), fault(5, "EMU-0002", 29.5),
            fault(6, "EMU-0003", 0.95), fault(7, "EMU-0003", 15.5), fault(8, "EMU-0003", 29.05)]
    return feed_frame(contracts.FAULTS, rows)


EXPECTED_RECURRING = {"EMU-0001": False, "EMU-0002": True, "EMU-0003": True}


def test_the_recurring_window_is_calendar_days_and_every_place_gives_the_same_answer(spark, tmp_path):
    from railpm.jobs import vehicle_days as vd
    from railpm.jobs.vehicle_dossier import recurring_codes
    from railpm.review.data import recurring_faults

    faults = edge_case()
    # pandas/DuckDB (planning)
    counted = rules.counted_faults(faults)
    assert counted.groupby("vehicle_number")["n_code"].max().ge(3).to_dict() == EXPECTED_RECURRING
    # review app (DuckDB over the lake)
    write_lake_feed(tmp_path, contracts.FAULTS, faults)
    review = set(recurring_faults(tmp_path)["vehicle_number"])
    assert {v: v in review for v in VEHICLES} == EXPECTED_RECURRING
    # dossier (Spark): the codes that ever recurred
    spark_faults = spark_frame(spark, contracts.FAULTS, faults)
    latest = spark.createDataFrame(
        [(v, date(2025, 3, 1), date(2025, 4, 30)) for v in VEHICLES], "vehicle_number string, first_record_day date, day date")
    history = {r["vehicle_number"]: len(r["recurring_fault_history"]) for r in recurring_codes(spark_faults, latest).collect()}
    assert {v: history.get(v, 0) > 0 for v in VEHICLES} == EXPECTED_RECURRING
    # records (Spark vehicle_days): the flag on the third fault's day
    registry = feed_frame(contracts.VEHICLES, [
        {"vehicle_number": v, "vehicle_type": "EMU", "home_depot": "DEP-NORTH", "commissioning_date": date(2020, 1, 1),
         "daily_km_mean": 500.0} for v in VEHICLES])
    telemetry, work_orders = (spark_frame(spark, feed, feed_frame(feed, [])) for feed in (contracts.TELEMETRY, contracts.WORK_ORDERS))
    records = vd.build_vehicle_days(telemetry, spark_faults, work_orders, spark_frame(spark, contracts.VEHICLES, registry))
    flags = {r["vehicle_number"]: r["flag"] for r in
             records.groupBy("vehicle_number").agg({"recurring_code_flag": "max"}).withColumnRenamed(
                 "max(recurring_code_flag)", "flag").collect()}
    assert flags == EXPECTED_RECURRING


def test_a_recurring_fault_creates_exactly_one_work_request_per_component_and_window():
    # Brake-unit codes: BR-110 (C) on days 0, 5, 10, 12, 20 (count reaches 3 on day 10, stays >= 3 until day 39),
    # BR-190 (A) once on day 11; then BR-110 again on days 45, 50, 55: a new window, a second request.
    days = [0, 5, 10, 12, 20, 45, 50, 55]
    rows = [fault(i, "EMU-0001", d + 0.5) for i, d in enumerate(days)]
    rows += [fault(20, "EMU-0001", 11.5, "BR-190"), fault(21, "EMU-0002", 3.5, "DR-150"), fault(22, "EMU-0002", 4.5, "DR-150"),
             fault(23, "EMU-0002", 5.5, "DR-150")]  # passenger-caused: no component, no request
    requests = rules.work_requests(feed_frame(contracts.FAULTS, rows))
    replace = requests.loc[requests["kind"] == "replace_component"]
    assert replace[["vehicle_number", "component", "raised_day"]].values.tolist() == [
        ["EMU-0001", "brake_unit", date(2025, 3, 11)], ["EMU-0001", "brake_unit", date(2025, 4, 25)]]
    assert replace["window_end"].tolist() == [date(2025, 4, 9), date(2025, 5, 24)]
    assert not replace.duplicated(["vehicle_number", "component", "raised_day"]).any()


def test_four_major_faults_within_a_year_escalate_the_vehicle_once_per_window():
    rows = [fault(i, "EMU-0001", d, "RG-190") for i, d in enumerate([0, 100, 200, 364.5, 370])]
    rows += [fault(10 + i, "EMU-0002", d, "RG-190") for i, d in enumerate([0, 100, 200, 365.5])]  # day 0 left the window
    requests = rules.work_requests(feed_frame(contracts.FAULTS, rows))
    escalations = requests.loc[requests["kind"] == "vehicle_escalation"]
    assert escalations[["vehicle_number", "raised_day"]].values.tolist() == [["EMU-0001", (START + timedelta(days=364)).date()]]
    assert escalations["faults"].tolist() == [5]


def test_an_a_grade_faults_clocks_run_from_its_timestamp_to_the_work_orders_events(spark):
    from railpm.jobs.fleet_rams import build_response_clocks

    faults = feed_frame(contracts.FAULTS, [
        fault(1, "EMU-0001", 0, "RG-190"),  # answered in 1.5 h, closed (on site at the latest) after 6 h: on time
        fault(2, "EMU-0002", 0, "RG-190"),  # answered in 3 h, closed after 30 h: late on both
        fault(3, "EMU-0003", 0, "RG-190"),  # never answered: late on both
        fault(4, "EMU-0001", 10, "DR-190"),  # grade B: no clock
    ])
    hour = timedelta(hours=1)

    def order(n, vehicle, opened, closed, action="corrective_replacement"):
        return {"work_order_id": f"W-{n}", "vehicle_number": vehicle, "depot": "DEP-NORTH", "action": action,
                "component": "wheelset", "opened_at": opened, "closed_at": closed, "odometer_km": 0.0}

    orders = feed_frame(contracts.WORK_ORDERS, [
        order(1, "EMU-0001", at(0) + 1.5 * hour, at(0) + 6 * hour),
        order(2, "EMU-0002", at(0) - hour, at(0)),  # before the fault: not its answer
        order(3, "EMU-0002", at(0) + 3 * hour, at(0) + 30 * hour),
        order(4, "EMU-0003", at(0) + hour, at(0) + 2 * hour, action="inspection"),  # not a corrective order
    ])
    clocks = rules.response_clocks(faults, orders).set_index("event_id")
    assert list(clocks.index) == ["F-1", "F-2", "F-3"]
    assert clocks.loc["F-1", "feedback_hours"] == pytest.approx(1.5) and clocks.loc["F-1", "on_site_hours"] == pytest.approx(6)
    assert clocks.loc["F-2", "work_order_id"] == "W-3" and clocks.loc["F-2", "feedback_hours"] == pytest.approx(3)
    assert clocks["feedback_on_time"].tolist() == [True, False, False]
    assert clocks["on_site_on_time"].tolist() == [True, False, False]
    # The RAMS figures (Spark, the same SQL): on-time rates per depot, month and quarter.
    rates = build_response_clocks(spark_frame(spark, contracts.FAULTS, faults), spark_frame(spark, contracts.WORK_ORDERS, orders))
    rows = {(r["period_type"], r["period"], r["depot"]): r for r in rates.collect()}
    assert set(rows) == {(kind, label, depot) for kind, label in (("month", "2025-03"), ("quarter", "2025 Q1"))
                         for depot in ("DEP-NORTH", "all")}
    quarter = rows[("quarter", "2025 Q1", "DEP-NORTH")]
    assert (quarter["a_faults"], quarter["answered"]) == (3, 2)
    assert quarter["feedback_on_time"] == pytest.approx(1 / 3) and quarter["on_site_on_time"] == pytest.approx(1 / 3)
    assert quarter["feedback_hours_median"] == pytest.approx(2.25) and quarter["on_site_measured_by"] == "closed_at"


def test_the_rams_page_shows_the_response_clocks(tmp_path):
    from railpm.config import Settings
    from railpm.review.pages import ReviewData, Site, environment, rams_page, render

    settings = Settings(data_root=tmp_path)
    page = render(environment(), rams_page(ReviewData(settings)), Site())
    assert "A-grade response clocks" in page and "no A-grade response clocks yet" in page
    folder = settings.records_dir / "response_clocks"
    folder.mkdir(parents=True)
    pd.DataFrame([{"period_type": "quarter", "period_start": date(2025, 1, 1), "period": "2025 Q1", "depot": "DEP-SOUTH",
                   "a_faults": 4, "answered": 3, "feedback_on_time": 0.75, "on_site_on_time": 0.5}]).to_parquet(folder / "part-0.parquet")
    page = render(environment(), rams_page(ReviewData(settings)), Site())
    assert "DEP-SOUTH" in page and "2025 Q1" in page and "no A-grade response clocks yet" not in page


def test_a_request_stays_open_until_a_work_order_answers_it():
    from railpm.costs import CostModel
    from railpm.planning.work import open_work_requests

    faults = feed_frame(contracts.FAULTS, [fault(i, v, d) for i, (v, d) in enumerate(
        [("EMU-0001", 1.5), ("EMU-0001", 2.5), ("EMU-0001", 3.5), ("EMU-0002", 1.5), ("EMU-0002", 2.5), ("EMU-0002", 3.5)])])
    vehicles = feed_frame(contracts.VEHICLES, [{"vehicle_number": v, "vehicle_type": "EMU", "home_depot": "DEP-EAST"} for v in VEHICLES])
    # EMU-0002's brake unit was replaced the day after the request: answered. EMU-0001's is still open.
    orders = feed_frame(contracts.WORK_ORDERS, [{"work_order_id": "W-1", "vehicle_number": "EMU-0002", "depot": "DEP-EAST",
                                                 "action": "preventive_replacement", "component": "brake_unit",
                                                 "opened_at": at(4.5), "closed_at": at(4.7)}])
    costs = CostModel.default()
    work = open_work_requests(faults, orders, vehicles, date(2025, 3, 10), costs)
    assert work[["kind", "vehicle_number", "component", "home_depot"]].values.tolist() == [
        ["replace_component", "EMU-0001", "brake_unit", "DEP-EAST"]]
    assert work["estimated_cost_eur"].tolist() == [costs.preventive("brake_unit")]
    # Before the third fault there was nothing to do; after the window it has lapsed.
    assert open_work_requests(faults, orders, vehicles, date(2025, 3, 3), costs).empty
    assert open_work_requests(faults, orders, vehicles, date(2025, 4, 10), costs).empty
