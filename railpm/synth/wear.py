"""How components wear out, fail, get inspected and get replaced.

Each fitted component accrues *usage*: load-weighted distance plus a calendar-ageing term, so both km
and age wear it. Each installed instance gets a life drawn from a Weibull distribution in usage units;
its degradation ``d = used / life`` reaches 1 at failure. Scheduled inspections (maintenance levels 1-5,
due by distance or time) may find a worn component (``d`` above a threshold) and replace it before it
fails, which censors that failure. A share of degradations is *silent*: their signals do not drift and
no precursor warnings come, as with real components that break with little warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from railpm import contracts
from railpm.synth.profiles import HOURS_PER_DAY, Vehicle

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class WearModel:
    shape: float
    """Weibull shape: > 1 means wear-out (the older, the likelier to fail)."""
    scale: float
    """Weibull scale in usage units (one unit = one km at half load on an EMU)."""
    km_weight: float
    """How much distance wears it (brakes, wheels) compared with calendar age (batteries, HVAC)."""
    usage_per_day: float
    """Ageing per calendar day, in usage units."""
    load_sensitivity: float
    silent_share: float
    """Share of failures that come without warning (no drift, no precursor codes)."""
    precursor_per_hour: float
    """Rate of the component's grade-C warning when it is about to fail (drift progress 1)."""


WEAR_MODELS: dict[str, WearModel] = {
    "wheelset": WearModel(2.5, 550_000, 1.0, 50, 0.6, 0.20, 0.030),
    "bogie": WearModel(3.0, 650_000, 0.8, 100, 0.5, 0.20, 0.025),
    "brake_unit": WearModel(2.0, 500_000, 1.0, 150, 0.4, 0.20, 0.030),
    "traction_motor": WearModel(3.5, 550_000, 0.7, 100, 0.8, 0.15, 0.025),
    "pantograph": WearModel(1.5, 450_000, 1.0, 50, 0.0, 0.60, 0.030),
    "hvac": WearModel(2.0, 600_000, 0.3, 700, 0.3, 0.25, 0.030),
    "doors": WearModel(1.8, 450_000, 0.5, 300, 0.6, 0.20, 0.035),
    "air_compressor": WearModel(2.2, 600_000, 0.6, 300, 0.3, 0.20, 0.030),
    "battery": WearModel(3.0, 750_000, 0.2, 800, 0.0, 0.30, 0.030),
}

TYPE_WEAR_FACTOR = {"EMU": 1.0, "LOCO": 1.1, "WAGON": 1.8}
"""Freight wagons run heavy: their running gear wears faster per km."""

DRIFT_ONSET = (0.65, 0.8)
"""Degradation at which an announced failure starts to show in the signals (drawn per instance)."""
DRIFT_POWER = 2.5
"""Drift grows slowly after onset and fast just before failure."""
DETECTION_THRESHOLD = 0.8
DETECTION_PROBABILITY = {1: 0.01, 2: 0.05, 3: 0.3, 4: 0.7, 5: 0.9}
"""Chance an inspection of this level finds a component worn beyond the threshold (a daily check is a glance)."""
OTHER_GRADE_SHARE = 0.15
"""Share of failures reported with the other major grade than the code's typical one."""
PRECURSOR_BACKGROUND_PER_DAY = 1 / 400
"""False alarms of a component's warning code, per fitted component and day."""
NUISANCE_PER_DAY: dict[str, dict[str, float]] = {
    "EMU": {"DR-150": 0.35, "CM-301": 0.12, "CM-305": 0.05, "CT-410": 0.08},
    "LOCO": {"CM-305": 0.02, "CT-410": 0.12},
    "WAGON": {"CT-410": 0.03},
}
"""Codes that say nothing about component health, per vehicle and day (mostly in service hours)."""

INSPECTION_HOURS = {1: (0.75, 1.5), 2: (3.0, 5.0), 3: (20.0, 30.0), 4: (72.0, 120.0), 5: (240.0, 384.0)}
"""How long an inspection of each level keeps the vehicle (levels 3-5 take it out of service)."""
REPAIR_HOURS = {"A": (24.0, 72.0), "B": (4.0, 16.0)}
"""A: back to the workshop for one to three days; B: repaired nearby within hours."""


def failure_code(component: str) -> contracts.FaultCode:
    return next(f for f in contracts.FAULT_CODES if f.component == component and f.typical_grade in contracts.MAJOR_GRADES)


def precursor_code(component: str) -> contracts.FaultCode:
    return next(f for f in contracts.FAULT_CODES if f.component == component and f.typical_grade == "C")


# --------------------------------------------------------------------------------------------------
# Scheduled maintenance
# --------------------------------------------------------------------------------------------------


@dataclass
class Inspections:
    """Scheduled inspections of one vehicle, in time order (times in seconds from the start)."""

    level: np.ndarray
    opened_s: np.ndarray
    closed_s: np.ndarray
    workshop_days: np.ndarray
    """Days the vehicle spends in the workshop for level 3-5 inspections (no service)."""

    @property
    def opened_hour(self) -> np.ndarray:
        return self.opened_s // SECONDS_PER_HOUR


def initial_maintenance_state(vehicle: Vehicle, age_days: int, rng: np.random.Generator) -> tuple[list, list]:
    """Days and km since each level was last done: a plausible mid-life state, higher levels reset lower ones."""
    since_days = [0.0] * len(contracts.MAINTENANCE_LEVELS)
    since_km = [0.0] * len(contracts.MAINTENANCE_LEVELS)
    cap_days, cap_km = float(age_days), float("inf")
    for i in reversed(range(len(contracts.MAINTENANCE_LEVELS))):
        level = contracts.MAINTENANCE_LEVELS[i]
        days = min(rng.uniform(0, level.interval_days), cap_days)
        km = min(days * vehicle.daily_km_mean * rng.uniform(0.75, 1.0), cap_km, level.interval_km * rng.uniform(0.5, 0.99))
        since_days[i], since_km[i] = days, km
        cap_days, cap_km = days, km
    return since_days, since_km


def schedule_inspections(vehicle: Vehicle, daily_km: np.ndarray, age_days: int, rng: np.random.Generator) -> Inspections:
    """Walk the days: at night do the highest level that is due (by days or km), which resets the lower ones."""
    levels = contracts.MAINTENANCE_LEVELS
    interval_days = [m.interval_days for m in levels]
    interval_km = [m.interval_km for m in levels]
    since_days, since_km = initial_maintenance_state(vehicle, age_days, rng)
    days = len(daily_km)
    workshop = np.zeros(days, dtype=bool)
    km = daily_km.tolist()
    out_level, out_open, out_close = [], [], []
    busy_until = 0  # first day the vehicle is back in service
    for day in range(days):
        in_workshop = day < busy_until
        driven = 0.0 if in_workshop else km[day]
        for i in range(len(levels)):
            since_days[i] += 1.0
            since_km[i] += driven
        if in_workshop:
            workshop[day] = True
            continue
        due = [i for i in range(len(levels)) if since_days[i] >= interval_days[i] or since_km[i] >= interval_km[i]]
        if not due:
            continue
        top = max(due)
        for i in range(top + 1):
            since_days[i], since_km[i] = 0.0, 0.0
        level = levels[top].level
        opened = day * 86_400 + 23 * SECONDS_PER_HOUR + int(rng.integers(0, 25 * 60))  # once service ends
        low, high = INSPECTION_HOURS[level]
        duration_h = rng.uniform(low, high)
        out_level.append(level)
        out_open.append(opened)
        out_close.append(opened + int(duration_h * SECONDS_PER_HOUR))
        if level >= 3:
            busy_until = day + 1 + int(np.ceil((duration_h - 6.0) / HOURS_PER_DAY))
    return Inspections(
        level=np.array(out_level, dtype=np.int64),
        opened_s=np.array(out_open, dtype=np.int64),
        closed_s=np.array(out_close, dtype=np.int64),
        workshop_days=workshop,
    )


# --------------------------------------------------------------------------------------------------
# Component lives
# --------------------------------------------------------------------------------------------------


@dataclass
class Life:
    """One installed instance of a component, from installation to failure, replacement or the data end."""

    start_hour: int
    end_hour: int
    installed_usage: float
    life: float
    onset: float
    announced: bool
    ends_in: str
    """'failure', 'preventive' or 'end'."""
    failed_s: int | None = None
    grade: str | None = None
    inspection: int | None = None
    """Index of the inspection that found it worn (preventive replacements)."""


@dataclass
class ComponentHistory:
    component: str
    lives: list[Life] = field(default_factory=list)
    degradation: np.ndarray | None = None
    """d = used / life per hour."""
    used: np.ndarray | None = None
    """Usage since installation per hour (wheel flange wear follows it)."""
    drift: np.ndarray | None = None
    """0 until the drift onset of an announced degradation, then rising to 1 at failure."""


def hourly_usage(model: WearModel, vehicle_type: str, km: np.ndarray, load_pct: np.ndarray) -> np.ndarray:
    load_factor = 1.0 + model.load_sensitivity * (load_pct / 100.0 - 0.5)
    return model.km_weight * TYPE_WEAR_FACTOR[vehicle_type] * km * load_factor + model.usage_per_day / HOURS_PER_DAY


def _draw_life(model: WearModel, rng: np.random.Generator) -> tuple[float, float, bool]:
    life = float(model.scale * rng.weibull(model.shape))
    onset = float(rng.uniform(*DRIFT_ONSET))
    announced = bool(rng.random() >= model.silent_share)
    return max(life, 1.0), onset, announced


def simulate_component(
    component: str,
    usage: np.ndarray,
    inspections: Inspections,
    rng: np.random.Generator,
) -> ComponentHistory:
    """Install, wear, and end each life by failure or preventive replacement until the period ends."""
    model = WEAR_MODELS[component]
    hours = len(usage)
    cumulative = np.concatenate(([0.0], np.cumsum(usage)))  # usage at the start of each hour
    covers = np.array([component in contracts.MAINTENANCE_LEVELS[lvl - 1].inspects for lvl in inspections.level], dtype=bool)
    inspection_index = np.flatnonzero(covers)
    inspection_hour = inspections.opened_hour[covers]
    detect_p = np.array([DETECTION_PROBABILITY[int(lvl)] for lvl in inspections.level[covers]])

    history = ComponentHistory(component)
    life, onset, announced = _draw_life(model, rng)
    installed = -rng.uniform(0.0, 0.97) * life  # mixed ages: part of its life already used at the start
    start = 0
    while start < hours:
        fail_usage = installed + life
        fail_hour = int(np.searchsorted(cumulative, fail_usage, side="left")) - 1
        fails = fail_usage <= cumulative[hours]
        end_hour = fail_hour if fails else hours
        # Inspections that see it worn beyond the threshold before it fails; each finds it with some chance.
        threshold_usage = installed + DETECTION_THRESHOLD * life
        window = (inspection_hour >= start) & (inspection_hour < end_hour) & (cumulative[np.minimum(inspection_hour, hours)] >= threshold_usage)
        found = None
        candidates = np.flatnonzero(window)
        if candidates.size:
            hits = candidates[rng.random(candidates.size) < detect_p[candidates]]
            if hits.size:
                found = int(hits[0])
        if found is not None:
            hour = int(inspection_hour[found])
            history.lives.append(Life(start, hour, installed, life, onset, announced, "preventive", inspection=int(inspection_index[found])))
            installed, start = float(cumulative[hour]), hour
        elif fails:
            into_hour = (fail_usage - cumulative[fail_hour]) / max(usage[fail_hour], 1e-9)
            failed_s = int(fail_hour * SECONDS_PER_HOUR + min(into_hour, 0.999) * SECONDS_PER_HOUR)
            code = failure_code(component)
            other = "B" if code.typical_grade == "A" else "A"
            grade = other if rng.random() < OTHER_GRADE_SHARE else code.typical_grade
            history.lives.append(Life(start, fail_hour + 1, installed, life, onset, announced, "failure", failed_s, grade))
            installed, start = float(cumulative[fail_hour + 1]), fail_hour + 1
        else:
            history.lives.append(Life(start, hours, installed, life, onset, announced, "end"))
            break
        life, onset, announced = _draw_life(model, rng)

    degradation = np.empty(hours)
    used = np.empty(hours)
    drift = np.zeros(hours)
    for span in history.lives:
        s, e = span.start_hour, span.end_hour
        if e <= s:
            continue
        used[s:e] = cumulative[s:e] - span.installed_usage
        degradation[s:e] = np.clip(used[s:e] / span.life, 0.0, 1.0)
        if span.announced:
            drift[s:e] = np.clip((degradation[s:e] - span.onset) / (1.0 - span.onset), 0.0, 1.0) ** DRIFT_POWER
    history.degradation, history.used, history.drift = degradation, used, drift
    return history
