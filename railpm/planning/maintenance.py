"""The fixed maintenance schedule the predictive plan has to fit around, and the depots' capacity.

Each maintenance level is due by time or by distance, whichever comes first (``contracts.MAINTENANCE_LEVELS``).
A visit of a higher level includes the lower levels' tasks, so it also resets their clocks. The last visit
of each level is read from the work orders in the lake; a level never seen there is only scheduled when the
vehicle was commissioned inside the recorded period (then its clock starts at commissioning), because
otherwise its last visit is simply unknown and inventing one would fill the plan with false overdue visits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from railpm import contracts
from railpm.errors import BadInputError

LEVEL = {m.level: m for m in contracts.MAINTENANCE_LEVELS}

MAINTENANCE_DUE_COLUMNS = ["vehicle_number", "depot", "maintenance_level", "due_day", "last_day", "due_by"]


def covers(level: int, component: str) -> bool:
    """Whether a visit of this maintenance level examines the component."""
    return component in LEVEL[level].inspects


def inspection_level(component: str, planned_levels: Iterable[int]) -> int:
    """The lowest bookable level that examines the component: the cheapest slot an inspection of it needs."""
    for level in sorted(planned_levels):
        if covers(level, component):
            return level
    raise BadInputError(f"no planned maintenance level examines component {component!r}", rule="inspection_level")


@dataclass(frozen=True)
class DepotCapacity:
    """Inspection slots per depot, day and maintenance level: per-depot overrides over a per-level default."""

    per_level: Mapping[int, int]
    per_depot: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    default: int = 0

    def with_overrides(self, overrides: Mapping[str, Mapping[int, int]]) -> DepotCapacity:
        """A what-if: these depots' slots per level replaced (e.g. a depot short of staff), the rest unchanged."""
        merged = {depot: dict(levels) for depot, levels in self.per_depot.items()}
        for depot, levels in overrides.items():
            merged.setdefault(depot, {}).update({int(level): int(n) for level, n in levels.items()})
        return replace(self, per_depot=merged)

    def slots(self, depot: str, level: int) -> int:
        override = self.per_depot.get(depot, {})
        if level in override:
            return int(override[level])
        return int(self.per_level.get(level, self.default))


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BadInputError(f"{what} lacks columns {missing}", rule="columns_present")


def maintenance_due(
    work_orders: pd.DataFrame,
    vehicles: pd.DataFrame,
    *,
    as_of: date,
    window_days: int,
    levels: Iterable[int],
) -> pd.DataFrame:
    """Scheduled visits per vehicle and level falling due by the end of the window (overdue ones included).

    ``work_orders`` needs vehicle_number, action, maintenance_level, opened_at and odometer_km; distance since
    the last visit is estimated from the latest odometer reading on any work order plus the vehicle's planned
    daily distance (``daily_km_mean``) for the days since.
    """
    _require(work_orders, ["vehicle_number", "action", "maintenance_level", "opened_at", "odometer_km"], "work orders")
    _require(vehicles, ["vehicle_number", "home_depot", "commissioning_date", "daily_km_mean"], "vehicle registry")
    window_end = as_of + timedelta(days=window_days)
    orders = work_orders.loc[work_orders["opened_at"].notna()].copy()
    orders["day"] = pd.to_datetime(orders["opened_at"], utc=True).dt.date
    orders = orders.loc[orders["day"] <= as_of]
    recorded_since = orders["day"].min() if len(orders) else None

    latest = (
        orders.sort_values(["vehicle_number", "day", "odometer_km"])
        .groupby("vehicle_number")[["day", "odometer_km"]]
        .last()
        .rename(columns={"day": "odo_day", "odometer_km": "odo_km"})
    )
    inspections = orders.loc[(orders["action"] == "inspection") & orders["maintenance_level"].notna()]
    inspections = inspections.astype({"maintenance_level": "int64"})

    rows = []
    registry = vehicles.set_index("vehicle_number")
    for level in sorted(set(levels)):
        spec = LEVEL[level]
        # A visit of this level or higher resets the level's clock.
        done = (
            inspections.loc[inspections["maintenance_level"] >= level]
            .sort_values(["vehicle_number", "day"])
            .groupby("vehicle_number")[["day", "odometer_km"]]
            .last()
        )
        for vehicle, reg in registry.iterrows():
            daily_km = float(reg["daily_km_mean"]) if pd.notna(reg["daily_km_mean"]) else 0.0
            if vehicle in done.index:
                last_day, last_km = done.at[vehicle, "day"], float(done.at[vehicle, "odometer_km"])
            else:
                commissioned = pd.Timestamp(reg["commissioning_date"]).date()
                if recorded_since is None or commissioned < recorded_since:
                    continue  # last visit unknown: the lake starts after the vehicle entered service
                last_day, last_km = commissioned, 0.0
            by_time = last_day + timedelta(days=spec.interval_days)
            due_day, due_by = by_time, "time"
            if daily_km > 0:
                odo_day, odo_km = (
                    (latest.at[vehicle, "odo_day"], float(latest.at[vehicle, "odo_km"]))
                    if vehicle in latest.index
                    else (last_day, last_km)
                )
                km_left = last_km + spec.interval_km - odo_km
                by_distance = odo_day + timedelta(days=int(np.floor(km_left / daily_km)))
                if by_distance < by_time:
                    due_day, due_by = by_distance, "distance"
            if due_day <= window_end:
                rows.append(
                    {
                        "vehicle_number": vehicle,
                        "depot": reg["home_depot"],
                        "maintenance_level": level,
                        "due_day": due_day,
                        "last_day": last_day,
                        "due_by": due_by,
                    }
                )
    return pd.DataFrame(rows, columns=MAINTENANCE_DUE_COLUMNS)
