"""What acting on the predictions saves: the policy simulation (``railpm.models.simulation``) on the backtest's
rolling-origin folds, with a sensitivity table over the ratio of failure to inspection cost.

    .venv/bin/python benchmarks/policy.py [--data-root data] [--build] [--folds 1,4] [--reuse-backtest]

Reads ``records/component_days``, the lake's work orders and (synthetic fleet) ``truth/failures.parquet`` of the
data root; ``--build`` generates, ingests and runs the Spark jobs first (``RAILPM_FLEET__VEHICLES`` sizes the fleet).
The backtest's scored test rows and folds are kept in ``<data root>/benchmarks/policy_backtest/``;
``--reuse-backtest`` simulates from them again without training (the simulation changes, the models do not).
Costs come from ``Settings.costs`` (``RAILPM_COSTS__...``); the detection probability of a targeted inspection is
``RAILPM_COSTS__DETECTION_PROBABILITY_BY_LEVEL`` (a stated parameter for a public set without truth).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import time
from pathlib import Path

import pandas as pd

from railpm import contracts
from railpm.config import get_settings
from railpm.costs import CostModel
from railpm.models.backtest import SCORED_COLUMNS, Fold, backtest_folds, score_fold, split_fold
from railpm.models.frames import failure_events
from railpm.models.simulation import (
    SimulationSettings, labelled_rows, policy_table, schedule_in_blocks, sensitivity, simulate_policies, test_block_failures,
)
from railpm.models.tasks import recipe, training_records
from railpm.planning.run import read_table


def _build_records(settings) -> None:
    """The records benchmark's builder (benchmarks/models.py), loaded by path: ``models`` is not a package name to import."""
    spec = importlib.util.spec_from_file_location("benchmark_models", Path(__file__).with_name("models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_records(settings)


def backtest_rows(settings, records: pd.DataFrame, only: list[int] | None, reuse: bool) -> tuple[pd.DataFrame | None, list[Fold]]:
    """The backtest's scored test rows and folds. Each fold's models are fitted as the backtest fits them (without
    the remaining-life model, which no policy reads) and its rows kept as soon as it is done, so folds can be
    scored by separate processes (``only``) and the simulation re-run on them (``reuse``)."""
    folder = settings.data_root / "benchmarks" / "policy_backtest"
    folder.mkdir(parents=True, exist_ok=True)
    folds = backtest_folds(records, settings.model)
    (folder / "folds.json").write_text(json.dumps([f.describe() for f in folds]))
    params = recipe(settings)
    for fold in folds:
        kept = folder / f"scored-fold{fold.number}.parquet"
        if reuse or (only and fold.number not in only):
            continue
        train, test = split_fold(records, fold, settings.model.horizon_days)
        scores, _ = score_fold(train, test, params, settings.model, life=False)
        test = test.assign(**{f"score_{method}": values for method, values in scores.items()})
        test[SCORED_COLUMNS].assign(fold=fold.number).to_parquet(kept)
        print(f"  fold {fold.number} scored ({fold.test_start:%Y-%m-%d} .. {fold.test_end:%Y-%m-%d}, CPU "
              f"{time.process_time():.0f} s)", flush=True)
    if only:
        return None, folds
    missing = [f.number for f in folds if not (folder / f"scored-fold{f.number}.parquet").exists()]
    if len(missing) == len(folds):
        raise SystemExit(f"no fold is scored yet ({folder}): score them (--folds) before the simulation")
    if missing:  # a partial figure, said so in the table's heading
        print(f"folds {missing} are not scored yet: the simulation runs on the others only", flush=True)
        folds = [f for f in folds if f.number not in missing]
    return pd.concat([pd.read_parquet(folder / f"scored-fold{f.number}.parquet") for f in folds], ignore_index=True), folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--build", action="store_true", help="generate, ingest and build records first")
    parser.add_argument("--reuse-backtest", action="store_true", help="simulate from the kept backtest rows")
    parser.add_argument("--folds", type=lambda text: [int(n) for n in text.split(",")], default=None,
                        help="score only these folds (e.g. 1,4), keep them and stop: another process scores the rest")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--records-from", type=pd.Timestamp, default=None,
                        help="leave out records before this day (record time axis): Azure PdM's maintenance log starts"
                             " months before its failures and errors, and a fold trained on that alone knows no failure")
    args = parser.parse_args()
    settings = get_settings(**({"data_root": args.data_root} if args.data_root else {}))
    if args.build:
        _build_records(settings)
    costs = CostModel(settings.costs)
    started = time.process_time()
    records = training_records(settings)
    if args.records_from is not None:
        records = records.loc[records["day"] >= args.records_from].reset_index(drop=True)
    scored_rows, folds = backtest_rows(settings, records, args.folds, args.reuse_backtest)
    if scored_rows is None:
        return
    truth_file = settings.truth_dir / "failures.parquet"
    truth = pd.read_parquet(truth_file) if truth_file.exists() else None
    failures = test_block_failures(failure_events(records), folds, truth)
    orders = read_table(settings.lake_dir / "work_orders", ["vehicle_number", "action", "component", "maintenance_level", "opened_at"])
    schedule = schedule_in_blocks(orders, folds)
    sim = SimulationSettings(settings.model.horizon_days, settings.model.alert_budget_per_depot_per_day,
                             settings.model.capacity_top_k_per_week, bootstrap=args.bootstrap,
                             steps_per_day=pd.Timedelta(days=1) / pd.Timedelta(contracts.RECORD_STEP))
    scored = labelled_rows(scored_rows)
    table = policy_table(simulate_policies(scored, failures, schedule, costs, sim), sim)
    sens = sensitivity(scored, failures, schedule, costs, sim)
    cpu = time.process_time() - started + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime

    vehicles = scored["vehicle_number"].nunique()
    print(f"policy simulation: {vehicles} vehicles, folds {', '.join(str(f.number) for f in folds)} "
          f"({folds[0].test_start:%Y-%m-%d} .. {folds[-1].test_end:%Y-%m-%d}), {len(failures)} failures "
          f"in the test blocks ({int(failures['grade'].notna().sum())} graded by truth), CPU {cpu:.0f} s")
    print("\n| policy | EUR / 1,000 vehicle-days (95 % CI) | saving vs schedule (95 % CI) | failures (A / B / grade unknown) | avoided |"
          " inspections | replacements | availability |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in table.itertuples(index=False):
        print(f"| {r.policy} | {r.eur_per_1000_vehicle_days:,.0f} ({r.ci_low:,.0f}-{r.ci_high:,.0f}) | "
              f"{r.saving_vs_fixed_schedule:.1%} ({r.saving_ci_low:.1%} to {r.saving_ci_high:.1%}) | "
              f"{r.failures} ({r.failures_a} / {r.failures_b} / {r.failures - r.failures_a - r.failures_b}) | {r.failures_avoided} | {r.inspections} | {r.replacements} | "
              f"{r.availability:.4f} |")
    print("\nwhere the money goes, EUR per 1,000 vehicle-days:\n\n| policy | scheduled visits and their replacements |"
          " in-service failures | targeted inspections and their replacements |\n|---|---:|---:|---:|")
    for r in table.itertuples(index=False):
        print(f"| {r.policy} | {r.schedule_eur_per_1000_vehicle_days:,.0f} | {r.failure_eur_per_1000_vehicle_days:,.0f} | "
              f"{r.action_eur_per_1000_vehicle_days:,.0f} |")
    print("\n| failure / inspection cost (x settings) | brake unit ratio | model at threshold | model at capacity | age/usage |"
          " perfect foresight |\n|---:|---:|---:|---:|---:|---:|")
    for r in sens.itertuples(index=False):
        print(f"| {r.factor:g} | {r.failure_to_inspection_brake_unit:,.0f} | {r.model_threshold_saving:.1%} "
              f"({r.model_threshold_saving_ci_low:.1%} to {r.model_threshold_saving_ci_high:.1%}) | "
              f"{r.model_capacity_saving:.1%} | {r.age_usage_saving:.1%} | {r.perfect_foresight_saving:.1%} |")


if __name__ == "__main__":
    main()
