"""The review app driven by a real headless browser: Debian's chromium through Playwright.

The app runs as people start it (``railpm review`` on a free loopback port, served by uvicorn); the browser
opens the overview, follows an alert to its vehicle, dismisses the prediction through the form, and the
entry must be in ``lake/feedback/``. Screenshots of the main pages go to the test's tmp folder and are
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

from helpers import SCORED_DAY, free_port, log_version, write_component_days, write_review_fleet

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHARED_SCREENSHOTS = Path("/tmp/railpm_screenshots")
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


@pytest.fixture
def review_server(settings, tmp_path):
    """`railpm review` on a free 127.0.0.1 port over a tiny fleet with real plans; yields (url, settings)."""
    from railpm.planning.run import run_plan

    write_review_fleet(settings)
    write_component_days(settings)
    run_plan(settings)
    log_version(settings, 0.42, "champion")
    log_version(settings, 0.40, "challenger")
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


@pytest.mark.slow
def test_an_engineer_dismisses_a_prediction_in_a_real_browser(review_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from railpm.feedback import feedback_dir_of, read_feedback
    from railpm.models.tasks import training_records

    assert CHROMIUM.exists(), "Debian's chromium is missing: run `make install` (scripts/install-system-deps.sh)"
    url, settings = review_server
    assert "sample_weight" not in training_records(settings).columns, "no feedback yet: records are used as they are"
    shots = tmp_path / "screenshots"
    shots.mkdir()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/")
            expect(page.locator("h1")).to_have_text("Fleet risk")
            expect(page.locator("svg.figure").first).to_be_visible()
            page.screenshot(path=shots / "overview.png", full_page=True)

            page.locator("table a", has_text="EMU-0001").first.click()
            expect(page.locator("h1")).to_have_text("Vehicle EMU-0001")
            expect(page.locator("#trends ~ svg.figure, #trends ~ * svg.figure").first).to_be_visible()
            page.screenshot(path=shots / "vehicle.png", full_page=True)

            form = page.locator('form[name="decision-wheelset"]')
            form.locator('input[name="recorded_by"]').fill("R. Engineer")
            form.locator('select[name="kind"]').select_option("dismiss")
            form.locator('input[name="reason"]').fill("wheelset turned on the lathe yesterday")
            form.locator('button[type="submit"]').click()
            expect(page.locator(".flash")).to_contain_text("Feedback recorded")
            expect(page.locator("#feedback ~ div table").first).to_contain_text("wheelset turned on the lathe yesterday")
            page.screenshot(path=shots / "vehicle_after_feedback.png", full_page=True)

            for name, heading in (("Inspection plan", "Inspection plan"), ("Spares plan", "Spares plan"),
                                  ("Model quality", "Model quality"), ("Feedback trail", "Feedback trail")):
                page.locator("header nav a", has_text=name).click()
                expect(page.locator("h1")).to_have_text(heading)
                page.screenshot(path=shots / f"{name.lower().replace(' ', '_')}.png", full_page=True)
                if name == "Model quality":
                    expect(page.locator("h2", has_text="(champion)")).to_be_visible()
            expect(page.locator("#entries ~ div table")).to_contain_text("R. Engineer")
        finally:
            browser.close()

    stored = read_feedback(feedback_dir_of(settings.lake_dir))
    assert len(stored) == 1
    entry = stored.iloc[0]
    assert (entry["kind"], entry["vehicle_number"], entry["component"], entry["recorded_by"]) == (
        "dismiss", "EMU-0001", "wheelset", "R. Engineer")
    assert entry["reason"] == "wheelset turned on the lathe yesterday"
    assert entry["scored_day"] == SCORED_DAY and entry["model_version"] == "3"

    # The next training set weighs the dismissal: the facts (no failure followed) bear it out.
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
