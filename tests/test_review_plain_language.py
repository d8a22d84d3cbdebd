"""Plain language on the rendered pages (TestClient HTML of the tiny review fleet): counts as whole numbers,
plurals that agree, durations to a sensible precision, availability as a percentage, dates with their time
zone, and a rejected form that says what to fix in words and keeps what was typed."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from helpers import FLEET, GOOD_DECISION, add_accounts, sign_in, signed


def _app(settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    add_accounts(settings)
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8050")


def test_counts_durations_and_percentages_read_as_people_write_them(fleet_settings):
    records = fleet_settings.records_dir
    (records / "vehicle_dossier").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([
        {"vehicle_number": n, "as_of": date(2025, 2, 9), "observed_days": 40.0, "observed_km": 20123.4,
         "mtbf_days": 1460.0, "mkbf_km": 730061.7, "failures_total": 3.0} for n, _, _ in FLEET]),
        records / "vehicle_dossier" / "part-0.parquet")
    (records / "fleet_rams").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([
        {"period_type": p, "period_start": date(2025, 1, 1), "vehicle_type": t, "component": c, "mtbf_days": 1460.0,
         "mttr_hours": 5.25, "availability": 0.9712, "vehicles": 40.0, "failures": 20.0}
        for p in ("year", "month") for t in ("EMU", "all") for c in ("bogie", "all")]), records / "fleet_rams" / "part-0.parquet")
    with _app(fleet_settings) as client:
        sign_in(client, "a.engineer")
        overview = client.get("/").text
        vehicle = client.get("/vehicles/EMU-0001").text
        rams = client.get("/rams").text
    # one vehicle per depot in this fleet: "1 vehicle", never "1 vehicles"
    assert "(1 vehicle)" in overview and "(1 vehicles)" not in overview
    summary = vehicle[vehicle.index('id="dossier"'):vehicle.index("<details>")]
    assert "<b>3</b><span>failures so far" in summary and "3.0</b>" not in summary
    assert "<b>1,460</b><span>MTBF so far (days)" in summary and "1,460.0" not in summary
    assert "<b>730,062</b><span>MKBF so far (km)" in summary
    assert re.search(r"<b>\d{1,3}\.\d %</b><span>availability %", summary), "availability as a percentage"
    assert "observed km</dt><dd>20,123</dd>" in summary
    table = rams[rams.index("<table"):]
    assert "97.1 %" in table and "0.97" not in table, "availability as a percentage in the table"
    assert "<td class=\"num\">1,460</td>" in table and "1,460.00" not in table
    assert "<td class=\"num\">20</td>" in table and "20.00" not in table and "<td class=\"num\">40</td>" in table
    assert "Availability per component and vehicle type (availability %, year from 2025-01-01)" in rams


def test_a_rejected_decision_says_what_to_fix_in_words_and_keeps_the_input(fleet_settings):
    with _app(fleet_settings) as client:
        sign_in(client, "a.engineer")
        answer = client.post("/feedback", data=signed(client, {**GOOD_DECISION, "reason": "meh"}))
    assert answer.status_code == 422
    assert "Not recorded: reason: dismissing needs a reason of at least 5 characters" in answer.text
    assert "None" not in answer.text[answer.text.index('class="error"'):][:300] and "rule" not in answer.text.split('class="error"')[1][:300]
    assert 'value="meh"' in answer.text, "the rejected form keeps what was typed"


def test_score_prints_each_reason_as_a_whole_sentence():
    import json

    import pandas as pd
    from rich.console import Console

    from railpm.cli import risk_table

    top = pd.DataFrame([{
        "vehicle_number": "EMU-0001", "component": "wheelset", "failure_probability": 0.82, "risk_band": "high", "alert": True,
        "remaining_life_days": 9.2, "remaining_life_low_days": 3.4, "remaining_life_high_days": 30.0,
        "reasons": json.dumps([{"feature": "axle_bearing_temp_c_z_mean_1d", "value": 5.63, "contribution": 0.17},
                               {"feature": "faults_code_rg_110_7d", "value": 3.0, "contribution": 0.05}]),
    }])
    console = Console(width=400, record=True)
    console.print(risk_table(top))
    text = console.export_text()
    assert "axle-box bearing temperature (degC) 5.6 sd above this vehicle's normal, last day; " \
           "3 × fault RG-110 (axle-box temperature high warning), last 7 days" in text
    assert "{" not in text and "feature" not in text and "9 (3-30)" in text


def test_kept_results_and_figures_follow_a_change_of_the_data(fleet_settings):
    """The per-process caches (query results, figures, warmed pages) never show data that has been replaced."""
    import pandas as pd

    from railpm import layers
    from railpm.review.app import warm_pages
    from railpm.review.pages import FLEET_PAGES

    assert warm_pages(fleet_settings) == len(FLEET_PAGES) + 1  # and the one alerted vehicle's page
    with _app(fleet_settings) as client:
        sign_in(client, "a.engineer")
        before = client.get("/").text
        latest = layers.predictions_files(fleet_settings.predictions_dir)[-1]
        frame = pd.read_parquet(latest)
        frame.loc[frame["vehicle_number"] == "EMU-0001", "home_depot"] = "DEP-RENAMED"
        table = pa.Table.from_pandas(frame, schema=pq.read_schema(latest), preserve_index=False)
        pq.write_table(table, latest.with_suffix(".tmp"))
        latest.with_suffix(".tmp").replace(latest)  # as scoring writes: a new file swapped in
        after = client.get("/").text
    assert "DEP-RENAMED" not in before and "DEP-RENAMED" in after


def test_next_inspections_due_read_per_level_from_the_records_jobs_fields():
    from railpm.review.pages import next_due

    row = {"next_due_l1_day": date(2025, 1, 13), "next_due_l1_km": 8000.0, "next_due_l1_by": "time", "days_to_due_l1": -77,
           "km_to_due_l1": -36500.0, "next_due_l2_day": None, "next_due_l2_km": None, "next_due_l2_by": None,
           "days_to_due_l2": None, "km_to_due_l2": None}
    assert next_due(row) == [{"level": "L1", "next due day": date(2025, 1, 13), "next due km": 8000.0, "first by": "time",
                              "days to due": -77, "km to due": -36500.0, "status": "overdue"}]
