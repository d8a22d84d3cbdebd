"""How fast the synthetic fleet is generated and how much memory it takes, for 100 and 1,000 vehicles.

    .venv/bin/python benchmarks/generate.py                 # 100 and 1,000 vehicles, default settings
    .venv/bin/python benchmarks/generate.py --vehicles 3000 --format csv

Each size runs in its own process so that the peak resident memory reported is that run's alone.
Prints wall time, CPU time, telemetry rows per second and peak RSS; figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_one(vehicles: int, fmt: str, data_root: Path) -> dict:
    from railpm.config import Settings
    from railpm.synth import generate_fleet

    settings = Settings(data_root=data_root)
    fleet = settings.fleet.model_copy(update={"vehicles": vehicles, "telemetry_format": fmt})
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = generate_fleet(fleet, settings.landing_dir, settings.truth_dir)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rows = summary.records_by_feed["telemetry"]
    landing_bytes = sum(p.stat().st_size for p in settings.landing_dir.rglob("*") if p.is_file())
    return {
        "vehicles": vehicles,
        "days": fleet.days,
        "format": fmt,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "telemetry_rows": rows,
        "rows_per_s": round(rows / wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "landing_mb": round(landing_bytes / 2**20, 1),
        "failures": sum(summary.failures_by_component.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--format", default="parquet", choices=["csv", "jsonl", "parquet"])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.vehicles[0], args.format, args.data_root)))
        return

    print(f"{'vehicles':>8} {'days':>5} {'format':>7} {'wall s':>7} {'cpu s':>7} {'rows':>11} {'rows/s':>9} {'peak RSS MB':>11} {'landing MB':>10} {'failures':>8}")
    for vehicles in args.vehicles:
        with tempfile.TemporaryDirectory(prefix="railpm-bench-") as root:
            command = [sys.executable, __file__, "--one", "--vehicles", str(vehicles), "--format", args.format, "--data-root", root]
            out = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(
            f"{out['vehicles']:>8} {out['days']:>5} {out['format']:>7} {out['wall_s']:>7} {out['cpu_s']:>7} "
            f"{out['telemetry_rows']:>11,} {out['rows_per_s']:>9,} {out['peak_rss_mb']:>11} {out['landing_mb']:>10} {out['failures']:>8}"
        )


if __name__ == "__main__":
    main()
