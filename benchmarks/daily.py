"""The daily cycle on a fleet with a long history: what one new day's delivery costs, beside a full rebuild.

    nice -n 10 .venv/bin/python benchmarks/daily.py --vehicles 20 --history-days 60      # proves it works
    nice -n 10 .venv/bin/python benchmarks/daily.py --vehicles 100 1000 3000 --history-days 365 730

Per size: a clean synthetic fleet of ``history-days + 1`` days is generated (not timed) and its landing files
are cut in two: the history, and the last day as a delivery of its own (new files, as a feed would send
them). The history is ingested, its records built and a model trained (set-up, not timed). Then the daily
cycle runs, each step in a child process so its peak memory is its own: ingest the day's files, update the
records, score the day, plan. Beside each step the same step is run as a full rebuild on a second data root
holding the whole landing (ingest everything, build every record, score and plan the same day). Printed per
step: wall seconds, CPU seconds (the child's user + system) and peak resident MB; figures, not assertions.

Records: ``railpm records`` rebuilds from the whole history (incremental records, issue 16 item 2, are not
built yet), so its daily row is a rebuild too until they land; the table says which.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

STEPS = ("ingest", "records", "score", "plan")


def _settings(data_root: Path, vehicles: int, days: int):
    from railpm.config import DirtRates, FleetSettings, ModelSettings, Settings

    return Settings(
        data_root=data_root,
        fleet=FleetSettings(vehicles=vehicles, days=days, seed=7, dirt=DirtRates.clean()),
        # A short history (the tiny proof run) needs a shorter horizon for the backtest's folds to fit in it.
        model=ModelSettings(backtest_folds=2, capacity_top_k_per_week=max(2, vehicles // 4),
                            horizon_days=min(30, max(5, days // 10))),
    )


def split_last_day(landing_dir: Path, new_day) -> list[Path]:
    """Move every landed record of ``new_day`` (by its feed's event time) out of the history into new files."""
    import numpy as np
    import pandas as pd

    from railpm import contracts

    delivered = []
    for feed in contracts.FEEDS.values():
        if feed.time_column is None or not (landing_dir / feed.name).exists():
            continue
        for path in sorted((landing_dir / feed.name).iterdir()):
            suffix = path.suffix
            if suffix == ".parquet":
                frame = pd.read_parquet(path)
            elif suffix == ".csv":
                frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            elif suffix == ".jsonl":
                frame = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
            else:
                continue
            # A record is the new day's when any of its times is (a work order opened before it and closed on it
            # would otherwise land in the history with a closing time in its future).
            cut = pd.Timestamp(new_day, tz="UTC")
            times = [c for c in frame.columns if c == feed.time_column or c.endswith("_at")]
            today = np.zeros(len(frame), dtype=bool)
            for column in times:
                today |= (pd.to_datetime(frame[column], utc=True, errors="coerce") >= cut).to_numpy()
            if not today.any():
                continue
            target = path.with_name(f"{path.stem}-delivery-{new_day:%Y-%m-%d}{suffix}")
            for part, out in ((frame[~today], path), (frame[today], target)):
                if suffix == ".parquet":
                    part.to_parquet(out, index=False)
                elif suffix == ".csv":
                    part.to_csv(out, index=False)
                else:
                    part.to_json(out, orient="records", lines=True, date_format="iso")
            delivered.append(target)
    return delivered


def run_step(step: str, data_root: Path, vehicles: int, days: int, day: str) -> dict:
    """One step in a child process: wall, CPU and peak memory are the child's alone."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--step", step, "--data-root", str(data_root),
                           "--vehicles", str(vehicles), "--fleet-days", str(days), "--day", day],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"step": step, "error": (done.stderr or done.stdout).strip().splitlines()[-1:], "wall_s": wall}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": round(wall, 1)}


def child(step: str, data_root: Path, vehicles: int, days: int, day: str) -> None:
    """The step itself, in this process; prints its figures as one JSON line."""
    import pandas as pd

    settings = _settings(data_root, vehicles, days)
    extra = {}
    started = time.perf_counter()
    if step == "ingest":
        from railpm.ingest import ingest_landing

        records = ingest_landing(settings, reference_time=datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
                                 + timedelta(days=1))
        extra["files"] = len(records)
        extra["rows_in"] = int(sum(r.get("rows_in", 0) for r in records))
        extra["rows_per_wall_s"] = round(extra["rows_in"] / max(time.perf_counter() - started, 1e-9))
    elif step == "records":
        from railpm.records import build_records

        build_records(settings)
    elif step == "score":
        from railpm.models.frames import read_component_days
        from railpm.models.score import load_champion, score_rows, write_predictions
        from railpm.models.tasks import component_days_dir

        rows = read_component_days(component_days_dir(settings), days=[pd.Timestamp(day)])
        model, version = load_champion(settings.tracking_uri, settings.model.registered_model_name)
        cpu, wall = time.process_time(), time.perf_counter()  # model load and read excluded, as the issue asks
        predictions = score_rows(model, version, rows, settings.model)
        write_predictions(predictions, settings.predictions_dir, pd.Timestamp(day))
        extra["vehicle_components"] = len(rows)
        extra["score_cpu_s"] = round(time.process_time() - cpu, 2)
        extra["score_wall_s"] = round(time.perf_counter() - wall, 2)
        extra["vehicle_components_per_cpu_s"] = round(len(rows) / max(extra["score_cpu_s"], 1e-9))
    elif step == "plan":
        from railpm.planning.run import run_plan

        summary = run_plan(settings, pd.Timestamp(day).date()).summary["inspections"]
        extra["optimality_gap"] = summary.get("optimality_gap")
        extra["gain_over_greedy_eur"] = summary.get("gain_over_greedy_eur")
    elif step == "train":
        from railpm.models.tasks import train_fleet

        extra["gate"] = train_fleet(settings).decision.alias
    # Spark's JVM is a child of this process: its CPU and memory count (reaped children, so after the session stops).
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    print(json.dumps({"step": step, "cpu_s": round(cpu, 1),
                      "peak_mb": round(max(own.ru_maxrss, children.ru_maxrss) / 1024), **extra}))


def run_size(vehicles: int, history_days: int, work: Path) -> list[dict]:
    from railpm.synth import generate_fleet

    days = history_days + 1
    daily_root, full_root = work / f"daily-{vehicles}x{history_days}", work / f"full-{vehicles}x{history_days}"
    for root in (daily_root, full_root):
        shutil.rmtree(root, ignore_errors=True)
    settings = _settings(daily_root, vehicles, days)
    generate_fleet(settings.fleet, settings.landing_dir, settings.truth_dir)
    new_day = settings.fleet.start + timedelta(days=history_days)
    delivery = split_last_day(settings.landing_dir, new_day)
    shutil.copytree(settings.landing_dir, full_root / "landing")
    hidden = daily_root / "delivery-not-yet-landed"
    hidden.mkdir()
    for path in delivery:  # the history first, without the new day's files
        target = hidden / path.relative_to(settings.landing_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    last_history_day = (new_day - timedelta(days=1)).isoformat()
    setup = [run_step(s, daily_root, vehicles, days, last_history_day) for s in ("ingest", "records", "train")]
    for row in setup:
        print(f"  set-up {row}", flush=True)
    for path in hidden.rglob("*"):
        if path.is_file():
            target = settings.landing_dir / path.relative_to(hidden)
            path.rename(target)
    if (daily_root / "mlflow.db").exists():  # the same champion scores both (its artifacts stay in daily_root)
        shutil.copy2(daily_root / "mlflow.db", full_root / "mlflow.db")
    rows = []
    for step in STEPS:
        daily = run_step(step, daily_root, vehicles, days, new_day.isoformat())
        full = run_step(step, full_root, vehicles, days, new_day.isoformat())
        rows.append({"vehicles": vehicles, "history_days": history_days, "step": step, "daily": daily, "full": full})
        print(f"  {step}: daily {daily} | full {full}", flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    print("\n| vehicles | history days | step | daily wall s (CPU s) | daily peak MB | full rebuild wall s (CPU s) |"
          " full peak MB | daily / full CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        d, f = r["daily"], r["full"]
        if "error" in d or "error" in f:
            print(f"| {r['vehicles']} | {r['history_days']} | {r['step']} | error: {d.get('error') or f.get('error')} |||||")
            continue
        step = r["step"] + (" (rebuild: incremental not built)" if r["step"] == "records" else "")
        print(f"| {r['vehicles']:,} | {r['history_days']} | {step} | {d['wall_s']} ({d['cpu_s']}) | {d['peak_mb']:,} |"
              f" {f['wall_s']} ({f['cpu_s']}) | {f['peak_mb']:,} | {d['cpu_s'] / max(f['cpu_s'], 1e-9):.2f} |")
    for r in rows:
        if r["step"] == "score" and "vehicle_components" in r["daily"]:
            d = r["daily"]
            print(f"\nscoring {r['vehicles']:,} vehicles: {d['vehicle_components']:,} vehicle-components in"
                  f" {d['score_cpu_s']} CPU s ({d['score_wall_s']} s wall) with reasons, model load excluded:"
                  f" {d['vehicle_components_per_cpu_s']:,} per CPU second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, nargs="+", default=[100])
    parser.add_argument("--history-days", type=int, nargs="+", default=[365])
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--step", choices=(*STEPS, "train"), help=argparse.SUPPRESS)
    parser.add_argument("--data-root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fleet-days", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        child(args.step, args.data_root, args.vehicles[0], args.fleet_days, args.day)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="railpm-daily-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for vehicles in args.vehicles:
        for history in args.history_days:
            print(f"{vehicles} vehicles x {history} days of history (work folder {work})", flush=True)
            rows += run_size(vehicles, history, work)
    print_table(rows)


if __name__ == "__main__":
    main()
