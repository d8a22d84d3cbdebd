"""A vehicle's dossier in the terminal, as a reliability engineer reads a technical file.

The dossier is one row per vehicle (``records/vehicle_dossier``, built by ``railpm.jobs.vehicle_dossier``);
one vehicle's row is read with pyarrow, filtered on the vehicle number, so showing it needs no Spark.
"""

from __future__ import annotations

import difflib
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from railpm import contracts
from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.layers import VEHICLE_DOSSIER, record_dir

def dossier_path(settings: Settings) -> Path:
    return record_dir(settings, VEHICLE_DOSSIER)


def read_dossier(settings: Settings, vehicle_number: str) -> dict[str, Any]:
    """One vehicle's dossier row; an unknown number fails with the numbers that are there."""
    path = dossier_path(settings)
    if not path.exists():
        raise RailpmError(f"no vehicle dossiers at {path}: build the records first (`railpm records`, or the fleet_records DAG)")
    dataset = ds.dataset(path, format="parquet")
    rows = dataset.to_table(filter=ds.field("vehicle_number") == vehicle_number).to_pylist()
    if rows:
        return rows[0]
    numbers = sorted(dataset.to_table(columns=["vehicle_number"]).column(0).to_pylist())
    same = [n for n in numbers if n.lower() == vehicle_number.strip().lower()]
    if len(same) == 1:
        return read_dossier(settings, same[0])
    hint = difflib.get_close_matches(vehicle_number, numbers, n=3)
    where = (f"the dossier holds {len(numbers)} vehicles, {numbers[0]} to {numbers[-1]}" if numbers
             else "the dossier holds no vehicle")
    raise RailpmError(
        f"vehicle {vehicle_number!r} is not in {path}: {where}"
        + (f"; did you mean {', '.join(hint)}?" if hint else "")
        + "; the registry (lake/vehicles) and the review app's Vehicles page list every number"
    )


# ------------------------------------------------------------------------------------------------
# Formatting
# ------------------------------------------------------------------------------------------------


def _num(value, fmt: str = ",.0f", unit: str = "") -> str:
    return "–" if value is None else f"{value:{fmt}}{unit}"


def _day(value) -> str:
    return "–" if value is None else value.isoformat() if isinstance(value, date) else str(value)


def _identity(row: dict) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    age = row.get("age_days")
    table.add_row("vehicle type / home depot", f"{row['vehicle_type']} / {row['home_depot']}")
    table.add_row("commissioned", f"{_day(row.get('commissioning_date'))}, age "
                  f"{'–' if age is None else f'{age / 365.25:.1f} years ({age:,} days)'}")
    table.add_row("odometer", f"{_num(row.get('odometer_km'), unit=' km')} ({_num(row.get('km_30d'), unit=' km')} in the last 30 days)")
    table.add_row("records", f"from {_day(row.get('first_record_day'))}: {_num(row.get('observed_days'))} days, "
                  f"{_num(row.get('observed_km'), unit=' km')}")
    return table


def _open_work_orders(row: dict):
    orders = row.get("open_work_orders") or []
    if not orders:
        return "[green]no open work order[/]"
    table = Table(title=f"open work orders ({len(orders)})", title_justify="left")
    for column in ("opened", "work order", "action", "component", "level", "depot"):
        table.add_column(column)
    for o in orders:
        table.add_row(str(o["opened_at"])[:16], o["work_order_id"], o["action"], o["component"] or "–",
                      _num(o["maintenance_level"]), o["depot"])
    return table


def _faults(row: dict) -> Table:
    table = Table(title="faults, last 90 days", title_justify="left")
    for grade in contracts.GRADES:
        table.add_column(f"grade {grade}", justify="right")
    table.add_column("all", justify="right")
    table.add_column("A/B in 365 d (worst)", justify="right")
    major, worst = row.get("faults_major_365d"), row.get("faults_major_worst_365d")
    flag = " [bold red]recurring[/]" if row.get("recurring_major_flag") else ""
    table.add_row(*(_num(row.get(f"faults_grade_{g.lower()}_90d")) for g in contracts.GRADES), _num(row.get("faults_90d")),
                  f"{_num(major)} ({_num(worst)}){flag}")
    return table


def _recurring(row: dict):
    history = row.get("recurring_fault_history") or []
    now = row.get("recurring_fault_codes")
    title = f"recurring faults (3+ of a code in 30 days); now: {now or 'none'}"
    if not history:
        return f"{title}: none in the records"
    table = Table(title=title, title_justify="left")
    for column, justify in (("code", "left"), ("description", "left"), ("component", "left"), ("worst 30 d", "right"),
                            ("all", "right"), ("last 30 d", "right"), ("last seen", "left")):
        table.add_column(column, justify=justify)
    for h in history:
        code = contracts.FAULT_CODE_BY_CODE.get(h["fault_code"])
        style = "bold red" if h["last_30d"] >= 3 else ""
        table.add_row(h["fault_code"], code.description if code else "", (code.component or "–") if code else "",
                      str(h["worst_30d"]), str(h["occurrences"]), str(h["last_30d"]), str(h["last_seen"])[:16], style=style)
    return table


def _reliability(row: dict) -> Table:
    fitted = contracts.VEHICLE_TYPE_COMPONENTS.get(row["vehicle_type"], contracts.COMPONENTS)
    failures = row["failures_total"]
    table = Table(title=(f"failures and replacements so far: {failures} failure{'' if failures == 1 else 's'}, MTBF "
                         f"{_num(row.get('mtbf_days'), '.0f', ' days')}, {_num(row.get('mkbf_km'), ',.0f', ' km')} "
                         f"between failures; last failure {_day(row.get('last_failure_day'))}"), title_justify="left")
    for column in ("component", "failures", "replacements", "days since replaced (or new)", "km since replaced (or new)"):
        table.add_column(column, justify="left" if column == "component" else "right")
    for c in fitted:
        table.add_row(c, _num(row.get(f"failures_{c}")), _num(row.get(f"replacements_{c}")),
                      _num(row.get(f"days_since_replacement_{c}")), _num(row.get(f"km_since_replacement_{c}")))
    table.add_row("[bold]all", f"[bold]{row['failures_total']}", f"[bold]{row['replacements_total']}", "", "")
    return table


def _inspections(row: dict) -> Table:
    table = Table(title="next due inspections (by time or distance, whichever first)", title_justify="left")
    for column in ("level", "interval", "last done", "next due", "by", "days left", "km left"):
        table.add_column(column, justify="right" if column in ("days left", "km left") else "left")
    for m in contracts.MAINTENANCE_LEVELS:
        name = f"l{m.level}"
        due, days_left = row.get(f"next_due_{name}_day"), row.get(f"days_to_due_{name}")
        last = row.get(f"last_inspection_{name}_day")
        done = f"{_day(last)} at {_num(row.get(f'last_inspection_{name}_km'), unit=' km')}" if last else "not in the records"
        style = "bold red" if days_left is not None and days_left < 0 else "yellow" if days_left is not None and days_left <= 7 else ""
        table.add_row(f"{m.level} {m.name}", f"{m.interval_days} d / {m.interval_km:,.0f} km", done,
                      _day(due) if due else "unknown", row.get(f"next_due_{name}_by") or "–", _num(days_left),
                      _num(row.get(f"km_to_due_{name}")), style=style)
    return table


def _signals(row: dict) -> Table:
    table = Table(title="condition signals: z-scores against what is normal in the operating regime, worst first "
                        "(red: readings beyond the limit in the last 7 days)", title_justify="left")
    for column in ("signal", "component", "mean z 1 d", "mean z 7 d", "worst |z| 7 d", "worst |z| 30 d",
                   "beyond limit 7 d", "beyond limit 30 d", "mean 7 d (normal)"):
        table.add_column(column, justify="left" if column in ("signal", "component") else "right")

    def worst(s: str, window: int):
        values = [abs(v) for v in (row.get(f"{s}_z_min_{window}d"), row.get(f"{s}_z_max_{window}d")) if v is not None]
        return max(values) if values else None

    signals = contracts.signals_for_type(row["vehicle_type"]) if row["vehicle_type"] in contracts.VEHICLE_TYPES else contracts.SIGNALS
    for s in sorted(signals, key=lambda s: -(worst(s.column, 7) or 0.0)):
        w7 = worst(s.column, 7)
        share7, share30 = row.get(f"{s.column}_z_share_beyond_7d"), row.get(f"{s.column}_z_share_beyond_30d")
        mean, normal = row.get(f"{s.column}_mean_7d"), row.get(f"{s.column}_normal_7d")
        table.add_row(s.column, s.component, _num(row.get(f"{s.column}_z_mean_1d"), "+.2f"),
                      _num(row.get(f"{s.column}_z_mean_7d"), "+.2f"), _num(w7, ".2f"), _num(worst(s.column, 30), ".2f"),
                      _num(share7, ".1%"), _num(share30, ".1%"), f"{_num(mean, '.1f')} ({_num(normal, '.1f')}) {s.unit}",
                      style="bold red" if share7 else "")
    return table


def print_dossier(row: dict[str, Any], console: Console) -> None:
    title = f"[bold]{row['vehicle_number']}[/] dossier as of {_day(row['day'])}"
    console.print(Panel(_identity(row), title=title, title_align="left", expand=False))
    for part in (_open_work_orders(row), _faults(row), _recurring(row), _reliability(row), _inspections(row), _signals(row)):
        console.print(part)
        console.print()
