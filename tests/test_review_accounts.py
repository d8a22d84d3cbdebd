"""Accounts, roles, sessions and CSRF of the review app, through FastAPI's test client on the tiny fleet.

The browser test (test_review_browser.py) signs in through real Chromium; here every refusal is checked one by
one: a role without the right, a post without its CSRF token, a disabled account, a public address without
accounts.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from railpm.config import Settings
from helpers import GOOD_DECISION, PASSWORD, add_accounts, feedback_files, log_version, sign_in, signed


@pytest.fixture
def planned_fleet(fleet_settings) -> Settings:
    from railpm.planning.run import run_plan

    run_plan(fleet_settings)
    return fleet_settings


def app_client(settings: Settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    return TestClient(create_app(settings), base_url="http://127.0.0.1:8050")


def test_users_cli_keeps_only_a_hash_and_a_disabled_account_cannot_sign_in(settings):
    from railpm.cli import app
    from railpm.review.accounts import accounts_file, authenticate

    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "r.weber", "--role", "engineer", "--name", "R. Weber", "--password-stdin",
                                "--data-root", str(settings.data_root)], input=f"{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    path = accounts_file(settings)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    stored = json.loads(path.read_text())["r.weber"]
    assert PASSWORD not in path.read_text() and stored["password_hash"].startswith("scrypt:")
    assert authenticate(path, "r.weber", PASSWORD).role == "engineer"
    assert authenticate(path, "r.weber", PASSWORD + "x") is None

    bad_role = runner.invoke(app, ["users", "add", "x.y", "--role", "boss", "--password-stdin",
                                   "--data-root", str(settings.data_root)], input=f"{PASSWORD}\n")
    assert bad_role.exit_code != 0 and "must be one of engineer, planner, data_team, admin" in bad_role.output
    short = runner.invoke(app, ["users", "add", "x.y", "--role", "planner", "--password-stdin",
                                "--data-root", str(settings.data_root)], input="short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output

    disabled = runner.invoke(app, ["users", "disable", "r.weber", "--data-root", str(settings.data_root)])
    assert disabled.exit_code == 0, disabled.output
    assert authenticate(path, "r.weber", PASSWORD) is None


def test_the_app_refuses_a_public_address_without_accounts(settings):
    from railpm.errors import RailpmError
    from railpm.review.app import create_app

    with pytest.raises(RailpmError, match="only with accounts"):
        create_app(settings, host="0.0.0.0")
    add_accounts(settings)
    create_app(settings, host="0.0.0.0")  # with accounts it may


def test_without_accounts_pages_are_readable_on_loopback_but_nothing_is_recorded(fleet_settings):
    with app_client(fleet_settings) as client:
        assert client.get("/").status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        refused = client.post("/feedback", data={**GOOD_DECISION, "csrf_token": token})
    assert refused.status_code == 403 and "railpm users add" in refused.text
    assert feedback_files(fleet_settings) == []


def test_pages_ask_for_a_sign_in_and_a_wrong_password_is_refused(fleet_settings):
    add_accounts(fleet_settings)
    with app_client(fleet_settings) as client:
        first = client.get("/vehicles/EMU-0001", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/login?next=/vehicles/EMU-0001"
        assert client.post("/api/feedback", json=GOOD_DECISION).status_code == 401
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        wrong = client.post("/login", data={"username": "a.engineer", "password": "nope-nope-nope", "csrf_token": token})
        assert wrong.status_code == 401 and "Sign-in failed" in wrong.text
        foreign = client.post("/login", data={"username": "a.engineer", "password": PASSWORD, "csrf_token": token,
                                               "next": "//evil.example/"}, follow_redirects=False)
        assert foreign.status_code == 303 and foreign.headers["location"] == "/"
        cookie = foreign.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie


def test_a_post_without_its_csrf_token_is_refused(fleet_settings):
    add_accounts(fleet_settings)
    with app_client(fleet_settings) as client:
        sign_in(client, "a.engineer")
        missing = client.post("/feedback", data=GOOD_DECISION)
        stale = client.post("/feedback", data={**GOOD_DECISION, "csrf_token": "x" * 32})
        api = client.post("/api/feedback", json=GOOD_DECISION, headers={"X-CSRF-Token": ""})
    assert missing.status_code == 403 and "security token" in missing.text
    assert stale.status_code == 403 and api.status_code == 403
    assert feedback_files(fleet_settings) == []


def test_each_role_may_do_only_its_own_work(planned_fleet):
    from mlflow import MlflowClient

    from railpm.review.signoff import plan_approvals

    settings = planned_fleet
    log_version(settings, 0.42, "champion")
    challenger = log_version(settings, 0.45, "challenger")
    add_accounts(settings)
    with app_client(settings) as client:
        sign_in(client, "a.engineer")
        plan_page = client.get("/plans/inspections").text
        plan = re.search(r'name="plan" value="([^"]+)"', plan_page)
        assert plan is None and "approve this plan" not in plan_page, "no approve button for an engineer"
        plan_day = sorted(p.name for p in settings.plans_dir.iterdir())[-1]
        engineer = client.post("/plans/inspections/approve", data=signed(client, {"plan": plan_day}))
        assert engineer.status_code == 403 and "may not approve an inspection plan" in engineer.text

        client.post("/logout", data=signed(client, {}))
        sign_in(client, "p.planner")
        assert client.post("/feedback", data=signed(client, GOOD_DECISION)).status_code == 403
        approved = client.post("/plans/inspections/approve", data=signed(client, {"plan": plan_day, "note": "checked"}),
                               follow_redirects=False)
        assert approved.status_code == 303
        assert "Approved by <b>p.planner</b>" in client.get("/plans/inspections").text
        planner = client.post("/models/promote", data=signed(client, {"version": challenger}))
        assert planner.status_code == 403 and "may not promote a model" in planner.text

        client.post("/logout", data=signed(client, {}))
        sign_in(client, "d.scientist")
        assert f'name="promote-{challenger}"' in client.get("/models").text
        promoted = client.post("/models/promote", data=signed(client, {"version": challenger}), follow_redirects=False)
        assert promoted.status_code == 303

    approvals = plan_approvals(settings.plans_dir / plan_day)
    assert [(a["approved_by"], a["role"], a["note"]) for a in approvals] == [("p.planner", "planner", "checked")]
    registry = MlflowClient(tracking_uri=settings.tracking_uri)
    name = settings.model.registered_model_name
    champion = registry.get_model_version_by_alias(name, "champion")
    assert champion.version == challenger and champion.tags["railpm.promoted_by"] == "d.scientist"
    assert feedback_files(settings) == []


def test_a_disabled_account_is_signed_out_at_its_next_request(fleet_settings):
    from railpm.review.accounts import accounts_file, disable_account

    add_accounts(fleet_settings)
    with app_client(fleet_settings) as client:
        sign_in(client, "a.engineer")
        assert client.get("/", follow_redirects=False).status_code == 200
        disable_account(accounts_file(fleet_settings), "a.engineer")
        assert client.get("/", follow_redirects=False).status_code == 303
