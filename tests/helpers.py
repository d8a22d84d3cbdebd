"""Plain helpers the test modules share (fixtures stay in ``conftest.py``).

Sections: running a script in a fresh interpreter and reading its one JSON line; a free loopback port; the
small fleets and real ``airflow dags test`` runs; landing rows for the GX suites; a tiny fleet written in the
review app's layouts; a model version logged as training logs one.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from railpm import contracts
from railpm.config import DirtRates, FleetSettings, Settings
from railpm.deploy.orchestration import DagRunResult, run_dag

REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# A script in a fresh interpreter, its result on one marked line
# --------------------------------------------------------------------------------------------------

def run_marked(script: str, marker: str, env: dict[str, str], *args: str, cwd: Path = REPO_ROOT):
    """Run ``python -c script *args`` (in the repository) and return the JSON its last ``<marker> {...}`` line printed.

    A fresh interpreter shows what a DAG file imports at parse time, free of what other tests imported; the
    marker keeps the result apart from whatever Airflow logs on stdout. Fails with the script's stderr.
    """
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=cwd, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(f"{marker} ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix(f"{marker} "))


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------------
# Fleets and real DAG runs
# --------------------------------------------------------------------------------------------------

def small_fleet_settings(**dirt) -> FleetSettings:
    """A fleet small enough for unit tests yet with several failures of most components."""
    rates = DirtRates(**dirt) if dirt else DirtRates()
    return FleetSettings(vehicles=12, days=120, seed=11, vehicles_per_file=6, dirt=rates)


def run_dag_test(
    env: dict[str, str],
    dag_id: str,
    data_root: Path | str,
    logical_date: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> DagRunResult:
    """Run the real ``airflow dags test <dag_id> [logical_date]`` with ``RAILPM_DATA_ROOT`` set.

    Fails the test with the tail of Airflow's output unless the run ends in success.
    """
    run_env = {**env, "RAILPM_DATA_ROOT": str(data_root), **(extra_env or {})}
    result = run_dag(run_env, dag_id, logical_date, cwd=REPO_ROOT)
    if not result.succeeded:
        pytest.fail(f"`airflow dags test {dag_id}` failed (exit {result.exit_code}):\n{result.tail()}")
    return result


# --------------------------------------------------------------------------------------------------
# Landing rows for the GX suites
# --------------------------------------------------------------------------------------------------

REGISTRY = {"EMU-0001": "EMU", "EMU-0002": "EMU", "WAGON-0001": "WAGON"}


def telemetry_row(vehicle: str, hour: int, **changes) -> dict:
    fitted = {s.column for s in contracts.signals_for_type(REGISTRY.get(vehicle, "EMU"))}
    row = {
        "vehicle_number": vehicle,
        "ts": f"2025-01-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z",
        "odometer_km": f"{120000 + 40 * hour}",
        "speed_kmh": "62.5",
        "load_pct": "48",
        "ambient_temp_c": "4.25",
    }
    for i, signal in enumerate(contracts.SIGNALS):
        middle = (signal.min + signal.max) / 2
        row[signal.column] = f"{middle + 0.013 * hour + 0.001 * i:.3f}" if signal.column in fitted else None
    row.update(changes)
    return row


FAULT = {
    "event_id": "F-000001",
    "vehicle_number": "EMU-0001",
    "vehicle_type": "EMU",
    "depot": "DEP-NORTH",
    "ts": "2025-01-05T10:15:00Z",
    "fault_code": "BR-110",
    "subsystem": "brakes",
    "grade": "C",
    "description": "brake release slow",
}


# --------------------------------------------------------------------------------------------------
# A tiny fleet in the layouts of the team brief (lake, predictions, records, MLflow)
# --------------------------------------------------------------------------------------------------

ARROW = {
    "string": pa.string(), "float64": pa.float64(), "int64": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(), "bool": pa.bool_(),
}
FLEET = (("EMU-0001", "EMU", "DEP-NORTH"), ("LOCO-0001", "LOCO", "DEP-SOUTH"), ("WAGON-0001", "WAGON", "DEP-EAST"))
START = date(2025, 1, 1)
DAYS = 40
SCORED_DAY = START + timedelta(days=DAYS - 1)


def contract_table(feed: contracts.Feed, rows: list[dict]) -> pa.Table:
    schema = pa.schema([pa.field(c.name, ARROW[c.dtype], nullable=c.nullable) for c in feed.columns])
    return pa.Table.from_pylist([{c: row.get(c) for c in feed.column_names} for row in rows], schema=schema)


def write_day_partitioned(root: Path, feed: contracts.Feed, rows: list[dict], part: str) -> None:
    by_day: dict[date, list[dict]] = {}
    for row in rows:
        by_day.setdefault(row[feed.time_column].date(), []).append(row)
    for day, day_rows in by_day.items():
        folder = root / feed.name / f"day={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(contract_table(feed, day_rows), folder / f"{part}.parquet")


def at(day_offset: float) -> datetime:
    return datetime(START.year, START.month, START.day, tzinfo=timezone.utc) + timedelta(days=day_offset)


def write_review_fleet(settings: Settings, *, predictions: bool = True) -> None:
    """Registry, telemetry (4 readings a day), faults with a recurring code, work orders and predictions."""
    rng = np.random.default_rng(3)
    lake = settings.lake_dir
    (lake / "vehicles").mkdir(parents=True)
    pq.write_table(
        contract_table(contracts.VEHICLES, [
            {"vehicle_number": n, "vehicle_type": t, "home_depot": d, "commissioning_date": date(2010, 5, 1), "daily_km_mean": 500.0}
            for n, t, d in FLEET
        ]),
        lake / "vehicles" / "vehicles.parquet",
    )
    telemetry = []
    for number, vehicle_type, _ in FLEET:
        fitted = {s.column for s in contracts.signals_for_type(vehicle_type)}
        for k in range(DAYS * 4):
            row = {"vehicle_number": number, "ts": at(k / 4), "odometer_km": 1000.0 + 50 * k, "speed_kmh": 60.0,
                   "load_pct": 50.0, "ambient_temp_c": 5.0}
            for s in contracts.SIGNALS:
                if s.column in fitted:
                    middle = (s.min + s.max) / 2
                    drift = 0.004 * (s.max - s.min) * max(0, k / 4 - 25) if s.column == "axle_bearing_temp_c" else 0.0
                    row[s.column] = float(middle + drift + rng.normal(0, 0.01 * (s.max - s.min)))
            telemetry.append(row)
    write_day_partitioned(lake, contracts.TELEMETRY, telemetry, "telemetry-0001")

    faults = []
    for i, (offset, code, number) in enumerate([
        (3, "RG-110", "EMU-0001"), (9, "RG-110", "EMU-0001"), (15, "RG-110", "EMU-0001"), (33, "RG-190", "EMU-0001"),
        (12, "CM-301", "LOCO-0001"), (20, "BR-110", "WAGON-0001"),
    ]):
        meta = contracts.FAULT_CODE_BY_CODE[code]
        vehicle_type, depot = next((t, d) for n, t, d in FLEET if n == number)
        faults.append({"event_id": f"F{i:04d}", "vehicle_number": number, "vehicle_type": vehicle_type, "depot": depot,
                       "ts": at(offset + 0.3), "fault_code": code, "subsystem": meta.subsystem,
                       "grade": meta.typical_grade, "description": meta.description})
    write_day_partitioned(lake, contracts.FAULTS, faults, "faults-2025-01")

    work_orders = [
        {"work_order_id": "WO-1", "vehicle_number": "EMU-0001", "depot": "DEP-NORTH", "action": "inspection",
         "component": None, "part_number": None, "maintenance_level": 2, "opened_at": at(5), "closed_at": at(5.2),
         "odometer_km": 1200.0},
        {"work_order_id": "WO-2", "vehicle_number": "EMU-0001", "depot": "DEP-NORTH", "action": "corrective_replacement",
         "component": "wheelset", "part_number": "P-WHEELSET-EMU", "maintenance_level": None, "opened_at": at(33.5),
         "closed_at": None, "odometer_km": 7000.0},
    ]
    write_day_partitioned(lake, contracts.WORK_ORDERS, work_orders, "work_orders-2025-01")

    (lake / "parts").mkdir(parents=True)
    (lake / "stock").mkdir(parents=True)
    types = sorted({t for _, t, _ in FLEET})
    parts = [{"part_number": f"P-{c.upper()}-{t}", "component": c, "vehicle_type": t, "description": f"{c} for {t}",
              "unit_cost_eur": 1000.0 + 100 * i, "lead_time_days": 30, "stock_category": "fault-driven"}
             for t in types for i, c in enumerate(contracts.VEHICLE_TYPE_COMPONENTS[t])]
    pq.write_table(contract_table(contracts.PARTS, parts), lake / "parts" / "parts.parquet")
    stock = [{"depot": d, "part_number": p["part_number"], "on_hand": 1, "as_of": START} for d in contracts.DEPOTS for p in parts]
    pq.write_table(contract_table(contracts.STOCK, stock), lake / "stock" / "stock.parquet")

    if predictions:
        settings.predictions_dir.mkdir(parents=True)
        for day in (SCORED_DAY - timedelta(days=1), SCORED_DAY):
            rows = []
            for number, vehicle_type, depot in FLEET:
                for component in contracts.VEHICLE_TYPE_COMPONENTS[vehicle_type]:
                    p = 0.82 if (number, component) == ("EMU-0001", "wheelset") else float(rng.uniform(0.0, 0.2))
                    if day != SCORED_DAY:
                        p = p / 2
                    reasons = [{"feature": "axle_bearing_temp_c_mean_7d", "value": 88.5, "contribution": round(p / 2, 4)}] if p > 0.1 else []
                    rows.append({
                        "scored_day": day, "vehicle_number": number, "vehicle_type": vehicle_type, "home_depot": depot,
                        "component": component, "failure_probability": p,
                        "risk_band": "high" if p > 0.5 else "medium" if p > 0.1 else "low", "alert": p > 0.5,
                        "remaining_life_days": 40 * (1 - p) + 2, "remaining_life_low_days": 20 * (1 - p) + 1,
                        "remaining_life_high_days": 90 * (1 - p) + 5, "reasons": json.dumps(reasons), "model_version": "3",
                    })
            pq.write_table(contract_table(contracts.PREDICTIONS, rows), settings.predictions_dir / f"predictions-{day}.parquet")


def write_component_days(settings: Settings, days: int = 3) -> None:
    """The last ``days`` component-day records before the scored day, in the records layout (``day=`` folders).

    Labels are observed and negative (no failure followed), except one censored row, so that feedback has
    something to weigh and to complete.
    """
    for k in range(days):
        day = SCORED_DAY - timedelta(days=days - 1 - k)
        rows = []
        for number, vehicle_type, depot in FLEET:
            for component in contracts.VEHICLE_TYPE_COMPONENTS[vehicle_type]:
                censored = (number, component) == ("LOCO-0001", "battery")
                rows.append({
                    "vehicle_number": number, "component": component, "vehicle_type": vehicle_type, "home_depot": depot,
                    "age_days": float(5000 + k), "axle_bearing_temp_c_mean_7d": 60.0 + k,
                    contracts.LABEL_FAILS_WITHIN_HORIZON: None if censored else False,
                    contracts.LABEL_DAYS_TO_FAILURE: None,
                    contracts.LABEL_TIME_OBSERVED: 5.0 if censored else 30.0,
                    contracts.LABEL_EVENT_OBSERVED: False,
                })
        folder = settings.records_dir / "component_days" / f"day={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")


# --------------------------------------------------------------------------------------------------
# Crawling helpers
# --------------------------------------------------------------------------------------------------

class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None or name not in ("href", "src", "action"):
                continue
            if value.startswith(("http://", "https://", "//")):
                self.external.append(value)
            elif not value.startswith(("data:", "#", "mailto:")):
                self.links.append(value)


def links_of(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


# --------------------------------------------------------------------------------------------------
# Model quality, read from a real MLflow store through MlflowClient
# --------------------------------------------------------------------------------------------------

def log_version(settings: Settings, pr_auc: float, alias: str) -> str:
    """A training run as railpm logs one (headline metrics, backtest summary table, gate tag), registered."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient()
    name = settings.model.registered_model_name
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    experiment = mlflow.set_experiment(name)
    summary = pd.DataFrame([
        {"component": c, "method": m, "pr_auc": pr_auc * f, "recall_at_capacity": 0.5 * f, "cost_saving": 1000 * f}
        for c in ("wheelset", "brake_unit", "all") for m, f in (("model", 1.0), ("age_usage", 0.6), ("schedule", 0.4))
    ])
    # Two test folds: counts differ per fold, so their mean is not a whole number (the card sums them).
    folds = pd.concat([summary.assign(fold=k, failures=3 + k, alerts=40 + k, rows=1000 + k) for k in (1, 2)])
    previous = client.get_registered_model(name).aliases.get("champion")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.log_metrics({"model.primary_pr_auc": pr_auc, "age_usage.primary_pr_auc": pr_auc * 0.6,
                            "schedule.primary_pr_auc": pr_auc * 0.4, "model.mean.recall_at_capacity": 0.5})
        mlflow.log_table(summary, "backtest/summary.json")
        mlflow.log_table(folds, "backtest/folds.json")
        from matplotlib.figure import Figure

        figure = Figure(figsize=(12, 7))  # the size training draws its grid of PR curves at
        figure.subplots().plot([0, 1], [1, 0])
        mlflow.log_figure(figure, "plots/pr_curves.png")
        mlflow.log_dict({"folds": [{"number": 1, "train_end": "2024-11-30", "test_start": "2024-12-01", "test_end": "2024-12-20"},
                                   {"number": 2, "train_end": "2024-12-20", "test_start": "2024-12-21", "test_end": "2025-01-09"}]},
                        "backtest/folds_spec.json")
        mlflow.log_params({"rows": 84000, "numeric_features": 389, "train_row_stride_days": 2, "healthy_sample_share": 0.25,
                           "settings.champion_margin": 0.02})
        mlflow.set_tags({"railpm.gate_reason": f"{pr_auc:.4f} gate decision for {alias}", "railpm.gate": alias,
                         "railpm.first_day": "2024-10-01", "railpm.last_day": "2025-01-09",
                         "railpm.previous_champion": str(previous or ""),
                         "railpm.recipe": json.dumps({"feature_set": "all", "learning_rate": 0.06, "max_iter": 60})})
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(name, alias, version.version)
    return version.version


# Review app accounts: one per role, all with the same password
PASSWORD = "correct horse battery"
ACCOUNTS = (("a.engineer", "engineer"), ("b.fitter", "engineer"), ("p.planner", "planner"), ("d.scientist", "data_team"))


def add_accounts(settings) -> None:
    from railpm.review.accounts import accounts_file, add_account

    for username, role in ACCOUNTS:
        add_account(accounts_file(settings), username, name=username, role=role, password=PASSWORD)


# Moved from the test modules that first needed them


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def feedback_files(settings: Settings) -> list[Path]:
    folder = settings.lake_dir / "feedback"
    return sorted(folder.rglob("*.parquet")) if folder.exists() else []


GOOD_DECISION = {"kind": "dismiss", "vehicle_number": "EMU-0001", "component": "wheelset",
                 "scored_day": SCORED_DAY.isoformat(), "model_version": "3", "reason": "bearing replaced last week"}


def sign_in(client, username: str) -> str:
    """Sign in through the form; returns the session's CSRF token (also set as the JSON API's header)."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    client.headers["X-CSRF-Token"] = token
    client.csrf = token
    return token


def signed(client, fields: dict) -> dict:
    return {**fields, "csrf_token": client.csrf}


def write_csv(path: Path, feed: contracts.Feed, rows: list[dict], extra_lines: dict[int, str] | None = None) -> None:
    """Rows as CSV lines; ``extra_lines`` inserts raw lines at 1-based record numbers."""
    lines = [",".join("" if r.get(c) is None else str(r[c]) for c in feed.column_names) for r in rows]
    for record in sorted(extra_lines or {}):
        lines.insert(record - 1, extra_lines[record])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(feed.column_names), *lines]) + "\n")


def write_jsonl(path: Path, rows: list[dict | str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def land_registry(settings: Settings) -> None:
    vehicles = [
        {"vehicle_number": v, "vehicle_type": t, "home_depot": "DEP-NORTH", "commissioning_date": "2015-03-01", "daily_km_mean": 600}
        for v, t in (("EMU-0001", "EMU"), ("EMU-0002", "EMU"), ("WAGON-0001", "WAGON"))
    ]
    write_csv(settings.landing_dir / "vehicles" / "vehicles.csv", contracts.VEHICLES, vehicles)


def lake_rows(settings: Settings, feed: str) -> pd.DataFrame:
    return pd.read_parquet(settings.lake_dir / feed)
