"""The static report: the review app's pages as files that open without a server (``railpm report``).

``reports_dir/index.html`` is the fleet overview; every other page sits beside it and each vehicle has
``vehicles/<number>.html``. Links are relative, figures are inline SVG and the style sheet is inline, so the
folder can be zipped, mailed or served by any web server. Forms are left out: feedback needs the app.

The fleet's daily telemetry aggregates and the latest predictions are read once for all vehicle pages.
Pages are written to a temporary folder first and swapped in whole, so a reader never sees half a report.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from railpm.config import Settings
from railpm.review import pages
from railpm.review.data import LayerMissing


@dataclass(frozen=True)
class ReportResult:
    index: Path
    pages: int
    vehicle_pages: int
    seconds: float


SITE_PAGES = ("overview", "vehicles", "faults", "rams", "models", "inspections", "spares", "feedback")


def page_count(settings: Settings) -> int:
    """Pages the report will write (for a progress bar): the site's pages and one per registered vehicle."""
    from railpm.review.data import read_vehicles

    try:
        return len(SITE_PAGES) + len(read_vehicles(settings.lake_dir))
    except LayerMissing:
        return len(SITE_PAGES)


def build_report(settings: Settings, progress: Callable[[int], None] | None = None) -> ReportResult:
    """Write the static report under ``settings.reports_dir``; ``progress(n)`` is told of each page written.

    The pages are a function of the data only (no wall-clock stamp), so rebuilding on the same data gives
    the same files.
    """
    started = time.perf_counter()
    env = pages.environment()
    review = pages.ReviewData(settings)
    review.prefetch_fleet()

    target = settings.reports_dir
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "vehicles").mkdir(parents=True)
    builders = {
        "overview": pages.overview_page, "vehicles": pages.vehicles_page, "faults": pages.faults_page,
        "rams": pages.rams_page, "models": pages.models_page, "inspections": pages.inspections_page,
        "spares": pages.spares_page, "feedback": pages.feedback_page,
    }
    written = 0
    top = pages.Site(static=True, depth=0)
    for name in SITE_PAGES:
        html = pages.render(env, builders[name](review), top, current=name)
        (staging / pages.PAGES[name][2]).write_text(html, encoding="utf-8")
        written += 1
        if progress:
            progress(1)

    try:
        vehicle_numbers = list(review.vehicles()["vehicle_number"])
    except LayerMissing:
        vehicle_numbers = []
    down = pages.Site(static=True, depth=1)
    for vehicle_number in vehicle_numbers:
        page = pages.vehicle_page(review, vehicle_number)
        html = pages.render(env, page, down, current="vehicles")
        (staging / "vehicles" / f"{pages.file_slug(vehicle_number)}.html").write_text(html, encoding="utf-8")
        written += 1
        if progress:
            progress(1)

    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return ReportResult(target / "index.html", written, len(vehicle_numbers), time.perf_counter() - started)
