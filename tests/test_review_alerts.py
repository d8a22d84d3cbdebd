"""An alert's life (new -> acknowledged -> planned -> closed): the rule in ``railpm.feedback.alert_status`` on
small frames, then the forms of the vehicle page through the app, down to the trail and the training labels."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from railpm import contracts
from railpm.feedback import FEEDBACK_SCHEMA, alert_status
from helpers import SCORED_DAY, add_accounts, sign_in, signed

D = date(2025, 3, 10)
LABEL = contracts.LABEL_FAILS_WITHIN_HORIZON


def entries(*rows: dict) -> pd.DataFrame:
    base = {name: None for name in FEEDBACK_SCHEMA.names}
    frame = pd.DataFrame([base | {"vehicle_number": "EMU-0001", "component": "wheelset", "model_version": "3"} | r for r in rows],
                         columns=FEEDBACK_SCHEMA.names)
    return frame


def at(hours: int) -> datetime:
    return datetime(2025, 3, 10, tzinfo=timezone.utc) + timedelta(hours=hours)


@pytest.mark.parametrize("steps, alert_day, expected", [
    ([], D, ("new", None, None)),
    ([{"kind": "acknowledge", "scored_day": D, "recorded_at": at(1), "recorded_by": "a"}], D, ("acknowledged", "a", None)),
    ([{"kind": "acknowledge", "scored_day": D, "recorded_at": at(1), "recorded_by": "a"},
      {"kind": "plan", "scored_day": D, "recorded_at": at(2), "recorded_by": "p", "planned_day": D + timedelta(days=3),
       "planned_depot": "DEP-NORTH"}], D + timedelta(days=1), ("planned", "p", None)),
    ([{"kind": "plan", "scored_day": D, "recorded_at": at(2), "recorded_by": "p", "planned_day": D},
      {"kind": "finding", "finding": "replaced", "inspected_on": D + timedelta(days=2), "recorded_at": at(50),
       "recorded_by": "f"}], D + timedelta(days=2), ("closed", "f", "confirmed and replaced")),
    # the same case while the acted-on prediction is within the horizon (30 days) before the alert, not after
    ([{"kind": "dismiss", "scored_day": D, "recorded_at": at(1), "recorded_by": "a", "reason": "lathe"}],
     D + timedelta(days=30), ("closed", "a", "dismissed")),
    ([{"kind": "dismiss", "scored_day": D, "recorded_at": at(1), "recorded_by": "a", "reason": "lathe"}],
     D + timedelta(days=31), ("new", None, None)),
    # an entry about a later prediction does not touch an earlier alert; another component never does
    ([{"kind": "acknowledge", "scored_day": D + timedelta(days=1), "recorded_at": at(30), "recorded_by": "a"},
      {"kind": "acknowledge", "scored_day": D, "recorded_at": at(1), "recorded_by": "a", "component": "doors"}], D, ("new", None, None)),
])
def test_an_alerts_status_is_the_latest_step_on_its_case(steps, alert_day, expected):
    alerts = pd.DataFrame([{"vehicle_number": "EMU-0001", "component": "wheelset", "scored_day": alert_day}])
    status = alert_status(alerts, entries(*steps) if steps else entries().iloc[0:0], horizon_days=30).iloc[0]
    got = (status["status"], None if pd.isna(status["status_by"]) else status["status_by"],
           None if pd.isna(status["closed_as"]) else status["closed_as"])
    assert got == expected
    if expected[0] == "planned":
        assert (status["planned_day"], status["planned_depot"]) == (D + timedelta(days=3), "DEP-NORTH")


def test_an_alert_goes_from_new_to_closed_through_the_forms(fleet_settings):
    from fastapi.testclient import TestClient

    from railpm.feedback import feedback_dir_of, read_feedback, training_labels
    from railpm.planning.run import run_plan
    from railpm.review.app import create_app

    run_plan(fleet_settings)
    add_accounts(fleet_settings)
    key = {"vehicle_number": "EMU-0001", "component": "wheelset", "scored_day": SCORED_DAY.isoformat(), "model_version": "3"}
    with TestClient(create_app(fleet_settings), base_url="http://127.0.0.1:8050") as client:
        sign_in(client, "a.engineer")
        assert re.search(r'status-new">new</span>', client.get("/").text)
        page = client.get("/vehicles/EMU-0001").text
        assert 'name="acknowledge-wheelset"' in page and 'name="close-wheelset"' in page
        assert client.post("/alerts", data=signed(client, {**key, "step": "acknowledge"}), follow_redirects=False).status_code == 303
        assert "acknowledged" in client.get("/vehicles/EMU-0001").text

        client.post("/logout", data=signed(client, {}))
        sign_in(client, "p.planner")
        refused = client.post("/alerts", data=signed(client, {**key, "step": "close", "closing": "dismiss", "reason": "no"}))
        assert refused.status_code == 403, "a planner does not dismiss a prediction"
        plan = client.post("/alerts", data=signed(client, {**key, "step": "plan"}), follow_redirects=False)
        assert plan.status_code == 303, plan.text

        client.post("/logout", data=signed(client, {}))
        sign_in(client, "b.fitter")
        empty = client.post("/alerts", data=signed(client, {**key, "step": "close", "closing": "replaced",
                                                             "reason": "flat spot 3 mm"}))
        assert empty.status_code == 422 and "inspection day: a finding needs the day of the inspection" in empty.text
        assert 'value="flat spot 3 mm"' in empty.text, "the rejected form keeps what was typed"
        closed = client.post("/alerts", data=signed(client, {**key, "step": "close", "closing": "replaced",
                                                              "inspected_on": SCORED_DAY.isoformat(), "reason": "flat spot 3 mm"}),
                             follow_redirects=False)
        assert closed.status_code == 303, closed.text
        overview = client.get("/").text
        trail = client.get("/feedback").text

    assert "closed</span>: confirmed and replaced" in overview
    stored = read_feedback(feedback_dir_of(fleet_settings.lake_dir))
    assert list(zip(stored["kind"], stored["recorded_by"])) == [
        ("acknowledge", "a.engineer"), ("plan", "p.planner"), ("finding", "b.fitter")]
    planned = stored.loc[stored["kind"] == "plan"].iloc[0]
    plan_rows = pd.read_parquet(sorted(fleet_settings.plans_dir.glob("*/inspection_plan.parquet"))[-1])
    mine = plan_rows[(plan_rows["vehicle_number"] == "EMU-0001") & (plan_rows["component"] == "wheelset")]
    assert planned["planned_day"] == pd.Timestamp(mine["day"].min()).date() and planned["planned_depot"] == mine["depot"].iloc[0]
    for who in ("a.engineer", "p.planner", "b.fitter"):
        assert who in trail
    # closing as replaced reaches training the existing way: censored days before it become failures
    records = pd.DataFrame({"vehicle_number": ["EMU-0001"], "component": ["wheelset"],
                            "day": [pd.Timestamp(SCORED_DAY - timedelta(days=3))], LABEL: [None]})
    labels = training_labels(records, stored, horizon_days=30)
    assert labels["label_source"].tolist() == ["finding"] and bool(labels[LABEL].iloc[0])
