"""Generate the synthetic fleet: landing files for ingest, ground truth for scoring.

Telemetry is simulated and written one file batch (``vehicles_per_file`` vehicles) at a time, so a fleet
of thousands of vehicles never holds all its hourly rows in memory; the fault log and work orders are
small and are numbered and written per month at the end.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from railpm import contracts
from railpm.config import FleetSettings
from railpm.synth import catalogue, dirt, landing, profiles
from railpm.synth.vehicle import simulate_vehicle, telemetry_frame

DIRTY_FEEDS = ("telemetry", "faults", "work_orders")
"""Feeds that carry dirt; the registry, parts catalogue and stock are clean reference data."""
_FEED_STREAM = {name: i for i, name in enumerate(contracts.FEEDS, start=1)}


@dataclass
class FleetSummary:
    """What was generated and where: counts a person (or a test) can check at a glance."""

    vehicles: int
    days: int
    start: str
    seed: int
    telemetry_format: str
    landing_dir: str
    truth_dir: str
    vehicles_by_type: dict[str, int]
    vehicles_by_depot: dict[str, int]
    records_by_feed: dict[str, int]
    """Records written per feed, dirt included (duplicates, late rows, malformed lines)."""
    files_by_feed: dict[str, int]
    faults_by_grade: dict[str, int]
    work_orders_by_action: dict[str, int]
    work_orders_by_level: dict[str, int]
    failures_by_component: dict[str, int]
    announced_failures: int
    silent_failures: int
    preventive_replacements: int
    dirt_by_kind: dict[str, int]
    dirt_by_feed: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def _counts(values, order=None) -> dict[str, int]:
    counter = Counter(str(v) for v in values)
    keys = [str(k) for k in order] if order is not None else sorted(counter)
    return {k: int(counter.get(k, 0)) for k in keys}


def _unknown_numbers(registry: list[profiles.Vehicle]) -> Callable[[str, np.random.Generator], str]:
    """Vehicle numbers of the right look that the registry does not know (above each type's highest)."""
    highest = Counter(v.vehicle_type for v in registry)

    def unknown(number: str, rng: np.random.Generator) -> str:
        prefix = number.rsplit("-", 1)[0]
        return f"{prefix}-{highest.get(prefix, 0) + int(rng.integers(1, 1000)):04d}"

    return unknown


def _month(timestamps: pd.Series) -> pd.Series:
    """``YYYY-MM`` of each timestamp: the monthly file it belongs to."""
    return timestamps.dt.year.astype(str) + "-" + timestamps.dt.month.map("{:02d}".format)


def _to_timestamps(seconds: pd.Series, start: date) -> pd.Series:
    origin = pd.Timestamp(start, tz="UTC").as_unit("us")
    return origin + pd.to_timedelta(seconds, unit="s")


def generate_fleet(
    fleet: FleetSettings,
    landing_dir: Path,
    truth_dir: Path,
    progress: Callable[[int], None] | None = None,
) -> FleetSummary:
    """Write the landing folder and the truth folder for the configured fleet; same seed, same files.

    The landing folders of the six feeds are replaced, so files of an earlier, larger fleet cannot linger.
    ``progress`` is called with 1 after each simulated vehicle.
    """
    landing_dir, truth_dir = Path(landing_dir), Path(truth_dir)
    for feed in contracts.FEEDS:
        shutil.rmtree(landing_dir / feed, ignore_errors=True)
        (landing_dir / feed).mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)

    registry = profiles.build_registry(fleet.vehicles, fleet.start, fleet.seed)
    parts = catalogue.build_parts(fleet.seed)
    vehicles = _registry_frame(registry)
    reference = [
        (contracts.VEHICLES, vehicles),
        (contracts.PARTS, parts),
        (contracts.STOCK, catalogue.build_stock(parts, registry, fleet.start, fleet.seed)),
    ]
    for feed, frame in reference:
        landing.write_feed_file(frame, feed, landing_dir / feed.name / f"{feed.name}.csv", "csv")

    part_numbers = catalogue.part_numbers(parts)
    ambient = {depot: profiles.depot_ambient(depot, fleet.start, fleet.days, fleet.seed) for depot in contracts.DEPOTS}
    unknown = _unknown_numbers(registry)
    writer = _FeedWriter(landing_dir, fleet, unknown)

    faults, orders, failures, preventive = [], [], [], 0
    for batch_no, first in enumerate(range(0, len(registry), fleet.vehicles_per_file), start=1):
        batch, telemetry = registry[first : first + fleet.vehicles_per_file], []
        for vehicle in batch:
            year = simulate_vehicle(vehicle, fleet.start, fleet.days, fleet.seed, ambient[vehicle.home_depot], part_numbers)
            telemetry.append(year.telemetry)
            faults.append(year.faults)
            orders.append(year.work_orders)
            failures.append(year.failures)
            preventive += year.preventive
            if progress:
                progress(1)
        frame = telemetry_frame([v.number for v in batch], telemetry, fleet.start, fleet.days)
        writer.write(contracts.TELEMETRY, frame, f"{batch_no:04d}", fleet.telemetry_format, batch_no)
        del frame, telemetry

    fault_log, failure_truth = _number_faults(pd.concat(faults, ignore_index=True), pd.concat(failures, ignore_index=True), fleet.start)
    work_orders = _number_work_orders(pd.concat(orders, ignore_index=True), fleet.start, fleet.days)
    for i, (month, rows) in enumerate(fault_log.groupby(_month(fault_log["ts"]), sort=True), start=1):
        protected = rows["grade"].isin(contracts.MAJOR_GRADES).to_numpy()
        writer.write(contracts.FAULTS, rows[contracts.FAULTS.column_names], month, "jsonl", i, protected)
    for i, (month, rows) in enumerate(work_orders.groupby(_month(work_orders["opened_at"]), sort=True), start=1):
        protected = (rows["action"] != "inspection").to_numpy()
        writer.write(contracts.WORK_ORDERS, rows[contracts.WORK_ORDERS.column_names], month, "csv", i, protected)

    landing.write_parquet(failure_truth, contracts.FAILURES, truth_dir / "failures.parquet")
    manifest = pd.DataFrame(writer.manifest, columns=dirt.MANIFEST_COLUMNS)
    manifest = manifest.sort_values(["feed", "file", "row"], kind="stable").reset_index(drop=True)
    pq.write_table(pa.Table.from_pandas(manifest, schema=dirt.MANIFEST_SCHEMA, preserve_index=False), truth_dir / "dirt.parquet")

    summary = FleetSummary(
        vehicles=len(registry),
        days=fleet.days,
        start=fleet.start.isoformat(),
        seed=fleet.seed,
        telemetry_format=fleet.telemetry_format,
        landing_dir=str(landing_dir),
        truth_dir=str(truth_dir),
        vehicles_by_type=_counts(vehicles["vehicle_type"], contracts.VEHICLE_TYPES),
        vehicles_by_depot=_counts(vehicles["home_depot"], contracts.DEPOTS),
        records_by_feed={**{feed.name: len(frame) for feed, frame in reference}, **writer.records},
        files_by_feed={**{feed.name: 1 for feed, _ in reference}, **writer.files},
        faults_by_grade=_counts(fault_log["grade"], contracts.GRADES),
        work_orders_by_action=_counts(work_orders["action"], contracts.WORK_ORDER_ACTIONS),
        work_orders_by_level=_counts(work_orders["maintenance_level"].dropna().astype(int), contracts.LEVELS),
        failures_by_component=_counts(failure_truth["component"], contracts.COMPONENTS),
        announced_failures=int(failure_truth["announced"].sum()),
        silent_failures=int((~failure_truth["announced"]).sum()),
        preventive_replacements=preventive,
        dirt_by_kind=_counts(manifest["kind"], dirt.DIRT_KINDS),
        dirt_by_feed=_counts(manifest["feed"], DIRTY_FEEDS),
    )
    (truth_dir / "fleet_summary.json").write_text(summary.to_json() + "\n", encoding="utf-8")
    return summary


def _registry_frame(registry: list[profiles.Vehicle]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "vehicle_number": [v.number for v in registry],
            "vehicle_type": [v.vehicle_type for v in registry],
            "home_depot": [v.home_depot for v in registry],
            "commissioning_date": [v.commissioning_date for v in registry],
            "daily_km_mean": [v.daily_km_mean for v in registry],
        },
        columns=contracts.VEHICLES.column_names,
    )


class _FeedWriter:
    """Spoils and writes each landing file of the event feeds, collecting the dirt manifest and counts."""

    def __init__(self, landing_dir: Path, fleet: FleetSettings, unknown):
        self.landing_dir, self.fleet, self.unknown = landing_dir, fleet, unknown
        self.manifest: list[dict] = []
        self.records: Counter = Counter()
        self.files: Counter = Counter()

    def write(self, feed, frame, suffix: str, fmt: str, file_no: int, protected=None) -> None:
        name, late_name = f"{feed.name}-{suffix}.{fmt}", f"{feed.name}-late-{suffix}.{fmt}"
        rng = np.random.default_rng([self.fleet.seed, 0xD127, _FEED_STREAM[feed.name], file_no])
        spoilt = dirt.spoil(
            frame,
            feed,
            self.fleet.dirt,
            rng,
            file=f"{feed.name}/{name}",
            late_file=f"{feed.name}/{late_name}",
            text_format=fmt != "parquet",
            unknown_vehicle_number=self.unknown,
            protected=protected,
        )
        folder = self.landing_dir / feed.name
        landing.write_feed_file(spoilt.frame, feed, folder / name, fmt, spoilt.malformed, rng)
        self.files[feed.name] += 1
        self.records[feed.name] += len(spoilt.frame) + len(spoilt.late)
        if len(spoilt.late):
            landing.write_feed_file(spoilt.late, feed, folder / late_name, fmt)
            self.files[feed.name] += 1
        self.manifest += spoilt.manifest


def _number_faults(faults: pd.DataFrame, failures: pd.DataFrame, start: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Event ids in time order across the fleet; subsystem and description from the code catalogue."""
    faults = faults.sort_values(["t_s", "vehicle_number", "fault_code"], kind="stable").reset_index(drop=True)
    faults["event_id"] = [f"F-{i:08d}" for i in range(1, len(faults) + 1)]
    faults["ts"] = _to_timestamps(faults["t_s"], start)
    faults["subsystem"] = faults["fault_code"].map(lambda c: contracts.FAULT_CODE_BY_CODE[c].subsystem)
    faults["description"] = faults["fault_code"].map(lambda c: contracts.FAULT_CODE_BY_CODE[c].description)
    event_of_failure = faults.loc[faults["failure_id"] >= 0].set_index("failure_id")["event_id"]
    truth = failures.assign(
        failed_at=_to_timestamps(failures["failed_s"], start), event_id=failures["failure_id"].map(event_of_failure)
    )
    truth = truth.sort_values(["failed_at", "vehicle_number", "component"], kind="stable").reset_index(drop=True)
    return faults, truth[contracts.FAILURES.column_names]


def _number_work_orders(orders: pd.DataFrame, start: date, days: int) -> pd.DataFrame:
    """Work-order ids in time order; a work order still open when the data ends has no closing time, and one
    whose opening the delay after its fault pushed past the end opens in the data's last second."""
    orders = orders.assign(opened_s=orders["opened_s"].clip(upper=days * 86_400 - 1))
    orders = orders.sort_values(["opened_s", "vehicle_number", "action", "component"], kind="stable", na_position="first")
    orders = orders.reset_index(drop=True)
    orders["work_order_id"] = [f"WO-{i:08d}" for i in range(1, len(orders) + 1)]
    orders["opened_at"] = _to_timestamps(orders["opened_s"], start)
    closed = _to_timestamps(orders["closed_s"], start)
    orders["closed_at"] = closed.where(orders["closed_s"] <= days * 86_400, pd.NaT)
    return orders
