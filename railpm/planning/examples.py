"""Synthetic planning inputs of any fleet size, shaped like the real feeds, for benchmarks and walkthroughs.

Most components are healthy (failure probability of a few per cent over the horizon); some are degrading,
with a high probability and a remaining life consistent with it (a constant hazard that gives ``p`` over the
horizon has median life ``H ln 2 / -ln(1 - p)``), scattered by a log-normal error like a real model's. Every
vehicle has its routine (level 2) visit somewhere around the window and some a periodic (level 3) one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from railpm import contracts

PART_PROFILE = {
    # component: (unit cost EUR, lead time days, stock category), like the synthetic catalogue's
    "wheelset": (14_000, 120, "planned"),
    "bogie": (85_000, 210, "supplier-held"),
    "brake_unit": (3_200, 28, "emergency"),
    "traction_motor": (48_000, 150, "supplier-held"),
    "pantograph": (9_500, 45, "fault-driven"),
    "hvac": (16_000, 60, "fault-driven"),
    "doors": (2_600, 21, "fault-driven"),
    "air_compressor": (11_000, 75, "emergency"),
    "battery": (4_200, 14, "planned"),
}


@dataclass
class PlanningInputs:
    predictions: pd.DataFrame
    vehicles: pd.DataFrame
    maintenance_due: pd.DataFrame
    parts: pd.DataFrame
    stock: pd.DataFrame


def example_inputs(
    vehicles: int,
    *,
    seed: int = 0,
    scored_day: date = date(2025, 6, 1),
    horizon_days: int = 30,
    degrading_share: float = 0.08,
    model_version: str = "example-1",
) -> PlanningInputs:
    rng = np.random.default_rng(seed)
    numbers = [f"V-{n:04d}" for n in range(1, vehicles + 1)]
    registry = pd.DataFrame(
        {
            "vehicle_number": numbers,
            "vehicle_type": rng.choice(contracts.VEHICLE_TYPES, size=vehicles, p=[0.5, 0.2, 0.3]),
            "home_depot": rng.choice(contracts.DEPOTS, size=vehicles),
            "commissioning_date": [date(2010, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 4000, vehicles)],
            "daily_km_mean": rng.uniform(300, 900, vehicles).round(1),
        }
    )

    rows = []
    for vehicle in registry.itertuples(index=False):
        for component in contracts.VEHICLE_TYPE_COMPONENTS[vehicle.vehicle_type]:
            degrading = rng.random() < degrading_share
            p = rng.beta(2.0, 3.0) if degrading else rng.beta(1.0, 80.0)
            median = horizon_days * np.log(2) / -np.log1p(-min(p, 0.999))
            life = median * np.exp(rng.normal(0.0, 0.4))
            spread = rng.uniform(0.3, 0.8)
            rows.append(
                {
                    "scored_day": scored_day,
                    "vehicle_number": vehicle.vehicle_number,
                    "vehicle_type": vehicle.vehicle_type,
                    "home_depot": vehicle.home_depot,
                    "component": component,
                    "failure_probability": float(p),
                    "risk_band": "high" if p > 0.3 else "medium" if p > 0.05 else "low",
                    "alert": bool(p > 0.3),
                    "remaining_life_days": float(life),
                    "remaining_life_low_days": float(life * np.exp(-1.2816 * spread)),
                    "remaining_life_high_days": float(life * np.exp(1.2816 * spread)),
                    "reasons": "[]",
                    "model_version": model_version,
                }
            )
    predictions = pd.DataFrame(rows, columns=contracts.PREDICTIONS.column_names)

    due_rows = []
    for vehicle in registry.itertuples(index=False):
        # Routine visits every 14 days: each vehicle's next one lands somewhere in the coming fortnight
        # (a few overdue); periodic ones every 90 days.
        due_rows.append((vehicle.vehicle_number, vehicle.home_depot, 2, scored_day + timedelta(days=int(rng.integers(-1, 15)))))
        if rng.random() < 16 / 90:
            due_rows.append((vehicle.vehicle_number, vehicle.home_depot, 3, scored_day + timedelta(days=int(rng.integers(0, 16)))))
    maintenance_due = pd.DataFrame(due_rows, columns=["vehicle_number", "depot", "maintenance_level", "due_day"])

    part_rows, stock_rows = [], []
    for vehicle_type, components in contracts.VEHICLE_TYPE_COMPONENTS.items():
        for component in components:
            cost, lead, category = PART_PROFILE[component]
            part = f"{vehicle_type}-{component[:3].upper()}-101"
            part_rows.append((part, component, vehicle_type, f"{component} for {vehicle_type}", float(cost), lead, category))
            for depot in contracts.DEPOTS:
                stock_rows.append((depot, part, int(rng.integers(0, 4)), scored_day))
    parts = pd.DataFrame(part_rows, columns=contracts.PARTS.column_names)
    stock = pd.DataFrame(stock_rows, columns=contracts.STOCK.column_names)
    return PlanningInputs(predictions, registry, maintenance_due, parts, stock)
