"""Review benchmark: how long each page of the review app answers, server side, on a real or generated fleet.

    .venv/bin/python benchmarks/review.py --data-root data                 # after `railpm demo`
    .venv/bin/python benchmarks/review.py --generate 3000 --work /tmp/rv   # a generated 3,000-vehicle fleet

``--generate N`` writes a fleet of N vehicles straight into the layouts the app reads (registry, 90 days of
telemetry at 4 readings a day, faults, work orders, two scored days of predictions for every fitted
component, feedback on some alerts) and builds the real inspection and spares plans on it, so the pages
read what they would read in production; the records (dossier, RAMS) come from the real Spark job
(``railpm records --data-root <work>/fleet-N``, run once by hand: it is the slow part). A model version is
registered in the fleet's MLflow store the way training logs one (parameters, tags, backtest tables and
plots), its figures computed from the generated predictions: the model pages read a real store, not a
trained model. Every page is fetched through the app with FastAPI's test client (routing, sign-in, reading,
plotting, rendering) once cold and then ``--repeat`` times (default 5); the first load, the median and the
median CPU seconds are printed, with the resident memory and, unless ``--no-report``, the static report's time.

``--screenshots DIR`` then serves the app with ``railpm review`` and saves a PNG of each main page, taken by
headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright) signed in as the benchmark's planner.
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
PAGES = ("/", "/vehicles", "/vehicles?sort=max_probability&dir=desc&page=3", "/faults", "/rams", "/rams?period=month",
         "/models", "/models/1", "/monitoring", "/plans/inspections", "/plans/spares", "/feedback", "/export/alerts.csv",
         "/export/inspection_plan.xlsx", "/export/work_requests.csv")
SCREENSHOTS = (("overview", "/"), ("vehicle", None), ("vehicle-dossier", "#dossier"), ("inspection-plan", "/plans/inspections"), ("rams", "/rams"),
               ("models", "/models"), ("model-card", "/models/1"), ("monitoring", "/monitoring"))
"""Main pages to photograph (file stem, path); None or an #anchor is the riskiest vehicle of the latest scored day."""


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


def register_model(settings, seed: int = 5) -> str:
    """One version in the fleet's MLflow store, logged as ``railpm.models.train`` logs one (see the docstring)."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.metrics import average_precision_score

    from railpm.models import plots
    from railpm.models.frames import LABEL
    from railpm.review.data import read_latest_predictions

    rng = np.random.default_rng(seed)
    scored = read_latest_predictions(settings.predictions_dir).frame[["vehicle_number", "component", "failure_probability"]]
    scored = scored.assign(**{LABEL: rng.random(len(scored)) < scored["failure_probability"],
                              "score_model": scored["failure_probability"], "score_age_usage": rng.random(len(scored)),
                              "score_schedule": rng.random(len(scored)),
                              "fold": np.where(scored["vehicle_number"].str[-1].isin(list("01234")), 1, 2)})
    rows = []
    for (fold, component), part in [*scored.groupby(["fold", "component"]), *(((f, "all"), scored[scored["fold"] == f]) for f in (1, 2))]:
        for method in ("model", "age_usage", "schedule"):
            rows.append({"method": method, "fold": fold, "component": component, "rows": len(part),
                         "positives": int(part[LABEL].sum()), "failures": int(part[LABEL].sum()),
                         "alerts": int((part[f"score_{method}"] > 0.3).sum()),
                         "pr_auc": float(average_precision_score(part[LABEL], part[f"score_{method}"])) if part[LABEL].any() else None})
    folds = pd.DataFrame(rows)
    primary = {m: float(folds[(folds["method"] == m) & (folds["component"] != "all")]["pr_auc"].mean()) for m in ("model", "age_usage", "schedule")}
    name = settings.model.registered_model_name
    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = mlflow.set_experiment(name)
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name="benchmark-registration") as run:
        mlflow.log_metrics({f"{m}.primary_pr_auc": v for m, v in primary.items()} | {"primary_pr_auc": primary["model"]})
        mlflow.log_params({"rows": len(scored), "numeric_features": 389, "train_row_stride_days": 1, "healthy_sample_share": 1.0,
                           "settings.champion_margin": settings.model.champion_margin})
        mlflow.set_tags({"railpm.gate": "champion", "railpm.previous_champion": "", "railpm.recipe": json.dumps({"feature_set": "all"}),
                         "railpm.first_day": "2025-01-01", "railpm.last_day": "2025-03-31",
                         "railpm.gate_reason": f"{primary['model']:.4f} registered by benchmarks/review.py"})
        mlflow.log_table(folds, "backtest/folds.json")
        mlflow.log_table(folds.drop(columns="fold").groupby(["component", "method"]).mean(numeric_only=True).reset_index(), "backtest/summary.json")
        mlflow.log_figure(plots.pr_curves(scored), "plots/pr_curves.png")
        mlflow.log_figure(plots.calibration(scored), "plots/calibration.png")
    client = MlflowClient()
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id).version
    client.set_registered_model_alias(name, "champion", version)
    return str(version)


def take_screenshots(settings, folder: Path, vehicle: str | None, width: int = 1280, height: int = 900) -> list[Path]:
    """PNGs of the main pages as people see them: ``railpm review`` on a free port, headless Chromium signed in."""
    import socket
    import subprocess
    import sys
    import urllib.request

    from PIL import Image
    from playwright.sync_api import sync_playwright

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(Path(sys.executable).with_name("railpm")), "review", "--port", str(port),
                               "--data-root", str(settings.data_root)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_context(viewport={"width": width, "height": height}).new_page()
            page.set_default_timeout(180_000)
            page.goto(f"{url}/login")
            page.fill("#username", "bench.planner")
            page.fill("#password", PASSWORD)
            page.click('form[name="login"] button[type="submit"]')
            page.wait_for_selector("header .account")
            for stem, path in SCREENSHOTS:
                if path is None or path.startswith("#"):
                    if vehicle is None:
                        continue
                    path = f"/vehicles/{vehicle}{path or ''}"
                page.goto(f"{url}{path}")
                target = folder / f"{stem}.png"
                page.screenshot(path=str(target))
                # a 64-colour palette keeps a page's screenshot small enough for the repository
                Image.open(target).convert("RGB").quantize(colors=64).save(target, optimize=True)
                written.append(target)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="data root (default: settings, or --work with --generate)")
    parser.add_argument("--generate", type=int, default=0, help="generate a fleet of this many vehicles first")
    parser.add_argument("--work", default="/tmp/railpm_review_bench", help="where --generate writes its data root")
    parser.add_argument("--vehicles", type=int, default=5, help="vehicle pages to time")
    parser.add_argument("--repeat", type=int, default=5, help="loads per page (median reported)")
    parser.add_argument("--no-report", action="store_true", help="skip the static report")
    parser.add_argument("--screenshots", default=None, help="save PNGs of the main pages (headless Chromium) here")
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
    if args.generate and not Path(settings.tracking_uri.removeprefix("sqlite:///")).exists():
        print(f"registered model version {register_model(settings)} in {settings.tracking_uri}")
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
        print(f"{'page':<52}{'status':>7}{'first s':>8}{'median s':>9}{'cpu s':>7}{'KiB':>6}   (median of {args.repeat} after the first)")
        for path in (*PAGES, *(f"/vehicles/{v}" for v in sample)):
            started = time.perf_counter()
            client.get(path)
            first = time.perf_counter() - started
            walls, cpus = [], []
            for _ in range(args.repeat):
                started, cpu = time.perf_counter(), time.process_time()
                response = client.get(path)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
            medians[path] = statistics.median(walls)
            print(f"{path:<52}{response.status_code:>7}{first:>8.2f}{medians[path]:>9.2f}{statistics.median(cpus):>7.2f}"
                  f"{len(response.content) / 1024:>6.0f}", flush=True)
    slowest = max(medians, key=medians.get)
    print(f"slowest: {slowest} {medians[slowest]:.2f} s (server side, median of {args.repeat})")

    print(f"load average during the run (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in psutil.getloadavg())} on {psutil.cpu_count()} CPUs")
    if args.screenshots:
        for path in take_screenshots(settings, Path(args.screenshots), sample[0] if sample else None):
            print(f"screenshot {path} ({path.stat().st_size / 1024:.0f} KiB)")
    if not args.no_report:
        result = build_report(settings)
        print(f"static report: {result.pages} pages ({result.vehicle_pages} vehicles) in {result.seconds:.1f} s, "
              f"{result.pages / result.seconds:.1f} pages/s -> {result.index}")
    print(f"resident memory at the end: {process.memory_info().rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
