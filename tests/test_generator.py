"""The synthetic fleet: deterministic, true to the contracts, dirty exactly as recorded, and carrying signal.

The landing files are read back here with plain readers (csv, json, pyarrow) and checked record by record
against the contracts, so the checks do not depend on railpm's own ingest.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.stats import mannwhitneyu
from typer.testing import CliRunner

from railpm import contracts
from railpm.config import DirtRates, FleetSettings
from railpm.synth import generate_fleet
from railpm.synth.dirt import QUARANTINE_RULES, SPOILING, quarantine_rule
from railpm.synth import landing as synth_landing
from railpm.synth.landing import arrow_schema

from helpers import small_fleet_settings

TS_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EVENT_FEEDS = (contracts.TELEMETRY, contracts.FAULTS, contracts.WORK_ORDERS)
DIRTY_RATES = dict(
    duplicate=0.01, late=0.01, out_of_order=0.02, dropout=0.01, stuck=0.05, wrong_unit=0.005, unknown_vehicle=0.005,
    malformed=0.005,
)


def _generate(root: Path, fleet: FleetSettings):
    return generate_fleet(fleet, root / "landing", root / "truth")


# --------------------------------------------------------------------------------------------------
# Reading landing files back, independently of railpm's ingest
# --------------------------------------------------------------------------------------------------


def read_records(path: Path, feed: contracts.Feed) -> list[dict | None]:
    """The file's records in order; None for a line that does not parse (wrong field count, broken JSON)."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            header, *rows = list(csv.reader(handle))
        assert header == feed.column_names, path
        return [dict(zip(header, (v if v != "" else None for v in row))) if len(row) == len(header) else None for row in rows]
    if path.suffix == ".jsonl":
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                records.append(None)
                continue
            assert list(record) == feed.column_names, path
            records.append(record)
        return records
    table = pq.read_table(path)
    assert table.schema.names == feed.column_names, path
    assert [f.type for f in table.schema] == [f.type for f in arrow_schema(feed)], path
    return table.to_pylist()


def _number(value) -> float | None:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return float(value)


def broken_rules(record: dict | None, feed: contracts.Feed, registry: dict[str, str]) -> set[str]:
    """The rules a record breaks, named as ingest names them."""
    if record is None:
        return {"malformed_line"}
    rules = set()
    for column in feed.columns:
        value = record[column.name]
        if value is None:
            if not column.nullable:
                rules.add(f"{column.name}_not_null")
            continue
        if column.dtype in ("float64", "int64"):
            number = _number(value)
            if number is None:
                rules.add("malformed_line")
                continue
            if column.dtype == "int64" and number != int(number):
                rules.add(f"{column.name}_type")
            if (column.min is not None and number < column.min) or (column.max is not None and number > column.max):
                rules.add(f"{column.name}_in_range")
            if column.allowed and int(number) not in column.allowed:
                rules.add(f"{column.name}_allowed")
        elif column.dtype == "timestamp":
            ok = TS_TEXT.match(value) if isinstance(value, str) else (isinstance(value, datetime) and value.utcoffset() == timedelta(0))
            if not ok:
                rules.add(f"{column.name}_timestamp")
        elif column.dtype == "date":
            if not (DATE_TEXT.match(value) if isinstance(value, str) else isinstance(value, date)):
                rules.add(f"{column.name}_date")
        elif column.allowed and value not in column.allowed:
            rules.add(f"{column.name}_allowed")
    if feed.references_registry and record["vehicle_number"] not in registry:
        rules.add("vehicle_known")
    if feed is contracts.TELEMETRY and record["vehicle_number"] in registry:
        fitted = {s.column for s in contracts.signals_for_type(registry[record["vehicle_number"]])}
        for signal in contracts.SIGNALS:
            present = record[signal.column] is not None
            if signal.column in fitted and not present:
                rules.add("signal_present")
            if signal.column not in fitted and present:
                rules.add("signal_not_fitted")
    return rules


def record_key(record: dict, feed: contracts.Feed) -> str:
    if feed is contracts.TELEMETRY:
        ts = record["ts"]
        ts = ts if isinstance(ts, str) else ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{record['vehicle_number']}|{ts}"
    return str(record[feed.key[0]])


def stuck_rows(located: list[tuple[str, int, dict]], registry: dict[str, str]) -> set[tuple[str, int, str]]:
    """(file, row, signal) of every reading in a run of >= 6 identical values of one vehicle's signal."""
    by_vehicle = defaultdict(dict)
    for file, row, record in located:  # duplicates collapse on the key: the copy is not a second hour
        if record is None or record["vehicle_number"] not in registry:
            continue
        by_vehicle[record["vehicle_number"]].setdefault(record_key(record, contracts.TELEMETRY), (file, row, record))
    flagged = set()
    for vehicle, readings in by_vehicle.items():
        ordered = [readings[k] for k in sorted(readings)]
        for signal in contracts.signals_for_type(registry[vehicle]):
            run: list = []
            for file, row, record in [*ordered, (None, None, None)]:
                value = None if record is None else _number(record[signal.column]) if record[signal.column] is not None else None
                if run and value is not None and value == run[-1][2]:
                    run.append((file, row, value))
                    continue
                if len(run) >= 6:
                    flagged |= {(f, r, signal.column) for f, r, _ in run}
                run = [(file, row, value)] if value is not None else []
    return flagged


def load_landing(landing: Path) -> tuple[dict[str, str], dict[str, list[tuple[str, int, dict | None]]]]:
    """The registry (number -> type) and every event feed's records located by (file, 1-based row)."""
    registry = {r["vehicle_number"]: r["vehicle_type"] for r in read_records(landing / "vehicles" / "vehicles.csv", contracts.VEHICLES)}
    located = {}
    for feed in EVENT_FEEDS:
        located[feed.name] = [
            (f"{feed.name}/{path.name}", row, record)
            for path in sorted((landing / feed.name).iterdir())
            for row, record in enumerate(read_records(path, feed), start=1)
        ]
    return registry, located


# --------------------------------------------------------------------------------------------------
# Fixtures: a few small fleets generated once per module
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    fleet = small_fleet_settings().model_copy(update={"dirt": DirtRates.clean(), "telemetry_format": "csv"})
    return root, _generate(root, fleet)


@pytest.fixture(scope="module", params=["csv", "jsonl", "parquet"])
def dirty_fleet(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"dirty-{request.param}")
    fleet = small_fleet_settings(**DIRTY_RATES).model_copy(update={"telemetry_format": request.param})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(synth_landing, "TEXT_CHUNK_ROWS", 997)  # text files are rendered in many chunks
        return root, _generate(root, fleet), fleet


@pytest.fixture(scope="module")
def signal_fleet(tmp_path_factory):
    """A clean fleet large enough for statistics: telemetry, fault log and the true failures as frames."""
    root = tmp_path_factory.mktemp("signal")
    fleet = FleetSettings(vehicles=36, days=300, seed=23, vehicles_per_file=12, dirt=DirtRates.clean())
    summary = _generate(root, fleet)
    landing = root / "landing"
    telemetry = pd.concat([pd.read_parquet(p) for p in sorted((landing / "telemetry").glob("*.parquet"))], ignore_index=True)
    faults = pd.concat([pd.read_json(p, lines=True) for p in sorted((landing / "faults").glob("*.jsonl"))], ignore_index=True)
    vehicles = pd.read_csv(landing / "vehicles" / "vehicles.csv")
    failures = pd.read_parquet(root / "truth" / "failures.parquet")
    return telemetry, faults, vehicles, failures, fleet, summary


# --------------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------------


def _contents(root: Path) -> dict[str, object]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = str(path.relative_to(root))
            out[key] = pq.read_table(path).to_pylist() if path.suffix == ".parquet" else path.read_bytes()
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_same_files_other_seed_other_files(tmp_path, fmt):
    fleet = FleetSettings(vehicles=4, days=12, seed=5, vehicles_per_file=2, telemetry_format=fmt, dirt=DirtRates(**DIRTY_RATES))
    first = _generate(tmp_path / "a", fleet)
    second = _generate(tmp_path / "b", fleet)
    _generate(tmp_path / "c", fleet.model_copy(update={"seed": 6}))
    a, b, c = _contents(tmp_path / "a"), _contents(tmp_path / "b"), _contents(tmp_path / "c")
    assert list(a) == list(b) and len(a) > 8
    for name in a:
        if name != "truth/fleet_summary.json":  # it names the output folders
            assert a[name] == b[name], name
    assert (first.records_by_feed, first.dirt_by_kind) == (second.records_by_feed, second.dirt_by_kind)
    different = [n for n in a if n in c and n.startswith("landing/telemetry/") and a[n] != c[n]]
    assert different, "another seed must give other telemetry"


# --------------------------------------------------------------------------------------------------
# Contracts
# --------------------------------------------------------------------------------------------------


def test_clean_fleet_matches_every_contract(clean_fleet):
    root, summary = clean_fleet
    landing = root / "landing"
    assert sorted(p.name for p in landing.iterdir()) == sorted(contracts.FEEDS)
    registry, located = load_landing(landing)
    assert len(registry) == summary.vehicles == sum(summary.vehicles_by_type.values())

    for feed in (contracts.VEHICLES, contracts.PARTS, contracts.STOCK):
        records = read_records(landing / feed.name / f"{feed.name}.csv", feed)
        assert records and all(not broken_rules(r, feed, registry) for r in records), feed.name
        keys = [tuple(r[k] for k in feed.key) for r in records]
        assert len(keys) == len(set(keys)), feed.name
    parts = {r["part_number"]: r for r in read_records(landing / "parts" / "parts.csv", contracts.PARTS)}
    for vehicle_type, components in contracts.VEHICLE_TYPE_COMPONENTS.items():
        offered = {(p["vehicle_type"], p["component"]) for p in parts.values()}
        assert {(vehicle_type, c) for c in components} <= offered
    assert {r["part_number"] for r in read_records(landing / "stock" / "stock.csv", contracts.STOCK)} == set(parts)

    for feed in EVENT_FEEDS:
        records = located[feed.name]
        assert records, feed.name
        assert not any("-late-" in file for file, _, _ in records), "a clean fleet has no late files"
        broken = [(file, row, broken_rules(r, feed, registry)) for file, row, r in records]
        assert [b for b in broken if b[2]] == [], feed.name
        keys = [record_key(r, feed) for _, _, r in records]
        assert len(keys) == len(set(keys)), f"{feed.name} keys are not unique"
        assert summary.records_by_feed[feed.name] == len(records)

    telemetry = [r for _, _, r in located["telemetry"]]
    assert len(telemetry) == summary.vehicles * 120 * 24
    assert stuck_rows(located["telemetry"], registry) == set(), "clean signals must never sit still for 6 hours"

    for _, _, fault in located["faults"]:
        code = contracts.FAULT_CODE_BY_CODE[fault["fault_code"]]
        assert (fault["subsystem"], fault["description"]) == (code.subsystem, code.description)
        assert fault["vehicle_type"] == registry[fault["vehicle_number"]]
    for _, _, order in located["work_orders"]:
        replacement = order["action"] != "inspection"
        assert (order["component"] is not None) == replacement == (order["part_number"] is not None)
        assert (order["maintenance_level"] is not None) == (order["action"] != "corrective_replacement")
        if replacement:
            part = parts[order["part_number"]]
            assert (part["component"], part["vehicle_type"]) == (order["component"], registry[order["vehicle_number"]])
        if order["closed_at"] is not None:
            assert order["closed_at"] > order["opened_at"]

    failures = pq.read_table(root / "truth" / "failures.parquet")
    assert [f.type for f in failures.schema] == [f.type for f in arrow_schema(contracts.FAILURES)]
    events = {r["event_id"]: r for _, _, r in located["faults"]}
    for failure in failures.to_pylist():
        event = events[failure["event_id"]]
        code = contracts.FAULT_CODE_BY_CODE[event["fault_code"]]
        assert (code.component, event["grade"], event["vehicle_number"]) == (failure["component"], failure["grade"], failure["vehicle_number"])
        assert event["ts"] == failure["failed_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sum(summary.failures_by_component.values()) == failures.num_rows > 0
    assert pd.read_parquet(root / "truth" / "dirt.parquet").empty


def test_fleet_has_failures_of_every_component_and_deep_maintenance(signal_fleet):
    """Models need failures of every component; planners need levels 3-4 inspections within the period."""
    *_, summary = signal_fleet
    assert all(n >= 1 for n in summary.failures_by_component.values()), summary.failures_by_component
    assert summary.silent_failures > 0 and summary.announced_failures > 2 * summary.silent_failures
    assert summary.preventive_replacements > 0
    assert summary.work_orders_by_level["3"] > 0 and summary.work_orders_by_level["4"] > 0
    assert summary.work_orders_by_action["corrective_replacement"] == sum(summary.failures_by_component.values())


# --------------------------------------------------------------------------------------------------
# Dirt
# --------------------------------------------------------------------------------------------------


def test_every_dirt_kind_ingest_rejects_names_a_rule_of_the_suites():
    """The one dirt kind -> rule map must name rules the GX suites really report."""
    from railpm.expectations import suites

    assert set(SPOILING) < set(QUARANTINE_RULES) <= set(DirtRates.model_fields)
    assert {kind: quarantine_rule(kind, "ambient_temp_c") for kind in QUARANTINE_RULES} == {
        "dropout": suites.SIGNAL_PRESENT, "stuck": suites.SIGNAL_NOT_STUCK, "unknown_vehicle": suites.VEHICLE_KNOWN,
        "malformed": suites.MALFORMED_LINE, "wrong_unit": suites.column_rule("ambient_temp_c", "in_range"),
    }
    assert quarantine_rule("duplicate") is None and quarantine_rule("late") is None


def test_dirt_matches_manifest_rates_and_files(dirty_fleet):
    root, summary, fleet = dirty_fleet
    manifest = pd.read_parquet(root / "truth" / "dirt.parquet")
    assert list(manifest.columns) == ["feed", "kind", "file", "row", "column", "key"]
    assert not manifest.duplicated(["file", "row"]).any(), "a record carries at most one kind of dirt"
    assert set(manifest["kind"]) <= set(DIRTY_RATES)
    registry, located = load_landing(root / "landing")
    text = fleet.telemetry_format != "parquet"

    for feed in EVENT_FEEDS:
        entries = manifest[manifest["feed"] == feed.name]
        records = located[feed.name]
        by_location = {(file, row): record for file, row, record in records}
        marked = {(e.file, e.row): e for e in entries.itertuples()}
        assert set(marked) <= set(by_location), f"{feed.name}: manifest points past the files"

        # Each spoilt record breaks exactly the rule its kind names; every other record breaks none.
        for (file, row), record in by_location.items():
            rules = broken_rules(record, feed, registry)
            entry = marked.get((file, row))
            if entry is None or entry.kind not in SPOILING:
                assert not rules, (file, row, rules)
            else:
                want = quarantine_rule(entry.kind, entry.column)
                assert rules == {want}, (file, row, entry.kind, rules)
            if record is not None and entry is not None:
                assert record_key(record, feed) == entry.key

        keys = Counter(record_key(r, feed) for _, _, r in records if r is not None)
        duplicates = entries[entries["kind"] == "duplicate"]
        assert all(keys[k] == 2 for k in duplicates["key"]), "a duplicate repeats its record's key once"
        assert sum(c - 1 for c in keys.values()) == len(duplicates), "no key repeats except the duplicates"
        late = entries[entries["kind"] == "late"]
        assert late["file"].str.contains("-late-").all()
        assert sum(1 for file, _, _ in records if "-late-" in file) == len(late)
        if not text and feed is contracts.TELEMETRY:
            assert not (entries["kind"] == "malformed").any(), "Parquet has no malformed lines"

        # Rates come out as configured: binomial counts within 4 standard deviations.
        clean_records = len(records) - len(duplicates)
        for kind, rate in DIRTY_RATES.items():
            observed = int((entries["kind"] == kind).sum())
            if kind == "stuck":
                if feed is not contracts.TELEMETRY:
                    assert observed == 0
                    continue
                spells = entries[entries["kind"] == "stuck"].assign(vehicle=lambda f: f["key"].str.split("|").str[0])
                observed = spells.groupby(["vehicle", "column"]).ngroups
                trials = sum(len(contracts.signals_for_type(t)) for t in registry.values())
            elif kind in ("dropout", "wrong_unit") and feed is not contracts.TELEMETRY:
                assert observed == 0, (feed.name, kind)
                continue
            elif kind == "malformed" and feed is contracts.TELEMETRY and not text:
                continue
            else:
                trials = clean_records
            expected = rate * trials
            assert abs(observed - expected) <= 4 * np.sqrt(expected) + 2, (feed.name, kind, observed, expected)
        assert summary.dirt_by_feed[feed.name] == len(entries)

    stuck = manifest[manifest["kind"] == "stuck"]
    assert len(stuck) > 0
    assert stuck_rows(located["telemetry"], registry) == set(zip(stuck["file"], stuck["row"], stuck["column"]))
    assert summary.dirt_by_kind == {k: int((manifest["kind"] == k).sum()) for k in summary.dirt_by_kind}


def test_clean_option_and_summary_from_the_command_line(tmp_path):
    from railpm.cli import app

    result = CliRunner().invoke(
        app, ["generate", "--vehicles", "3", "--days", "4", "--seed", "3", "--format", "jsonl", "--clean", "--data-root", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    for heading in ("vehicles by type", "faults by grade", "work orders by action", "failures by component", "dirt injected by kind"):
        assert heading in result.output
    assert sorted(p.name for p in (tmp_path / "landing" / "telemetry").iterdir()) == ["telemetry-0001.jsonl"]
    summary = json.loads((tmp_path / "truth" / "fleet_summary.json").read_text())
    assert summary["vehicles"] == 3 and summary["records_by_feed"]["telemetry"] == 3 * 4 * 24
    assert sum(summary["dirt_by_kind"].values()) == 0

    bad = CliRunner().invoke(app, ["generate", "--format", "xml", "--data-root", str(tmp_path)])
    assert bad.exit_code == 1 and "telemetry_format" in bad.output


# --------------------------------------------------------------------------------------------------
# Signal: what models and planners learn from must be there, and only where it should be
# --------------------------------------------------------------------------------------------------

PRIMARY_SIGNAL = {
    s.component: s for s in contracts.SIGNALS if s.column != "wheel_flange_mm"
}
"""The condition signal that shows each component's degradation (the flange measures wear, not failure)."""


def _daily_normalised_signals(telemetry: pd.DataFrame, vehicles: pd.DataFrame) -> pd.DataFrame:
    """Per vehicle-day, each signal's mean residual after removing the operating context, in sd units.

    The context model (speed, payload, ambient, speed x payload) is fitted per vehicle type and signal by
    least squares, as a model would normalise; residuals are centred and scaled robustly (median, MAD), then
    each vehicle's daily values are taken relative to its own median day.
    """
    frame = telemetry.merge(vehicles[["vehicle_number", "vehicle_type"]], on="vehicle_number")
    frame["day"] = frame["ts"].dt.floor("D").dt.tz_localize(None)
    out = []
    for vehicle_type, group in frame.groupby("vehicle_type"):
        context = np.column_stack(
            [np.ones(len(group)), group["speed_kmh"], group["load_pct"], group["ambient_temp_c"], group["speed_kmh"] * group["load_pct"]]
        )
        daily = group[["vehicle_number", "day"]].copy()
        for signal in contracts.signals_for_type(vehicle_type):
            y = group[signal.column].to_numpy()
            coef, *_ = np.linalg.lstsq(context, y, rcond=None)
            residual = y - context @ coef
            centre = np.median(residual)  # robust: the few drifting days must not shift the healthy level
            daily[signal.column] = (residual - centre) / (1.4826 * np.median(np.abs(residual - centre)))
        per_day = daily.groupby(["vehicle_number", "day"], as_index=False).mean()
        columns = [s.column for s in contracts.signals_for_type(vehicle_type)]
        # Each sensor is calibrated a little differently: compare a vehicle with its own usual level.
        per_day[columns] -= per_day.groupby("vehicle_number")[columns].transform("median")
        out.append(per_day.assign(vehicle_type=vehicle_type))
    return pd.concat(out, ignore_index=True)


def _windows(failures: pd.DataFrame, days_before: int) -> pd.DataFrame:
    """One row per failure and day in the `days_before` days before it (failure day excluded)."""
    rows = []
    for failure, f in enumerate(failures.itertuples()):
        failed_day = f.failed_at.tz_convert("UTC").floor("D").tz_localize(None)
        for k in range(1, days_before + 1):
            rows.append((failure, f.vehicle_number, f.component, failed_day - pd.Timedelta(days=k), f.announced))
    return pd.DataFrame(rows, columns=["failure", "vehicle_number", "component", "day", "announced"])


def test_condition_signals_drift_before_announced_failures_only(signal_fleet):
    telemetry, _, vehicles, failures, *_ = signal_fleet
    daily = _daily_normalised_signals(telemetry, vehicles)
    before = _windows(failures, 7)
    quiet = _windows(failures, 90)  # days away from any failure of that vehicle-component form the baseline
    quiet_keys = set(zip(quiet["vehicle_number"], quiet["component"], quiet["day"]))

    def signed(component: str, frame: pd.DataFrame) -> np.ndarray:
        signal = PRIMARY_SIGNAL[component]
        return frame[signal.column].to_numpy() * np.sign(_drift_direction(signal.column))

    window_values = {True: [], False: []}
    baseline_values = []
    for component, signal in PRIMARY_SIGNAL.items():
        fitted = daily[daily[signal.column].notna()]
        if fitted.empty:
            continue
        mask = [(v, component, d) not in quiet_keys for v, d in zip(fitted["vehicle_number"], fitted["day"])]
        baseline_values.append(signed(component, fitted[mask]))
        for announced in (True, False):
            days = before[(before["component"] == component) & (before["announced"] == announced)]
            hit = fitted.merge(days[["failure", "vehicle_number", "day"]], on=["vehicle_number", "day"])
            hit[signal.column] = signed(component, hit)
            window_values[announced].append(hit.groupby("failure")[signal.column].mean().to_numpy())
    baseline = np.concatenate(baseline_values)
    # One value per failure (its week's mean): the days of one week are not independent samples.
    announced, silent = np.concatenate(window_values[True]), np.concatenate(window_values[False])
    assert len(announced) > 40 and len(silent) > 10

    assert mannwhitneyu(announced, baseline, alternative="greater").pvalue < 0.01
    assert np.median(announced) - np.median(baseline) > 1.0, "announced failures drift by more than one sd"
    assert mannwhitneyu(silent, baseline, alternative="greater").pvalue > 0.01, "silent failures give no warning"
    assert abs(np.median(silent) - np.median(baseline)) < 0.5


def _drift_direction(column: str) -> float:
    from railpm.synth.signals import SIGNAL_MODELS

    return SIGNAL_MODELS[column].drift_at_failure


def test_precursor_codes_come_before_failures_and_nuisance_codes_do_not(signal_fleet):
    _, faults, vehicles, failures, fleet, _ = signal_fleet
    faults["day"] = pd.to_datetime(faults["ts"], utc=True).dt.floor("D").dt.tz_localize(None)
    all_days = pd.date_range(pd.Timestamp(fleet.start), periods=fleet.days, freq="D")
    grid = pd.MultiIndex.from_product([vehicles["vehicle_number"], all_days], names=["vehicle_number", "day"])
    nuisance_codes = [f.code for f in contracts.FAULT_CODES if f.component is None]
    precursor = {f.component: f.code for f in contracts.FAULT_CODES if f.component and f.typical_grade == "C"}

    # Precursors: per vehicle-component-day counts of the component's own warning code.
    before = _windows(failures[failures["announced"]], 14)
    near_any = _windows(failures, 45)
    in_window, elsewhere = [], []
    for component, code in precursor.items():
        fitted = vehicles[vehicles["vehicle_type"].map(lambda t: component in contracts.VEHICLE_TYPE_COMPONENTS[t])]
        counts = faults[faults["fault_code"] == code].groupby(["vehicle_number", "day"]).size()
        per_day = counts.reindex(grid, fill_value=0).reset_index(name="n")
        per_day = per_day[per_day["vehicle_number"].isin(fitted["vehicle_number"])]
        window = before[before["component"] == component][["vehicle_number", "day"]]
        near = near_any[near_any["component"] == component][["vehicle_number", "day"]]
        in_window.append(per_day.merge(window, on=["vehicle_number", "day"])["n"].to_numpy())
        far = per_day.merge(near.drop_duplicates(), on=["vehicle_number", "day"], how="left", indicator=True)
        elsewhere.append(far.loc[far["_merge"] == "left_only", "n"].to_numpy())
    in_window, elsewhere = np.concatenate(in_window), np.concatenate(elsewhere)
    assert mannwhitneyu(in_window, elsewhere, alternative="greater").pvalue < 0.01
    assert in_window.mean() > 3 * elsewhere.mean()

    # Nuisance codes: per vehicle-day counts, centred on the vehicle's own rate (types differ), are no
    # higher in the fortnight before any failure than elsewhere.
    nuisance = faults[faults["fault_code"].isin(nuisance_codes)].groupby(["vehicle_number", "day"]).size()
    per_day = nuisance.reindex(grid, fill_value=0).reset_index(name="n")
    per_day["n"] = per_day["n"] - per_day.groupby("vehicle_number")["n"].transform("mean")
    window = _windows(failures, 14)[["vehicle_number", "day"]].drop_duplicates()
    marked = per_day.merge(window, on=["vehicle_number", "day"], how="left", indicator=True)
    inside = marked.loc[marked["_merge"] == "both", "n"].to_numpy()
    outside = marked.loc[marked["_merge"] == "left_only", "n"].to_numpy()
    assert len(inside) > 100 and nuisance.sum() > 1000
    assert mannwhitneyu(inside, outside, alternative="greater").pvalue > 0.01
    assert inside.mean() - outside.mean() < 0.1
