"""Microsoft's Azure predictive-maintenance sample (100 machines, 2015) as a railpm fleet, without telemetry.

Machines are vehicles of their model (``model1``..``model4``), each fitted with ``comp1``..``comp4``. One record
step is 3 hours, the step of Microsoft's guide: real time t lands at ``ORIGIN + (t - ORIGIN) * 8`` so that each
3-hour period is one record 'day' and a 24-hour horizon is 8 steps. Mapping:

- registry: in service since the data start minus the machine's age in years;
- fault log: each error (``error1``..``error5``) a grade-C fault of the machine, not tied to a component;
- work orders: a failure opens a corrective replacement of its component, closed by the replacement the
  maintenance log records with it; every other replacement in the log is preventive;
- telemetry: the catalogue names the four signals the machines report (voltage, rotation, pressure,
  vibration), but ``PdM_telemetry.csv`` is not available here, so no telemetry is landed and their
  features are null.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from railpm import contracts
from railpm.adapters import Landing
from railpm.errors import BadInputError

ORIGIN = pd.Timestamp("2015-01-01", tz="UTC")
STEP = pd.Timedelta(hours=3)
STEPS_PER_DAY = pd.Timedelta(days=1) // STEP
HORIZON = pd.Timedelta(hours=24)
COMPONENTS = ("comp1", "comp2", "comp3", "comp4")
MODELS = ("model1", "model2", "model3", "model4")
ERRORS = ("error1", "error2", "error3", "error4", "error5")
DEPOT = "AZURE"
FILES = ("PdM_machines.csv", "PdM_errors.csv", "PdM_failures.csv", "PdM_maint.csv")

CATALOGUE = contracts.Catalogue(
    name="azure-pdm",
    vehicle_types=MODELS,
    depots=(DEPOT,),
    component_subsystem={c: "machine" for c in COMPONENTS},
    vehicle_type_components={m: COMPONENTS for m in MODELS},
    signals=(
        contracts.Signal("volt", None, "V", 0, 1000, "voltage, hourly mean"),
        contracts.Signal("rotate", None, "rpm", 0, 2000, "rotation, hourly mean"),
        contracts.Signal("pressure", None, "-", 0, 1000, "pressure, hourly mean"),
        contracts.Signal("vibration", None, "-", 0, 500, "vibration, hourly mean"),
    ),
    fault_codes=tuple(contracts.FaultCode(e, "machine", None, "C", f"machine error {e[-1]}") for e in ERRORS),
    record_step="3 hours",
    operating_context=False,
)


def to_steps(moments) -> pd.Series:
    """Real UTC time -> the record time axis (one 3-hour step per record day)."""
    moments = pd.to_datetime(pd.Series(moments), utc=True)
    return ORIGIN + (moments - ORIGIN) * STEPS_PER_DAY


def from_steps(moments) -> pd.Series:
    """The record time axis -> real UTC time (inverse of :func:`to_steps`)."""
    moments = pd.to_datetime(pd.Series(moments), utc=True)
    return ORIGIN + (moments - ORIGIN) / STEPS_PER_DAY


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    folder = Path(folder)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise BadInputError(f"Azure PdM files missing: {missing}", file=folder, rule="azure_pdm_files")
    tables = {f.removeprefix("PdM_").removesuffix(".csv"): pd.read_csv(folder / f) for f in FILES}
    for name, table in tables.items():
        if "datetime" in table.columns:
            table["datetime"] = pd.to_datetime(table["datetime"], utc=True)
    return tables


def vehicle_number(machine: int) -> str:
    return f"M-{int(machine):03d}"


def work_orders_of(failures: pd.DataFrame, maint: pd.DataFrame) -> pd.DataFrame:
    """Corrective work orders from failures (closed by the replacement logged with them, up to a day later),
    preventive ones from the remaining replacements."""
    failures = failures.rename(columns={"failure": "comp"}).sort_values("datetime")
    maint = maint.sort_values("datetime").assign(replaced_at=lambda m: m["datetime"])
    matched = pd.merge_asof(failures, maint, on="datetime", by=["machineID", "comp"], direction="forward",
                            tolerance=pd.Timedelta(days=1))
    corrective = pd.DataFrame({
        "machineID": matched["machineID"], "component": matched["comp"], "action": "corrective_replacement",
        "opened_at": matched["datetime"], "closed_at": matched["replaced_at"].fillna(matched["datetime"]),
    })
    used = matched.dropna(subset=["replaced_at"])[["machineID", "comp", "replaced_at"]]
    key = ["machineID", "comp", "datetime"]
    rest = maint.merge(used.rename(columns={"replaced_at": "datetime"}), on=key, how="left", indicator=True)
    rest = rest[rest["_merge"] == "left_only"]
    preventive = pd.DataFrame({
        "machineID": rest["machineID"], "component": rest["comp"], "action": "preventive_replacement",
        "opened_at": rest["datetime"], "closed_at": rest["datetime"],
    })
    orders = pd.concat([corrective, preventive], ignore_index=True).sort_values(["opened_at", "machineID"])
    return orders.reset_index(drop=True)


def azure_pdm_landing(folder: Path, machines: int | None = None) -> Landing:
    """The data set in ``folder`` as landing feeds; ``machines``: only machines 1..n (a small slice for tests)."""
    tables = read_tables(folder)
    if machines is not None:
        tables = {name: t[t["machineID"] <= machines] for name, t in tables.items()}
    fleet = tables["machines"]
    model_of = dict(zip(fleet["machineID"], fleet["model"]))
    in_service = ORIGIN - pd.to_timedelta(fleet["age"] * 365, unit="D")
    vehicles = pd.DataFrame({
        "vehicle_number": [vehicle_number(m) for m in fleet["machineID"]], "vehicle_type": fleet["model"].to_numpy(),
        "home_depot": DEPOT, "commissioning_date": to_steps(in_service).dt.date.to_numpy(), "daily_km_mean": float("nan"),
    })
    errors = tables["errors"].sort_values(["datetime", "machineID"]).reset_index(drop=True)
    faults = pd.DataFrame({
        "event_id": [f"E-{i + 1:05d}" for i in range(len(errors))],
        "vehicle_number": [vehicle_number(m) for m in errors["machineID"]],
        "vehicle_type": errors["machineID"].map(model_of).to_numpy(), "depot": DEPOT,
        "ts": to_steps(errors["datetime"]).to_numpy(), "fault_code": errors["errorID"].to_numpy(),
        "subsystem": "machine", "grade": "C", "description": None,
    })
    orders = work_orders_of(tables["failures"], tables["maint"])
    work_orders = pd.DataFrame({
        "work_order_id": [f"WO-{i + 1:05d}" for i in range(len(orders))],
        "vehicle_number": [vehicle_number(m) for m in orders["machineID"]], "depot": DEPOT,
        "action": orders["action"].to_numpy(), "component": orders["component"].to_numpy(),
        "part_number": None, "maintenance_level": None,
        "opened_at": to_steps(orders["opened_at"]).to_numpy(), "closed_at": to_steps(orders["closed_at"]).to_numpy(),
        "odometer_km": float("nan"),
    })
    events = pd.concat([faults["ts"], work_orders["opened_at"]])
    start = events.min().normalize()
    days = (events.max() - start).days + 2
    return Landing(CATALOGUE, start.date(), days, horizon_days=HORIZON // STEP,
                   feeds={"vehicles": vehicles, "faults": faults, "work_orders": work_orders})


def failures(folder: Path, machines: int | None = None) -> pd.DataFrame:
    """The failure log in real time (vehicle_number, component, failed_at): for event-level scoring."""
    table = read_tables(folder)["failures"]
    if machines is not None:
        table = table[table["machineID"] <= machines]
    return pd.DataFrame({"vehicle_number": [vehicle_number(m) for m in table["machineID"]],
                         "component": table["failure"].to_numpy(), "failed_at": table["datetime"].to_numpy()})
