"""Review app and static report on a tiny fleet written in the documented layouts.

Every page must render, every internal link must resolve (crawled through the app and on disk), a missing
layer must show the command that builds it, and the feedback endpoint must refuse markup, oversized and
malformed payloads while storing good entries through the real feedback store.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from railpm import contracts
from railpm.config import Settings

from helpers import (
    FLEET, GOOD_DECISION, SCORED_DAY, add_accounts, at, feedback_files, links_of, log_version, sign_in, signed,
    write_day_partitioned, write_review_fleet,
)

@pytest.fixture(scope="module")
def shared_fleet(tmp_path_factory) -> Settings:
    """One tiny fleet with its real plans, for the read-only tests of this module (figures are the slow part)."""
    from railpm.planning.run import run_plan

    settings = Settings(data_root=tmp_path_factory.mktemp("review") / "data")
    write_review_fleet(settings)
    run_plan(settings)
    return settings


@pytest.fixture(scope="module")
def crawled(shared_fleet) -> dict[str, str]:
    """Every page of the app reachable from the overview, fetched once: path -> HTML."""
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    add_accounts(shared_fleet)
    with TestClient(create_app(shared_fleet)) as client:
        sign_in(client, "a.engineer")
        return crawl_app(client)


def crawl_app(client, start: str = "/") -> dict[str, str]:
    """Every page reachable from ``start`` through internal links (GET only), as path -> HTML."""
    seen: dict[str, str] = {}
    queue = [start]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        response = client.get(path)
        assert response.status_code == 200, f"{path} answered {response.status_code}: {response.text[:300]}"
        assert response.headers["content-type"].startswith("text/html"), path
        seen[path] = response.text
        found = links_of(response.text)
        assert not found.external, f"{path} links outside: {found.external}"
        for link in found.links:
            target = urlsplit(urljoin(f"http://review{path}", link))
            if target.path in ("/logout", "/alerts", "/plans/inspections/approve", "/models/promote"):
                continue  # form actions that only take a POST
            if target.path.startswith("/export/") or target.query:
                continue  # downloads, and a table's sort / page / period variants (test_review_tables.py)
            queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return seen


def test_every_app_page_renders_and_every_internal_link_resolves(crawled):
    pages_seen = crawled
    expected = {"/", "/vehicles", "/faults", "/rams", "/models", "/monitoring", "/plans/inspections", "/plans/spares", "/feedback",
                *(f"/vehicles/{n}" for n, _, _ in FLEET)}
    assert expected <= set(pages_seen)
    vehicle = pages_seen["/vehicles/EMU-0001"]
    assert "<svg" in vehicle and "Telemetry trends" in vehicle and 'name="decision-wheelset"' in vehicle


def test_static_report_opens_without_server_and_every_relative_link_resolves(shared_fleet):
    fleet_settings = shared_fleet
    from railpm.review.report import build_report

    result = build_report(fleet_settings)
    root = fleet_settings.reports_dir
    assert result.index == root / "index.html" and result.index.exists()
    files = sorted(root.rglob("*.html"))
    assert {f.relative_to(root).as_posix() for f in files} >= {
        "index.html", "vehicles.html", "faults.html", "rams.html", "models.html", "inspections.html", "spares.html",
        "feedback.html", *(f"vehicles/{n}.html" for n, _, _ in FLEET)}
    assert result.vehicle_pages == len(FLEET) and result.pages == len(files)
    for file in files:
        html = file.read_text()
        found = links_of(html)
        assert not found.external, f"{file} links outside: {found.external}"
        assert "<form" not in html, f"{file}: the static report carries no forms"
        for link in found.links:
            target = (file.parent / urlsplit(link).path).resolve()
            assert target.is_file(), f"{file.relative_to(root)} links to {link}, which does not exist"
    assert "<svg" in (root / "vehicles" / "EMU-0001.html").read_text()


def test_each_page_names_the_command_that_builds_a_missing_layer(settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    with TestClient(create_app(settings)) as client:
        expected = {
            "/": "no predictions yet: run `railpm score`",
            "/vehicles": "no vehicle registry in the lake yet",
            "/faults": "no faults in the lake yet",
            "/rams": "run `railpm records`",
            "/models": "run `railpm train`",
            "/plans/inspections": "run `railpm plan`",
            "/plans/spares": "run `railpm plan`",
            "/feedback": "no feedback recorded yet",
        }
        for path, hint in expected.items():
            response = client.get(path)
            assert response.status_code == 200, path
            assert hint in response.text.replace("&#96;", "`"), f"{path} lacks the hint {hint!r}"
        assert not (settings.data_root / "mlflow.db").exists(), "reading model quality must not create a store"
        assert client.get("/vehicles/EMU-9999").status_code == 404


def test_pages_render_with_the_lake_but_before_any_prediction(settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    write_review_fleet(settings, predictions=False)
    with TestClient(create_app(settings)) as client:
        seen = crawl_app(client)
    assert {f"/vehicles/{n}" for n, _, _ in FLEET} <= set(seen)
    assert "no predictions yet: run `railpm score`" in seen["/vehicles/EMU-0001"].replace("&#96;", "`")
    assert "Telemetry trends" in seen["/vehicles/EMU-0001"] and "<svg" in seen["/vehicles/EMU-0001"]


def test_overview_shows_the_latest_scored_day_riskiest_first(crawled):
    html = crawled["/"]
    assert f"Scored day {SCORED_DAY.isoformat()}" in html
    alerts = html[html.index('id="alerts"'):html.index('id="heatmap"')]
    rows = re.findall(r"<tr>\s*<td><a href=\"/vehicles/([^\"]+)\">.*?<td>([a-z ]+)</td>\s*<td class=\"num\">([0-9.]+)</td>", alerts, re.S)
    assert rows[0] == ("EMU-0001", "wheelset", "0.820")
    assert all(float(p) > 0.5 for _, _, p in rows), "only alerts in the alert table"
    assert "0.410" not in alerts, "the previous day's predictions are not shown"


def test_vehicle_page_shows_only_that_vehicles_history(crawled):
    html = crawled["/vehicles/EMU-0001"]
    assert {"F0000", "F0001", "F0002", "F0003", "WO-1", "WO-2"} <= set(re.findall(r"\b(F\d{4}|WO-\d)\b", html))
    assert "F0004" not in html and "F0005" not in html
    # the reason in words, from the catalogue, linked to the trend chart
    assert '<a href="#trends">axle-box bearing temperature: mean 88.5 degC, last 7 days</a>' in html


def test_plan_pages_show_the_latest_plan_and_link_its_vehicles(crawled, shared_fleet):
    import pandas as pd

    plan = pd.read_parquet(next(shared_fleet.plans_dir.glob("*/inspection_plan.parquet")))
    html = crawled["/plans/inspections"]
    assert SCORED_DAY.isoformat() in html and "Depot slots used per day" in html
    for vehicle in set(plan["vehicle_number"]):
        assert f'href="/vehicles/{vehicle}"' in html
    assert html.count("<tr>") - 2 >= len(plan), "every planned row is listed"
    spares = crawled["/plans/spares"]
    assert "Stock per depot and part" in spares and "P-WHEELSET-EMU" in spares and "Pooling stock between depots" in spares


def test_recurring_faults_follow_the_rule_at_the_window_edge(tmp_path):
    from railpm.review.data import recurring_faults

    def fault(i, vehicle, code, day):
        meta = contracts.FAULT_CODE_BY_CODE[code]
        return {"event_id": f"E{i}", "vehicle_number": vehicle, "vehicle_type": "EMU", "depot": "DEP-WEST", "ts": at(day),
                "fault_code": code, "subsystem": meta.subsystem, "grade": meta.typical_grade, "description": None}

    # Calendar days [D-29, D] (railpm.rules): days 0, 15, 29 recur; days 0, 15, 30 do not, at any hour.
    rows = [fault(0, "EMU-0001", "DR-110", 0), fault(1, "EMU-0001", "DR-110", 15), fault(2, "EMU-0001", "DR-110", 29.9),
            fault(3, "EMU-0002", "DR-110", 0.9), fault(4, "EMU-0002", "DR-110", 15), fault(5, "EMU-0002", "DR-110", 30),
            *(fault(6 + k, "EMU-0003", "CF-190", 80 * k) for k in range(4))]
    write_day_partitioned(tmp_path, contracts.FAULTS, rows, "faults")
    found = recurring_faults(tmp_path)
    assert [(r.vehicle_number, r.fault_code, r.occurrences) for r in found.itertuples()] == [
        ("EMU-0003", "A/B", 4), ("EMU-0001", "DR-110", 3)]


def test_normal_band_is_robust_to_the_drift_it_is_read_against():
    import pandas as pd

    from railpm.review.plots import normal_band

    healthy = np.r_[np.full(30, 50.0) + np.tile([-1.0, 1.0], 15), np.linspace(50, 90, 30)]
    low, high = normal_band(pd.DataFrame({"x__mean": healthy}), "x", baseline_days=60)
    assert low < 50 < high and high < 60, (low, high)
    assert normal_band(pd.DataFrame({"x__mean": [1.0, 2.0]}), "x") is None


# --------------------------------------------------------------------------------------------------
# Feedback: stored through railpm.feedback, refused when malformed, never rendered as markup
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def client(fleet_settings):
    """The app over the tiny fleet with accounts, signed in as the engineer a.engineer."""
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    add_accounts(fleet_settings)
    with TestClient(create_app(fleet_settings), base_url="http://127.0.0.1:8050") as test_client:
        sign_in(test_client, "a.engineer")
        yield test_client


def test_a_form_post_is_stored_append_only_and_shown_on_the_vehicle_page(client, fleet_settings):
    from railpm.feedback import feedback_dir_of, read_feedback

    response = client.post("/feedback", data=signed(client, GOOD_DECISION), follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/vehicles/EMU-0001?recorded=")
    finding = {"kind": "finding", "vehicle_number": "EMU-0001", "component": "wheelset",
               "scored_day": SCORED_DAY.isoformat(), "model_version": "3", "finding": "component_worn",
               "inspected_on": (SCORED_DAY + timedelta(days=2)).isoformat(), "reason": ""}
    client.post("/logout", data=signed(client, {}))
    sign_in(client, "b.fitter")
    assert client.post("/feedback", data=signed(client, finding), follow_redirects=False).status_code == 303
    assert len(feedback_files(fleet_settings)) >= 1
    stored = read_feedback(feedback_dir_of(fleet_settings.lake_dir))
    assert sorted(stored["kind"]) == ["dismiss", "finding"]
    assert set(stored["recorded_by"]) == {"a.engineer", "b.fitter"}, "each entry is signed by its account"
    assert stored.loc[stored["kind"] == "finding", "finding"].item() == "component_worn"
    page = client.get(response.headers["location"]).text
    assert "Recorded" in page and "bearing replaced last week" in page and "b.fitter" in page
    trail = client.get("/feedback").text
    assert "a.engineer" in trail
    trace = trail[trail.index('id="trace"'):trail.index('id="entries"')]
    row = re.search(r"<tr>(?:(?!</tr>).)*EMU-0001(?:(?!</tr>).)*wheelset(?:(?!</tr>).)*</tr>", trace, re.S).group(0)
    cells = re.findall(r"<td[^>]*>(?:<a [^>]*>)?([^<]*)", row)
    assert cells[:3] == [SCORED_DAY.isoformat(), "EMU-0001", "wheelset"]
    assert {"dismiss", "a.engineer", "bearing replaced last week", "component_worn", "b.fitter", "open"} <= set(cells)


def test_the_json_endpoint_answers_201_with_the_stored_entry(client, fleet_settings):
    response = client.post("/api/feedback", json={**GOOD_DECISION, "kind": "confirm", "reason": None})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["feedback_id"] and body["kind"] == "confirm" and body["vehicle_number"] == "EMU-0001"


@pytest.mark.parametrize("field, value", [
    ("reason", "<script>alert('x')</script>"),
    ("reason", "see <img src=x onerror=alert(1)>"),
    ("reason", "javascript:alert(1)"),
    ("reason", "&lt;script&gt;"),
])
def test_markup_in_feedback_is_refused_and_nothing_is_stored(client, fleet_settings, field, value):
    api = client.post("/api/feedback", json={**GOOD_DECISION, field: value})
    assert api.status_code == 422 and "plain text" in " ".join(api.json()["detail"])
    assert value not in api.text, "the refused value is not echoed back"
    assert feedback_files(fleet_settings) == []


def test_a_refused_form_shows_the_page_again_with_the_problem(client, fleet_settings):
    value = "<script>alert('x')</script>"
    form = client.post("/feedback", data=signed(client, {**GOOD_DECISION, "reason": value}), follow_redirects=False)
    assert form.status_code == 422 and "Not recorded: reason: must be plain text" in form.text
    assert value not in form.text and 'name="decision-wheelset"' in form.text
    assert feedback_files(fleet_settings) == []


def test_markup_already_in_the_lake_is_rendered_escaped(fleet_settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    meta = contracts.FAULT_CODE_BY_CODE["DR-110"]
    write_day_partitioned(fleet_settings.lake_dir, contracts.FAULTS, [{
        "event_id": "F-XSS", "vehicle_number": "EMU-0001", "vehicle_type": "EMU", "depot": "DEP-NORTH", "ts": at(20.5),
        "fault_code": "DR-110", "subsystem": meta.subsystem, "grade": "C", "description": "<script>alert('lake')</script>",
    }], "faults-xss")
    with TestClient(create_app(fleet_settings)) as test_client:
        html = test_client.get("/vehicles/EMU-0001").text
    assert "F-XSS" in html
    assert "<script>alert('lake')</script>" not in html
    assert "&lt;script&gt;alert(&#39;lake&#39;)&lt;/script&gt;" in html


def test_oversized_bodies_are_refused_before_they_are_read(client, fleet_settings):
    from railpm.review.app import MAX_BODY_BYTES

    big = {**GOOD_DECISION, "reason": "x" * (MAX_BODY_BYTES + 10)}
    assert client.post("/api/feedback", json=big).status_code == 413
    assert client.post("/feedback", data=signed(client, big)).status_code == 413

    def chunks():  # no Content-Length: the limit is enforced while the body streams in
        for _ in range(MAX_BODY_BYTES // 1000 + 2):
            yield b"{" + b" " * 1000

    streamed = client.post("/api/feedback", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    long_reason = client.post("/api/feedback", json={**GOOD_DECISION, "reason": "y" * 501})
    assert long_reason.status_code == 422 and "reason" in long_reason.text
    assert feedback_files(fleet_settings) == []


@pytest.mark.parametrize("change, status, message", [
    ({"kind": "praise"}, 422, "kind"),
    ({"component": "flux_capacitor"}, 422, "component"),
    ({"vehicle_number": "EMU-9999"}, 422, "'EMU-9999': not in the vehicle registry"),
    ({"vehicle_number": "WAGON-0001", "component": "doors"}, 422, "not a component of WAGON vehicles"),
    ({"reason": None}, 422, "dismissing needs a reason"),
    ({"recorded_by": "someone.else"}, 422, "recorded_by"),
    ({"scored_day": "yesterday"}, 422, "scored_day"),
    ({"scored_day": "2025-01-05"}, 422, "no prediction for EMU-0001/wheelset on that day"),
    ({"model_version": "7"}, 422, "was made by 3"),
    ({"finding": "replaced"}, 422, "carries no finding"),
    ({"surprise": 1}, 422, "surprise"),
    ({"vehicle_number": "../../etc/passwd"}, 422, "vehicle_number"),
])
def test_malformed_entries_are_refused_with_a_message_naming_the_problem(client, fleet_settings, change, status, message):
    payload = {k: v for k, v in {**GOOD_DECISION, **change}.items() if v is not None}
    response = client.post("/api/feedback", json=payload)
    assert response.status_code == status, response.text
    assert message in " ".join(response.json()["detail"])
    assert feedback_files(fleet_settings) == []


def test_unparsable_and_cross_site_requests_are_refused(client, fleet_settings):
    bad_json = client.post("/api/feedback", content=b'{"kind": "confirm",', headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "malformed JSON" in bad_json.json()["detail"][0]
    assert client.post("/api/feedback", json=[GOOD_DECISION]).status_code == 422
    assert client.post("/api/feedback", content=b"kind=confirm", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/feedback", json=GOOD_DECISION).status_code == 415
    repeated = client.post("/feedback", content=b"kind=confirm&kind=dismiss&vehicle_number=EMU-0001",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert repeated.status_code == 400
    foreign = client.post("/feedback", data=signed(client, GOOD_DECISION), headers={"origin": "http://evil.example"}, follow_redirects=False)
    assert foreign.status_code == 403
    assert client.post("/api/feedback", json=GOOD_DECISION, headers={"origin": "http://evil.example"}).status_code == 403
    assert feedback_files(fleet_settings) == []
    same_site = client.post("/feedback", data=signed(client, GOOD_DECISION), headers={"origin": "http://127.0.0.1:8050"}, follow_redirects=False)
    assert same_site.status_code == 303


# --------------------------------------------------------------------------------------------------
# Model quality, read from a real MLflow store through MlflowClient
# --------------------------------------------------------------------------------------------------

def test_model_quality_shows_champion_and_challenger_against_the_baselines(settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    champion = log_version(settings, 0.42, "champion")
    challenger = log_version(settings, 0.40, "challenger")
    with TestClient(create_app(settings)) as client:
        html = client.get("/models").text
    assert f"Version {champion} (champion)" in html and f"Version {challenger} (challenger)" in html
    assert html.index("(champion)") < html.index("(challenger)")
    # the gate in a sentence from the logged figures (it read "0.4200 gate decision for champion" before)
    assert "Backtest PR-AUC 0.420, beats the best baseline (age/usage baseline, 0.252) by the margin of 0.02" in html
    assert "fixed schedule baseline" in html and "age/usage baseline" in html
    assert "s backtest pr auc: model vs baselines" in html and "<svg" in html


def test_dossier_and_rams_records_are_shown_whatever_columns_the_records_job_adds(fleet_settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    records = fleet_settings.records_dir
    (records / "vehicle_dossier").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([
        {"vehicle_number": n, "faults_90d_grade_a": 1 if n == "EMU-0001" else 0, "recurring_fault_codes": "RG-110" if n == "EMU-0001" else None,
         "next_due_level_2": date(2025, 2, 20),
         "open_work_orders": [{"work_order_id": f"WO-{n}", "opened_at": datetime(2025, 2, 1, 6, 30, tzinfo=timezone.utc),
                               "action": "inspection", "maintenance_level": 1}]} for n, _, _ in FLEET]),
        records / "vehicle_dossier" / "part-0.parquet")
    (records / "fleet_rams").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([
        {"vehicle_type": t, "component": c, "mtbf_days": 100.0 + i, "mttr_hours": 5.0, "availability": 0.97}
        for t in ("EMU", "LOCO") for i, c in enumerate(("wheelset", "bogie"))]), records / "fleet_rams" / "part-0.parquet")
    with TestClient(create_app(fleet_settings)) as client:
        vehicle = client.get("/vehicles/EMU-0001").text
        rams = client.get("/rams").text
    dossier = vehicle[vehicle.index('id="dossier"'):vehicle.index('id="faults"')]
    assert "recurring fault codes</dt><dd>RG-110" in dossier and "next due level 2</dt><dd>2025-02-20" in dossier
    # A field holding a list of structs is a small table for a person, not Python's repr of it.
    assert '<table class="nested"><tr><th>work order id</th><th>opened at</th>' in dossier
    assert "<td>WO-EMU-0001</td><td>2025-02-01 06:30 UTC</td><td>inspection</td><td>1</td>" in dossier
    # the summary above the folded raw fields: next inspection due per level, open work orders as a table
    summary = dossier[:dossier.index("<details>")]
    assert "<td>level 2</td>" in summary and "<td>2025-02-20</td>" in summary and "WO-EMU-0001" in summary
    assert "datetime" not in dossier and "{" not in dossier
    assert rams.count("<svg") == 3 and "MTBF per component" in rams and ">101<" in rams and "101.00" not in rams
