"""Data contracts: the one place where every feed's schema is stated.

The synthetic generator writes to these contracts, the Great Expectations suites are derived from them,
the ingest casts to them and the Spark jobs read with them. Nothing else restates a column list, a unit
or an allowed set: import it from here.

Reference data of the railway domain lives here too (vehicle types, components and their subsystems,
the fault-code catalogue, maintenance levels), because allowed values are part of a contract.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from railpm.config import get_settings
from railpm.errors import BadInputError, RailpmError

DType = Literal["string", "float64", "int64", "timestamp", "date", "bool"]

# --------------------------------------------------------------------------------------------------
# Reference data: the domain catalogue
# --------------------------------------------------------------------------------------------------

GRADES = ("A", "B", "C")
"""A: cannot run, must return to the workshop. B: cannot run, can be repaired nearby. C: operation not affected."""

MAJOR_GRADES = ("A", "B")


@dataclass(frozen=True)
class Signal:
    """A condition signal in the telemetry feed and the component whose health it reflects (None: the whole
    vehicle or machine)."""

    column: str
    component: str | None
    unit: str
    min: float
    max: float
    description: str


@dataclass(frozen=True)
class FaultCode:
    code: str
    subsystem: str
    component: str | None
    typical_grade: str
    description: str


@dataclass(frozen=True)
class Catalogue:
    """The domain a fleet is described in: vehicle types, depots, components, condition signals, fault codes,
    and what one step of the records stands for.

    The built-in railway catalogue is the default; another fleet (turbofan engines, factory machines) brings
    its own as a JSON file named by ``Settings.catalogue`` (``RAILPM_CATALOGUE``). The contracts, the GX
    suites, the record columns and the models follow it, so the pipeline runs unchanged on that fleet. It is
    read once, when this module is imported, because it fixes the schemas every process of a run shares.
    """

    name: str
    vehicle_types: tuple[str, ...]
    depots: tuple[str, ...]
    component_subsystem: dict[str, str]
    vehicle_type_components: dict[str, tuple[str, ...]]
    signals: tuple[Signal, ...]
    fault_codes: tuple[FaultCode, ...]
    record_step: str = "1 day"
    """What one record step (a 'day' of the records, of every ``*_days`` feature and of the horizon) stands for,
    e.g. "1 operating cycle" or "3 hours": a fleet on another time axis lands its events one step per day."""
    operating_context: bool = True
    """Telemetry carries odometer, speed, load and ambient temperature; if not, those columns may be null."""
    stuck_min_readings: int = 6
    """A signal repeating one value for this many consecutive readings is a stuck sensor (quantised signals
    of a coarse time axis repeat legitimately for longer)."""

    @property
    def subsystems(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.component_subsystem.values()) | {f.subsystem for f in self.fault_codes}))

    def to_json(self) -> str:
        document = asdict(self)
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "catalogue") -> Catalogue:
        try:
            document = json.loads(text)
            return cls(
                **{
                    **document,
                    "vehicle_types": tuple(document["vehicle_types"]),
                    "depots": tuple(document["depots"]),
                    "vehicle_type_components": {t: tuple(c) for t, c in document["vehicle_type_components"].items()},
                    "signals": tuple(Signal(**s) for s in document["signals"]),
                    "fault_codes": tuple(FaultCode(**f) for f in document["fault_codes"]),
                }
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInputError(f"not a railpm catalogue: {exc}", file=source, rule="catalogue") from exc


_RAILWAY_COMPONENTS = {
    "wheelset": "running_gear",
    "bogie": "running_gear",
    "brake_unit": "brakes",
    "traction_motor": "traction",
    "pantograph": "power_collection",
    "hvac": "comfort",
    "doors": "doors",
    "air_compressor": "pneumatics",
    "battery": "auxiliary_power",
}

RAILWAY = Catalogue(
    name="railway",
    vehicle_types=("EMU", "LOCO", "WAGON"),  # EMU trainset, locomotive, freight wagon
    depots=("DEP-NORTH", "DEP-SOUTH", "DEP-EAST", "DEP-WEST"),
    component_subsystem=_RAILWAY_COMPONENTS,
    vehicle_type_components={
        "EMU": tuple(_RAILWAY_COMPONENTS),
        "LOCO": tuple(c for c in _RAILWAY_COMPONENTS if c != "doors"),
        "WAGON": ("wheelset", "bogie", "brake_unit"),
    },
    signals=(
        Signal("axle_bearing_temp_c", "wheelset", "degC", -50, 150, "axle-box bearing temperature"),
        Signal("wheel_flange_mm", "wheelset", "mm", 20, 40, "wheel flange thickness (worn wheels are thinner)"),
        Signal("bogie_vibration_rms_ms2", "bogie", "m/s2", 0, 50, "bogie frame vibration, RMS acceleration"),
        Signal("brake_release_s", "brake_unit", "s", 0, 60, "time for the brake cylinder to release"),
        Signal("motor_current_imbalance_pct", "traction_motor", "%", 0, 100, "phase current imbalance"),
        Signal("pantograph_contact_force_n", "pantograph", "N", 0, 400, "mean contact force on the overhead line"),
        Signal("hvac_supply_dev_c", "hvac", "degC", -30, 30, "supply air temperature minus set point"),
        Signal("door_close_time_s", "doors", "s", 0, 60, "time for the slowest door to close"),
        Signal("compressor_duty_pct", "air_compressor", "%", 0, 100, "share of the hour the compressor runs"),
        Signal("battery_voltage_v", "battery", "V", 0, 150, "auxiliary battery voltage (110 V nominal)"),
    ),
    fault_codes=(
        # Precursor warnings (grade C) and failures (A/B), one pair per component.
        FaultCode("RG-110", "running_gear", "wheelset", "C", "axle-box temperature high warning"),
        FaultCode("RG-190", "running_gear", "wheelset", "A", "hot axle box / wheelset defect"),
        FaultCode("RG-210", "running_gear", "bogie", "C", "bogie instability warning"),
        FaultCode("RG-290", "running_gear", "bogie", "A", "bogie suspension failure"),
        FaultCode("BR-110", "brakes", "brake_unit", "C", "brake release slow"),
        FaultCode("BR-190", "brakes", "brake_unit", "A", "brake unit failed to release"),
        FaultCode("TR-110", "traction", "traction_motor", "C", "motor current imbalance warning"),
        FaultCode("TR-190", "traction", "traction_motor", "A", "traction motor isolated"),
        FaultCode("PC-110", "power_collection", "pantograph", "C", "contact force out of band"),
        FaultCode("PC-190", "power_collection", "pantograph", "A", "pantograph damaged / lowered"),
        FaultCode("CF-110", "comfort", "hvac", "C", "supply air temperature deviation"),
        FaultCode("CF-190", "comfort", "hvac", "B", "HVAC unit failed"),
        FaultCode("DR-110", "doors", "doors", "C", "door closing slow"),
        FaultCode("DR-190", "doors", "doors", "B", "door out of service"),
        FaultCode("PN-110", "pneumatics", "air_compressor", "C", "compressor duty cycle high"),
        FaultCode("PN-190", "pneumatics", "air_compressor", "B", "main air compressor failed"),
        FaultCode("AP-110", "auxiliary_power", "battery", "C", "battery voltage low"),
        FaultCode("AP-190", "auxiliary_power", "battery", "B", "battery failed"),
        # Nuisance codes: frequent, unrelated to any component's health.
        FaultCode("DR-150", "doors", None, "C", "door obstruction detected (passenger)"),
        FaultCode("CM-301", "communications", None, "C", "passenger information display reset"),
        FaultCode("CM-305", "communications", None, "C", "CCTV recorder fault"),
        FaultCode("CT-410", "control", None, "C", "TCMS communication timeout"),
    ),
)


def load_catalogue(path: Path | None) -> Catalogue:
    """The catalogue in ``path``, or the railway one."""
    if path is None:
        return RAILWAY
    path = Path(path)
    if not path.is_file():
        raise RailpmError(f"catalogue {path} does not exist (RAILPM_CATALOGUE)")
    return Catalogue.from_json(path.read_text(encoding="utf-8"), source=str(path))


CATALOGUE = load_catalogue(get_settings().catalogue)
"""The active catalogue; everything below is read from it."""

VEHICLE_TYPES = CATALOGUE.vehicle_types
DEPOTS = CATALOGUE.depots
COMPONENT_SUBSYSTEM: dict[str, str] = CATALOGUE.component_subsystem
COMPONENTS = tuple(COMPONENT_SUBSYSTEM)
SUBSYSTEMS = CATALOGUE.subsystems
VEHICLE_TYPE_COMPONENTS: dict[str, tuple[str, ...]] = CATALOGUE.vehicle_type_components
SIGNALS: tuple[Signal, ...] = CATALOGUE.signals
SIGNAL_BY_COLUMN = {s.column: s for s in SIGNALS}
FAULT_CODES: tuple[FaultCode, ...] = CATALOGUE.fault_codes
FAULT_CODE_BY_CODE = {f.code: f for f in FAULT_CODES}
RECORD_STEP = CATALOGUE.record_step
STUCK_MIN_READINGS = CATALOGUE.stuck_min_readings


def signals_for_type(vehicle_type: str) -> tuple[Signal, ...]:
    """The condition signals a vehicle of this type reports; the others are null by design."""
    fitted = VEHICLE_TYPE_COMPONENTS[vehicle_type]
    return tuple(s for s in SIGNALS if s.component in fitted)


@dataclass(frozen=True)
class MaintenanceLevel:
    level: int
    name: str
    interval_days: int
    interval_km: float
    inspects: tuple[str, ...]
    """Components examined at this level (worn ones found there are replaced preventively)."""


def _fitted(*components: str) -> tuple[str, ...]:
    return tuple(c for c in components if c in COMPONENTS)


MAINTENANCE_LEVELS: tuple[MaintenanceLevel, ...] = (
    MaintenanceLevel(1, "daily check", 2, 3_000, _fitted("doors", "pantograph")),
    MaintenanceLevel(2, "routine inspection", 14, 20_000, _fitted("doors", "pantograph", "brake_unit", "wheelset")),
    MaintenanceLevel(3, "periodic inspection", 90, 100_000, COMPONENTS),
    MaintenanceLevel(4, "intermediate overhaul", 730, 500_000, COMPONENTS),
    MaintenanceLevel(5, "general overhaul", 2920, 2_000_000, COMPONENTS),
)
"""Levels 1-5, each due by distance or time, whichever comes first."""
LEVELS = tuple(m.level for m in MAINTENANCE_LEVELS)

WORK_ORDER_ACTIONS = ("inspection", "corrective_replacement", "preventive_replacement")
STOCK_CATEGORIES = ("fault-driven", "emergency", "supplier-held", "planned")

# --------------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    dtype: DType
    nullable: bool = False
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | tuple[int, ...] | None = None
    description: str = ""
    free_text: bool = False
    """Words people wrote (a description); every other string column names or codes something and may hold no
    control character."""


@dataclass(frozen=True)
class Feed:
    """A data feed: its columns, its key, its event-time column and the lake table it lands in."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str | None
    description: str
    references_registry: bool = True
    """Its vehicle_number must be known to the vehicle registry."""
    extra: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def code_columns(self) -> list[str]:
        """String columns that name or code something (keys, vehicle and part numbers, codes), not free text."""
        return [c.name for c in self.columns if c.dtype == "string" and not c.free_text]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


_NO_CONTEXT = not CATALOGUE.operating_context
"""A fleet without odometer and operating context (e.g. engines counted in cycles) may leave them null."""
_VEHICLE = Column("vehicle_number", "string", description="fleet number, e.g. EMU-0001")
_DEPOT = Column("depot", "string", allowed=DEPOTS)

VEHICLES = Feed(
    name="vehicles",
    description="Vehicle registry: one row per vehicle in the fleet.",
    key=("vehicle_number",),
    time_column=None,
    references_registry=False,
    columns=(
        _VEHICLE,
        Column("vehicle_type", "string", allowed=VEHICLE_TYPES),
        Column("home_depot", "string", allowed=DEPOTS),
        Column("commissioning_date", "date"),
        Column("daily_km_mean", "float64", nullable=_NO_CONTEXT, unit="km", min=0, max=3_000, description="planned mean daily distance"),
    ),
)

TELEMETRY = Feed(
    name="telemetry",
    description="Hourly sensor readings per vehicle: operating context and condition signals.",
    key=("vehicle_number", "ts"),
    time_column="ts",
    columns=(
        _VEHICLE,
        Column("ts", "timestamp", description="UTC, start of the hour"),
        Column("odometer_km", "float64", nullable=_NO_CONTEXT, unit="km", min=0, max=50_000_000),
        Column("speed_kmh", "float64", nullable=_NO_CONTEXT, unit="km/h", min=0, max=350, description="mean speed over the hour"),
        Column("load_pct", "float64", nullable=_NO_CONTEXT, unit="%", min=0, max=150, description="payload relative to rated"),
        Column("ambient_temp_c", "float64", nullable=_NO_CONTEXT, unit="degC", min=-50, max=60),
        *(
            Column(s.column, "float64", nullable=True, unit=s.unit, min=s.min, max=s.max, description=s.description)
            for s in SIGNALS
        ),
    ),
)

FAULTS = Feed(
    name="faults",
    description="Fault log: one event per fault report from the on-board diagnostics.",
    key=("event_id",),
    time_column="ts",
    columns=(
        Column("event_id", "string"),
        _VEHICLE,
        Column("vehicle_type", "string", allowed=VEHICLE_TYPES),
        _DEPOT,
        Column("ts", "timestamp"),
        Column("fault_code", "string", allowed=tuple(f.code for f in FAULT_CODES)),
        Column("subsystem", "string", allowed=SUBSYSTEMS),
        Column("grade", "string", allowed=GRADES),
        Column("description", "string", nullable=True, free_text=True),
    ),
)

WORK_ORDERS = Feed(
    name="work_orders",
    description="Maintenance work orders: scheduled inspections, corrective and preventive replacements.",
    key=("work_order_id",),
    time_column="opened_at",
    columns=(
        Column("work_order_id", "string"),
        _VEHICLE,
        _DEPOT,
        Column("action", "string", allowed=WORK_ORDER_ACTIONS),
        Column("component", "string", nullable=True, allowed=COMPONENTS, description="null for a whole-vehicle inspection"),
        Column("part_number", "string", nullable=True),
        Column("maintenance_level", "int64", nullable=True, allowed=LEVELS),
        Column("opened_at", "timestamp"),
        Column("closed_at", "timestamp", nullable=True, description="null while the work order is open"),
        Column("odometer_km", "float64", nullable=_NO_CONTEXT, unit="km", min=0, max=50_000_000),
    ),
)

PARTS = Feed(
    name="parts",
    description="Spare-parts catalogue: part numbers per component and vehicle type.",
    key=("part_number",),
    time_column=None,
    references_registry=False,
    columns=(
        Column("part_number", "string"),
        Column("component", "string", allowed=COMPONENTS),
        Column("vehicle_type", "string", allowed=VEHICLE_TYPES),
        Column("description", "string", nullable=True, free_text=True),
        Column("unit_cost_eur", "float64", unit="EUR", min=0, max=5_000_000),
        Column("lead_time_days", "int64", unit="d", min=0, max=730),
        Column("stock_category", "string", allowed=STOCK_CATEGORIES),
    ),
)

STOCK = Feed(
    name="stock",
    description="Spare-parts stock on hand per depot.",
    key=("depot", "part_number"),
    time_column=None,
    references_registry=False,
    columns=(
        _DEPOT,
        Column("part_number", "string"),
        Column("on_hand", "int64", min=0, max=100_000),
        Column("as_of", "date"),
    ),
)

FEEDS: dict[str, Feed] = {f.name: f for f in (VEHICLES, TELEMETRY, FAULTS, WORK_ORDERS, PARTS, STOCK)}

# Ground truth of the synthetic fleet: written beside the landing area, never ingested.
FAILURES = Feed(
    name="failures",
    description="Ground-truth component failures (synthetic fleet only), for scoring predictions.",
    key=("vehicle_number", "component", "failed_at"),
    time_column="failed_at",
    references_registry=False,
    columns=(
        _VEHICLE,
        Column("component", "string", allowed=COMPONENTS),
        Column("failed_at", "timestamp"),
        Column("grade", "string", allowed=MAJOR_GRADES),
        Column("announced", "bool", description="signals drifted before the failure"),
        Column("event_id", "string", description="the fault event that reported it"),
    ),
)

PREDICTIONS = Feed(
    name="predictions",
    description="Scored risk per vehicle and component for one day.",
    key=("scored_day", "vehicle_number", "component"),
    time_column=None,
    references_registry=False,
    columns=(
        Column("scored_day", "date"),
        _VEHICLE,
        Column("vehicle_type", "string", allowed=VEHICLE_TYPES),
        Column("home_depot", "string", allowed=DEPOTS),
        Column("component", "string", allowed=COMPONENTS),
        Column("failure_probability", "float64", min=0, max=1),
        Column("risk_band", "string", allowed=("high", "medium", "low")),
        Column("alert", "bool"),
        Column("remaining_life_days", "float64", min=0),
        Column("remaining_life_low_days", "float64", min=0),
        Column("remaining_life_high_days", "float64", min=0),
        Column("reasons", "string", description="JSON list of {feature, value, contribution}", free_text=True),
        Column("model_version", "string"),
    ),
)

FEEDBACK_DECISIONS = ("confirm", "dismiss")
"""An engineer's judgement of a prediction."""
INSPECTION_FINDINGS = ("component_worn", "no_fault_found", "replaced", "deferred")
"""What an inspection found on the component a prediction pointed at."""
ALERT_STEPS = ("acknowledge", "plan")
"""Steps of an alert's life before it is closed (by a finding or a dismissal): seen, then put into the plan."""
FEEDBACK_KINDS = (*FEEDBACK_DECISIONS, "finding", *ALERT_STEPS)

FEEDBACK = Feed(
    name="feedback",
    description="Engineers' decisions on predictions and inspection findings: the append-only audit trail.",
    key=("feedback_id",),
    time_column=None,
    extra={"layout": "lake/feedback/feedback-<recorded_at>-<feedback_id>.parquet, one file per entry, never rewritten"},
    columns=(
        Column("feedback_id", "string"),
        Column("recorded_at", "timestamp", description="UTC, when the entry was recorded"),
        Column("recorded_by", "string", description="who recorded it"),
        Column("kind", "string", allowed=FEEDBACK_KINDS),
        Column("scored_day", "date", nullable=True, description="the prediction's day; optional for a finding"),
        _VEHICLE,
        Column("component", "string", allowed=COMPONENTS),
        Column("model_version", "string", nullable=True),
        Column("finding", "string", nullable=True, allowed=INSPECTION_FINDINGS, description="only for a finding"),
        Column("inspected_on", "date", nullable=True, description="only for a finding"),
        Column("reason", "string", nullable=True, description="required to dismiss", free_text=True),
        Column("planned_day", "date", nullable=True, description="only for a plan step: the inspection's day"),
        Column("planned_depot", "string", nullable=True, description="only for a plan step: the inspection's depot"),
    ),
)

# --------------------------------------------------------------------------------------------------
# Vehicle records (built by the Spark jobs, read by the models)
# --------------------------------------------------------------------------------------------------
# The full feature list is owned by railpm.jobs.vehicle_days; what other layers rely on is stated here.

RECORD_PARTITION = "month"
"""Day-keyed record tables are hive-partitioned by calendar month (``month=YYYY-MM``), ``day`` stays a column:
a folder per day meant a Parquet file per day with a writer per column (several hundred), which cost more
CPU than computing the records."""

VEHICLE_DAY_KEY = ("vehicle_number", "day")
"""records/vehicle_days: one row per vehicle per day (wide: every signal's and fault family's features)."""

COMPONENT_DAY_KEY = ("vehicle_number", "day", "component")
"""records/component_days: one row per vehicle, day and fitted component: the vehicle-day features plus the
component's own (days/km since its last replacement, its precursor-code counts) and its labels."""

CATEGORICAL_FEATURES = ("vehicle_type", "home_depot", "component")

LABEL_FAILS_WITHIN_HORIZON = "label_fails_within_horizon"
"""True if the component fails within the configured horizon after the day; null when that is unknown
(a preventive replacement or the end of the data comes first: the history is censored)."""
LABEL_DAYS_TO_FAILURE = "label_days_to_failure"
"""Days from the day to the component's next failure; null when censored."""
LABEL_TIME_OBSERVED = "label_time_observed_days"
"""Days from the day to the next failure or, if censored, to the censoring (preventive replacement / data end)."""
LABEL_EVENT_OBSERVED = "label_event_observed"
"""True if the observation ends in a failure, False if censored (survival-style pair with LABEL_TIME_OBSERVED)."""
LABEL_COLUMNS = (LABEL_FAILS_WITHIN_HORIZON, LABEL_DAYS_TO_FAILURE, LABEL_TIME_OBSERVED, LABEL_EVENT_OBSERVED)
NON_FEATURE_PREFIXES = ("label_",)
