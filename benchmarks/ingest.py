"""How fast the validated ingest is, where its time goes, and whether it quarantines exactly the dirt injected.

    .venv/bin/python benchmarks/ingest.py                          # 100 and 1,000 vehicles, default dirt
    .venv/bin/python benchmarks/ingest.py --vehicles 100 --format csv

For each size a synthetic fleet with the default dirt rates is generated (not timed), then every landing
file is ingested with ``railpm.ingest.ingest_landing`` (the code each Airflow task runs). Each size runs in
its own process so the peak resident memory is that run's alone. Prints records per second, the share of
time spent in GX validation (and in parsing and writing), and per rule the records quarantined against
the records the generator spoiled with the matching kind of dirt; figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def run_one(vehicles: int, fmt: str, data_root: Path) -> dict:
    import pandas as pd

    from railpm.config import Settings
    from railpm.synth.dirt import quarantine_rule
    from railpm.ingest import ingest_landing, summarise
    from railpm.ingest.runs import read_run_records
    from railpm.synth import generate_fleet

    settings = Settings(data_root=data_root)
    settings = settings.model_copy(update={"fleet": settings.fleet.model_copy(update={"vehicles": vehicles, "telemetry_format": fmt})})
    generate_fleet(settings.fleet, settings.landing_dir, settings.truth_dir)

    started, cpu_started = time.perf_counter(), time.process_time()
    ingest_landing(settings, datetime.now(timezone.utc))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    records = read_run_records(settings.runs_dir)
    summary = summarise(records)
    phases = {p: sum(r["seconds"][p] for r in records if r["status"] == "ingested") for p in ("parse", "validate", "write")}
    telemetry = [r for r in records if r["feed"] == "telemetry"]
    dirt = pd.read_parquet(settings.truth_dir / "dirt.parquet")
    injected: dict[str, int] = {}
    for row in dirt.itertuples():
        rule = quarantine_rule(row.kind, row.column)
        if rule:
            injected[rule] = injected.get(rule, 0) + 1
    rows_in = sum(t["rows_in"] for t in summary["feeds"].values())
    return {
        "vehicles": vehicles,
        "format": fmt,
        "files": len(records),
        "records_in": rows_in,
        "telemetry_records": sum(r["rows_in"] for r in telemetry),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "records_per_s": round(rows_in / wall),
        "largest_telemetry_file": max(r["rows_in"] for r in telemetry),
        "largest_file_s": max(sum(r["seconds"].values()) for r in telemetry),
        "share": {p: round(s / wall, 3) for p, s in phases.items()},
        "accepted": sum(t["accepted"] for t in summary["feeds"].values()),
        "quarantined": sum(t["quarantined"] for t in summary["feeds"].values()),
        "duplicates_removed": sum(t["duplicates_removed"] for t in summary["feeds"].values()),
        "duplicates_injected": int((dirt["kind"] == "duplicate").sum()),
        "late_and_out_of_order_injected": int(dirt["kind"].isin(["late", "out_of_order"]).sum()),
        "held": sum(t["held"] for t in summary["feeds"].values()),
        # records of vehicles the registry does not know are held rather than quarantined: counted beside the rules
        "rules": {**summary["rules"], "vehicle_known": sum(t["held"] for t in summary["feeds"].values())},
        "injected": injected,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def report(result: dict) -> None:
    print(f"\n{result['vehicles']} vehicles ({result['format']} telemetry): {result['files']} files, "
          f"{result['records_in']:,} records ({result['telemetry_records']:,} telemetry)")
    print(f"  ingest {result['wall_s']} s wall, {result['cpu_s']} s CPU: {result['records_per_s']:,} records/s; "
          f"largest telemetry file {result['largest_telemetry_file']:,} records in {result['largest_file_s']:.1f} s; "
          f"peak RSS {result['peak_rss_mb']} MB")
    share = result["share"]
    print(f"  time share: validation {share['validate']:.0%}, parsing {share['parse']:.0%}, writing {share['write']:.0%}")
    print(f"  accepted {result['accepted']:,}, quarantined {result['quarantined']:,}, duplicates removed "
          f"{result['duplicates_removed']:,} (injected {result['duplicates_injected']:,}); late + out of order injected "
          f"{result['late_and_out_of_order_injected']:,} (accepted, not quarantined)")
    print(f"  {'rule':<28}{'quarantined':>12}{'dirt injected':>15}")
    for rule in sorted(set(result["rules"]) | set(result["injected"])):
        print(f"  {rule:<28}{result['rules'].get(rule, 0):>12,}{result['injected'].get(rule, 0):>15,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--format", default="parquet", choices=["csv", "jsonl", "parquet"])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args.format, args.root)))
        return
    for vehicles in args.vehicles:
        with tempfile.TemporaryDirectory(prefix=f"railpm-ingest-{vehicles}-") as root:
            done = subprocess.run(
                [sys.executable, __file__, "--one", str(vehicles), "--format", args.format, "--root", root],
                capture_output=True, text=True,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                sys.exit(f"ingest benchmark for {vehicles} vehicles failed:\n{done.stderr[-3000:]}")
            report(json.loads(lines[-1].removeprefix("RESULT ")))


if __name__ == "__main__":
    main()
