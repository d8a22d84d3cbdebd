"""component_days: one record per vehicle, day and fitted component, with the component's labels.

    spark-submit --master <local[*] | spark://host:7077 | yarn | k8s://...> jobs/component_days.py

reads ``records/vehicle_days`` and the lake's work orders, writes ``records/component_days`` (Parquet,
partitioned by month), the table the failure models train on.

Each row carries the vehicle-day features, the component's own under generic names (``comp_*``: days and km
since its last replacement, its warning and failure codes, its condition signal's features), so that one
model serves every component, and the labels of ``railpm.contracts.LABEL_COLUMNS``. Labels come from the
lake's work orders and fault log by the one failure definition (``railpm.failures``): a component's failure is
its next ``corrective_replacement`` work order, dated by the major fault that led to it when that came first, so
no feature of the days before the failure counts the failure's own fault; a ``preventive_replacement`` or the
end of the data censors the observation.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from railpm import contracts
from railpm.config import Settings
from railpm.failures import failures_sql
from railpm.jobs.records_io import read_lake, read_records, record_path, sql, submit, write_records
from railpm.layers import COMPONENT_DAYS, VEHICLE_DAYS
from railpm.jobs.spark import spark_schema
from railpm.jobs.vehicle_days import (
    SIGNAL_STATS,
    WINDOWS,
    code_slug,
    fault_feature,
    signal_feature,
)

PRECURSOR_CODE = {
    f.component: f.code for f in contracts.FAULT_CODES if f.component and f.typical_grade not in contracts.MAJOR_GRADES
}
FAILURE_CODE = {f.component: f.code for f in contracts.FAULT_CODES if f.component and f.typical_grade in contracts.MAJOR_GRADES}
COMPONENT_SIGNALS = {c: [s.column for s in contracts.SIGNALS if s.component == c] for c in contracts.COMPONENTS}
"""A component's condition signals, primary first (only the wheelset has two: bearing temperature, flange)."""
SIGNAL_SLOTS = ("comp_signal", "comp_signal2")


def _case(mapping: dict[str, str | None], none: str = "CAST(NULL AS DOUBLE)") -> str:
    """SQL: pick a column by the row's component (null where the component has none; ``none`` where no
    component of the catalogue has one)."""
    arms = " ".join(f"WHEN '{c}' THEN {expr}" for c, expr in mapping.items() if expr is not None)
    return f"CASE component {arms} END" if arms else none


_NO_COUNT = "CAST(NULL AS BIGINT)"


def component_feature_sql() -> list[str]:
    """The component's own features under names that are the same for every component."""
    out = [
        f"{_case({c: f'days_since_replacement_{c}' for c in contracts.COMPONENTS})} AS comp_days_since_replacement",
        f"{_case({c: f'km_since_replacement_{c}' for c in contracts.COMPONENTS})} AS comp_km_since_replacement",
    ]
    for w in WINDOWS:
        out.append(
            f"{_case({c: fault_feature('code_' + code_slug(code), w) for c, code in PRECURSOR_CODE.items()}, _NO_COUNT)}"
            f" AS comp_precursor_faults_{w}d"
        )
    out.append(
        f"{_case({c: fault_feature('code_' + code_slug(code), 30) for c, code in FAILURE_CODE.items()}, _NO_COUNT)}"
        " AS comp_failure_faults_30d"
    )
    for slot_index, slot in enumerate(SIGNAL_SLOTS):
        for w in WINDOWS:
            for stat in SIGNAL_STATS:
                picks = {
                    c: signal_feature(signals[slot_index], stat, w) if len(signals) > slot_index else None
                    for c, signals in COMPONENT_SIGNALS.items()
                }
                out.append(f"{_case(picks)} AS {slot}_z_{stat}_{w}d")
    return out


def label_events(work_orders: DataFrame, faults: DataFrame | None = None) -> DataFrame:
    """Per vehicle and day: which components failed (``railpm.failures``: a corrective work order, dated by the
    major fault that led to it when that came first) or were replaced preventively that day."""
    if faults is None:
        faults = work_orders.sparkSession.createDataFrame([], spark_schema(contracts.FAULTS))
    failures = sql(failures_sql("{work_orders}", "{faults}"), work_orders=work_orders, faults=faults)
    flags = [
        f"max(failed AND component = '{c}') AS failed_{c}, max(NOT failed AND component = '{c}') AS preventive_{c}"
        for c in contracts.COMPONENTS
    ]
    return sql(
        f"""
        SELECT vehicle_number, day, {", ".join(flags)}
        FROM (SELECT vehicle_number, to_date(failed_at) AS day, component, true AS failed FROM {{failures}}
              UNION ALL
              SELECT vehicle_number, to_date(opened_at) AS day, component, false AS failed FROM {{work_orders}}
              WHERE action = 'preventive_replacement' AND component IS NOT NULL) e
        GROUP BY vehicle_number, day
        """,
        failures=failures,
        work_orders=work_orders,
    )


def next_events(record_days: DataFrame, events: DataFrame) -> DataFrame:
    """Per vehicle-day: the next day (strictly after it) each component fails or is replaced preventively,
    and the vehicle's last record day (the end of the data)."""
    nexts = [
        f"last(CASE WHEN e.{kind}_{c} THEN r.day END, true) OVER later AS next_{kind}_{c}"
        for c in contracts.COMPONENTS for kind in ("failed", "preventive")
    ]
    return sql(
        f"""
        SELECT r.vehicle_number, r.day, {", ".join(nexts)},
          first(r.day) OVER (PARTITION BY r.vehicle_number ORDER BY r.day DESC) AS last_day
        FROM {{record_days}} r LEFT JOIN {{events}} e ON r.vehicle_number = e.vehicle_number AND r.day = e.day
        WINDOW later AS (PARTITION BY r.vehicle_number ORDER BY r.day DESC
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
        """,
        record_days=record_days,
        events=events,
    )


def label_sql(horizon_days: int) -> list[str]:
    """The four labels from the row's next failure, next preventive replacement and the data end."""
    failure = _case({c: f"next_failed_{c}" for c in contracts.COMPONENTS})
    preventive = _case({c: f"next_preventive_{c}" for c in contracts.COMPONENTS})
    observed = f"({failure} IS NOT NULL AND ({preventive} IS NULL OR {failure} <= {preventive}))"
    ends = f"CASE WHEN {observed} THEN {failure} ELSE coalesce({preventive}, last_day) END"
    days_to_failure = f"CASE WHEN {observed} THEN CAST(datediff({failure}, day) AS BIGINT) END"
    time_observed = f"CAST(datediff({ends}, day) AS BIGINT)"
    return [
        f"CASE WHEN {observed} AND {days_to_failure} <= {horizon_days} THEN true "
        f"WHEN {time_observed} >= {horizon_days} THEN false END AS {contracts.LABEL_FAILS_WITHIN_HORIZON}",
        f"{days_to_failure} AS {contracts.LABEL_DAYS_TO_FAILURE}",
        f"{time_observed} AS {contracts.LABEL_TIME_OBSERVED}",
        f"{observed} AS {contracts.LABEL_EVENT_OBSERVED}",
    ]


def explode_components(vehicle_days: DataFrame, nexts: DataFrame) -> DataFrame:
    """One row per fitted component of each vehicle-day, next events attached."""
    fitted = ", ".join(
        f"'{t}', array({', '.join(repr(c) for c in comps)})" for t, comps in contracts.VEHICLE_TYPE_COMPONENTS.items()
    )
    next_columns = [f"n.next_{kind}_{c}" for c in contracts.COMPONENTS for kind in ("failed", "preventive")]
    return sql(
        f"""
        SELECT v.*, {", ".join(next_columns)}, n.last_day,
          explode(element_at(map({fitted}), v.vehicle_type)) AS component
        FROM {{vehicle_days}} v JOIN {{nexts}} n ON v.vehicle_number = n.vehicle_number AND v.day = n.day
        """,
        vehicle_days=vehicle_days,
        nexts=nexts,
    )


def assemble_component_days(rows: DataFrame, vehicle_day_columns: list[str], horizon_days: int) -> DataFrame:
    """Keys, the vehicle-day features, the component's own features and its labels."""
    carried = [f"`{c}`" for c in vehicle_day_columns if c not in contracts.COMPONENT_DAY_KEY]
    return sql(
        f"""
        SELECT vehicle_number, day, component,
          {", ".join(carried)},
          {", ".join(component_feature_sql())},
          {", ".join(label_sql(horizon_days))}
        FROM {{rows}}
        """,
        rows=rows,
    )


def build_component_days(vehicle_days: DataFrame, work_orders: DataFrame, horizon_days: int, faults: DataFrame | None = None) -> DataFrame:
    """The whole transform: vehicle-day records, work orders and faults in, labelled component-days out."""
    nexts = next_events(vehicle_days.select("vehicle_number", "day"), label_events(work_orders, faults))
    return assemble_component_days(explode_components(vehicle_days, nexts), vehicle_days.columns, horizon_days)


def run(session: SparkSession, settings: Settings) -> None:
    vehicle_days = read_records(session, record_path(settings, VEHICLE_DAYS))
    work_orders, faults = read_lake(session, settings, contracts.WORK_ORDERS, contracts.FAULTS, optional=True)
    records = build_component_days(vehicle_days, work_orders, settings.model.horizon_days, faults)
    write_records(records, record_path(settings, COMPONENT_DAYS), sort_by=("vehicle_number", "component"))


def main() -> None:  # pragma: no cover - exercised through spark-submit in the tests
    submit(run, "railpm-component-days")


if __name__ == "__main__":  # pragma: no cover
    main()
