"""A fleet's life day after day through the real DAGs: what each day and step costs, and how the champion moves.

    nice -n 10 .venv/bin/python benchmarks/replay.py --days 2 --vehicles 6 --history-days 140   # proves it works
    nice -n 10 .venv/bin/python benchmarks/replay.py                                            # 90 days x 100 vehicles

A clean synthetic fleet of ``history-days + days`` days is generated as daily deliveries (``railpm generate
--deliveries daily``, with the drills: a missing drop, a drop delivered twice, a corrected resend, a garbage
file); the go-live drop brings the history. Then ``railpm replay`` runs ``days`` days from go-live, each through
``fleet_ingest``, ``fleet_records``, ``fleet_train`` (weekly, and the first day), ``fleet_score`` and
``fleet_plan`` (``airflow dags test`` with the day's logical date). Printed: per day and step wall and CPU
seconds (Airflow, its tasks and Spark's JVM), records in / accepted / quarantined / held / released and the
champion version; then per step the median and worst day, and the number of champion changes. Figures, not
assertions; the data root is kept (``--data-root``) so a stopped run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="days replayed from go-live (default: a quarter)")
    parser.add_argument("--vehicles", type=int, default=100)
    parser.add_argument("--history-days", type=int, default=365, help="history the go-live drop brings")
    parser.add_argument("--data-root", type=Path, default=None, help="kept between runs: a second run resumes")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    data_root = args.data_root or Path(tempfile.mkdtemp(prefix="railpm-replay-"))
    horizon = min(30, max(5, args.history_days // 10))  # a short history needs a short horizon for the folds to fit
    os.environ.update({
        "RAILPM_DATA_ROOT": str(data_root),
        "RAILPM_FLEET__VEHICLES": str(args.vehicles),
        "RAILPM_FLEET__DAYS": str(args.history_days + args.days + 1),
        "RAILPM_FLEET__SEED": str(args.seed),
        "RAILPM_MODEL__BACKTEST_FOLDS": "2",
        "RAILPM_MODEL__HORIZON_DAYS": str(horizon),
        "RAILPM_MODEL__CAPACITY_TOP_K_PER_WEEK": str(max(2, args.vehicles // 4)),
    })
    from railpm.cli import print_replay_day, print_replay_table
    from railpm.config import get_settings
    from railpm.deploy.replay import replay_days
    from railpm.synth.deliveries import generate_deliveries

    settings = get_settings()
    first = settings.fleet.start + timedelta(days=args.history_days)
    if not (settings.truth_dir / "drops.json").exists():
        generate_deliveries(settings.fleet, settings.deliveries_dir, settings.truth_dir, args.history_days)
    print(f"data root {data_root}: {args.vehicles} vehicles, go-live {first}, {args.days} days")
    results = replay_days(settings, first, first + timedelta(days=args.days - 1), on_day=print_replay_day)
    print_replay_table(results)
    summarise(results)


def summarise(results) -> None:
    """The closing note: median and worst day per step (wall and CPU seconds), and the champion changes."""
    by_step: dict[str, list[tuple[float, float, str]]] = {}
    for result in results:
        for step in result.steps:
            if step.status != "skipped":
                by_step.setdefault(step.step, []).append((step.wall_s, step.cpu_s, result.day))
    print("\nstep            days  median wall s  median CPU s  worst wall s (day)")
    for step, runs in by_step.items():
        worst = max(runs)
        print(f"{step:<15} {len(runs):>4}  {statistics.median(r[0] for r in runs):>13.1f}  "
              f"{statistics.median(r[1] for r in runs):>12.1f}  {worst[0]:>12.1f} ({worst[2]})")
    totals = [(sum(s.wall_s for s in r.steps), sum(s.cpu_s for s in r.steps)) for r in results]
    if totals:
        print(f"a day: median {statistics.median(t[0] for t in totals):.1f} s wall ({statistics.median(t[1] for t in totals):.1f} CPU s), "
              f"worst {max(t[0] for t in totals):.1f} s wall ({max(t[1] for t in totals):.1f} CPU s)")
    champions = [r.champion for r in results]
    changes = sum(1 for before, after in zip(champions, champions[1:]) if after != before)
    print(f"champion versions: {' -> '.join(dict.fromkeys(c or '-' for c in champions))}; {changes} change(s) after the first day")
    failed = [f"{r.day} {s.step}" for r in results for s in r.steps if s.status == "failed"]
    if failed:
        print(f"failed steps: {', '.join(failed)}")


if __name__ == "__main__":
    main()
