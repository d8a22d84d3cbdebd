"""NASA C-MAPSS FD001 as a railpm fleet: engines are vehicles, one operating cycle is one record step.

Saxena & Goebel (2008), NASA Prognostics Data Repository. Training engines run to failure; test engines stop
some cycles before it (their true remaining cycles are in ``RUL_FD001.txt``, which stays out of the landing
area: it is for scoring). Mapping:

- registry: ``TRAIN-001``.. and ``TEST-001``.., type ``turbofan``, in service from the first cycle;
- telemetry: cycle c of an engine is one reading on record step c (``START`` + c - 1 days, at noon), with the
  14 sensors that vary in FD001; the 7 that are constant there (T2, P2, P15, epr, farB, Nf_dmd, PCNfR_dmd)
  would only trip the stuck-sensor rule. FD001 has one operating condition, so no operating context;
- work orders: a training engine fails at the end of its last cycle, a corrective replacement of its ``hpc``
  (FD001's one fault mode, high-pressure-compressor degradation) opened on the next step;
- no fault log: the data set has none.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from railpm import contracts
from railpm.adapters import Landing
from railpm.errors import BadInputError

START = date(2000, 1, 1)
"""Record step 1 (cycle 1). Any date would do: only step differences mean anything."""
VEHICLE_TYPE = "turbofan"
COMPONENT = "hpc"
DEPOT = "FD001"
SUBSET = "FD001"

_SENSORS = {  # column in the file -> (signal, unit, range, description)
    2: ("t24_lpc_outlet_temp", "degR", (0, 2000), "total temperature at LPC outlet"),
    3: ("t30_hpc_outlet_temp", "degR", (0, 3000), "total temperature at HPC outlet"),
    4: ("t50_lpt_outlet_temp", "degR", (0, 3000), "total temperature at LPT outlet"),
    7: ("p30_hpc_outlet_pressure", "psia", (0, 2000), "total pressure at HPC outlet"),
    8: ("nf_fan_speed", "rpm", (0, 10000), "physical fan speed"),
    9: ("nc_core_speed", "rpm", (0, 20000), "physical core speed"),
    11: ("ps30_hpc_static_pressure", "psia", (0, 200), "static pressure at HPC outlet"),
    12: ("phi_fuel_flow_ratio", "pps/psi", (0, 2000), "ratio of fuel flow to Ps30"),
    13: ("nrf_corrected_fan_speed", "rpm", (0, 10000), "corrected fan speed"),
    14: ("nrc_corrected_core_speed", "rpm", (0, 20000), "corrected core speed"),
    15: ("bpr_bypass_ratio", "-", (0, 50), "bypass ratio"),
    17: ("htbleed_bleed_enthalpy", "-", (0, 2000), "bleed enthalpy"),
    20: ("w31_hpt_coolant_bleed", "lbm/s", (0, 200), "HPT coolant bleed"),
    21: ("w32_lpt_coolant_bleed", "lbm/s", (0, 200), "LPT coolant bleed"),
}
COLUMNS = ["unit", "cycle", "op_setting_1", "op_setting_2", "op_setting_3", *(f"sensor_{i}" for i in range(1, 22))]

CATALOGUE = contracts.Catalogue(
    name="nasa-cmapss-fd001",
    vehicle_types=(VEHICLE_TYPE,),
    depots=(DEPOT,),
    component_subsystem={COMPONENT: "engine"},
    vehicle_type_components={VEHICLE_TYPE: (COMPONENT,)},
    signals=tuple(
        contracts.Signal(name, COMPONENT, unit, low, high, description)
        for name, unit, (low, high), description in _SENSORS.values()
    ),
    fault_codes=(),
    record_step="1 operating cycle",
    operating_context=False,
    stuck_min_readings=12,  # htBleed is read in whole units and repeats for up to 11 cycles in FD001
)


def read_cycles(path: Path) -> pd.DataFrame:
    """One C-MAPSS file (``unit cycle op1..3 s1..s21``, space separated)."""
    frame = pd.read_csv(path, sep=r"\s+", header=None)
    if frame.shape[1] != len(COLUMNS):
        raise BadInputError(f"expected {len(COLUMNS)} columns (unit, cycle, 3 settings, 21 sensors), found {frame.shape[1]}",
                            file=path, rule="cmapss_columns")
    frame.columns = COLUMNS
    return frame


def vehicle_number(split: str, unit: int) -> str:
    return f"{split.upper()}-{unit:03d}"


def step_time(cycle, hour: int = 12) -> pd.Series:
    """Record step ``cycle`` as a timestamp: cycle 1 is ``START``."""
    start = pd.Timestamp(START, tz="UTC")
    return start + pd.to_timedelta(pd.Series(cycle).astype("int64") - 1, unit="D") + pd.Timedelta(hours=hour)


def cmapss_landing(folder: Path, engines: int | None = None) -> Landing:
    """FD001 from ``folder`` (``train_FD001.txt``, ``test_FD001.txt``) as landing feeds; ``engines``: only the
    first n engines of each file (a small slice for tests)."""
    folder = Path(folder)
    parts = []
    for split in ("train", "test"):
        path = folder / f"{split}_{SUBSET}.txt"
        if not path.is_file():
            raise BadInputError(f"C-MAPSS {SUBSET} file missing: {path.name}", file=path, rule="cmapss_files")
        cycles = read_cycles(path)
        if engines is not None:
            cycles = cycles[cycles["unit"] <= engines]
        cycles.insert(0, "vehicle_number", [vehicle_number(split, u) for u in cycles["unit"]])
        cycles["split"] = split
        parts.append(cycles)
    cycles = pd.concat(parts, ignore_index=True)
    telemetry = pd.DataFrame({"vehicle_number": cycles["vehicle_number"], "ts": step_time(cycles["cycle"])})
    for context in ("odometer_km", "speed_kmh", "load_pct", "ambient_temp_c"):
        telemetry[context] = float("nan")
    for column, (signal, *_rest) in _SENSORS.items():
        telemetry[signal] = cycles[f"sensor_{column}"].astype("float64")

    numbers = cycles["vehicle_number"].drop_duplicates()
    vehicles = pd.DataFrame({
        "vehicle_number": numbers, "vehicle_type": VEHICLE_TYPE, "home_depot": DEPOT, "commissioning_date": START,
        "daily_km_mean": float("nan"),
    })
    last = cycles[cycles["split"] == "train"].groupby("vehicle_number", sort=True)["cycle"].max()
    failed_at = step_time(last.to_numpy() + 1, hour=0)  # the end of the last cycle
    work_orders = pd.DataFrame({
        "work_order_id": [f"WO-{v}" for v in last.index], "vehicle_number": last.index, "depot": DEPOT,
        "action": "corrective_replacement", "component": COMPONENT, "part_number": None, "maintenance_level": None,
        "opened_at": failed_at.to_numpy(), "closed_at": failed_at.to_numpy(), "odometer_km": float("nan"),
    })
    days = int(cycles["cycle"].max()) + 2
    return Landing(CATALOGUE, START, days, horizon_days=30,
                   feeds={"vehicles": vehicles, "telemetry": telemetry, "work_orders": work_orders})


def remaining_cycles(folder: Path, engines: int | None = None) -> pd.Series:
    """True remaining cycles after the last cycle of each test engine (``RUL_FD001.txt``), by vehicle number."""
    path = Path(folder) / f"RUL_{SUBSET}.txt"
    rul = pd.read_csv(path, sep=r"\s+", header=None)[0]
    rul.index = [vehicle_number("test", u) for u in range(1, len(rul) + 1)]
    return rul if engines is None else rul.iloc[:engines]


__all__ = ["CATALOGUE", "cmapss_landing", "remaining_cycles", "step_time"]
