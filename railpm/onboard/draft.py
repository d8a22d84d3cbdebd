"""Draft a mapping from a folder of exports: one source per file, its feed and columns guessed from the header
and a sample of values, every guess marked for a person to check and every blank marked ``TODO``."""

from __future__ import annotations

import csv
import difflib
import json
import re
from pathlib import Path

from railpm import contracts

SAMPLE_ROWS = 200
EXPORT_SUFFIXES = (".csv", ".txt", ".tsv")
TODO = "TODO"

SYNONYMS: dict[str, tuple[str, ...]] = {
    "vehicle_number": ("vehicle", "fleet no", "fleet number", "unit", "train", "functional loc", "equipment no", "machine",
                       "machineid", "engine"),
    "vehicle_type": ("class", "type", "model", "series"),
    "home_depot": ("depot", "home depot", "base", "work centre", "workctr"),
    "depot": ("depot", "work centre", "workctr", "plant"),
    "commissioning_date": ("in service", "commissioned", "service since", "commissioning"),
    "daily_km_mean": ("mileage per day", "km per day", "daily"),
    "ts": ("timestamp", "time", "datetime", "date", "reading time", "event time"),
    "event_id": ("event id", "id", "notification", "record"),
    "fault_code": ("event code", "fault code", "error", "errorid", "code", "damage code", "diag"),
    "grade": ("severity", "priority", "grade", "class"),
    "description": ("text", "description", "message"),
    "work_order_id": ("order", "work order", "wo"),
    "action": ("order type", "activity", "action"),
    "component": ("object part", "component", "equipment"),
    "opened_at": ("start", "opened", "malf. start", "created"),
    "closed_at": ("end", "closed", "finish", "malf. end"),
    "odometer_km": ("odometer", "mileage", "counter", "km", "mi"),
    "speed_kmh": ("speed",),
    "load_pct": ("load",),
    "ambient_temp_c": ("outside temp", "ambient"),
}
UNIT_HINTS = {"(mi)": ("miles", "km"), "(mph)": ("mph", "km/h"), "(f)": ("degF", "degC"), "(psi)": ("psi", "bar"),
              "miles": ("miles", "km")}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def sniff(path: Path) -> tuple[str, list[str], list[list[str]], int]:
    """Delimiter, header, sample rows and title lines above the header of a text export."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        head = [handle.readline() for _ in range(SAMPLE_ROWS + 5)]
    head = [line for line in head if line]
    text = "".join(head[:20])
    try:
        delimiter = csv.Sniffer().sniff(text, delimiters=";,\t|").delimiter
    except csv.Error:
        delimiter = "whitespace" if re.search(r"\S\s+\S", head[0] if head else "") else ","
    split = (lambda line: line.split()) if delimiter == "whitespace" else (lambda line: next(csv.reader([line], delimiter=delimiter), []))
    rows = [split(line.rstrip("\r\n")) for line in head]
    widths = [len(r) for r in rows]
    width = max(set(widths), key=widths.count) if widths else 0
    skip = next((i for i, r in enumerate(rows) if len(r) == width and any(c.strip() for c in r)), 0)
    header, sample = rows[skip], [r for r in rows[skip + 1:] if len(r) == width]
    if all(re.fullmatch(r"-?[\d.]+", h.strip() or "x") for h in header):  # no header line: numbers from the first line
        sample, header = [header, *sample], [f"column_{i + 1}" for i in range(width)]
        skip = -1
    return delimiter, [h.strip() for h in header], sample, skip


def _score(feed: contracts.Feed, header: list[str]) -> float:
    names = [_norm(h) for h in header]
    hits = sum(any(any(s in n for s in SYNONYMS.get(c.name, (c.name.replace("_", " "),))) for n in names) for c in feed.columns)
    return hits / len(feed.columns)


def guess_feed(header: list[str]) -> str:
    feeds = [f for f in contracts.FEEDS.values() if f.name in ("vehicles", "telemetry", "faults", "work_orders")]
    return max(feeds, key=lambda f: _score(f, header)).name


def guess_columns(feed: contracts.Feed, header: list[str]) -> dict[str, str]:
    """Contract column -> source column: exact synonyms for every column first, then close spellings."""
    names = {_norm(h): h for h in header}
    found: dict[str, str] = {}
    for column in feed.columns:
        for synonym in SYNONYMS.get(column.name, (column.name.replace("_", " "),)):
            hit = next((h for n, h in names.items() if h not in found.values() and (n == synonym or n.startswith(synonym + " "))), None)
            if hit:
                found[column.name] = hit
                break
    for column in feed.columns:
        if column.name not in found:
            free = [n for n, h in names.items() if h not in found.values()]
            close = difflib.get_close_matches(column.name.replace("_", " "), free, n=1, cutoff=0.75)
            if close:
                found[column.name] = names[close[0]]
    return found


def _time_spec(values: list[str]) -> dict:
    sample = next((v for v in values if v.strip()), "")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})", sample):
        return {}
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?", sample):
        return {"timestamp": {"timezone": TODO}}
    if re.fullmatch(r"\d{2}\.\d{2}\.\d{4}.*", sample):
        return {"timestamp": {"format": "%d.%m.%Y %H:%M:%S" if ":" in sample else "%d.%m.%Y", "timezone": TODO}}
    return {"timestamp": {"format": TODO, "timezone": TODO}}


def _yaml(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def draft_mapping(folder: Path, name: str | None = None) -> str:
    """A mapping for every text export under ``folder``, as YAML text with comments for the person finishing it."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES)
    name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name) or "my-fleet"
    out = [
        f"# Draft mapping for {folder}, written by `railpm onboard --init` from the files' headers and a sample of values.",
        "# Check every guess, fill every TODO, delete the lines you do not need, then:",
        f"#   railpm onboard {folder} --mapping <this file>",
        "mapping: 1",
        f"name: {_yaml(name)}",
        "catalogue:",
        f"  name: {_yaml(name)}",
        "  vehicle_types: {}      # TODO: vehicle type -> the components it is fitted with",
        "  depots: []             # TODO: the depots the data names",
        "  components: {}         # TODO: component -> subsystem",
        "  fault_codes: []        # TODO: {code, subsystem, component, grade (A/B/C), description} per code",
        "sources:",
    ]
    codes: set[str] = set()
    for path in files:
        delimiter, header, sample, skip = sniff(path)
        feed = contracts.FEEDS[guess_feed(header)]
        columns_of = {h: [r[i].strip() for r in sample if i < len(r)] for i, h in enumerate(header)}
        source = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)
        out += [
            f"  - name: {_yaml(source)}",
            f"    files: {_yaml(path.relative_to(folder).as_posix())}",
            f"    feed: {feed.name}            # guessed from the columns; feeds: {', '.join(contracts.FEEDS)}",
        ]
        read = {}
        if delimiter != ",":
            read["delimiter"] = delimiter
        if skip > 0:
            read["skip_lines"] = skip
        if skip < 0:
            read["header"] = False
            read["names"] = header
        if read:
            out.append(f"    read: {_yaml(read)}")
        out.append("    columns:")
        guessed = guess_columns(feed, header)
        taken = set(guessed.values())
        for column in feed.columns:
            found = guessed.get(column.name)
            spec: dict = {"from": found if found else TODO}
            if not found and feed.references_registry and column.name in ("vehicle_type", "depot"):
                spec = {"registry": "vehicle_type" if column.name == "vehicle_type" else "home_depot"}
            elif not found and column.name == "subsystem" and "fault_code" in guessed:
                spec = {"catalogue": "subsystem"}
            if found:
                if column.name == "fault_code":
                    codes |= {v for v in columns_of.get(found, []) if v.strip()}
                values = columns_of.get(found, [])
                if column.dtype == "timestamp":
                    spec.update(_time_spec(values))
                elif column.dtype == "date":
                    sample_value = next((v for v in values if v.strip()), "")
                    spec["date"] = {"format": "%d.%m.%Y" if re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", sample_value) else "%Y-%m-%d"}
                for hint, (source_unit, target_unit) in UNIT_HINTS.items():
                    if hint in found.lower() and column.unit:
                        spec["unit"] = {"from": source_unit, "to": target_unit}
                        break
                if column.allowed is not None and column.dtype == "string" and column.name != "fault_code":
                    seen = sorted({v for v in values if v.strip()})[:12]
                    spec["lookup"] = {v: TODO for v in seen}
                samples = ", ".join(sorted({v for v in values if v.strip()})[:3])
                comment = f"   # sample: {samples}" if samples else ""
            elif "from" not in spec:
                comment = "   # from the registry / catalogue: the export does not say it"
            else:
                comment = ("   # optional: delete the line if the export has none" if column.nullable
                           else "   # required: name its column, or give a constant, concat or row_number")
            out.append(f"      {column.name}: {_yaml(spec)}{comment}")
        for h in header:
            if h not in taken:
                samples = ", ".join(sorted({v for v in columns_of.get(h, []) if v.strip()})[:3])
                out.append(f"      # not mapped: {h} (sample: {samples})")
    if codes:
        at = out.index(next(line for line in out if line.startswith("  fault_codes:")))
        out[at] = "  fault_codes:           # TODO: subsystem, component and grade (A/B/C) of each code seen in the sample"
        out[at + 1:at + 1] = [f"    - {{code: {_yaml(c)}, subsystem: {TODO}, grade: {TODO}, description: \"\"}}" for c in sorted(codes)]
    return "\n".join(out) + "\n"
