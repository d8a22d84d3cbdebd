"""The fleet and how it is operated: vehicle registry, climate per depot, hourly operating context.

Everything here is a pure function of its arguments and a numpy ``Generator``: the same seed gives the
same fleet, and each vehicle draws from its own stream so that batching never changes the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from scipy.signal import lfilter

from railpm import contracts

HOURS_PER_DAY = 24
SERVICE_START, SERVICE_END = 5, 23
"""Vehicles run from 05:00 to 22:59 UTC and are parked at night (when inspections happen)."""

TYPE_SHARES = {"EMU": 0.5, "LOCO": 0.2, "WAGON": 0.3}


@dataclass(frozen=True)
class TypeProfile:
    daily_km: tuple[float, float]
    """Range the vehicle's planned mean daily distance is drawn from."""
    weekend_factor: float
    idle_probability: float
    """Chance a vehicle stands still for a whole day (wagons wait for loads)."""
    max_speed_kmh: float
    hourly_shape: tuple[float, ...]
    """Relative distance run in each service hour (05..22): commuter peaks for EMUs, flat for freight."""


_FLAT = (1.0,) * (SERVICE_END - SERVICE_START)
_COMMUTER = (0.6, 1.4, 1.6, 1.3, 0.9, 0.8, 0.8, 0.9, 0.9, 0.9, 1.0, 1.3, 1.6, 1.5, 1.1, 0.8, 0.6, 0.5)

TYPE_PROFILES: dict[str, TypeProfile] = {
    "EMU": TypeProfile((600, 900), 0.75, 0.02, 160, _COMMUTER),
    "LOCO": TypeProfile((500, 1000), 0.85, 0.05, 120, _FLAT),
    "WAGON": TypeProfile((200, 500), 0.6, 0.25, 100, _FLAT),
}


@dataclass(frozen=True)
class Climate:
    mean_c: float
    seasonal_amplitude_c: float
    daily_amplitude_c: float


DEPOT_CLIMATES: dict[str, Climate] = {
    "DEP-NORTH": Climate(5.0, 11.0, 4.0),
    "DEP-SOUTH": Climate(15.0, 9.0, 5.0),
    "DEP-EAST": Climate(9.0, 13.0, 5.0),
    "DEP-WEST": Climate(11.0, 7.0, 3.5),
}


@dataclass(frozen=True)
class Vehicle:
    index: int
    number: str
    vehicle_type: str
    home_depot: str
    commissioning_date: date
    daily_km_mean: float

    @property
    def components(self) -> tuple[str, ...]:
        return contracts.VEHICLE_TYPE_COMPONENTS[self.vehicle_type]


def vehicle_rng(seed: int, vehicle_index: int, purpose: int) -> np.random.Generator:
    """An independent random stream per vehicle and purpose, so results never depend on batching."""
    return np.random.default_rng([seed, vehicle_index, purpose])


def type_counts(n_vehicles: int) -> dict[str, int]:
    counts = {t: int(round(share * n_vehicles)) for t, share in TYPE_SHARES.items()}
    counts["EMU"] = max(0, n_vehicles - counts["LOCO"] - counts["WAGON"])
    return counts


def build_registry(n_vehicles: int, start: date, seed: int) -> list[Vehicle]:
    """Vehicles numbered per type (EMU-0001, LOCO-0001, ...), spread evenly over the depots."""
    rng = np.random.default_rng([seed, 0xF1EE7])
    depots = rng.permutation(np.resize(np.array(contracts.DEPOTS), n_vehicles))
    vehicles: list[Vehicle] = []
    for vehicle_type, count in type_counts(n_vehicles).items():
        low, high = TYPE_PROFILES[vehicle_type].daily_km
        for k in range(count):
            index = len(vehicles)
            age_days = int(rng.uniform(1, 25) * 365.25)
            vehicles.append(
                Vehicle(
                    index=index,
                    number=f"{vehicle_type}-{k + 1:04d}",
                    vehicle_type=vehicle_type,
                    home_depot=str(depots[index]),
                    commissioning_date=start - timedelta(days=age_days),
                    daily_km_mean=round(float(rng.uniform(low, high)), 1),
                )
            )
    return vehicles


def depot_ambient(depot: str, start: date, days: int, seed: int) -> np.ndarray:
    """Hourly ambient temperature at a depot: season + daily cycle + weather that lasts a few days."""
    climate = DEPOT_CLIMATES[depot]
    rng = np.random.default_rng([seed, 0xC11A, contracts.DEPOTS.index(depot)])
    hours = np.arange(days * HOURS_PER_DAY)
    day_of_year = start.timetuple().tm_yday - 1 + hours / HOURS_PER_DAY
    seasonal = climate.mean_c - climate.seasonal_amplitude_c * np.cos(2 * np.pi * (day_of_year - 20) / 365.25)
    daily = climate.daily_amplitude_c * np.cos(2 * np.pi * ((hours % HOURS_PER_DAY) - 14) / HOURS_PER_DAY)
    # Weather: an AR(1) anomaly per 6-hour step (fronts lasting days), interpolated to hours.
    steps = days * 4 + 1
    anomaly = lfilter([1.0], [1.0, -0.93], rng.normal(0, 1.3, steps))
    weather = np.interp(hours / 6.0, np.arange(steps), anomaly)
    return seasonal + daily + weather


@dataclass
class Operation:
    """Hourly operating context of one vehicle (arrays of length days * 24)."""

    km: np.ndarray
    speed_kmh: np.ndarray
    load_pct: np.ndarray
    ambient_c: np.ndarray


def plan_daily_km(vehicle: Vehicle, start: date, days: int, rng: np.random.Generator) -> np.ndarray:
    """Planned distance per day: weekday/weekend pattern, day-to-day variation, idle days."""
    profile = TYPE_PROFILES[vehicle.vehicle_type]
    weekday = (start.weekday() + np.arange(days)) % 7
    factor = np.where(weekday >= 5, profile.weekend_factor, 1.0)
    km = vehicle.daily_km_mean * factor * rng.lognormal(0.0, 0.15, days)
    km[rng.random(days) < profile.idle_probability] = 0.0
    return km


def hourly_operation(
    vehicle: Vehicle,
    daily_km: np.ndarray,
    workshop_days: np.ndarray,
    ambient_c: np.ndarray,
    rng: np.random.Generator,
) -> Operation:
    """Spread each day's distance over service hours and derive speed and payload; parked at night."""
    profile = TYPE_PROFILES[vehicle.vehicle_type]
    days = len(daily_km)
    km_day = np.where(workshop_days, 0.0, daily_km)
    shape = np.zeros(HOURS_PER_DAY)
    shape[SERVICE_START:SERVICE_END] = profile.hourly_shape
    weights = shape[None, :] * rng.gamma(4.0, 0.25, (days, HOURS_PER_DAY))
    weights[rng.random((days, HOURS_PER_DAY)) < 0.12] = 0.0  # layovers and station dwell
    total = weights.sum(axis=1, keepdims=True)
    km = np.divide(km_day[:, None] * weights, total, out=np.zeros_like(weights), where=total > 0)
    km = np.minimum(km, profile.max_speed_kmh * rng.uniform(0.85, 1.0, (days, HOURS_PER_DAY)))
    hour = np.arange(HOURS_PER_DAY)
    service = (hour >= SERVICE_START) & (hour < SERVICE_END)

    if vehicle.vehicle_type == "EMU":
        peak = np.zeros(HOURS_PER_DAY)
        peak[SERVICE_START:SERVICE_END] = np.array(_COMMUTER) / max(_COMMUTER)
        day_factor = rng.lognormal(0.0, 0.12, days)[:, None]
        load = (15 + 85 * peak[None, :]) * day_factor * rng.lognormal(0.0, 0.1, (days, HOURS_PER_DAY))
        load = np.where(service[None, :], load, 0.0)
    elif vehicle.vehicle_type == "LOCO":
        tonnage = rng.uniform(40, 110, days)[:, None]
        load = np.where(service[None, :], tonnage * rng.lognormal(0.0, 0.03, (days, HOURS_PER_DAY)), 0.0)
    else:  # wagons keep their payload overnight; loaded or empty per day
        loaded = rng.random(days) < 0.55
        payload = np.where(loaded, rng.uniform(60, 110, days), rng.uniform(0, 5, days))[:, None]
        load = np.broadcast_to(payload, (days, HOURS_PER_DAY)).copy()
    load[workshop_days] = 0.0

    return Operation(
        km=km.ravel(),
        speed_kmh=km.ravel().copy(),
        load_pct=np.clip(load.ravel(), 0, 150),
        ambient_c=ambient_c + rng.normal(0, 0.4, days * HOURS_PER_DAY),
    )


def park(operation: Operation, start_hour: int, end_hour: int) -> None:
    """Take the vehicle out of service for a repair: no distance, no speed, no payload."""
    operation.km[start_hour:end_hour] = 0.0
    operation.speed_kmh[start_hour:end_hour] = 0.0
    operation.load_pct[start_hour:end_hour] = 0.0
