"""Spare parts: a catalogue of part numbers per component and vehicle type, and the stock each depot holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from railpm import contracts
from railpm.synth.profiles import Vehicle


@dataclass(frozen=True)
class PartProfile:
    code: str
    unit_cost_eur: float
    lead_time_days: int
    stock_category: str
    replacements_per_year: float
    """Rough demand per fitted component and year, used to size the starting stock."""


PART_PROFILES: dict[str, PartProfile] = {
    "wheelset": PartProfile("WHS", 14_000, 120, "planned", 0.4),
    "bogie": PartProfile("BOG", 85_000, 210, "supplier-held", 0.25),
    "brake_unit": PartProfile("BRK", 3_200, 28, "emergency", 0.5),
    "traction_motor": PartProfile("TRM", 48_000, 150, "supplier-held", 0.25),
    "pantograph": PartProfile("PAN", 9_500, 45, "fault-driven", 0.6),
    "hvac": PartProfile("HVC", 16_000, 60, "fault-driven", 0.4),
    "doors": PartProfile("DOR", 2_600, 21, "fault-driven", 0.6),
    "air_compressor": PartProfile("CMP", 11_000, 75, "emergency", 0.4),
    "battery": PartProfile("BAT", 4_200, 14, "planned", 0.4),
}
TYPE_COST_FACTOR = {"EMU": 1.0, "LOCO": 1.35, "WAGON": 0.6}
PRIMARY_SHARE = 0.8
"""Share of replacements that use a component's primary part number when an alternative exists."""


def build_parts(seed: int) -> pd.DataFrame:
    """One primary part number per component and vehicle type, sometimes an alternative supplier's too."""
    rng = np.random.default_rng([seed, 0xCA7])
    rows = []
    for vehicle_type, components in contracts.VEHICLE_TYPE_COMPONENTS.items():
        for component in components:
            profile = PART_PROFILES[component]
            alternatives = 2 if rng.random() < 0.5 else 1
            for k in range(alternatives):
                cost = profile.unit_cost_eur * TYPE_COST_FACTOR[vehicle_type] * rng.uniform(0.9, 1.1) * (0.85 if k else 1.0)
                lead = profile.lead_time_days * rng.uniform(0.8, 1.2) * (1.5 if k else 1.0)
                rows.append(
                    {
                        "part_number": f"{vehicle_type}-{profile.code}-{101 + k}",
                        "component": component,
                        "vehicle_type": vehicle_type,
                        "description": f"{component.replace('_', ' ')} for {vehicle_type} ({'alternative' if k else 'primary'} supplier)",
                        "unit_cost_eur": round(cost, 2),
                        "lead_time_days": int(round(lead)),
                        "stock_category": profile.stock_category,
                    }
                )
    return pd.DataFrame(rows, columns=contracts.PARTS.column_names)


def part_numbers(parts: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """(vehicle type, component) -> part numbers, primary first."""
    return {key: group["part_number"].tolist() for key, group in parts.groupby(["vehicle_type", "component"], sort=True)}


def choose_part(options: list[str], rng: np.random.Generator) -> str:
    if len(options) == 1 or rng.random() < PRIMARY_SHARE:
        return options[0]
    return options[1]


def build_stock(parts: pd.DataFrame, vehicles: list[Vehicle], as_of: date, seed: int) -> pd.DataFrame:
    """Stock on hand per depot and part: enough to cover demand over the part's lead time, give or take."""
    rng = np.random.default_rng([seed, 0x570C])
    fleet = pd.DataFrame({"depot": [v.home_depot for v in vehicles], "vehicle_type": [v.vehicle_type for v in vehicles]})
    counts = fleet.value_counts().to_dict()
    rows = []
    for depot in contracts.DEPOTS:
        for part in parts.itertuples(index=False):
            fitted = counts.get((depot, part.vehicle_type), 0)
            share = PRIMARY_SHARE if part.part_number.endswith("-101") else 1 - PRIMARY_SHARE
            demand = fitted * PART_PROFILES[part.component].replacements_per_year * share * part.lead_time_days / 365
            rows.append(
                {"depot": depot, "part_number": part.part_number, "on_hand": int(rng.poisson(1.2 * demand + 0.3)), "as_of": as_of}
            )
    return pd.DataFrame(rows, columns=contracts.STOCK.column_names)
