"""fleet_rams: the fleet's reliability, maintainability and availability figures, and its fault summary.

    spark-submit --master <local[*] | spark://host:7077 | yarn | k8s://...> jobs/fleet_rams.py

reads ``records/vehicle_days`` (which vehicle was in service on which day, and how far it ran) and the lake's
work orders, faults and vehicle registry; writes two small tables, each one Parquet file:

``records/fleet_rams``: one row per period (``period_type`` month, quarter or year; ``period_start``), vehicle
type and component, plus ``all`` rows (every component; every vehicle type). Definitions, as a reliability
engineer would check them by hand:

- *exposure*: the vehicle-days in the records within the period (a vehicle counts from commissioning or the
  start of the data to the end of the data), for a component the vehicle-days of the types it is fitted to;
  ``km`` is the distance they ran.
- *failures*: ``railpm.failures`` (``corrective_replacement`` work orders of the component), in the period of
  the failure's day, as the labels date it.
- ``mtbf_days`` = exposure days / failures and ``mkbf_km`` = km / failures (mean km between failures, the
  railway's usual figure); null when no failure happened: the exposure is then only a lower bound.
- ``mttr_hours``: mean time from opening to closing the corrective work orders opened in the period that are
  closed (``repairs``); open ones are not repaired yet.
- ``availability`` = 1 - downtime / (exposure days x 24 h), where downtime is the time corrective work orders
  were open within the period (an open one until the end of the data). For ``all`` components, overlapping
  work orders of one vehicle count once. Scheduled inspections are not downtime here: they are planned around
  service (this is the availability failures cost).

``records/response_clocks``: per month and quarter and depot (and ``all``), the A-grade faults and the on-time
rates of their response clocks (feedback within 2 h, on site within 8 h; ``railpm.rules`` defines both).

``records/fault_summary``: per period and dimension (``grade``, ``subsystem``, ``depot``, ``vehicle_type``,
``fault_code``, ``all``) and category: faults, vehicles affected, share of the period's faults, faults per 1000
vehicle-days (of that depot's or type's vehicles for those dimensions, else of the fleet) and the rank within
the dimension (``rank <= 5`` of ``fault_code`` are the top codes).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from railpm import contracts, rules
from railpm.config import Settings
from railpm.failures import failures_sql
from railpm.jobs.records_io import cut_lineage, read_lake, read_records, record_path, sql, submit, write_records
from railpm.layers import FAULT_SUMMARY, FLEET_RAMS, RESPONSE_CLOCKS, VEHICLE_DAYS
from railpm.jobs.spark import spark_schema

ALL = "all"
"""The component (every component) and vehicle type (the whole fleet) of the rolled-up rows."""
PERIODS: dict[str, tuple[str, int]] = {"month": ("MM", 1), "quarter": ("QUARTER", 3), "year": ("YEAR", 12)}
"""Period type -> (Spark ``trunc`` unit, months)."""
FAULT_DIMENSIONS = ("grade", "subsystem", "depot", "vehicle_type", "fault_code")
TOP_CODES = 5

RAMS_COLUMNS = (
    "period_type", "period_start", "period", "vehicle_type", "component", "mtbf_days", "mttr_hours", "availability",
    "mkbf_km", "vehicles", "vehicle_days", "km", "failures", "repairs", "repair_hours", "downtime_hours",
)
FAULT_SUMMARY_COLUMNS = (
    "period_type", "period_start", "period", "dimension", "category", "description", "faults", "vehicles", "share",
    "faults_per_1000_vehicle_days", "rank",
)


def _cols(names) -> str:
    return ",\n  ".join(names)


def periods_sql(day: str) -> str:
    """SQL: an array of (period_type, period_start), one per period type, for the periods holding ``day``."""
    return "array(" + ", ".join(
        f"named_struct('period_type', '{p}', 'period_start', trunc({day}, '{unit}'))" for p, (unit, _) in PERIODS.items()
    ) + ")"


def period_label_sql(table: str = "") -> str:
    """SQL: the period as people write it: 2025-03, 2025 Q1, 2025."""
    kind, start = f"{table}period_type", f"{table}period_start"
    return (
        f"CASE {kind} WHEN 'month' THEN date_format({start}, 'yyyy-MM') "
        f"WHEN 'quarter' THEN concat(year({start}), ' Q', quarter({start})) ELSE CAST(year({start}) AS STRING) END"
    )


def fitted_components_sql(vehicle_type: str) -> str:
    """SQL: the components fitted to the row's vehicle type, and ``all``."""
    fitted = ", ".join(
        f"'{t}', array({', '.join(repr(c) for c in comps)}, '{ALL}')" for t, comps in contracts.VEHICLE_TYPE_COMPONENTS.items()
    )
    return f"element_at(map({fitted}), {vehicle_type})"


# ------------------------------------------------------------------------------------------------
# Exposure: vehicles in service per period
# ------------------------------------------------------------------------------------------------


def record_spans(vehicle_days: DataFrame) -> DataFrame:
    """Per vehicle: its type and the time its records cover, from the first record day's midnight to the
    midnight after the last (UTC)."""
    return sql(
        """
        SELECT vehicle_number, first(vehicle_type) AS vehicle_type, min(day) AS first_day, max(day) AS last_day,
          CAST(min(day) AS TIMESTAMP) AS start_ts, CAST(date_add(max(day), 1) AS TIMESTAMP) AS end_ts
        FROM {vehicle_days} GROUP BY vehicle_number
        """,
        vehicle_days=vehicle_days,
    )


def exposure(vehicle_days: DataFrame) -> DataFrame:
    """Vehicle-days, vehicles and km per period and vehicle type."""
    return sql(
        f"""
        SELECT period_type, period_start, vehicle_type, count(*) AS vehicle_days,
          count(DISTINCT vehicle_number) AS vehicles, coalesce(sum(km_1d), 0.0) AS km
        FROM {{vehicle_days}} LATERAL VIEW inline({periods_sql("day")}) p
        GROUP BY period_type, period_start, vehicle_type
        """,
        vehicle_days=vehicle_days,
    )


# ------------------------------------------------------------------------------------------------
# Failures, repairs and downtime from the corrective work orders
# ------------------------------------------------------------------------------------------------


def corrective_orders(work_orders: DataFrame, spans: DataFrame, faults: DataFrame | None = None) -> DataFrame:
    """Failures (``railpm.failures``: corrective work orders, dated as the labels date them) within their
    vehicle's records, with the time the vehicle was down for them (from the work order's opening, clipped to the
    records; an open one lasts until the end of the data)."""
    if faults is None:
        faults = work_orders.sparkSession.createDataFrame([], spark_schema(contracts.FAULTS))
    failures = sql(failures_sql("{work_orders}", "{faults}"), work_orders=work_orders, faults=faults)
    return sql(
        """
        SELECT /*+ BROADCAST(s) */ o.vehicle_number, s.vehicle_type, o.component, o.opened_at, o.closed_at,
          to_date(o.failed_at) AS failure_day,
          greatest(o.opened_at, s.start_ts) AS down_from, least(coalesce(o.closed_at, s.end_ts), s.end_ts) AS down_to
        FROM {failures} o JOIN {spans} s ON o.vehicle_number = s.vehicle_number
        WHERE to_date(o.failed_at) BETWEEN s.first_day AND s.last_day
        """,
        failures=failures,
        spans=spans,
    )


def failure_counts(orders: DataFrame) -> DataFrame:
    """Failures, closed repairs and their hours per period, vehicle type and component (and ``all``)."""
    return sql(
        f"""
        SELECT p.period_type, p.period_start, o.vehicle_type, c.component, count(*) AS failures,
          count(o.closed_at) AS repairs,
          coalesce(sum((unix_seconds(o.closed_at) - unix_seconds(o.opened_at)) / 3600.0D), 0.0D) AS repair_hours
        FROM {{orders}} o
        LATERAL VIEW explode(array(o.component, '{ALL}')) c AS component
        LATERAL VIEW inline({periods_sql("o.failure_day")}) p
        GROUP BY p.period_type, p.period_start, o.vehicle_type, c.component
        """,
        orders=orders,
    )


def merged_downtime(orders: DataFrame) -> DataFrame:
    """Down intervals per component, plus per vehicle the union of all its intervals as component ``all``
    (two work orders open at once keep the vehicle down once)."""
    return sql(
        f"""
        WITH down AS (SELECT vehicle_number, vehicle_type, component, down_from, down_to FROM {{orders}}
                      WHERE down_to > down_from),
        ordered AS (
          SELECT *, max(down_to) OVER (PARTITION BY vehicle_number ORDER BY down_from, down_to
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
          FROM down
        ),
        islands AS (
          SELECT *, sum(CASE WHEN reach IS NULL OR down_from > reach THEN 1 ELSE 0 END)
                      OVER (PARTITION BY vehicle_number ORDER BY down_from, down_to ROWS UNBOUNDED PRECEDING) AS island
          FROM ordered
        )
        SELECT vehicle_number, vehicle_type, component, down_from, down_to FROM down
        UNION ALL
        SELECT vehicle_number, vehicle_type, '{ALL}', min(down_from), max(down_to) FROM islands
        GROUP BY vehicle_number, vehicle_type, island
        """,
        orders=orders,
    )


def downtime_by_period(intervals: DataFrame) -> DataFrame:
    """Down hours per period, vehicle type and component: each interval split at the period boundaries."""
    kinds = ", ".join(
        f"named_struct('period_type', '{p}', 'months', {months}, 'starts', "
        f"sequence(trunc(to_date(down_from), '{unit}'), trunc(to_date(down_to), '{unit}'), interval {months} month))"
        for p, (unit, months) in PERIODS.items()
    )
    return sql(
        f"""
        SELECT period_type, period_start, vehicle_type, component, sum(hours) AS downtime_hours
        FROM (
          SELECT i.vehicle_type, i.component, k.period_type, period_start,
            (unix_seconds(least(i.down_to, CAST(add_months(period_start, k.months) AS TIMESTAMP)))
             - unix_seconds(greatest(i.down_from, CAST(period_start AS TIMESTAMP)))) / 3600.0D AS hours
          FROM {{intervals}} i
          LATERAL VIEW inline(array({kinds})) k
          LATERAL VIEW explode(k.starts) s AS period_start
        )
        WHERE hours > 0
        GROUP BY period_type, period_start, vehicle_type, component
        """,
        intervals=intervals,
    )


# ------------------------------------------------------------------------------------------------
# The RAMS table
# ------------------------------------------------------------------------------------------------


def assemble_rams(exposed: DataFrame, failures: DataFrame, downtime: DataFrame) -> DataFrame:
    """Per period, vehicle type (and the fleet) and component (and all): exposure, counts and the figures."""
    keys = ("period_type", "period_start", "vehicle_type", "component")
    on = " AND ".join(f"b.{k} = {{t}}.{k}" for k in keys)
    summed = ("vehicles", "vehicle_days", "km", "failures", "repairs", "repair_hours", "downtime_hours")
    return sql(
        f"""
        WITH base AS (
          SELECT e.*, explode({fitted_components_sql("e.vehicle_type")}) AS component FROM {{exposed}} e
        ),
        per_type AS (
          SELECT b.period_type, b.period_start, b.vehicle_type, b.component, b.vehicles, b.vehicle_days, b.km,
            coalesce(f.failures, 0) AS failures, coalesce(f.repairs, 0) AS repairs,
            coalesce(f.repair_hours, 0.0D) AS repair_hours, coalesce(d.downtime_hours, 0.0D) AS downtime_hours
          FROM base b
          LEFT JOIN {{failures}} f ON {on.format(t="f")}
          LEFT JOIN {{downtime}} d ON {on.format(t="d")}
        ),
        rows AS (
          SELECT * FROM per_type
          UNION ALL
          SELECT period_type, period_start, '{ALL}', component, {", ".join(f"sum({c})" for c in summed)}
          FROM per_type GROUP BY period_type, period_start, component
        )
        SELECT period_type, period_start, {period_label_sql()} AS period, vehicle_type, component,
          CASE WHEN failures > 0 THEN vehicle_days / failures END AS mtbf_days,
          CASE WHEN repairs > 0 THEN repair_hours / repairs END AS mttr_hours,
          1.0D - downtime_hours / (vehicle_days * 24.0D) AS availability,
          CASE WHEN failures > 0 THEN km / failures END AS mkbf_km,
          CAST(vehicles AS BIGINT) AS vehicles, CAST(vehicle_days AS BIGINT) AS vehicle_days, km,
          CAST(failures AS BIGINT) AS failures, CAST(repairs AS BIGINT) AS repairs, repair_hours, downtime_hours
        FROM rows
        """,
        exposed=exposed,
        failures=failures,
        downtime=downtime,
    ).select(*RAMS_COLUMNS)


def build_fleet_rams(vehicle_days: DataFrame, work_orders: DataFrame, faults: DataFrame | None = None) -> DataFrame:
    """The whole RAMS transform: vehicle-day records, work orders and faults in, figures per period, type and
    component out."""
    spans = cut_lineage(record_spans(vehicle_days))
    orders = cut_lineage(corrective_orders(work_orders, spans, faults))
    return assemble_rams(exposure(vehicle_days), failure_counts(orders), downtime_by_period(merged_downtime(orders)))


# ------------------------------------------------------------------------------------------------
# The fault summary
# ------------------------------------------------------------------------------------------------


def _dimensions_sql(columns: dict[str, str]) -> str:
    """SQL: an array of (dimension, category), one per dimension, for a row."""
    return "array(" + ", ".join(
        f"named_struct('dimension', '{d}', 'category', CAST({c} AS STRING))" for d, c in columns.items()
    ) + ")"


def build_fault_summary(vehicle_days: DataFrame, faults: DataFrame) -> DataFrame:
    """Faults per period, dimension and category, with their share, rate and rank."""
    descriptions = ", ".join(f"'{f.code}', '{f.description.replace(chr(39), '')}'" for f in contracts.FAULT_CODES)
    fault_dims = _dimensions_sql({**{d: d for d in FAULT_DIMENSIONS}, ALL: f"'{ALL}'"})
    exposure_dims = _dimensions_sql({"depot": "home_depot", "vehicle_type": "vehicle_type", ALL: f"'{ALL}'"})
    return sql(
        f"""
        WITH counts AS (
          SELECT period_type, period_start, dimension, category, count(*) AS faults,
            count(DISTINCT vehicle_number) AS vehicles
          FROM {{faults}}
          LATERAL VIEW inline({periods_sql("to_date(ts)")}) p
          LATERAL VIEW inline({fault_dims}) d
          GROUP BY period_type, period_start, dimension, category
        ),
        exposed AS (
          SELECT period_type, period_start, dimension, category, count(*) AS vehicle_days
          FROM {{vehicle_days}}
          LATERAL VIEW inline({periods_sql("day")}) p
          LATERAL VIEW inline({exposure_dims}) d
          GROUP BY period_type, period_start, dimension, category
        ),
        totals AS (SELECT period_type, period_start, faults AS period_faults FROM counts WHERE dimension = '{ALL}')
        SELECT c.period_type, c.period_start, {period_label_sql("c.")} AS period,
          c.dimension, c.category,
          CASE WHEN c.dimension = 'fault_code' THEN element_at(map({descriptions}), c.category) END AS description,
          c.faults, c.vehicles, c.faults / t.period_faults AS share,
          1000.0D * c.faults / e.vehicle_days AS faults_per_1000_vehicle_days,
          row_number() OVER (PARTITION BY c.period_type, c.period_start, c.dimension ORDER BY c.faults DESC, c.category)
            AS rank
        FROM counts c
        JOIN totals t ON c.period_type = t.period_type AND c.period_start = t.period_start
        LEFT JOIN exposed e ON c.period_type = e.period_type AND c.period_start = e.period_start
          AND e.dimension = CASE WHEN c.dimension IN ('depot', 'vehicle_type') THEN c.dimension ELSE '{ALL}' END
          AND e.category = CASE WHEN c.dimension IN ('depot', 'vehicle_type') THEN c.category ELSE '{ALL}' END
        """,
        faults=faults,
        vehicle_days=vehicle_days,
    ).select(*FAULT_SUMMARY_COLUMNS)


RESPONSE_COLUMNS = ("period_type", "period_start", "period", "depot", "a_faults", "answered", "feedback_on_time",
                    "on_site_on_time", "feedback_hours_median", "on_site_hours_median", "on_site_measured_by")


def build_response_clocks(faults: DataFrame, work_orders: DataFrame) -> DataFrame:
    """On-time rates of the A-grade response clocks (``railpm.rules``) per month and quarter and depot, plus ``all``
    depots: the service summaries' figure."""
    on_site = rules.on_site_column(work_orders.columns)
    orders = work_orders.selectExpr("work_order_id", "vehicle_number", "action", "opened_at", f"{on_site} AS on_site_event")
    clocks = sql(rules.response_clocks_sql("{faults}", "{orders}", "unix_micros"), faults=faults, orders=orders)
    kinds = ", ".join(f"named_struct('period_type', '{p}', 'period_start', trunc(to_date(ts), '{PERIODS[p][0]}'))"
                      for p in ("month", "quarter"))
    return sql(
        f"""
        SELECT p.period_type, p.period_start, {period_label_sql('p.')} AS period, d AS depot,
          count(*) AS a_faults, count(work_order_id) AS answered,
          avg(CAST(feedback_on_time AS DOUBLE)) AS feedback_on_time, avg(CAST(on_site_on_time AS DOUBLE)) AS on_site_on_time,
          percentile(feedback_hours, 0.5) AS feedback_hours_median, percentile(on_site_hours, 0.5) AS on_site_hours_median,
          '{on_site}' AS on_site_measured_by
        FROM {{clocks}} LATERAL VIEW explode(array({kinds})) AS p LATERAL VIEW explode(array(depot, '{ALL}')) AS d
        GROUP BY p.period_type, p.period_start, d
        """,
        clocks=clocks,
    ).select(*RESPONSE_COLUMNS)


def run(session: SparkSession, settings: Settings) -> None:
    vehicle_days = read_records(session, record_path(settings, VEHICLE_DAYS)).select(
        "vehicle_number", "day", "vehicle_type", "home_depot", "km_1d"
    )
    work_orders, faults = read_lake(session, settings, contracts.WORK_ORDERS, contracts.FAULTS, optional=True)
    keys = ("period_type", "period_start", "vehicle_type", "component")
    write_records(build_fleet_rams(vehicle_days, work_orders, faults), record_path(settings, FLEET_RAMS), partition_by=None, sort_by=keys)
    write_records(build_fault_summary(vehicle_days, faults), record_path(settings, FAULT_SUMMARY), partition_by=None,
                  sort_by=("period_type", "period_start", "dimension", "rank"))
    write_records(build_response_clocks(faults, work_orders), record_path(settings, RESPONSE_CLOCKS), partition_by=None,
                  sort_by=("period_type", "period_start", "depot"))


def main() -> None:  # pragma: no cover - exercised through spark-submit by the fleet_records DAG test
    submit(run, "railpm-fleet-rams")


if __name__ == "__main__":  # pragma: no cover
    main()
