"""The static report: the review app's pages as files that open without a server (``railpm report``).

``reports_dir/index.html`` is the fleet overview; every other page sits beside it and each vehicle has
``vehicles/<number>.html``. Links are relative, figures are inline SVG and the style sheet is inline, so the
folder can be zipped, mailed or served by any web server. Forms are left out: feedback needs the app.

The fleet's daily telemetry aggregates and the latest predictions are read once for all vehicle pages.
Pages are written to a temporary folder first and swapped in whole, so a reader never sees half a report.
"""

from __future__ import annotations

import multiprocessing
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


def page_count(settings: Settings) -> int:
    """Pages the report will write (for a progress bar): the site's pages and one per registered vehicle."""
    from railpm.review.data import read_vehicles

    try:
        return len(pages.FLEET_PAGES) + len(read_vehicles(settings.lake_dir))
    except LayerMissing:
        return len(pages.FLEET_PAGES)


def build_report(settings: Settings, progress: Callable[[int], None] | None = None, workers: int = 2) -> ReportResult:
    """Write the static report under ``settings.reports_dir``; ``progress(n)`` is told of each page written.

    Vehicle pages are drawn by ``workers`` forked processes (figures are CPU-bound; the fleet's prefetched
    data is shared copy-on-write); inside a daemon process (some executors run tasks so) they are drawn in
    this process. The pages are a function of the data only (no wall-clock stamp).
    """
    started = time.perf_counter()
    env = pages.environment()
    review = pages.ReviewData(settings, paged=False)
    review.prefetch_fleet()

    target = settings.reports_dir
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "vehicles").mkdir(parents=True)
    top = pages.Site(static=True, depth=0)
    for spec in pages.FLEET_PAGES:
        html = pages.render(env, spec.build(review), top, current=spec.name)
        (staging / spec.file).write_text(html, encoding="utf-8")
        if progress:
            progress(1)

    try:
        vehicle_numbers = list(review.vehicles()["vehicle_number"])
    except LayerMissing:
        vehicle_numbers = []
    _VEHICLE_JOB.update(review=review, env=env, folder=staging / "vehicles")
    try:
        if workers > 1 and len(vehicle_numbers) > 1 and _can_fork():
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for _ in pool.imap_unordered(_write_vehicle_page, vehicle_numbers, chunksize=4):
                    if progress:
                        progress(1)
        else:
            for vehicle_number in vehicle_numbers:
                _write_vehicle_page(vehicle_number)
                if progress:
                    progress(1)
    finally:
        _VEHICLE_JOB.clear()

    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    written = len(pages.FLEET_PAGES) + len(vehicle_numbers)
    return ReportResult(target / "index.html", written, len(vehicle_numbers), time.perf_counter() - started)


_VEHICLE_JOB: dict = {}
"""What the vehicle-page workers need, set before they fork (so it is inherited, never pickled)."""


def _write_vehicle_page(vehicle_number: str) -> str:
    job = _VEHICLE_JOB
    page = pages.vehicle_page(job["review"], vehicle_number)
    html = pages.render(job["env"], page, pages.Site(static=True, depth=1), current="vehicles")
    (job["folder"] / f"{pages.file_slug(vehicle_number)}.html").write_text(html, encoding="utf-8")
    return vehicle_number


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon
