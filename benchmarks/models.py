"""Failure models on a fleet's records: the backtest table per component against both baselines, training
time, and scoring throughput (vehicle-components per second).

    .venv/bin/python benchmarks/models.py [--data-root data] [--build]

Reads ``records/component_days`` of the data root (``railpm demo`` builds them for the default
fleet; ``--build`` generates, ingests and runs the Spark jobs first). Training goes to a throwaway MLflow store
(``<data root>/benchmarks/mlflow.db``) so the demo's registry and its champion are left alone.
"""

from __future__ import annotations

import argparse
import math
import resource
import time
from datetime import datetime, time as dtime, timedelta, timezone
from pathlib import Path

import pandas as pd

from railpm.config import Settings, get_settings
from railpm.models.backtest import METHODS, comparison_table
from railpm.models.score import load_champion, score_day
from railpm.layers import COMPONENT_DAYS, record_dir
from railpm.models.tasks import recipe, training_records
from railpm.models.train import train_and_register

SHOWN = ("pr_auc", "roc_auc", "brier", "precision_at_capacity", "recall_at_capacity", "expected_cost", "warned_3d",
         "warned_7d", "median_warning_days", "false_alarms_per_1000_vehicle_days")


def build_records(settings: Settings) -> None:
    from railpm.ingest import ingest_landing
    from railpm.jobs import component_days, vehicle_days
    from railpm.jobs.spark import build_session
    from railpm.synth import generate_fleet

    fleet = settings.fleet
    started = time.perf_counter()
    generate_fleet(fleet, settings.landing_dir, settings.truth_dir)
    ingest_landing(settings, datetime.combine(fleet.start + timedelta(days=fleet.days), dtime(), tzinfo=timezone.utc))
    session = build_session(settings.spark, "railpm-benchmark-records")
    try:
        vehicle_days.run(session, settings)
        component_days.run(session, settings)
    finally:
        session.stop()
    print(f"built records for {fleet.vehicles} vehicles x {fleet.days} days in {time.perf_counter() - started:.0f} s")


def print_table(wide: pd.DataFrame) -> None:
    """One line per component and metric: model / age-usage / schedule."""
    print(f"{'component':<15} {'metric':<35} " + " ".join(f"{m:>10}" for m in METHODS))
    for component, row in wide.iterrows():
        for metric in SHOWN:
            if (metric, "model") not in row.index:
                continue
            cells = [row[(metric, m)] for m in METHODS]
            fmt = "{:>10,.0f}" if metric == "expected_cost" else "{:>10.3f}"
            print(f"{component:<15} {metric:<35} " + " ".join(" " * 9 + "-" if math.isnan(v) else fmt.format(v) for v in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="data root (default: $RAILPM_DATA_ROOT or ./data)")
    parser.add_argument("--build", action="store_true", help="generate, ingest and build the records first")
    args = parser.parse_args()
    settings = get_settings(**({"data_root": Path(args.data_root)} if args.data_root else {}))
    if args.build or not record_dir(settings, COMPONENT_DAYS).exists():
        build_records(settings)

    started = time.perf_counter()
    records = training_records(settings)
    read_seconds = time.perf_counter() - started
    n_features = records.shape[1]
    print(f"records: {len(records):,} component-days x {n_features} columns, {records['vehicle_number'].nunique()} vehicles,"
          f" {records['day'].min():%Y-%m-%d}..{records['day'].max():%Y-%m-%d}, read in {read_seconds:.1f} s")

    bench_root = settings.data_root / "benchmarks"
    bench_root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(bench_root / 'mlflow.db').resolve()}"
    params = recipe(settings)
    result = train_and_register(records, params, settings.model, tracking_uri=uri, artifact_root=bench_root / "mlartifacts",
                                records_source=str(record_dir(settings, COMPONENT_DAYS).resolve()),
                                progress=lambda fold: print(f"  fold {fold.number} done at {time.perf_counter() - started:.0f} s",
                                                            flush=True))
    backtest = result.backtest
    print(f"\nfolds: {[f.describe() for f in backtest.folds]}")
    print(f"\nbacktest, mean over {len(backtest.folds)} folds (model / age-usage / schedule):")
    print_table(comparison_table(backtest, SHOWN))
    print("\nprimary metric (mean PR-AUC over folds and components): "
          + ", ".join(f"{m} {backtest.primary_metric(m):.3f}" for m in METHODS))
    print("remaining-life interval coverage per fold (censoring-aware, nominal "
          f"{settings.model.remaining_life_interval:.0%}): " + ", ".join(f"{v:.2f}" for v in backtest.life["censored_aware"]))
    print(f"gate: version {result.model_version} -> {result.decision.alias} ({result.decision.reason})")
    print(f"training: {result.seconds:.0f} s in all, of which backtest {result.backtest_seconds:.0f} s "
          f"({len(backtest.folds)} folds x (model + age/usage baseline + remaining-life model) + importance)")

    model, version = load_champion(uri, settings.model.registered_model_name)
    served = model.unwrap_python_model()
    recent = records[records["day"] > records["day"].max() - pd.Timedelta(days=28)]
    features = served.features(recent)
    started = time.perf_counter()
    model.predict(features)
    predict_seconds = time.perf_counter() - started
    started = time.perf_counter()
    served.explain(recent)
    explain_seconds = time.perf_counter() - started
    print(f"\nscoring {len(recent):,} vehicle-components (last 28 days) with the champion v{version}:")
    print(f"  probability + remaining life: {len(recent) / predict_seconds:,.0f} vehicle-components/s")
    print(f"  reasons ({len(served.reason_features)} features occluded): {len(recent) / explain_seconds:,.0f} vehicle-components/s")
    print(f"  end to end (with both): {len(recent) / (predict_seconds + explain_seconds):,.0f} vehicle-components/s")
    scored = score_day(record_dir(settings, COMPONENT_DAYS), bench_root / "predictions", settings.model, uri)
    print(f"  one day through `score_day` (read, score, reasons, write): {scored.rows} rows in {scored.seconds:.1f} s")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
