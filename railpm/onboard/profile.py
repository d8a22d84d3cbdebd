"""What onboarding found, and which landed rows the gate will quarantine, before anything is ingested.

The gate itself (``railpm ingest``, Great Expectations) needs the fleet's catalogue active when railpm is
imported, so here the same rules are previewed with pandas under the mapping's catalogue, named as the gate
names them (``<column>_allowed``, ``<column>_in_range``, ``<column>_not_null``, ``vehicle_known``,
``key_unique``, ``closed_after_opened``). The gate stays the judge; the preview says what to expect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from railpm import contracts
from railpm.adapters import feed_in
from railpm.onboard.run import EVENT_TIMES

if TYPE_CHECKING:
    from railpm.onboard.run import Onboarded


def allowed_values(catalogue: contracts.Catalogue, feed: str, column: str) -> tuple | None:
    """The allowed set of a contract column under ``catalogue`` (the process's contracts may hold another)."""
    by_column = {
        "vehicle_type": catalogue.vehicle_types, "depot": catalogue.depots, "home_depot": catalogue.depots,
        "fault_code": tuple(f.code for f in catalogue.fault_codes), "subsystem": catalogue.subsystems,
        "component": tuple(catalogue.component_subsystem), "grade": contracts.GRADES,
        "action": contracts.WORK_ORDER_ACTIONS, "maintenance_level": contracts.LEVELS,
        "stock_category": contracts.STOCK_CATEGORIES,
    }
    if feed == "feedback":
        return None
    return by_column.get(column)


def _required(catalogue: contracts.Catalogue, column: contracts.Column) -> bool:
    if column.name in ("odometer_km", "speed_kmh", "load_pct", "ambient_temp_c", "daily_km_mean"):
        return catalogue.operating_context
    return not column.nullable


def gate_preview(catalogue: contracts.Catalogue, feed_name: str, rows: pd.DataFrame, registry: set[str]) -> dict:
    """Rows per gate rule this feed's landed rows will break, and the values that break the allowed sets."""
    base = contracts.FEEDS[feed_name]
    feed = feed_in(catalogue, base)
    signal_columns = {s.column for s in catalogue.signals}
    rules: dict[str, int] = {}
    unknown: dict[str, dict[str, int]] = {}
    out_of_range: dict[str, dict] = {}
    for column in feed.columns:
        if column.name not in rows:
            continue
        values = rows[column.name]
        contract_column = column if column.name in signal_columns else base.column(column.name)
        if _required(catalogue, contract_column) and column.name not in signal_columns:
            n = int(values.isna().sum())
            if n:
                rules[f"{column.name}_not_null"] = n
        allowed = allowed_values(catalogue, feed_name, column.name)
        if allowed is not None:
            bad = values.notna() & ~values.isin(list(allowed))
            if bad.any():
                rules[f"{column.name}_allowed"] = int(bad.sum())
                unknown[column.name] = {str(k): int(v) for k, v in values[bad].value_counts().head(20).items()}
        if contract_column.min is not None or contract_column.max is not None:
            numbers = pd.to_numeric(values, errors="coerce")
            low = contract_column.min if contract_column.min is not None else float("-inf")
            high = contract_column.max if contract_column.max is not None else float("inf")
            bad = numbers.notna() & ((numbers < low) | (numbers > high))
            if bad.any():
                rules[f"{column.name}_in_range"] = int(bad.sum())
                out_of_range[column.name] = {"rows": int(bad.sum()), "range": [contract_column.min, contract_column.max],
                                             "unit": contract_column.unit, "min_found": float(numbers[bad].min()),
                                             "max_found": float(numbers[bad].max())}
    if base.references_registry and "vehicle_number" in rows:
        bad = rows["vehicle_number"].notna() & ~rows["vehicle_number"].isin(registry)
        if bad.any():
            rules["vehicle_known"] = int(bad.sum())
            unknown["vehicle_number"] = {str(k): int(v) for k, v in rows.loc[bad, "vehicle_number"].value_counts().head(20).items()}
    key = [k for k in base.key if k in rows]
    if key and len(rows):
        repeated = rows.duplicated(subset=key, keep=False) & ~rows.duplicated(keep=False)
        if repeated.any():
            rules["key_unique"] = int(repeated.sum())
    if feed_name == "work_orders" and {"opened_at", "closed_at"} <= set(rows):
        bad = rows["closed_at"].notna() & (rows["closed_at"] < rows["opened_at"])
        if bad.any():
            rules["closed_after_opened"] = int(bad.sum())
    return {"rules": rules, "not_in_catalogue": unknown, "out_of_range": out_of_range}


def profile(result: Onboarded) -> dict:
    """Rows per feed, vehicles, period, codes not in the catalogue, columns not mapped, values outside ranges."""
    registry = set(result.lake_vehicles)
    for landing in result.landings.values():
        if "vehicles" in landing.feeds:
            registry |= set(landing.feeds["vehicles"]["vehicle_number"].dropna())
    feeds: dict[str, dict] = {}
    for name, landing in result.landings.items():
        for feed_name, rows in landing.feeds.items():
            entry = {"mapping": name, "feed": feed_name, "rows": len(rows),
                     "vehicles": int(rows["vehicle_number"].nunique()) if "vehicle_number" in rows else 0}
            time_column = EVENT_TIMES.get(feed_name)
            if time_column and len(rows) and rows[time_column].notna().any():
                entry["first"] = rows[time_column].min().isoformat()
                entry["last"] = rows[time_column].max().isoformat()
            entry.update(gate_preview(result.catalogue, feed_name, rows, registry))
            feeds[f"{feed_name}/{name}"] = entry
    landing0 = next(iter(result.landings.values()))
    return {
        "catalogue": result.catalogue.name,
        "period": {"start": landing0.start.isoformat(), "days": landing0.days, "record_step": result.catalogue.record_step},
        "vehicles_in_registry": len(registry),
        "feeds": feeds,
        "unmapped_columns": result.unmapped_columns,
    }
