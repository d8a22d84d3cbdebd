"""One vehicle's year: operation, maintenance, component lives, telemetry, fault log and work orders.

Vectorised over hours; the only Python loops run over days (the maintenance schedule) and over the few
lives of each component.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from railpm import contracts
from railpm.synth import catalogue, profiles, wear
from railpm.synth.profiles import HOURS_PER_DAY, SERVICE_END, SERVICE_START, Vehicle
from railpm.synth.signals import condition_signals
from railpm.synth.wear import SECONDS_PER_HOUR

# Purposes of the per-vehicle random streams: each step draws from its own, so changing one step's
# draws leaves the others' untouched.
_OPERATION, _MAINTENANCE, _COMPONENTS, _SIGNALS, _FAULTS, _ORDERS = range(1, 7)


@dataclass
class VehicleYear:
    telemetry: dict[str, np.ndarray]
    """Telemetry columns except vehicle_number and ts (rows are the hours of the period, in order)."""
    faults: pd.DataFrame
    """vehicle_number, vehicle_type, depot, t_s, fault_code, grade, failure_id (-1 unless it reports a failure)."""
    work_orders: pd.DataFrame
    """vehicle_number, depot, action, component, part_number, maintenance_level, opened_s, closed_s, odometer_km."""
    failures: pd.DataFrame
    """vehicle_number, component, failed_s, grade, announced, failure_id."""
    preventive: int


def simulate_vehicle(
    vehicle: Vehicle,
    start: date,
    days: int,
    seed: int,
    ambient_c: np.ndarray,
    parts: dict[tuple[str, str], list[str]],
) -> VehicleYear:
    hours = days * HOURS_PER_DAY
    age_days = (start - vehicle.commissioning_date).days

    rng = profiles.vehicle_rng(seed, vehicle.index, _OPERATION)
    daily_km = profiles.plan_daily_km(vehicle, start, days, rng)
    inspections = wear.schedule_inspections(vehicle, daily_km, age_days, profiles.vehicle_rng(seed, vehicle.index, _MAINTENANCE))
    operation = profiles.hourly_operation(vehicle, daily_km, inspections.workshop_days, ambient_c, rng)

    rng = profiles.vehicle_rng(seed, vehicle.index, _COMPONENTS)
    histories = {}
    for component in vehicle.components:
        model = wear.WEAR_MODELS[component]
        usage = wear.hourly_usage(model, vehicle.vehicle_type, operation.km, operation.load_pct)
        histories[component] = wear.simulate_component(component, usage, inspections, rng)

    failures = [(c, life) for c, h in histories.items() for life in h.lives if life.ends_in == "failure"]
    failures.sort(key=lambda item: item[1].failed_s)
    order_rng = profiles.vehicle_rng(seed, vehicle.index, _ORDERS)
    repair_closed = []
    for _, life in failures:
        low, high = wear.REPAIR_HOURS[life.grade]
        closed = life.failed_s + int(order_rng.uniform(low, high) * SECONDS_PER_HOUR)
        repair_closed.append(closed)
        profiles.park(operation, life.failed_s // SECONDS_PER_HOUR + 1, min(hours, closed // SECONDS_PER_HOUR + 1))

    start_odometer = age_days * vehicle.daily_km_mean * rng.uniform(0.7, 0.95)
    odometer_before = start_odometer + np.concatenate(([0.0], np.cumsum(operation.km)))
    telemetry = {
        "odometer_km": np.round(odometer_before[1:], 3),
        "speed_kmh": np.round(operation.speed_kmh, 3),
        "load_pct": np.round(operation.load_pct, 3),
        "ambient_temp_c": np.round(np.clip(operation.ambient_c, -49.0, 59.0), 3),
    }
    telemetry.update(condition_signals(vehicle.vehicle_type, operation, histories, profiles.vehicle_rng(seed, vehicle.index, _SIGNALS)))

    fault_frame, failure_ids = _fault_log(vehicle, operation, histories, failures, profiles.vehicle_rng(seed, vehicle.index, _FAULTS))
    orders = _work_orders(vehicle, inspections, histories, failures, repair_closed, odometer_before, parts, order_rng)
    failure_frame = pd.DataFrame(
        {
            "vehicle_number": vehicle.number,
            "component": [c for c, _ in failures],
            "failed_s": np.array([life.failed_s for _, life in failures], dtype=np.int64),
            "grade": [life.grade for _, life in failures],
            "announced": np.array([life.announced for _, life in failures], dtype=bool),
            "failure_id": failure_ids,
        }
    )
    preventive = sum(life.ends_in == "preventive" for h in histories.values() for life in h.lives)
    return VehicleYear(telemetry, fault_frame, orders, failure_frame, preventive)


def _poisson_times(rate_per_hour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Event times (seconds from the start) of an inhomogeneous Poisson process given hourly rates."""
    counts = rng.poisson(rate_per_hour)
    hours = np.repeat(np.arange(len(rate_per_hour)), counts)
    return hours * SECONDS_PER_HOUR + rng.integers(0, SECONDS_PER_HOUR, len(hours))


def _fault_log(vehicle, operation, histories, failures, rng) -> tuple[pd.DataFrame, np.ndarray]:
    hours = len(operation.km)
    times, codes, grades = [], [], []
    moving = np.where(operation.speed_kmh > 0, 1.0, 0.3)
    for component, history in histories.items():
        rate = wear.WEAR_MODELS[component].precursor_per_hour * history.drift * moving
        rate = rate + wear.PRECURSOR_BACKGROUND_PER_DAY / HOURS_PER_DAY
        t = _poisson_times(rate, rng)
        times.append(t)
        codes += [wear.precursor_code(component).code] * len(t)
        grades += ["C"] * len(t)
    hour_of_day = np.arange(hours) % HOURS_PER_DAY
    day_shape = np.where((hour_of_day >= SERVICE_START) & (hour_of_day < SERVICE_END), 1.0, 0.1)
    day_shape = day_shape / day_shape[:HOURS_PER_DAY].sum()
    for code, per_day in wear.NUISANCE_PER_DAY[vehicle.vehicle_type].items():
        t = _poisson_times(per_day * day_shape, rng)
        times.append(t)
        codes += [code] * len(t)
        grades += ["C"] * len(t)
    failure_ids = vehicle.index * 10_000 + np.arange(len(failures), dtype=np.int64)
    times.append(np.array([life.failed_s for _, life in failures], dtype=np.int64))
    codes += [wear.failure_code(c).code for c, _ in failures]
    grades += [life.grade for _, life in failures]
    n_other = sum(len(t) for t in times[:-1])
    frame = pd.DataFrame(
        {
            "vehicle_number": vehicle.number,
            "vehicle_type": vehicle.vehicle_type,
            "depot": vehicle.home_depot,
            "t_s": np.concatenate(times).astype(np.int64),
            "fault_code": codes,
            "grade": grades,
            "failure_id": np.concatenate([np.full(n_other, -1, dtype=np.int64), failure_ids]),
        }
    )
    return frame, failure_ids


WORK_ORDER_DELAY_HOURS = (1, 30)
"""A corrective work order opens this many hours after its failure's fault (bounds, inclusive)."""


def work_order_delay_s(failed_s: int) -> int:
    low, high = WORK_ORDER_DELAY_HOURS
    return (low + (failed_s // SECONDS_PER_HOUR * 7_919) % (high - low + 1)) * SECONDS_PER_HOUR


def _work_orders(vehicle, inspections, histories, failures, repair_closed, odometer_before, parts, rng) -> pd.DataFrame:
    hours = len(odometer_before) - 1

    def odometer(t_s):
        return round(float(odometer_before[min(int(t_s) // SECONDS_PER_HOUR, hours)]), 3)

    rows = []
    for level, opened, closed in zip(inspections.level, inspections.opened_s, inspections.closed_s, strict=True):
        rows.append((None, "inspection", None, int(level), int(opened), int(closed)))
    for component, history in histories.items():
        for life in history.lives:
            if life.ends_in != "preventive":
                continue
            i = life.inspection
            opened = int(inspections.opened_s[i]) + int(rng.integers(5 * 60, 30 * 60))  # same night, same day
            closed = max(opened + 1800, int(inspections.closed_s[i]))
            rows.append((component, "preventive_replacement", None, int(inspections.level[i]), opened, closed))
    for (component, life), closed in zip(failures, repair_closed, strict=True):
        # The work order is opened some hours after the fault stopped the vehicle (the report reaches the depot's
        # system later), often on the next day: the delay the one failure definition (railpm.failures) must see
        # through. Derived from the failure time, not drawn, so the other draws of the fleet stay as they were.
        opened = int(life.failed_s) + work_order_delay_s(int(life.failed_s))
        rows.append((component, "corrective_replacement", None, None, opened, max(int(closed), opened + 1800)))
    frame = pd.DataFrame(rows, columns=["component", "action", "part_number", "maintenance_level", "opened_s", "closed_s"])
    frame["part_number"] = [
        None if c is None else catalogue.choose_part(parts[(vehicle.vehicle_type, c)], rng) for c in frame["component"]
    ]
    frame.insert(0, "vehicle_number", vehicle.number)
    frame.insert(1, "depot", vehicle.home_depot)
    frame["maintenance_level"] = frame["maintenance_level"].astype("Int64")
    frame["odometer_km"] = [odometer(t) for t in frame["opened_s"]]
    return frame


def telemetry_frame(numbers: list[str], telemetry: list[dict[str, np.ndarray]], start: date, days: int) -> pd.DataFrame:
    """One file batch of telemetry rows (vehicle by vehicle, hour by hour) in contract column order."""
    hours = days * HOURS_PER_DAY
    hourly = np.datetime64(start, "us") + np.arange(hours) * np.timedelta64(1, "h")
    data = {
        "vehicle_number": np.repeat(np.array(numbers, dtype=object), hours),
        "ts": pd.DatetimeIndex(np.tile(hourly, len(numbers))).tz_localize("UTC"),
    }
    for column in contracts.TELEMETRY.column_names[2:]:
        data[column] = np.concatenate([t[column] for t in telemetry])
    return pd.DataFrame(data, columns=contracts.TELEMETRY.column_names)
