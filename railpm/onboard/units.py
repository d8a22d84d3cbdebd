"""Named units and the linear conversions between them: a small explicit table instead of a units library.

Every conversion a fleet's exports need is ``value * factor + offset``; the table states each pair once and
the inverse is derived, so a mapping can say ``unit: {from: miles, to: km}`` or ``{from: km, to: miles}``.
"""

from __future__ import annotations

import pandas as pd

_FORWARD: dict[tuple[str, str], tuple[float, float]] = {
    # length
    ("miles", "km"): (1.609344, 0.0),
    ("m", "km"): (0.001, 0.0),
    ("in", "mm"): (25.4, 0.0),
    ("m", "mm"): (1000.0, 0.0),
    # speed
    ("mph", "km/h"): (1.609344, 0.0),
    ("m/s", "km/h"): (3.6, 0.0),
    # temperature
    ("degF", "degC"): (5 / 9, -32 * 5 / 9),
    ("K", "degC"): (1.0, -273.15),
    ("degR", "K"): (5 / 9, 0.0),
    # pressure
    ("psi", "bar"): (0.0689475729, 0.0),
    ("kPa", "bar"): (0.01, 0.0),
    ("psi", "kPa"): (6.89475729, 0.0),
    ("psia", "psi"): (1.0, 0.0),
    # force, acceleration, electrics, time
    ("lbf", "N"): (4.4482216152605, 0.0),
    ("kN", "N"): (1000.0, 0.0),
    ("g", "m/s2"): (9.80665, 0.0),
    ("mV", "V"): (0.001, 0.0),
    ("kV", "V"): (1000.0, 0.0),
    ("ms", "s"): (0.001, 0.0),
    ("min", "s"): (60.0, 0.0),
    ("h", "s"): (3600.0, 0.0),
    # shares
    ("ratio", "%"): (100.0, 0.0),
}

ALIASES = {
    "mi": "miles", "mile": "miles", "kilometres": "km", "kilometers": "km", "kmh": "km/h", "kph": "km/h",
    "°C": "degC", "C": "degC", "celsius": "degC", "°F": "degF", "F": "degF", "fahrenheit": "degF",
    "percent": "%", "pct": "%", "m/s^2": "m/s2", "sec": "s", "seconds": "s",
}


def _name(unit: str) -> str:
    return ALIASES.get(unit, unit)


def _table() -> dict[tuple[str, str], tuple[float, float]]:
    table = dict(_FORWARD)
    for (a, b), (factor, offset) in _FORWARD.items():
        table[(b, a)] = (1 / factor, -offset / factor)
    return table


CONVERSIONS = _table()
UNITS = tuple(sorted({u for pair in CONVERSIONS for u in pair}))


def conversion(source: str, target: str) -> tuple[float, float] | None:
    """``(factor, offset)`` turning ``source`` into ``target``, or None if the table has no such pair."""
    source, target = _name(source), _name(target)
    if source == target:
        return (1.0, 0.0)
    return CONVERSIONS.get((source, target))


def convert(values: pd.Series, source: str, target: str) -> pd.Series:
    pair = conversion(source, target)
    if pair is None:
        raise KeyError(f"no conversion from {source} to {target}")
    factor, offset = pair
    return values * factor + offset
