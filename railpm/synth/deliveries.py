"""A fleet's life as daily deliveries: the synthetic fleet cut into the drops real feeds deliver day by day.

The fleet is generated once, clean, by :func:`railpm.synth.generate_fleet` (so the deliveries and a one-batch
run share every record), then each record is given the day its feed delivers it:

- telemetry of day D arrives on D to D+3, in 6-hour pieces per vehicle;
- faults within hours of their time stamp;
- work orders when opened (no closing time yet) and again, closed, when closed days later: a correction the
  gate resolves by the later file name;
- the registry, parts catalogue and stock on the first day of the deployment (``go_live``), then changes
  mid-life: vehicles commissioned (one's telemetry arrives a day before its registry row), one retired (its
  feeds stop; the registry contract has no retirement field), one transferred to another depot, a part's
  price and lead time updated, weekly stock counts;
- everything before ``go_live`` arrives in the first drop: the history a deployment starts from.

A drop is a folder ``deliveries/<YYYY-MM-DD>/<feed>/<feed>-<day it was cut>.<ext>``. With ``drills`` it also
holds the bad deliveries an operator meets: a day's drop missing and arriving two days later, a drop delivered
twice, a corrected resend of a file under its own name, and a garbage file. ``truth/deliveries.parquet`` says
which record came in which file on which day, ``truth/drops.json`` what each drop holds and why.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from railpm import contracts
from railpm.config import DirtRates, FleetSettings
from railpm.synth.fleet import generate_fleet

FORMATS = {"vehicles": "csv", "parts": "csv", "stock": "csv", "telemetry": "parquet", "faults": "jsonl", "work_orders": "csv"}
TELEMETRY_LAG_DAYS = (0, 1, 2, 3)
TELEMETRY_LAG_SHARES = (0.6, 0.25, 0.1, 0.05)
"""Share of a vehicle's 6-hour telemetry pieces that arrive 0, 1, 2, 3 days after the day they were measured."""
FAULT_DELAY_HOURS = (0.25, 6.0)
WORK_ORDER_DELAY_HOURS = (1.0, 12.0)
WORK_ORDER_CLOSE_REPORT_HOURS = (1.0, 96.0)
"""A closed work order is reported when its paperwork is done, often days after the work."""
STOCK_COUNT_EVERY_DAYS = 7
DRILL_SPAN_DAYS = 2
"""Registry changes fall on the 2 days after go-live and the drills on the 3: a replay of 4 days meets them all."""

# What a file of a drop is (truth/drops.json) and what version of a record it carries (truth/deliveries.parquet).
REGULAR, LATE_DROP, REPEATED, CORRECTED, GARBAGE = "regular", "late_drop", "delivered_twice", "corrected_resend", "garbage"
ORIGINAL, UPDATE = "original", "update"
GARBAGE_BYTES = b"\x00\x9f\xffPK\x03\x04 not a feed: half an e-mail attachment\n\x81\x82{{{\n"


@dataclass
class DeliverySummary:
    """What was delivered: the drops, the registry changes and the drills, for a person or a test to check."""

    vehicles: int
    first_day: str
    last_day: str
    go_live: str
    drops: int
    records_by_feed: dict[str, int]
    updates_by_feed: dict[str, int]
    registry_changes: list[dict]
    drills: list[dict]
    deliveries_dir: str
    truth_dir: str
    files_by_kind: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def day_name(start: date, day: int) -> str:
    return (start + timedelta(days=int(day))).isoformat()


def _day_of(timestamps: pd.Series, start: date) -> np.ndarray:
    """Day number (0 = the fleet's first day) of ISO or Arrow UTC time stamps."""
    ts = pd.to_datetime(timestamps, utc=True)
    return ((ts - pd.Timestamp(start, tz="UTC")) // pd.Timedelta(days=1)).to_numpy(dtype="int64")


def _delayed_day(timestamps: pd.Series, start: date, hours: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    ts = pd.to_datetime(timestamps, utc=True) + pd.to_timedelta(rng.uniform(*hours, size=len(timestamps)), unit="h")
    return ((ts - pd.Timestamp(start, tz="UTC")) // pd.Timedelta(days=1)).to_numpy(dtype="int64")


def _read(landing: Path, feed: str) -> pd.DataFrame | pa.Table:
    """The generated feed as written: Parquet as an Arrow table, text as strings (so values keep their text)."""
    files = sorted((landing / feed).iterdir())
    if FORMATS[feed] == "parquet":
        return pa.concat_tables([pq.read_table(f) for f in files])
    if FORMATS[feed] == "jsonl":
        lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines() if line]
        frame = pd.DataFrame([json.loads(line) for line in lines])
        return frame.assign(_line=lines)
    return pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)


def key_text(frame: pd.DataFrame, feed: contracts.Feed) -> pd.Series:
    """A record's key as one string, ``|``-joined (how truth/deliveries.parquet names records)."""
    first, *rest = feed.key
    text = frame[first].astype(str)
    for column in rest:
        text = text + "|" + frame[column].astype(str)
    return text.reset_index(drop=True)


def _write(frame, feed: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if FORMATS[feed] == "parquet":
        pq.write_table(frame, path)
    elif FORMATS[feed] == "jsonl":
        path.write_text("".join(f"{line}\n" for line in frame["_line"]), encoding="utf-8")
    else:
        frame[contracts.FEEDS[feed].column_names].to_csv(path, index=False, lineterminator="\n")


class _Drops:
    """Collects each record's delivery (day, file, version) and writes the drops."""

    def __init__(self, folder: Path, start: date):
        self.folder, self.start = folder, start
        self.truth: list[pd.DataFrame] = []
        self.files: dict[str, list[dict]] = {}
        self.pending: dict[tuple[int, str, str], list] = {}

    def relative(self, feed: str, cut_day: int, suffix: str = "") -> str:
        return f"{feed}/{feed}-{day_name(self.start, cut_day)}{suffix}.{FORMATS[feed]}"

    def add(self, feed: str, frame, days: np.ndarray, version: str = ORIGINAL, suffix: str = "") -> None:
        """Deliver each row of ``frame`` on its day of ``days``, one file per feed and day (rows added for the same
        file on another call follow the earlier ones)."""
        for day in np.unique(days):
            rows = np.flatnonzero(days == day)
            part = frame.take(pa.array(rows)) if isinstance(frame, pa.Table) else frame.iloc[rows]
            self.pending.setdefault((int(day), feed, self.relative(feed, day, suffix)), []).append((part, version))

    def flush(self) -> None:
        """Write every file added and its records' truth rows."""
        for (day, feed, relative), parts in sorted(self.pending.items()):
            contract = contracts.FEEDS[feed]
            frames = [part for part, _ in parts]
            whole = pa.concat_tables(frames) if isinstance(frames[0], pa.Table) else pd.concat(frames, ignore_index=True)
            _write(whole, feed, self.folder / day_name(self.start, day) / relative)
            self.file(day, relative, REGULAR, day)
            keys = key_text(whole.select(list(contract.key)).to_pandas() if isinstance(whole, pa.Table) else whole, contract)
            self.truth.append(pd.DataFrame({
                "feed": feed, "key": keys.to_numpy(), "delivered_on": day_name(self.start, day), "file": relative,
                "row": np.arange(1, len(keys) + 1), "version": np.concatenate([[v] * len(p) for p, v in parts]),
            }))
        self.pending = {}

    def file(self, day: int, relative: str, kind: str, cut_day: int, note: str = "") -> None:
        entry = {"file": relative, "kind": kind, "cut_on": day_name(self.start, cut_day)}
        self.files.setdefault(day_name(self.start, day), []).append({**entry, **({"note": note} if note else {})})


def generate_deliveries(
    fleet: FleetSettings,
    deliveries_dir: Path,
    truth_dir: Path,
    go_live_day: int,
    drills: bool = True,
    progress=None,
) -> DeliverySummary:
    """Write the fleet's life from ``go_live_day`` (its history arrives that day) as daily drops; same seed, same drops."""
    if not 1 <= go_live_day < fleet.days:
        raise ValueError(f"go-live day {go_live_day} must fall inside the fleet's {fleet.days} days (after its first)")
    deliveries_dir, truth_dir = Path(deliveries_dir), Path(truth_dir)
    shutil.rmtree(deliveries_dir, ignore_errors=True)
    generated = deliveries_dir / ".generated"
    generate_fleet(fleet.model_copy(update={"dirt": DirtRates.clean()}), generated, truth_dir, progress)
    start, last = fleet.start, fleet.days - 1
    rng = np.random.default_rng([fleet.seed, 0xDE11])
    drops = _Drops(deliveries_dir, start)
    go_live = go_live_day

    # Registry changes in the deployment's first weeks, so a short replay meets them.
    vehicles = _read(generated, "vehicles")
    numbers = vehicles["vehicle_number"].tolist()
    order = rng.permutation(len(numbers))
    span = max(1, min(DRILL_SPAN_DAYS, last - go_live - 1))
    commissioned = {numbers[i]: go_live + 1 + int(rng.integers(0, span)) for i in order[: max(1, len(numbers) // 6)]}
    first_new = min(commissioned)
    commissioned[first_new] = go_live + span  # after the missing drop's day, so its telemetry comes before its registry row
    rest = [numbers[i] for i in order[len(commissioned):]]
    retired = {rest[0]: go_live + 1 + int(rng.integers(0, span))} if len(rest) > 2 else {}
    transferred = {rest[-1]: go_live + 1 + int(rng.integers(0, span))} if len(rest) > 1 else {}
    in_service = {n: (commissioned.get(n, 0), retired.get(n, last)) for n in numbers}

    def serving(frame: pd.DataFrame, days: np.ndarray) -> np.ndarray:
        first = frame["vehicle_number"].map(lambda n: in_service.get(n, (0, last))[0]).to_numpy()
        final = frame["vehicle_number"].map(lambda n: in_service.get(n, (0, last))[1]).to_numpy()
        return (days >= first) & (days <= final)

    changes = []
    registry = vehicles.copy()
    for number, day in commissioned.items():
        registry.loc[registry["vehicle_number"] == number, "commissioning_date"] = day_name(start, day)
    registry_day = np.full(len(registry), go_live)
    for number, day in commissioned.items():
        late = number == first_new
        registry_day[(registry["vehicle_number"] == number).to_numpy()] = day + late
        changes.append({"change": "commissioned", "vehicle": number, "day": day_name(start, day),
                        **({"note": "its telemetry arrives a day before its registry row"} if late else {})})
    drops.add("vehicles", registry, registry_day)
    for number, day in transferred.items():
        row = registry[registry["vehicle_number"] == number].copy()
        depots = [d for d in contracts.DEPOTS if d != row["home_depot"].iloc[0]]
        row["home_depot"] = depots[int(rng.integers(0, len(depots)))]
        drops.add("vehicles", row, np.array([day]), UPDATE)
        changes.append({"change": "transferred", "vehicle": number, "day": day_name(start, day), "to": row["home_depot"].iloc[0]})
    for number, day in retired.items():
        changes.append({"change": "retired", "vehicle": number, "day": day_name(start, day),
                        "note": "its feeds stop after this day (the registry contract has no retirement field)"})

    parts = _read(generated, "parts")
    drops.add("parts", parts, np.full(len(parts), go_live))
    update_day = min(go_live + 3, last)
    changed = parts.iloc[[int(rng.integers(0, len(parts)))]].copy()
    changed["unit_cost_eur"] = f"{float(changed['unit_cost_eur'].iloc[0]) * 1.08:.2f}"
    changed["lead_time_days"] = str(int(changed["lead_time_days"].iloc[0]) + 14)
    drops.add("parts", changed, np.array([update_day]), UPDATE)
    changes.append({"change": "part updated", "part": changed["part_number"].iloc[0], "day": day_name(start, update_day)})

    stock = _read(generated, "stock")
    stock["as_of"] = day_name(start, go_live)
    drops.add("stock", stock, np.full(len(stock), go_live))
    for day in range(go_live + STOCK_COUNT_EVERY_DAYS, last + 1, STOCK_COUNT_EVERY_DAYS):
        counted = stock.sample(n=max(1, len(stock) // 10), random_state=int(rng.integers(0, 2**31)))
        counted = counted.assign(on_hand=[str(max(0, int(v) + int(rng.integers(-2, 3)))) for v in counted["on_hand"]],
                                 as_of=day_name(start, day))
        stock.loc[counted.index, ["on_hand", "as_of"]] = counted[["on_hand", "as_of"]]
        drops.add("stock", counted, np.full(len(counted), day), UPDATE)

    telemetry = _read(generated, "telemetry")
    ts = telemetry.column("ts").to_pandas()
    frame = pd.DataFrame({"vehicle_number": telemetry.column("vehicle_number").to_pandas(), "ts": ts})
    days = _day_of(ts, start)
    keep = serving(frame, days)
    telemetry, frame, days = telemetry.filter(pa.array(keep)), frame[keep].reset_index(drop=True), days[keep]
    piece = frame["vehicle_number"].astype(str) + "|" + pd.Series(days).astype(str) + "|" + (frame["ts"].dt.hour // 6).astype(str)
    codes, pieces = pd.factorize(piece)
    lag = rng.choice(TELEMETRY_LAG_DAYS, size=len(pieces), p=TELEMETRY_LAG_SHARES)[codes]
    drops.add("telemetry", telemetry, np.maximum(days + lag, go_live))

    faults = _read(generated, "faults")
    fault_days = _day_of(faults["ts"], start)
    faults = faults[serving(faults, fault_days)].reset_index(drop=True)
    drops.add("faults", faults, np.maximum(_delayed_day(faults["ts"], start, FAULT_DELAY_HOURS, rng), go_live))

    orders = _read(generated, "work_orders")
    orders = orders[serving(orders, _day_of(orders["opened_at"], start))].reset_index(drop=True)
    opened = np.maximum(_delayed_day(orders["opened_at"], start, WORK_ORDER_DELAY_HOURS, rng), go_live)
    closed = np.full(len(orders), -1)
    has_close = (orders["closed_at"] != "").to_numpy()
    closed[has_close] = np.maximum(_delayed_day(orders.loc[has_close, "closed_at"], start, WORK_ORDER_CLOSE_REPORT_HOURS, rng), go_live)
    two_steps = has_close & (closed > opened)
    first = orders.copy()
    first.loc[two_steps, "closed_at"] = ""
    drops.add("work_orders", first, opened)
    drops.add("work_orders", orders[two_steps], closed[two_steps], UPDATE, suffix="-closed")

    drops.flush()
    drill_log = _drills(drops, go_live, last, rng) if drills else []
    truth = pd.concat(drops.truth, ignore_index=True)
    truth.to_parquet(truth_dir / "deliveries.parquet", index=False)
    _restrict_failures(truth_dir / "failures.parquet", in_service, start)
    (truth_dir / "drops.json").write_text(json.dumps(
        {"go_live": day_name(start, go_live), "registry_changes": changes, "drills": drill_log,
         "drops": dict(sorted(drops.files.items()))}, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(generated)

    kinds = pd.Series([f["kind"] for files in drops.files.values() for f in files]).value_counts()
    summary = DeliverySummary(
        vehicles=len(numbers),
        first_day=min(drops.files), last_day=max(drops.files), go_live=day_name(start, go_live),
        drops=len(drops.files),
        records_by_feed={k: int(v) for k, v in truth.loc[truth["version"] == ORIGINAL, "feed"].value_counts().sort_index().items()},
        updates_by_feed={k: int(v) for k, v in truth.loc[truth["version"] == UPDATE, "feed"].value_counts().sort_index().items()},
        registry_changes=changes, drills=drill_log,
        deliveries_dir=str(deliveries_dir), truth_dir=str(truth_dir),
        files_by_kind={k: int(v) for k, v in kinds.sort_index().items()},
    )
    (truth_dir / "delivery_summary.json").write_text(summary.to_json() + "\n", encoding="utf-8")
    return summary


def _restrict_failures(path: Path, in_service: dict[str, tuple[int, int]], start: date) -> None:
    """The truth's failures of the vehicles' time in service only (a commissioned vehicle's earlier life never was)."""
    failures = pq.read_table(path)
    frame = failures.select(["vehicle_number", "failed_at"]).to_pandas()
    days = _day_of(frame["failed_at"], start)
    first = frame["vehicle_number"].map(lambda n: in_service[n][0]).to_numpy()
    final = frame["vehicle_number"].map(lambda n: in_service[n][1]).to_numpy()
    pq.write_table(failures.filter(pa.array((days >= first) & (days <= final))), path)


def _drills(drops: _Drops, go_live: int, last: int, rng: np.random.Generator) -> list[dict]:
    """Spoil four drops after the go-live day the way feeds go wrong; each drill is logged with what to expect."""
    folder, start, log = drops.folder, drops.start, []

    def day_folder(day: int) -> Path:
        return folder / day_name(start, day)

    missing, twice, corrected, garbage = go_live + 1, go_live + 2, go_live + 2, go_live + 2
    if missing + 2 <= last and day_folder(missing).is_dir():
        moved = drops.files.pop(day_name(start, missing))
        for entry in moved:
            target = day_folder(missing + 2) / entry["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(day_folder(missing) / entry["file"], target)
            drops.file(missing + 2, entry["file"], LATE_DROP, missing, "the drop of its day arrived two days late")
        shutil.rmtree(day_folder(missing))
        truth = pd.concat(drops.truth, ignore_index=True)
        truth.loc[truth["delivered_on"] == day_name(start, missing), "delivered_on"] = day_name(start, missing + 2)
        drops.truth = [truth]
        log.append({"drill": "missing drop", "day": day_name(start, missing), "arrives": day_name(start, missing + 2)})
    if twice + 1 <= last and day_folder(twice).is_dir():
        for entry in list(drops.files.get(day_name(start, twice), [])):
            target = day_folder(twice + 1) / entry["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(day_folder(twice) / entry["file"], target)
            drops.file(twice + 1, entry["file"], REPEATED, twice, "the same file again, byte for byte")
        log.append({"drill": "drop delivered twice", "day": day_name(start, twice), "again": day_name(start, twice + 1)})
    name = drops.relative("telemetry", go_live)
    if corrected <= last:  # the go-live drop's telemetry, sent again under its name with a reading corrected
        table = pq.read_table(day_folder(go_live) / name)
        column = table.schema.names.index("ambient_temp_c")
        values = table.column(column).to_numpy(zero_copy_only=False).copy()
        row = int(rng.integers(0, len(values)))
        values[row] = np.round(values[row] + 0.5, 2)
        fixed = table.set_column(column, "ambient_temp_c", pa.array(values, table.schema.field(column).type))
        _write(fixed, "telemetry", day_folder(corrected) / name)
        drops.file(corrected, name, CORRECTED, go_live, f"row {row + 1}: ambient_temp_c corrected by +0.5")
        vehicle, ts = table.column("vehicle_number")[row].as_py(), table.column("ts")[row].as_py()
        log.append({"drill": "corrected resend", "day": day_name(start, go_live), "again": day_name(start, corrected),
                    "file": name, "row": row + 1, "key": f"{vehicle}|{pd.Timestamp(ts)}"})
    if garbage <= last:
        name = drops.relative("faults", garbage, "-garbage")
        (day_folder(garbage) / name).parent.mkdir(parents=True, exist_ok=True)
        (day_folder(garbage) / name).write_bytes(GARBAGE_BYTES)
        drops.file(garbage, name, GARBAGE, garbage, "not a feed file: set aside whole, nothing else of the drop affected")
        log.append({"drill": "garbage file", "day": day_name(start, garbage), "file": name})
    return log
