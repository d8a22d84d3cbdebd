"""Print what onboarding found (the CLI's view of :mod:`railpm.onboard.profile`); data values are escaped for the
terminal because they come from someone else's files."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from railpm.errors import RailpmError
from railpm.onboard.run import Onboarded


def print_onboarded(result: Onboarded, written: dict[str, Path], console: Console) -> None:
    profile = result.profile
    period = profile["period"]
    console.print(f"catalogue [bold]{escape(profile['catalogue'])}[/]: {profile['vehicles_in_registry']} vehicles in the registry, "
                  f"period {period['start']} + {period['days']} record steps of {escape(period['record_step'])}")
    sources = Table(title="exports read")
    for column in ("mapping/source", "feed", "files", "rows in", "landed", "held", "folded"):
        sources.add_column(column, justify="left" if column in ("mapping/source", "feed") else "right")
    for r in result.sources:
        sources.add_row(f"{r.mapping}/{r.source}", r.feed, str(len(r.files)), f"{r.rows_in:,}", f"{r.landed:,}", f"{r.held:,}",
                        f"{r.folded:,}")
    console.print(sources)
    for r in result.sources:
        if not r.files:
            console.print(f"[yellow]no file[/] for {r.mapping}/{r.source} in this folder: nothing landed for it", soft_wrap=True)
    for r in result.sources:
        for reason, n in sorted(r.held_reasons.items(), key=lambda kv: -kv[1]):
            console.print(f"held {r.mapping}/{r.source}: {n:,} {escape(reason)}", soft_wrap=True)
    feeds = Table(title="landing files")
    for column in ("feed/mapping", "rows", "vehicles", "first", "last"):
        feeds.add_column(column, justify="right" if column in ("rows", "vehicles") else "left")
    for key, entry in profile["feeds"].items():
        feeds.add_row(key, f"{entry['rows']:,}", str(entry["vehicles"]), entry.get("first", "")[:16], entry.get("last", "")[:16])
    console.print(feeds)
    for key, entry in profile["feeds"].items():
        for rule, n in entry["rules"].items():
            console.print(f"[yellow]the gate will quarantine[/] {key}: {n:,} rows under {escape(rule)}", soft_wrap=True)
    for key, entry in profile["feeds"].items():
        for column, values in entry["not_in_catalogue"].items():
            shown = ", ".join(f"{escape(v)} ({n})" for v, n in values.items())
            console.print(f"[yellow]not in the catalogue[/] {key} {column}: {shown}", soft_wrap=True)
        for column, found in entry["out_of_range"].items():
            console.print(f"[yellow]outside the declared range[/] {key} {column}: {found['rows']} rows, {found['min_found']:.4g}.."
                          f"{found['max_found']:.4g} against {found['range'][0]}..{found['range'][1]} {escape(str(found['unit'] or ''))}",
                          soft_wrap=True)
    for file, columns in profile["unmapped_columns"].items():
        console.print(f"columns not mapped in {escape(file)}: {escape(', '.join(columns))}", soft_wrap=True)
    quarantined = sum(n for entry in profile["feeds"].values() for n in entry["rules"].values())
    if quarantined:
        console.print(f"[bold yellow]{quarantined:,} rule breaks in the landing files[/]: `railpm ingest` will quarantine those rows "
                      "with these rules; fix the mapping or the catalogue first if they should pass.", soft_wrap=True)
    if not written:
        console.print("dry run: nothing written")
        return
    for what, path in written.items():
        console.print(f"{escape(what)}: {path}", soft_wrap=True)
    console.print("next: export the fleet's settings, then ingest and build the records:", soft_wrap=True)
    console.print(f"set -a; . {written['settings']}; set +a; railpm ingest && railpm records", soft_wrap=True)


def write_draft(folder: Path, target: Path | None, console: Console) -> None:
    from railpm.onboard.draft import draft_mapping

    if not folder.is_dir():
        raise RailpmError(f"{folder} is not a folder of exports")
    text = draft_mapping(folder)
    if target is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    if target.exists():
        raise RailpmError(f"{target} exists; the draft does not overwrite a mapping")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    console.print(f"draft mapping: {target} ({text.count('TODO')} TODOs to fill)")
