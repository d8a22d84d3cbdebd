"""Review benchmark: how long each page of the review app answers, server side, on a real or generated fleet.

    .venv/bin/python benchmarks/review.py --data-root data                 # after `railpm demo`
    .venv/bin/python benchmarks/review.py --generate 3000 --work /tmp/rv   # a generated 3,000-vehicle fleet

``--generate N`` writes a fleet of N vehicles straight into the layouts the app reads (registry, 90 days of
telemetry at 4 readings a day, faults, work orders, two scored days of predictions for every fitted
component, feedback on some alerts) and builds the real inspection and spares plans on it, so the pages
read what they would read in production. Every page is fetched through the app with FastAPI's test client
(routing, sign-in, reading, plotting, rendering) ``--repeat`` times (default 5) and the median and CPU
seconds are printed, with the resident memory and, unless ``--no-report``, the static report's time.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psutil

PASSWORD = "benchmark-password"
PAGES = ("/", "/vehicles", "/vehicles?sort=max_probability&dir=desc&page=3", "/faults", "/rams", "/models", "/monitoring",
         "/plans/inspections", "/plans/spares", "/feedback", "/export/alerts.csv", "/export/inspection_plan.xlsx",
         "/export/work_requests.csv")


def generate_fleet(settings, vehicles: int, days: int = 90, seed: int = 5) -> None:
    """A fleet of ``vehicles`` in the lake, predictions and feedback layouts (see the module docstring)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from railpm import contracts
    from railpm.arrow import arrow_schema
    from railpm.feedback import Feedback, feedback_dir_of, record_feedback

    rng = np.random.default_rng(seed)
    lake = settings.lake_dir
    start = date(2025, 1, 1)
    scored = start + timedelta(days=days - 1)
    types = list(contracts.VEHICLE_TYPES)
    fleet = [(f"{types[i % len(types)]}-{i:04d}", types[i % len(types)], contracts.DEPOTS[i % len(contracts.DEPOTS)])
             for i in range(vehicles)]

    def write(feed, rows: list[dict], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in feed.column_names} for r in rows], schema=arrow_schema(feed)), path)

    write(contracts.VEHICLES, [{"vehicle_number": n, "vehicle_type": t, "home_depot": d, "commissioning_date": date(2012, 1, 1),
                                "daily_km_mean": 500.0} for n, t, d in fleet], lake / "vehicles" / "vehicles.parquet")
    origin = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    for k in range(days):
        day = start + timedelta(days=k)
        rows = []
        for n, t, _ in fleet:
            fitted = {s.column for s in contracts.signals_for_type(t)}
            for h in (0, 6, 12, 18):
                row = {"vehicle_number": n, "ts": origin + timedelta(days=k, hours=h), "odometer_km": 500.0 * k,
                       "speed_kmh": 80.0, "load_pct": 50.0, "ambient_temp_c": 10.0}
                for s in contracts.SIGNALS:
                    if s.column in fitted:
                        row[s.column] = float((s.min + s.max) / 2 + rng.normal(0, 0.02 * (s.max - s.min)))
                rows.append(row)
        write(contracts.TELEMETRY, rows, lake / "telemetry" / f"day={day}" / "telemetry.parquet")
    codes = list(contracts.FAULT_CODES)
    faults = []
    for i in range(vehicles * 6):
        n, t, d = fleet[int(rng.integers(vehicles))]
        code = codes[int(rng.integers(len(codes)))]
        faults.append({"event_id": f"F{i:07d}", "vehicle_number": n, "vehicle_type": t, "depot": d,
                       "ts": origin + timedelta(days=float(rng.uniform(0, days))), "fault_code": code.code,
                       "subsystem": code.subsystem, "grade": code.typical_grade, "description": code.description})
    write(contracts.FAULTS, faults, lake / "faults" / "day=2025-01-01" / "faults.parquet")
    write(contracts.WORK_ORDERS, [
        {"work_order_id": f"WO-{i}", "vehicle_number": n, "depot": d, "action": "inspection", "component": None,
         "part_number": None, "maintenance_level": 1, "opened_at": origin + timedelta(days=10), "closed_at": origin + timedelta(days=10.2),
         "odometer_km": 5000.0} for i, (n, _, d) in enumerate(fleet)], lake / "work_orders" / "day=2025-01-11" / "work_orders.parquet")
    parts = [{"part_number": f"P-{c.upper()}-{t}", "component": c, "vehicle_type": t, "description": f"{c} for {t}",
              "unit_cost_eur": 1500.0, "lead_time_days": 30, "stock_category": "fault-driven"}
             for t in types for c in contracts.VEHICLE_TYPE_COMPONENTS[t]]
    write(contracts.PARTS, parts, lake / "parts" / "parts.parquet")
    write(contracts.STOCK, [{"depot": d, "part_number": p["part_number"], "on_hand": 2, "as_of": start}
                            for d in contracts.DEPOTS for p in parts], lake / "stock" / "stock.parquet")

    settings.predictions_dir.mkdir(parents=True, exist_ok=True)
    alerts = []
    for day in (scored - timedelta(days=1), scored):
        rows = []
        for n, t, d in fleet:
            for c in contracts.VEHICLE_TYPE_COMPONENTS[t]:
                p = float(rng.beta(0.6, 12))
                signal = next((s.column for s in contracts.SIGNALS if s.component == c), None)
                feature = f"{signal}_z_mean_7d" if signal else "faults_grade_b_30d"
                reasons = [{"feature": feature, "value": round(float(rng.normal(3, 1)), 2), "contribution": round(p / 2, 4)}]
                row = {"scored_day": day, "vehicle_number": n, "vehicle_type": t, "home_depot": d, "component": c,
                       "failure_probability": p, "risk_band": "high" if p > 0.3 else "medium" if p > 0.1 else "low",
                       "alert": p > 0.3, "remaining_life_days": 60 * (1 - p), "remaining_life_low_days": 30 * (1 - p),
                       "remaining_life_high_days": 120 * (1 - p), "reasons": json.dumps(reasons), "model_version": "1"}
                rows.append(row)
                if day == scored and row["alert"]:
                    alerts.append(row)
        write(contracts.PREDICTIONS, rows, settings.predictions_dir / f"predictions-{day}.parquet")
    vehicles_frame = __import__("pandas").read_parquet(lake / "vehicles" / "vehicles.parquet")
    for row in alerts[: max(1, len(alerts) // 5)]:
        record_feedback(Feedback(kind="acknowledge", vehicle_number=row["vehicle_number"], component=row["component"],
                                 recorded_by="bench.engineer", scored_day=scored, model_version="1"),
                        feedback_dir_of(lake), vehicles_frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="data root (default: settings, or --work with --generate)")
    parser.add_argument("--generate", type=int, default=0, help="generate a fleet of this many vehicles first")
    parser.add_argument("--work", default="/tmp/railpm_review_bench", help="where --generate writes its data root")
    parser.add_argument("--vehicles", type=int, default=5, help="vehicle pages to time")
    parser.add_argument("--repeat", type=int, default=5, help="loads per page (median reported)")
    parser.add_argument("--no-report", action="store_true", help="skip the static report")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from railpm.config import Settings, get_settings
    from railpm.review.accounts import accounts_file, add_account
    from railpm.review.app import create_app
    from railpm.review.data import LayerMissing, read_latest_predictions, read_vehicles
    from railpm.review.report import build_report

    if args.generate:
        settings = Settings(data_root=Path(args.work) / f"fleet-{args.generate}")
        if not settings.lake_dir.exists():
            from railpm.planning.run import run_plan

            started = time.perf_counter()
            generate_fleet(settings, args.generate)
            run_plan(settings)
            print(f"generated {args.generate} vehicles and their plans in {time.perf_counter() - started:.0f} s under {settings.data_root}")
    else:
        settings = get_settings(**({"data_root": args.data_root} if args.data_root else {}))
    add_account(accounts_file(settings), "bench.planner", name="benchmark", role="planner", password=PASSWORD)
    process = psutil.Process()
    try:
        print(f"fleet: {len(read_vehicles(settings.lake_dir))} vehicles under {settings.data_root}")
    except LayerMissing as exc:
        print(f"fleet: {exc}")
    try:
        sample = list(read_latest_predictions(settings.predictions_dir).frame["vehicle_number"].drop_duplicates().head(args.vehicles))
    except LayerMissing:
        sample = []

    medians = {}
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8050") as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"username": "bench.planner", "password": PASSWORD, "csrf_token": token})
        print(f"{'page (median of ' + str(args.repeat) + ')':<52}{'status':>7}{'wall s':>8}{'cpu s':>8}{'KiB':>8}")
        for path in (*PAGES, *(f"/vehicles/{v}" for v in sample)):
            walls, cpus = [], []
            for _ in range(args.repeat):
                started, cpu = time.perf_counter(), time.process_time()
                response = client.get(path)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
            medians[path] = statistics.median(walls)
            print(f"{path:<52}{response.status_code:>7}{medians[path]:>8.2f}{statistics.median(cpus):>8.2f}"
                  f"{len(response.content) / 1024:>8.0f}")
    slowest = max(medians, key=medians.get)
    print(f"slowest: {slowest} {medians[slowest]:.2f} s (server side, median of {args.repeat})")

    if not args.no_report:
        result = build_report(settings)
        print(f"static report: {result.pages} pages ({result.vehicle_pages} vehicles) in {result.seconds:.1f} s, "
              f"{result.pages / result.seconds:.1f} pages/s -> {result.index}")
    print(f"resident memory at the end: {process.memory_info().rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
