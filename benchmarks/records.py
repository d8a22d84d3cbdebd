"""How fast the Spark record jobs are against a DuckDB reference of the same features, and whether they agree.

    nice -n 10 .venv/bin/python benchmarks/records.py                     # 100, 1,000 and 3,000 vehicles
    nice -n 10 .venv/bin/python benchmarks/records.py --vehicles 100 --cache /tmp/railpm-fleets

For each size a clean synthetic fleet (``DirtRates.clean()``, 365 days hourly by default) is generated and
its lake built, once: both are cached under ``--cache`` and reused by later runs. The lake is NOT built by
the validated ingest (GX takes about 35 minutes for 3,000 vehicles): the clean landing files are read with
pyarrow, cast to the contracts' types and written with ingest's own ``write_lake_part``, so the layout is
the one ingest writes (``lake/<feed>/day=YYYY-MM-DD/<part>.parquet``). On clean files the gate would
accept every record, so the lake holds the same rows.

Then, each in its own process so that memory figures are that run's alone: the Spark ``vehicle_days`` and
``component_days`` jobs (``run``, as spark-submit runs them, on ``local[<cores>]``), and the DuckDB reference
of vehicle_days (``railpm.jobs.reference_duckdb``, the same number of threads, but a 10 GB memory limit
against Spark's 4 GB driver, which favours DuckDB in the ratio) on the same lake. Peak
memory is the peak resident memory of the whole process tree (Python driver and its JVM), sampled; CPU
is the tree's user + system time. Input rows are the lake rows the job reads (telemetry, faults, work
orders, vehicles). Last, the two vehicle_days outputs are compared cell by cell (floats within a
tolerance): the script fails if any cell, key or column differs. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ENGINE_ROWS = ("spark vehicle_days", "spark component_days", "duckdb vehicle_days")
LAKE_FEEDS = ("telemetry", "faults", "work_orders", "vehicles")
"""The lake tables vehicle_days reads: its input rows."""


# --------------------------------------------------------------------------------------------------
# The cached fleet: landing files, truth and a lake in ingest's layout
# --------------------------------------------------------------------------------------------------


def read_landing_typed(feed, path: Path):
    """A clean landing file as an Arrow table with the contract's types (no validation: the files are clean)."""
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    from railpm.synth.landing import arrow_schema

    schema = arrow_schema(feed)
    fmt = path.suffix.lstrip(".").lower()
    if fmt == "parquet":
        table = pq.read_table(path, columns=schema.names)
    elif fmt == "csv":
        options = pacsv.ConvertOptions(column_types=schema, include_columns=schema.names, strings_can_be_null=True)
        table = pacsv.read_csv(path, convert_options=options)
    elif fmt == "jsonl":
        table = pajson.read_json(path, parse_options=pajson.ParseOptions(explicit_schema=schema)).select(schema.names)
    else:
        raise ValueError(f"{path}: unknown landing format {fmt!r}")
    return table.cast(schema)


def build_lake_from_landing(landing_dir: Path, lake_dir: Path) -> dict[str, int]:
    """Write every landing file into the lake as ingest lays it out; returns rows per feed."""
    from railpm import contracts
    from railpm.ingest.landing import list_landing_files
    from railpm.ingest.lake import write_lake_part

    rows: dict[str, int] = {}
    for landing in list_landing_files(landing_dir):
        feed = contracts.FEEDS[landing.feed]
        table = read_landing_typed(feed, landing.path)
        write_lake_part(lake_dir, feed, landing.part, table)
        rows[feed.name] = rows.get(feed.name, 0) + table.num_rows
    return rows


def fleet_dir(cache: Path, vehicles: int, days: int, seed: int) -> Path:
    return cache / f"fleet-{vehicles}v-{days}d-seed{seed}"


def prepare_fleet(root: Path, vehicles: int, days: int, seed: int) -> dict:
    """Generate the clean fleet and its lake under ``root`` unless a finished one is there."""
    from railpm.config import DirtRates, FleetSettings, Settings
    from railpm.synth import generate_fleet

    done = root / "lake.json"
    if done.exists():
        return {**json.loads(done.read_text()), "cached": True}
    settings = Settings(data_root=root, fleet=FleetSettings(vehicles=vehicles, days=days, seed=seed, dirt=DirtRates.clean()))
    shutil.rmtree(settings.lake_dir, ignore_errors=True)
    started = time.perf_counter()
    generate_fleet(settings.fleet, settings.landing_dir, settings.truth_dir)
    generated = time.perf_counter()
    rows = build_lake_from_landing(settings.landing_dir, settings.lake_dir)
    summary = {
        "vehicles": vehicles, "days": days, "seed": seed, "rows": rows,
        "generate_s": round(generated - started, 1), "lake_s": round(time.perf_counter() - generated, 1),
    }
    done.write_text(json.dumps(summary, indent=1))
    return {**summary, "cached": False}


# --------------------------------------------------------------------------------------------------
# Measuring a process tree
# --------------------------------------------------------------------------------------------------


class TreeMeter:
    """Peak resident memory (sampled) and CPU time of this process and all its descendants (the JVM).

    A process forked but not yet exec'd (Hadoop shells out to ``chmod`` and ``stat`` for the local file
    system) shares its parent's pages and reports its parent's whole RSS for a moment: such a copy, whose
    command line is still its parent's, is not counted again.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        import psutil

        self._me = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self.peak_rss = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _tree(self):
        import psutil

        tree = [self._me]
        for process in self._me.children(recursive=True):
            try:
                if process.cmdline() != process.parent().cmdline():
                    tree.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
                pass
        return tree

    def _sum(self, measure) -> float:
        import psutil

        total = 0.0
        for process in self._tree():
            try:
                total += measure(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def rss(self) -> int:
        return int(self._sum(lambda p: p.memory_info().rss))

    def cpu_s(self) -> float:
        return self._sum(lambda p: sum(p.cpu_times()[:2]))

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_rss = max(self.peak_rss, self.rss())

    def __enter__(self) -> TreeMeter:
        self.peak_rss = self.rss()
        self._cpu_started, self._started = self.cpu_s(), time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_s = time.perf_counter() - self._started
        self.cpu_used_s = self.cpu_s() - self._cpu_started
        self.peak_rss = max(self.peak_rss, self.rss())
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict:
        """Wall and CPU seconds, peak RSS, and the machine's 1-minute load average at the end (it is shared)."""
        return {"wall_s": round(self.wall_s, 1), "cpu_s": round(self.cpu_used_s, 1),
                "peak_rss_mb": round(self.peak_rss / 2**20), "load": round(os.getloadavg()[0], 1)}


# --------------------------------------------------------------------------------------------------
# One engine in one process
# --------------------------------------------------------------------------------------------------


def run_spark(work: Path, cores: int, driver_memory: str, shuffle_partitions: int) -> dict:
    from railpm.config import Settings, SparkSettings
    from railpm.jobs import component_days, vehicle_days
    from railpm.jobs.spark import build_session

    spark_settings = SparkSettings(master=f"local[{cores}]", driver_memory=driver_memory, shuffle_partitions=shuffle_partitions)
    settings = Settings(data_root=work, spark=spark_settings)
    out = {}
    with TreeMeter() as meter:
        session = build_session(spark_settings, app_name="railpm-bench-records")
    out["spark session"] = meter.figures()
    try:
        with TreeMeter() as meter:
            vehicle_days.run(session, settings)
        out["spark vehicle_days"] = meter.figures()
        with TreeMeter() as meter:
            component_days.run(session, settings)
        out["spark component_days"] = meter.figures()
    finally:
        session.stop()
    return out


def run_duckdb(work: Path, cores: int, memory_limit: str) -> dict:
    from railpm.jobs.reference_duckdb import build_vehicle_days

    with TreeMeter() as meter:
        build_vehicle_days(work / "lake", work / "reference" / "vehicle_days.parquet", threads=cores,
                           memory_limit=memory_limit)
    return {"duckdb vehicle_days": meter.figures()}


def output_rows(path: Path) -> int:
    import pyarrow.dataset as ds

    return ds.dataset(path, format="parquet", partitioning="hive").count_rows()


# --------------------------------------------------------------------------------------------------
# One size: prepare, run both engines, compare
# --------------------------------------------------------------------------------------------------


def child(args: list[str], cwd: Path | None = None) -> dict:
    """Run this script with ``args`` in a fresh process; its last ``RESULT`` line, or exit with its error."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=cwd)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"`{' '.join(args)}` failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def bench_size(vehicles: int, args: argparse.Namespace) -> dict:
    from railpm.jobs.reference_duckdb import compare_vehicle_days

    root = fleet_dir(args.cache, vehicles, args.days, args.seed)
    common = ["--days", str(args.days), "--seed", str(args.seed), "--cores", str(args.cores)]
    fleet = child(["--phase", "prepare", "--vehicles", str(vehicles), "--root", str(root), *common])
    print(f"\n{vehicles:,} vehicles x {args.days} days: " + (
        f"cached fleet in {root}" if fleet["cached"] else
        f"fleet generated in {fleet['generate_s']} s, lake written in {fleet['lake_s']} s ({root})"), flush=True)
    input_rows = sum(fleet["rows"][feed] for feed in LAKE_FEEDS)

    with tempfile.TemporaryDirectory(prefix=f"railpm-bench-{vehicles}v-", dir=args.work) as work:
        work = Path(work)
        (work / "lake").symlink_to(root / "lake", target_is_directory=True)
        spark = child(["--phase", "spark", "--root", str(work), "--driver-memory", args.driver_memory,
                       "--shuffle-partitions", str(args.shuffle_partitions), *common], cwd=work)
        print(f"  Spark done: {json.dumps(spark)}", flush=True)
        duck = child(["--phase", "duckdb", "--root", str(work), "--duckdb-memory", args.duckdb_memory, *common], cwd=work)
        print(f"  DuckDB done: {json.dumps(duck)}", flush=True)
        records = output_rows(work / "records" / "vehicle_days")
        component_records = output_rows(work / "records" / "component_days")
        comparison = compare_vehicle_days(work / "records" / "vehicle_days", work / "reference" / "vehicle_days.parquet",
                                          rtol=args.rtol, atol=args.atol)
    return {
        "vehicles": vehicles, "days": args.days, "input_rows": input_rows, "telemetry_rows": fleet["rows"]["telemetry"],
        "records": records, "component_records": component_records, **spark, **duck, "comparison": comparison.as_dict(),
        "disagreement": None if comparison.agree else comparison.describe(),
    }


def report(result: dict) -> None:
    print(f"  {'job':<22}{'wall s':>8}{'CPU s':>8}{'input rows':>13}{'rows/s':>10}{'peak RSS MB':>13}{'rows out':>12}{'load':>6}")
    outputs = {"spark vehicle_days": result["records"], "spark component_days": result["component_records"],
               "duckdb vehicle_days": result["records"]}
    for name in ENGINE_ROWS:
        f = result[name]
        rows_in = result["input_rows"] if "vehicle_days" in name else result["records"]
        print(f"  {name:<22}{f['wall_s']:>8}{f['cpu_s']:>8}{rows_in:>13,}{round(rows_in / f['wall_s']):>10,}"
              f"{f['peak_rss_mb']:>13,}{outputs[name]:>12,}{f['load']:>6}")
    print(f"  (Spark session start {result['spark session']['wall_s']} s, not included; component_days reads "
          "the vehicle_days records, so its input rows are those)")
    ratio = result["spark vehicle_days"]["wall_s"] / result["duckdb vehicle_days"]["wall_s"]
    c = result["comparison"]
    print(f"  Spark/DuckDB wall time (vehicle_days): {ratio:.2f}x")
    print(f"  agreement: {c['rows_spark']:,} Spark rows, {c['rows_reference']:,} reference rows, "
          f"{c['rows_one_side']:,} keys on one side only; {c['columns']} columns, {c['cells']:,} cells compared, "
          f"{c['mismatches']:,} differ; max abs difference {c['max_abs_diff']:.3g} ({c['max_abs_diff_column']})")


def summary(results: list[dict]) -> None:
    print(f"\n{'vehicles':>8}{'input rows':>13}{'Spark vd s':>12}{'rows/s':>10}{'peak MB':>9}{'Spark cd s':>12}"
          f"{'DuckDB s':>10}{'rows/s':>10}{'peak MB':>9}{'ratio':>7}{'s/vehicle':>11}{'cells differ':>14}{'max abs diff':>14}")
    for r in results:
        s, cd, d, c = r["spark vehicle_days"], r["spark component_days"], r["duckdb vehicle_days"], r["comparison"]
        print(f"{r['vehicles']:>8,}{r['input_rows']:>13,}{s['wall_s']:>12}{round(r['input_rows'] / s['wall_s']):>10,}"
              f"{s['peak_rss_mb']:>9,}{cd['wall_s']:>12}{d['wall_s']:>10}{round(r['input_rows'] / d['wall_s']):>10,}"
              f"{d['peak_rss_mb']:>9,}{s['wall_s'] / d['wall_s']:>7.2f}{s['wall_s'] / r['vehicles']:>11.3f}"
              f"{c['mismatches']:>14,}{c['max_abs_diff']:>14.3g}")


def main() -> None:
    from railpm.config import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, help="generated fleets and their lakes (default: <data root>/benchmarks/fleets)")
    parser.add_argument("--work", type=Path, help="where each run's records go (default: the system's temporary folder)")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="Spark local[N] and DuckDB threads")
    parser.add_argument("--driver-memory", default=Settings().spark.driver_memory)
    parser.add_argument("--duckdb-memory", default="10GB",
                        help="DuckDB's memory limit; it spills to disk past it. At 3,000 vehicles a 4GB limit spilled "
                             "over 38 GB and filled the disk; 10GB finished, spilling about 28 GB")
    parser.add_argument("--shuffle-partitions", type=int, default=Settings().spark.shuffle_partitions)
    parser.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance of float cells")
    parser.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance of float cells")
    parser.add_argument("--phase", choices=["prepare", "spark", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "prepare":
        print("RESULT " + json.dumps(prepare_fleet(args.root, args.vehicles[0], args.days, args.seed)))
        return
    if args.phase == "spark":
        print("RESULT " + json.dumps(run_spark(args.root, args.cores, args.driver_memory, args.shuffle_partitions)))
        return
    if args.phase == "duckdb":
        print("RESULT " + json.dumps(run_duckdb(args.root, args.cores, args.duckdb_memory)))
        return

    args.cache = (args.cache or Settings().data_root / "benchmarks" / "fleets").resolve()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"records benchmark: {args.cores} cores (Spark local[{args.cores}], driver memory {args.driver_memory}, "
          f"{args.shuffle_partitions} shuffle partitions; DuckDB {args.cores} threads); fleets cached in {args.cache}")
    results = []
    for vehicles in args.vehicles:
        result = bench_size(vehicles, args)
        report(result)
        results.append(result)
        if not result["comparison"]["agree"]:
            summary(results)
            sys.exit(f"FAILED: Spark and DuckDB vehicle_days disagree for {vehicles:,} vehicles: {result['disagreement']}")
    summary(results)


if __name__ == "__main__":
    main()
