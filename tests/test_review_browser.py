"""The review app driven by a real headless browser: Debian's chromium through Playwright.

The app runs as people start it (``railpm review`` on a free loopback port, served by uvicorn, with accounts);
each role signs in and is refused what is not its own; an alert goes from new to closed through the forms,
signed by three accounts, down to the trail and the training weights; the plan exports as CSV and XLSX with
the rows the page shows. Screenshots of the main pages go to the test's tmp folder and are
copied to ``/tmp/railpm_screenshots/`` for people to look at.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``make install`` installs
it through ``scripts/install-system-deps.sh``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from helpers import (
    ACCOUNTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, SCORED_DAY, add_accounts, free_port, log_version, write_component_days, write_review_fleet,
)

SHARED_SCREENSHOTS = Path("/tmp/railpm_screenshots")
PAGE_TIMEOUT_MS = 120_000
START_TIMEOUT_S = 180
"""Waiting for the server to come up (imports on a loaded 2-core machine); a readiness wait, not an assertion."""


def wait_until_serving(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`railpm review` exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"`railpm review` did not answer on {url} within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def review_server(tmp_path_factory):
    """`railpm review` on a free 127.0.0.1 port over a tiny fleet with real plans and accounts; yields (url, settings).

    One server for every browser test of this module (starting it and the browser is the slow part)."""
    from railpm.config import Settings
    from railpm.planning.run import run_plan

    tmp_path = tmp_path_factory.mktemp("browser")
    settings = Settings(data_root=tmp_path / "data")
    write_review_fleet(settings)
    write_component_days(settings)
    run_plan(settings)
    log_version(settings, 0.42, "champion")
    log_version(settings, 0.40, "challenger")
    add_accounts(settings)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAILPM_")}
    log = tmp_path / "review.log"
    with open(log, "w") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("railpm")), "review", "--port", str(port), "--data-root", str(settings.data_root)],
            stdout=sink, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, url, log)
        yield url, settings
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: run `make install` (scripts/install-system-deps.sh)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def signed_in(browser, url: str, username: str):
    """A fresh browser context (its own cookies) signed in as ``username`` through the sign-in form."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    # a readiness wait, not an assertion: a loaded 2-core machine serves the first MLflow read slowly
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{url}/")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click('form[name="login"] button[type="submit"]')
    expect(page.locator("header .account")).to_contain_text(username)
    return context, page


@pytest.mark.slow
def test_each_role_signs_in_and_is_refused_what_is_not_its_own(review_server, browser):
    from playwright.sync_api import expect

    url, settings = review_server
    for username, _ in ACCOUNTS:
        context, page = signed_in(browser, url, username)
        context.close()

    context, page = signed_in(browser, url, "a.engineer")
    page.goto(f"{url}/plans/inspections")
    expect(page.locator('form[name="approve-plan"]')).to_have_count(0)
    # the engineer forges the approval form anyway (with a valid token): refused with the reason
    token = page.locator('header form.account input[name="csrf_token"]').get_attribute("value")
    plan_day = sorted(p.name for p in settings.plans_dir.iterdir())[-1]
    answer = page.request.post(f"{url}/plans/inspections/approve", form={"plan": plan_day, "csrf_token": token})
    assert answer.status == 403 and "may not approve an inspection plan" in answer.text()
    # and a form posted without its CSRF token is refused
    bare = page.request.post(f"{url}/feedback", form={"kind": "confirm", "vehicle_number": "EMU-0001", "component": "wheelset"})
    assert bare.status == 403 and "security token" in bare.text()
    context.close()

    context, page = signed_in(browser, url, "p.planner")
    page.goto(f"{url}/models")
    expect(page.locator('form[name^="promote-"]')).to_have_count(0)
    token = page.locator('header form.account input[name="csrf_token"]').get_attribute("value")
    answer = page.request.post(f"{url}/models/promote", form={"version": "4", "csrf_token": token})
    assert answer.status == 403 and "may not promote a model" in answer.text()
    page.goto(f"{url}/plans/inspections")
    page.locator('form[name="approve-plan"] input[name="note"]').fill("capacity checked with DEP-NORTH")
    page.locator('form[name="approve-plan"] button').click()
    expect(page.locator("#approvals ~ ul")).to_contain_text("Approved by p.planner")
    context.close()


@pytest.mark.slow
def test_an_alert_goes_from_new_to_closed_and_the_table_exports(review_server, browser, tmp_path):
    import csv
    import io

    from openpyxl import load_workbook
    from playwright.sync_api import expect

    from railpm.feedback import feedback_dir_of, read_feedback
    from railpm.models.tasks import training_records

    url, settings = review_server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    assert "sample_weight" not in training_records(settings).columns, "no feedback yet: records are used as they are"

    context, page = signed_in(browser, url, "a.engineer")
    expect(page.locator("h1")).to_have_text("Fleet risk")
    expect(page.locator("#alerts")).to_contain_text("new")
    page.screenshot(path=shots / "overview.png", full_page=True)
    page.locator("table a", has_text="EMU-0001").first.click()
    expect(page.locator("h1")).to_have_text("Vehicle EMU-0001")
    expect(page.locator("#trends ~ svg.figure, #trends ~ * svg.figure").first).to_be_visible()
    page.locator('form[name="acknowledge-wheelset"] button').click()
    expect(page.locator("#status-wheelset")).to_contain_text("acknowledged")
    # a rejected form keeps its input and says what to fix in words
    close = page.locator('form[name="close-wheelset"]')
    close.locator('select[name="closing"]').select_option("dismiss")
    close.locator('input[name="reason"]').fill("ok")
    close.locator("button").click()
    expect(page.locator(".error")).to_contain_text("reason: dismissing needs a reason of at least 5 characters")
    expect(page.locator('form[name="close-wheelset"] input[name="reason"]')).to_have_value("ok")
    expect(page.locator('form[name="close-wheelset"] select[name="closing"]')).to_have_value("dismiss")
    context.close()

    context, page = signed_in(browser, url, "p.planner")
    page.goto(f"{url}/vehicles/EMU-0001")
    page.locator('form[name="plan-wheelset"] button').click()
    expect(page.locator("#status-wheelset")).to_contain_text("planned")
    context.close()

    context, page = signed_in(browser, url, "b.fitter")
    page.goto(f"{url}/vehicles/EMU-0001")
    close = page.locator('form[name="close-wheelset"]')
    close.locator('select[name="closing"]').select_option("dismiss")
    close.locator('input[name="reason"]').fill("wheelset turned on the lathe yesterday")
    close.locator("button").click()
    expect(page.locator("#status-wheelset")).to_contain_text("closed")
    expect(page.locator("#status-wheelset")).to_contain_text("dismissed")
    page.screenshot(path=shots / "vehicle.png", full_page=True)
    page.locator("header nav a", has_text="Feedback trail").click()
    for who in ("a.engineer", "p.planner", "b.fitter"):
        expect(page.locator("#feedback")).to_contain_text(who)
    page.screenshot(path=shots / "feedback_trail.png", full_page=True)

    # exports: the same rows as the page, as CSV and as XLSX, downloaded by the browser
    page.goto(f"{url}/plans/inspections")
    shown = page.locator("#inspection_plan tbody tr").count()
    page.screenshot(path=shots / "inspection_plan.png", full_page=True)
    with page.expect_download() as got:
        page.locator('form[name="query-inspection_plan"] a', has_text="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text())))
    with page.expect_download() as got:
        page.locator('form[name="query-inspection_plan"] a', has_text="Excel").click()
    sheet = list(load_workbook(io.BytesIO(Path(got.value.path()).read_bytes())).active.iter_rows(values_only=True))
    assert len(rows) == len(sheet) - 1 == shown > 0
    assert [r["vehicle_number"] for r in rows] == [page.locator("#inspection_plan tbody tr").nth(i).locator("td").nth(1).inner_text()
                                                    for i in range(shown)]
    for name in ("Model quality", "Spares plan", "RAMS"):
        page.locator("header nav a", has_text=name).click()
        page.screenshot(path=shots / f"{name.lower().replace(' ', '_')}.png", full_page=True)
    context.close()

    stored = read_feedback(feedback_dir_of(settings.lake_dir))
    assert list(zip(stored["kind"], stored["recorded_by"])) == [
        ("acknowledge", "a.engineer"), ("plan", "p.planner"), ("dismiss", "b.fitter")]
    assert stored.iloc[-1]["reason"] == "wheelset turned on the lathe yesterday"
    assert stored.iloc[-1]["scored_day"] == SCORED_DAY and stored.iloc[-1]["model_version"] == "3"

    # the next training set weighs the dismissal: the facts (no failure followed) bear it out
    training = training_records(settings)
    judged = (training["vehicle_number"] == "EMU-0001") & (training["component"] == "wheelset") & (
        training["day"] == pd.Timestamp(SCORED_DAY))
    assert judged.sum() == 1
    assert training.loc[judged, "sample_weight"].item() == 2.0
    assert (training.loc[~judged, "sample_weight"] == 1.0).all()

    SHARED_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for shot in shots.glob("*.png"):
        assert shot.stat().st_size > 10_000, f"{shot.name} looks empty"
        shutil.copy2(shot, SHARED_SCREENSHOTS / shot.name)
