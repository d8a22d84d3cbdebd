"""Onboard a folder of exports: mappings -> landing files, the fleet's catalogue and settings, held rows, a profile.

The landing files are the ones ``railpm import`` writes for the public data sets (``landing/<feed>/<mapping
name>.parquet``, ``catalogue.json``, ``railpm.env``), so ``railpm ingest`` and the record jobs take them as
they are. Rows the mapping could not turn into the contract go to ``onboard/held/`` with file, line and reason;
rows that reach landing but would break a gate rule are counted per rule in the profile, before ingest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from railpm import contracts
from railpm.adapters import Landing, feed_in, write_landing
from railpm.config import Settings
from railpm.errors import BadInputError
from railpm.onboard.mapping import Located, MappingError, load_mapping
from railpm.onboard.transform import LINE, Context, map_source, read_source

HELD_DIR = "onboard"
PROFILE_FILE = "profile.json"
EVENT_TIMES = {"telemetry": "ts", "faults": "ts", "work_orders": "opened_at"}


def merge_catalogue(mappings: list[Located]) -> contracts.Catalogue:
    """One catalogue from the entries every mapping brings; a value two mappings give differently is an error."""
    scalars: dict[str, tuple[object, Located]] = {}
    types: dict[str, tuple[str, ...]] = {}
    components: dict[str, str] = {}
    depots: list[str] = []
    signals: dict[str, contracts.Signal] = {}
    codes: dict[str, contracts.FaultCode] = {}

    def agree(store: dict, key, value, located: Located, path) -> None:
        if key in store and store[key][0] != value:
            other = store[key][1]
            raise located.error(path, f"{value!r} differs from {store[key][0]!r} in {other.file} (line {other.line(path)})")
        store.setdefault(key, (value, located))

    bases = {m.mapping.catalogue.base for m in mappings} - {None}
    if len(bases) > 1:
        raise mappings[0].error(("catalogue", "base"), f"mappings disagree on the base catalogue: {sorted(bases)}")
    if bases == {"railway"}:
        base = contracts.RAILWAY
        types.update(base.vehicle_type_components)
        components.update(base.component_subsystem)
        depots += list(base.depots)
        signals.update({s.column: s for s in base.signals})
        codes.update({f.code: f for f in base.fault_codes})
    for located in mappings:
        entries = located.mapping.catalogue
        for name in ("name", "record_step", "operating_context", "stuck_min_readings"):
            value = getattr(entries, name)
            if value is not None:
                agree(scalars, name, value, located, ("catalogue", name))
        components.update(entries.components)
        for vehicle_type, fitted in entries.vehicle_types.items():
            types[vehicle_type] = tuple(dict.fromkeys([*types.get(vehicle_type, ()), *fitted]))
            for i, component in enumerate(fitted):
                if component not in components and component not in {c for m in mappings for c in m.mapping.catalogue.components}:
                    raise located.error(("catalogue", "vehicle_types", vehicle_type, i),
                                        f"component {component!r} is not among the catalogue's components")
        depots += [d for d in entries.depots if d not in depots]
        for i, s in enumerate(entries.signals):
            signal = contracts.Signal(s.column, s.component, s.unit, s.min, s.max, s.description)
            if signals.get(s.column, signal) != signal:
                raise located.error(("catalogue", "signals", i), f"signal {s.column!r} is declared differently elsewhere")
            signals[s.column] = signal
        for i, f in enumerate(entries.fault_codes):
            code = contracts.FaultCode(f.code, f.subsystem, f.component, f.grade, f.description)
            if codes.get(f.code, code) != code:
                raise located.error(("catalogue", "fault_codes", i), f"fault code {f.code!r} is declared differently elsewhere")
            codes[f.code] = code
    for located in mappings:
        for i, s in enumerate(located.mapping.catalogue.signals):
            if s.component is not None and s.component not in components:
                raise located.error(("catalogue", "signals", i, "component"), f"component {s.component!r} is not in the catalogue")
    value = {k: v for k, (v, _) in scalars.items()}
    return contracts.Catalogue(
        name=str(value.get("name", mappings[0].mapping.name)),
        vehicle_types=tuple(types),
        depots=tuple(depots),
        component_subsystem=components,
        vehicle_type_components=types,
        signals=tuple(signals.values()),
        fault_codes=tuple(codes.values()),
        record_step=str(value.get("record_step", "1 day")),
        operating_context=bool(value.get("operating_context", True)),
        stuck_min_readings=int(value.get("stuck_min_readings", 6)),
    )


@dataclass
class SourceReport:
    mapping: str
    source: str
    feed: str
    files: list[str]
    rows_in: int = 0
    landed: int = 0
    held: int = 0
    folded: int = 0
    held_reasons: dict[str, int] = field(default_factory=dict)
    held_file: str | None = None


@dataclass
class Onboarded:
    catalogue: contracts.Catalogue
    landings: dict[str, Landing]
    """Mapping name -> its feeds (the landing file of each is ``landing/<feed>/<mapping name>.parquet``)."""
    sources: list[SourceReport]
    held: dict[tuple[str, str], pd.DataFrame]
    unmapped_columns: dict[str, list[str]]
    """Export file -> its columns no source of any mapping reads."""
    lake_vehicles: set[str] = field(default_factory=set)
    """Vehicle numbers already in the lake's registry."""
    profile: dict = field(default_factory=dict)


def _files(folder: Path, located: Located, index: int) -> list[Path]:
    source = located.mapping.sources[index]
    root = folder.resolve()
    return sorted(p for p in folder.glob(source.files) if p.is_file() and p.resolve().is_relative_to(root))


def _reason_kind(reason: str) -> str:
    """'skipped: <why>' or '<column>: <problem kind>' without the value, to count held rows by cause."""
    if reason.startswith("skipped: "):
        return reason
    column, _, problem = reason.partition(": ")
    for marker in ("does not match", "is not in the lookup", "is not a number", "is not a time", "is not a date",
                   "does not exist or is ambiguous", "a local time without a time zone", "is not a whole number"):
        if marker in problem:
            return f"{column}: {marker}"
    return reason if ": " not in reason else f"{column}: {problem}"


def mapping_files(paths: list[Path]) -> list[Path]:
    """Mapping files as named; a folder stands for the ``*.yaml`` files in it, in name order."""
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
            if not found:
                raise MappingError("no mapping file (*.yaml) in this folder", file=path, line=None)
            out += found
        else:
            out.append(path)
    return out


def onboard(folder: Path, mapping_files: list[Path], registry: pd.DataFrame | None = None) -> Onboarded:
    """Map every export the mappings name; nothing is written (see :func:`write_onboarded`).

    ``registry``: the vehicles already in the lake, so that a later export (next quarter's event log) finds its
    vehicles' types and depots without the register being onboarded again; a register onboarded now wins.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError("the exports folder does not exist", file=folder)
    mappings = [load_mapping(f) for f in mapping_files]
    names = [m.mapping.name for m in mappings]
    if len(set(names)) != len(names):
        raise MappingError(f"two mappings are both named {max(names, key=names.count)!r}; landing files are named after them",
                           file=mapping_files[-1], line=None)
    catalogue = merge_catalogue(mappings)
    axes = {m.mapping.fleet.time_axis for m in mappings} - {None}
    if len(axes) > 1:
        raise mappings[0].error(("fleet", "time_axis"), "mappings disagree on the time axis")
    context = Context(registry=registry if registry is not None and len(registry) else None,
                      fault_codes={f.code: f for f in catalogue.fault_codes}, time_axis=next(iter(axes), None))
    jobs = [(m, i) for m in mappings for i, s in enumerate(m.mapping.sources)]
    jobs.sort(key=lambda job: job[0].mapping.sources[job[1]].feed != "vehicles")  # the registry first: others read it
    frames: dict[tuple[str, str], list[pd.DataFrame]] = {}
    reports, held = [], {}
    headers: dict[str, tuple[list[str], set[str]]] = {}
    for located, index in jobs:
        source = located.mapping.sources[index]
        feed = feed_in(catalogue, contracts.FEEDS[source.feed])
        report = SourceReport(located.mapping.name, source.name, source.feed, [])
        held_parts = []
        for path in _files(folder, located, index):
            report.files.append(path.relative_to(folder).as_posix())
            mapped = map_source(read_source(path, source), source, list(feed.columns), located, index, context)
            report.rows_in += len(mapped.rows) + len(mapped.held) + mapped.folded
            report.landed += len(mapped.rows)
            report.folded += mapped.folded
            report.held += len(mapped.held)
            header, used = headers.setdefault(report.files[-1], (mapped.header, set()))
            used |= mapped.used_columns
            frames.setdefault((located.mapping.name, source.feed), []).append(mapped.rows.drop(columns=LINE))
            if len(mapped.held):
                held_parts.append(mapped.held.assign(source_file=report.files[-1]))
            if source.feed == "vehicles":
                context.registry = pd.concat([mapped.rows, context.registry]) if context.registry is not None else mapped.rows
        if held_parts:
            table = pd.concat(held_parts, ignore_index=True)
            held[(located.mapping.name, source.name)] = table
            for reason in table["reason"]:
                kind = _reason_kind(reason)
                report.held_reasons[kind] = report.held_reasons.get(kind, 0) + 1
        reports.append(report)
    feeds: dict[str, dict[str, pd.DataFrame]] = {}
    for (name, feed_name), parts in frames.items():
        feeds.setdefault(name, {})[feed_name] = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    start, days = _period(mappings, feeds)
    horizons = {m.mapping.fleet.horizon_days for m in mappings} - {None}
    horizon = max(horizons) if horizons else 30
    landings = {name: Landing(catalogue, start, days, horizon, feeds.get(name, {})) for name in names}
    if not any(r.files for r in reports):  # a later delivery may hold some exports only, but not none
        located, index = jobs[0] if jobs else (mappings[0], None)
        raise located.error(("sources",) if index is None else ("sources", index, "files"),
                            f"no file in {folder} matches any source's files pattern")
    unmapped = {f: [c for c in header if c not in used] for f, (header, used) in headers.items()}
    known = set(registry["vehicle_number"]) if registry is not None and len(registry) else set()
    result = Onboarded(catalogue, landings, reports, held, {f: c for f, c in unmapped.items() if c}, known)
    from railpm.onboard.profile import profile

    result.profile = profile(result)
    return result


def _period(mappings: list[Located], feeds: dict[str, dict[str, pd.DataFrame]]) -> tuple[date, int]:
    starts = {m.mapping.fleet.start for m in mappings} - {None}
    lengths = {m.mapping.fleet.days for m in mappings} - {None}
    times = [rows[EVENT_TIMES[f]].dropna() for by_feed in feeds.values() for f, rows in by_feed.items() if f in EVENT_TIMES]
    times = [t for t in times if len(t)]
    moments = pd.concat(times) if times else pd.Series([], dtype="datetime64[us, UTC]")
    start = min(starts) if starts else (moments.min().date() if len(moments) else date.today())
    days = max(lengths) if lengths else ((moments.max().date() - start).days + 2 if len(moments) else 1)
    return start, days


def safe_cell(value):
    """A held value as a spreadsheet shows it, never as a formula: the held rows are someone else's text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def write_onboarded(result: Onboarded, settings: Settings) -> dict[str, Path]:
    """Write the landing files, the catalogue, ``railpm.env``, the held rows and the profile."""
    written: dict[str, Path] = {}
    for name, landing in result.landings.items():
        for feed_name, path in write_landing(landing, settings, name).items():
            written[f"{feed_name}/{name}" if feed_name in contracts.FEEDS else feed_name] = path
    folder = settings.data_root / HELD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for report in result.sources:
        table = result.held.get((report.mapping, report.source))
        if table is None:
            continue
        path = folder / "held" / report.mapping / f"{report.source}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        first = ["source_file", LINE, "reason"]
        table = table[first + [c for c in table.columns if c not in first]].rename(columns={LINE: "line"})
        table.map(safe_cell).to_csv(path, index=False)
        report.held_file = str(path)
        written[f"held {report.mapping}/{report.source}"] = path
    result.profile["sources"] = [vars(r) for r in result.sources]
    profile_path = folder / PROFILE_FILE
    profile_path.write_text(json.dumps(result.profile, indent=2, default=str) + "\n", encoding="utf-8")
    written["profile"] = profile_path
    return written
