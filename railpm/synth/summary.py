"""A printed summary of a generated fleet, shared by ``railpm generate`` and ``railpm demo``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from railpm.synth.fleet import FleetSummary


def _section(table: Table, title: str, counts: dict[str, int]) -> None:
    table.add_section()
    for i, (name, count) in enumerate(counts.items()):
        table.add_row(title if i == 0 else "", name, f"{count:,}")


def fleet_summary_table(summary: FleetSummary) -> Table:
    table = Table(
        title=f"Synthetic fleet: {summary.vehicles} vehicles, {summary.days} days from {summary.start} (seed {summary.seed})",
        show_lines=False,
    )
    table.add_column("what", style="bold")
    table.add_column("")
    table.add_column("count", justify="right")
    _section(table, "vehicles by type", summary.vehicles_by_type)
    _section(table, "vehicles by depot", summary.vehicles_by_depot)
    _section(table, "records by feed", summary.records_by_feed)
    _section(table, "faults by grade", summary.faults_by_grade)
    _section(table, "work orders by action", summary.work_orders_by_action)
    _section(table, "failures by component", summary.failures_by_component)
    _section(
        table,
        "failures",
        {"announced (signals drift)": summary.announced_failures, "silent (no warning)": summary.silent_failures,
         "prevented by inspection": summary.preventive_replacements},
    )
    _section(table, "dirt injected by kind", summary.dirt_by_kind)
    return table


def print_fleet_summary(summary: FleetSummary, console: Console | None = None) -> None:
    """Print the fleet table and where the landing files and the ground truth were written."""
    console = console or Console()
    console.print(fleet_summary_table(summary))
    console.print(f"landing files ({summary.telemetry_format} telemetry): [bold]{summary.landing_dir}[/]")
    console.print(f"ground truth (failures, dirt manifest, summary): [bold]{summary.truth_dir}[/]")
