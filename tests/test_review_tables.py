"""Server-side tables and their exports: filters, search, sort and paging on the server; CSV/XLSX with the
page's rows and formula-like cells made inert; the CMMS work requests of a plan."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest

from railpm.review import tables
from helpers import add_accounts, sign_in


def fleet_frame(n: int = 120) -> pd.DataFrame:
    return pd.DataFrame({
        "vehicle_number": [f"EMU-{i:04d}" for i in range(n)],
        "home_depot": ["DEP-NORTH" if i % 3 else "DEP-SOUTH" for i in range(n)],
        "failure_probability": [i / n for i in range(n)],
        "note": ["=HYPERLINK(\"http://x\")" if i == 5 else "-1+1" if i == 6 else "ok" for i in range(n)],
    })


def test_filter_search_sort_and_page_happen_on_the_server():
    frame = fleet_frame()
    q = tables.Query.from_params({"home_depot": "DEP-SOUTH", "sort": "failure_probability", "dir": "desc", "page": "2",
                                  "per_page": "10"})
    view = tables.view("vehicles", frame, q)
    assert view.total == 40 and view.pages == 4 and len(view.rows) == 10
    assert [r["vehicle_number"] for r in view.rows][:2] == ["EMU-0087", "EMU-0084"]
    assert view.options["home_depot"] == ["DEP-NORTH", "DEP-SOUTH"]
    searched = tables.view("vehicles", frame, tables.Query.from_params({"q": "emu-011"}))
    assert [r["vehicle_number"] for r in searched.rows] == [f"EMU-{i:04d}" for i in range(110, 120)]
    beyond = tables.view("vehicles", frame, tables.Query.from_params({"page": "99", "per_page": "nonsense"}))
    assert beyond.query.page == 3 and beyond.query.per_page == tables.PER_PAGE
    assert "sort=failure_probability" in q.params() and "page=3" in q.params(page=3)


@pytest.mark.parametrize("value, shown", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("plain", "plain"), (-2.5, -2.5), (3, 3),
])
def test_formula_like_text_is_made_inert_and_numbers_stay_numbers(value, shown):
    assert tables.inert(value) == shown


def test_csv_and_xlsx_carry_the_same_rows_with_inert_cells():
    from openpyxl import load_workbook

    frame = fleet_frame(8)
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(frame).decode())))
    assert len(rows) == 8 and rows[5]["note"].startswith("'=") and rows[6]["note"] == "'-1+1"
    sheet = load_workbook(io.BytesIO(tables.to_xlsx(frame, "vehicles"))).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == ("vehicle_number", "home_depot", "failure_probability", "note")
    assert len(values) == 9 and values[6][3].startswith("'=") and values[3][2] == pytest.approx(2 / 8)


def test_work_requests_name_equipment_location_priority_window_and_reasons():
    plan = pd.DataFrame([
        {"day": pd.Timestamp("2025-02-12"), "vehicle_number": "EMU-0001", "depot": "DEP-NORTH", "kind": "inspection",
         "component": "wheelset", "maintenance_level": 1, "failure_probability": 0.82, "remaining_life_days": 5.0},
        {"day": pd.Timestamp("2025-02-14"), "vehicle_number": "LOCO-0001", "depot": "DEP-SOUTH", "kind": "scheduled",
         "component": None, "maintenance_level": 3, "failure_probability": None, "remaining_life_days": None},
    ])
    predictions = pd.DataFrame([{"vehicle_number": "EMU-0001", "component": "wheelset",
                                 "reasons": '[{"feature": "comp_signal_z_mean_1d", "value": 4.2, "contribution": 0.2}]'}])
    out = tables.work_requests(plan, predictions, "2025-02-10")
    first, second = out.to_dict("records")
    assert (first["notification_type"], first["equipment"], first["functional_location"], first["priority"]) == (
        "M2", "EMU-0001/wheelset", "DEP-NORTH", 1)
    assert str(first["required_start"]) == "2025-02-12" and str(first["required_end"]) == "2025-02-13"
    assert "axle-box bearing temperature (degC) 4.2 sd above this vehicle's normal, last day" in first["description"]
    assert (second["notification_type"], second["equipment"], second["priority"]) == ("M3", "LOCO-0001", 3)


def test_an_export_has_the_rows_the_page_shows(fleet_settings):
    from fastapi.testclient import TestClient
    from openpyxl import load_workbook

    from railpm.planning.run import run_plan
    from railpm.review.app import create_app

    run_plan(fleet_settings)
    add_accounts(fleet_settings)
    with TestClient(create_app(fleet_settings), base_url="http://127.0.0.1:8050") as client:
        sign_in(client, "p.planner")
        page = client.get("/plans/inspections?depot=DEP-NORTH").text
        shown = re.findall(r'<tr><td>[^<]*</td>\s*<td><a href="/vehicles/([^"]+)"', page)
        exported = client.get("/export/inspection_plan.csv?depot=DEP-NORTH")
        xlsx = client.get("/export/inspection_plan.xlsx?depot=DEP-NORTH")
        requests = client.get("/export/work_requests.csv")
        unknown = client.get("/export/passwords.csv")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert shown and [r["vehicle_number"] for r in rows] == shown and {r["depot"] for r in rows} == {"DEP-NORTH"}
    sheet = list(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    assert [r[list(sheet[0]).index("vehicle_number")] for r in sheet[1:]] == shown
    assert requests.status_code == 200 and "notification_type,equipment,functional_location,priority" in requests.text
    assert unknown.status_code == 404
