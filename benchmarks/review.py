"""Review benchmark: how long each page of the review app takes, and the static report, on a real data root.

    .venv/bin/python benchmarks/review.py --data-root data      # after `railpm demo`

Prints the time of every top-level page and of a sample of vehicle pages through the app (FastAPI's test
client, so the figures include routing, reading, plotting and rendering), the resident memory, and the
static report's wall time and pages per second.
"""

from __future__ import annotations

import argparse
import statistics
import time

import psutil


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="data root (default: settings)")
    parser.add_argument("--vehicles", type=int, default=5, help="vehicle pages to time")
    parser.add_argument("--no-report", action="store_true", help="skip the static report")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from railpm.config import get_settings
    from railpm.review.app import create_app
    from railpm.review.data import LayerMissing, read_latest_predictions, read_vehicles
    from railpm.review.report import build_report

    settings = get_settings(**({"data_root": args.data_root} if args.data_root else {}))
    process = psutil.Process()
    try:
        fleet = read_vehicles(settings.lake_dir)
        print(f"fleet: {len(fleet)} vehicles under {settings.data_root}")
    except LayerMissing as exc:
        fleet = None
        print(f"fleet: {exc}")
    try:
        sample = list(read_latest_predictions(settings.predictions_dir).frame["vehicle_number"].drop_duplicates().head(args.vehicles))
    except LayerMissing:
        sample = list(fleet["vehicle_number"].head(args.vehicles)) if fleet is not None else []

    with TestClient(create_app(settings)) as client:
        client.get("/healthz")
        print(f"{'page':<34}{'status':>7}{'seconds':>9}{'KiB':>8}")
        for path in ("/", "/vehicles", "/faults", "/rams", "/models", "/plans/inspections", "/plans/spares", "/feedback"):
            started = time.perf_counter()
            response = client.get(path)
            print(f"{path:<34}{response.status_code:>7}{time.perf_counter() - started:>9.2f}{len(response.content) / 1024:>8.0f}")
        times = []
        for vehicle in sample:
            started = time.perf_counter()
            response = client.get(f"/vehicles/{vehicle}")
            times.append(time.perf_counter() - started)
            print(f"{'/vehicles/' + vehicle:<34}{response.status_code:>7}{times[-1]:>9.2f}{len(response.content) / 1024:>8.0f}")
        if times:
            print(f"vehicle page: median {statistics.median(times):.2f} s over {len(times)} vehicles")

    if not args.no_report:
        result = build_report(settings)
        print(f"static report: {result.pages} pages ({result.vehicle_pages} vehicles) in {result.seconds:.1f} s, "
              f"{result.pages / result.seconds:.1f} pages/s -> {result.index}")
    print(f"resident memory at the end: {process.memory_info().rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
