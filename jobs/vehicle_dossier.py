"""vehicle_dossier: one record per vehicle, its technical file as of its latest record day.

    spark-submit --master <local[*] | spark://host:7077 | yarn | k8s://...> jobs/vehicle_dossier.py

reads ``records/vehicle_days`` and the lake's work orders, faults and vehicle registry, and writes
``records/vehicle_dossier`` (one Parquet file: a row per vehicle is small even for a large fleet).

The row is the vehicle's latest vehicle-day record (every feature as known that day) preceded by its history
summary: faults of the last 90 days by grade, replacements and failures so far per component, MTBF so far,
recurring fault codes, the work orders still open and, per maintenance level, when the next inspection falls
due. Definitions a reliability engineer can check by hand:

- *so far* means within the vehicle's records: from its first record day (commissioning or the start of the
  data) to its latest, both included; the observed time is that many days, the observed distance the odometer
  advance over them.
- a *failure* is a ``corrective_replacement`` work order, counted on the day it was opened (the same event
  ``component_days`` labels); a *replacement* is a corrective or a preventive one.
- *MTBF so far* = observed days / failures (``mkbf_km``: observed km / failures); null without a failure, as
  the observed time is then only a lower bound.
- a fault code is *recurring* when it occurred at least 3 times within 30 days (days ending on and including
  the day: the rule of ``railpm.rules``); ``recurring_fault_codes`` lists those recurring now (the 30 days ending on the latest day),
  ``recurring_fault_history`` every code that ever did, with its worst 30-day count.
- each maintenance level is due by time or by distance, whichever first (``contracts.MAINTENANCE_LEVELS``),
  counted from the last inspection of that level or a higher one (a higher level includes the lower levels'
  work), as ``railpm.planning.maintenance`` plans it. Without such an inspection in the lake the clock starts
  at commissioning if the vehicle entered service within the records, else the due date is unknown (null):
  inventing a last visit would show false overdue inspections. The distance-based due day extrapolates the
  vehicle's mean daily km of its last 30 record days (its registry's planned mean if it did not run).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from railpm import contracts
from railpm.config import Settings
from railpm.jobs.records_io import cut_lineage, read_lake, read_records, record_path, sql, submit, write_records
from railpm.layers import VEHICLE_DAYS, VEHICLE_DOSSIER
from railpm.jobs.vehicle_days import MAJOR_WINDOW_DAYS, RECURRING_CODE_COUNT, RECURRING_MAJOR_COUNT, fitted_sql
from railpm.rules import RECURRING_WINDOW_DAYS, same_code_count

FAULT_HISTORY_DAYS = 90
"""The dossier's fault counts by grade cover this many days, ending with the latest record day."""
RECENT_KM_DAYS = 30
"""Days of running whose mean daily km extrapolates the distance-based due day."""

SUMMARY_KEYS = ("vehicle_number", "day", "vehicle_type", "home_depot", "commissioning_date", "age_days", "odometer_km")
"""Who the vehicle is and where it stands: the dossier's first columns."""


def _cols(names) -> str:
    return ",\n  ".join(names)


def level_name(level: int) -> str:
    return f"l{level}"


# ------------------------------------------------------------------------------------------------
# The latest record and the observed period
# ------------------------------------------------------------------------------------------------


def latest_records(vehicle_days: DataFrame, vehicles: DataFrame) -> DataFrame:
    """Each vehicle's latest vehicle-day record, its first record day and odometer then, and its registry
    entry (commissioning date, planned daily km)."""
    return sql(
        """
        WITH span AS (
          SELECT vehicle_number, max(day) AS day, min(day) AS first_record_day,
            min(odometer_km - km_1d) AS odometer_first_km
          FROM {vehicle_days} GROUP BY vehicle_number
        )
        SELECT /*+ BROADCAST(r) */ v.*, s.first_record_day, s.odometer_first_km, r.commissioning_date, r.daily_km_mean
        FROM {vehicle_days} v
        JOIN span s ON v.vehicle_number = s.vehicle_number AND v.day = s.day
        JOIN {vehicles} r ON v.vehicle_number = r.vehicle_number
        """,
        vehicle_days=vehicle_days,
        vehicles=vehicles,
    )


# ------------------------------------------------------------------------------------------------
# Faults: the last 90 days by grade, recurring codes
# ------------------------------------------------------------------------------------------------

_OBSERVED_FAULTS = """
  SELECT /*+ BROADCAST(l) */ f.vehicle_number, f.fault_code, f.grade, f.ts, to_date(f.ts) AS day, l.day AS as_of
  FROM {faults} f JOIN {latest} l ON f.vehicle_number = l.vehicle_number
  WHERE to_date(f.ts) BETWEEN l.first_record_day AND l.day
"""
"""The faults within each vehicle's records, with its latest record day."""


def _most_first(count: str) -> str:
    """SQL comparator for array_sort: the higher ``count`` first, then by fault code."""
    return (
        f"(a, b) -> CASE WHEN a.{count} > b.{count} THEN -1 WHEN a.{count} < b.{count} THEN 1 "
        "WHEN a.fault_code < b.fault_code THEN -1 WHEN a.fault_code > b.fault_code THEN 1 ELSE 0 END"
    )


def fault_history(faults: DataFrame, latest: DataFrame) -> DataFrame:
    """Per vehicle: faults of the last 90 days by grade, and the most A/B faults it had within 365 days."""
    in_window = f"day > date_sub(as_of, {FAULT_HISTORY_DAYS})"
    grades = [
        f"count_if({in_window} AND grade = '{g}') AS faults_grade_{g.lower()}_{FAULT_HISTORY_DAYS}d"
        for g in contracts.GRADES
    ]
    majors = ", ".join(f"'{g}'" for g in contracts.MAJOR_GRADES)
    return sql(
        f"""
        WITH f AS ({_OBSERVED_FAULTS}),
        majors AS (
          SELECT vehicle_number, max(n) AS worst FROM (
            SELECT vehicle_number, count(*) OVER (PARTITION BY vehicle_number ORDER BY unix_date(day)
              RANGE BETWEEN {MAJOR_WINDOW_DAYS - 1} PRECEDING AND CURRENT ROW) AS n
            FROM f WHERE grade IN ({majors})
          ) GROUP BY vehicle_number
        ),
        counts AS (
          SELECT vehicle_number, count_if({in_window}) AS faults_{FAULT_HISTORY_DAYS}d, {_cols(grades)}
          FROM f GROUP BY vehicle_number
        )
        SELECT c.*, coalesce(m.worst, 0) AS faults_major_worst_{MAJOR_WINDOW_DAYS}d
        FROM counts c LEFT JOIN majors m ON c.vehicle_number = m.vehicle_number
        """,
        faults=faults,
        latest=latest,
    )


def recurring_codes(faults: DataFrame, latest: DataFrame) -> DataFrame:
    """Per vehicle: the fault codes recurring now (most frequent first), and every code that ever recurred
    with its worst 30-day count, its occurrences in all and in the last 30 days, and when it last occurred."""
    window = RECURRING_WINDOW_DAYS
    return sql(
        f"""
        WITH f AS ({_OBSERVED_FAULTS}),
        counted AS (
          SELECT *, {same_code_count("unix_date(day)")} AS n
          FROM f
        ),
        codes AS (
          SELECT vehicle_number, fault_code, max(n) AS worst_{window}d, count(*) AS occurrences,
            count_if(day > date_sub(as_of, {window})) AS last_{window}d, max(ts) AS last_seen
          FROM counted GROUP BY vehicle_number, fault_code HAVING max(n) >= {RECURRING_CODE_COUNT}
        )
        SELECT vehicle_number,
          nullif(concat_ws(', ', transform(
            array_sort(filter(collect_list(struct(fault_code, last_{window}d)), c -> c.last_{window}d >= {RECURRING_CODE_COUNT}),
                       {_most_first(f"last_{window}d")}),
            c -> c.fault_code)), '') AS recurring_fault_codes,
          array_sort(collect_list(struct(fault_code, worst_{window}d, occurrences, last_{window}d, last_seen)),
                     {_most_first(f"worst_{window}d")}) AS recurring_fault_history
        FROM codes GROUP BY vehicle_number
        """,
        faults=faults,
        latest=latest,
    )


# ------------------------------------------------------------------------------------------------
# Work orders: replacements, failures, open orders, inspections
# ------------------------------------------------------------------------------------------------


def maintenance_history(work_orders: DataFrame, latest: DataFrame) -> DataFrame:
    """Per vehicle: replacements and failures so far (per component and in all), the last failure, the work
    orders still open on the latest day, and the last inspection of each level (or a higher one)."""
    replaced = "action IN ('corrective_replacement', 'preventive_replacement')"
    failed = "action = 'corrective_replacement'"
    per_component = [
        f"count_if(observed AND {replaced} AND component = '{c}') AS replacements_{c}, "
        f"count_if(observed AND {failed} AND component = '{c}') AS failures_{c}"
        for c in contracts.COMPONENTS
    ]
    done = "named_struct('day', to_date(closed_at), 'odometer_km', odometer_km)"
    inspections = [
        f"max(CASE WHEN action = 'inspection' AND closed_at IS NOT NULL AND to_date(closed_at) <= as_of "
        f"AND maintenance_level >= {m.level} THEN {done} END) AS last_inspection_{level_name(m.level)}"
        for m in contracts.MAINTENANCE_LEVELS
    ]
    is_open = "to_date(opened_at) <= as_of AND (closed_at IS NULL OR to_date(closed_at) > as_of)"
    return sql(
        f"""
        WITH o AS (
          SELECT /*+ BROADCAST(l) */ o.*, l.day AS as_of,
            to_date(o.opened_at) BETWEEN l.first_record_day AND l.day AS observed
          FROM {{work_orders}} o JOIN {{latest}} l ON o.vehicle_number = l.vehicle_number
        )
        SELECT vehicle_number,
          {_cols(per_component)},
          count_if(observed AND {replaced}) AS replacements_total,
          count_if(observed AND action = 'preventive_replacement') AS preventive_replacements_total,
          count_if(observed AND {failed}) AS failures_total,
          max(CASE WHEN observed AND {failed} THEN to_date(opened_at) END) AS last_failure_day,
          array_sort(collect_list(CASE WHEN {is_open} THEN struct(opened_at, work_order_id, action, component,
            maintenance_level, depot) END)) AS open_work_orders,
          {_cols(inspections)}
        FROM o GROUP BY vehicle_number
        """,
        work_orders=work_orders,
        latest=latest,
    )


# ------------------------------------------------------------------------------------------------
# Assembly
# ------------------------------------------------------------------------------------------------


_MAX_DAYS_AHEAD = 36_500
"""A vehicle that hardly runs would push its distance-based due day centuries ahead: capped (time decides)."""


def _due_sql(m: contracts.MaintenanceLevel) -> list[str]:
    """The next due inspection of one level: from the last one (or commissioning within the records)."""
    name = level_name(m.level)
    last = f"h.last_inspection_{name}"
    known = "l.commissioning_date >= l.first_record_day"
    base_day = f"coalesce({last}.day, CASE WHEN {known} THEN l.commissioning_date END)"
    base_km = f"coalesce({last}.odometer_km, CASE WHEN {known} THEN 0.0D END)"
    due_km = f"({base_km} + {m.interval_km}D)"
    by_time = f"date_add({base_day}, {m.interval_days})"
    by_distance = (
        f"CASE WHEN daily_km > 0 AND {due_km} - l.odometer_km IS NOT NULL "  # least/greatest skip nulls
        f"THEN date_add(l.day, CAST(greatest(-{_MAX_DAYS_AHEAD}, least({_MAX_DAYS_AHEAD}, "
        f"floor(({due_km} - l.odometer_km) / daily_km))) AS INT)) END"
    )
    due_day = f"least({by_time}, {by_distance})"
    return [
        f"{last}.day AS last_inspection_{name}_day",
        f"{last}.odometer_km AS last_inspection_{name}_km",
        f"{due_day} AS next_due_{name}_day",
        f"{due_km} AS next_due_{name}_km",
        f"CASE WHEN {by_distance} < {by_time} THEN 'distance' WHEN {base_day} IS NOT NULL THEN 'time' END AS next_due_{name}_by",
        f"CAST(datediff({due_day}, l.day) AS BIGINT) AS days_to_due_{name}",
        f"{due_km} - l.odometer_km AS km_to_due_{name}",
    ]


def summary_columns() -> list[str]:
    """The history summary's columns, in the order the dossier shows them (after ``SUMMARY_KEYS``)."""
    names = ["first_record_day", "observed_days", "observed_km", f"faults_{FAULT_HISTORY_DAYS}d"]
    names += [f"faults_grade_{g.lower()}_{FAULT_HISTORY_DAYS}d" for g in contracts.GRADES]
    names += ["recurring_fault_codes", f"faults_major_{MAJOR_WINDOW_DAYS}d", "recurring_major_flag",
              f"faults_major_worst_{MAJOR_WINDOW_DAYS}d", "recurring_major_ever", "recurring_fault_history",
              "failures_total", "replacements_total", "preventive_replacements_total", "mtbf_days", "mkbf_km",
              "last_failure_day", "open_work_orders"]
    names += [f"{k}_{c}" for c in contracts.COMPONENTS for k in ("failures", "replacements")]
    for m in contracts.MAINTENANCE_LEVELS:
        name = level_name(m.level)
        names += [f"next_due_{name}_day", f"next_due_{name}_km", f"next_due_{name}_by", f"days_to_due_{name}",
                  f"km_to_due_{name}", f"last_inspection_{name}_day", f"last_inspection_{name}_km"]
    return names


def assemble_dossier(latest: DataFrame, faults: DataFrame, recurring: DataFrame, history: DataFrame) -> DataFrame:
    """Summary first, then the latest record's features; a vehicle without faults or work orders gets zeros."""
    fault_counts = [f"coalesce(f.faults_{FAULT_HISTORY_DAYS}d, 0) AS faults_{FAULT_HISTORY_DAYS}d"] + [
        f"coalesce(f.{c}, 0) AS {c}" for c in (f"faults_grade_{g.lower()}_{FAULT_HISTORY_DAYS}d" for g in contracts.GRADES)
    ]
    worst = f"faults_major_worst_{MAJOR_WINDOW_DAYS}d"
    components = [
        f"CASE WHEN {fitted_sql(c)} THEN coalesce(h.{k}_{c}, 0) END AS {k}_{c}"
        for c in contracts.COMPONENTS for k in ("failures", "replacements")
    ]
    observed_days = "CAST(datediff(l.day, l.first_record_day) + 1 AS BIGINT)"
    observed_km = "l.odometer_km - l.odometer_first_km"
    failures = "coalesce(h.failures_total, 0)"
    recent_days = f"least({RECENT_KM_DAYS}, datediff(day, first_record_day) + 1)"
    carried = (f"faults_major_{MAJOR_WINDOW_DAYS}d", "recurring_major_flag")  # the record's, shown in the summary
    record = [c for c in latest.columns
              if c not in (*SUMMARY_KEYS, *carried, "first_record_day", "odometer_first_km", "daily_km_mean")]
    dues = [expr for m in contracts.MAINTENANCE_LEVELS for expr in _due_sql(m)]
    frame = sql(
        f"""
        SELECT /*+ BROADCAST(f, r, h) */ {", ".join(f"l.{c}" for c in SUMMARY_KEYS)},
          l.first_record_day, {observed_days} AS observed_days, {observed_km} AS observed_km,
          {_cols(fault_counts)},
          r.recurring_fault_codes, {", ".join(f"l.{c}" for c in carried)}, coalesce(f.{worst}, 0) AS {worst},
          coalesce(f.{worst}, 0) >= {RECURRING_MAJOR_COUNT} AS recurring_major_ever,
          coalesce(r.recurring_fault_history, array()) AS recurring_fault_history,
          {failures} AS failures_total, coalesce(h.replacements_total, 0) AS replacements_total,
          coalesce(h.preventive_replacements_total, 0) AS preventive_replacements_total,
          CASE WHEN {failures} > 0 THEN {observed_days} / {failures} END AS mtbf_days,
          CASE WHEN {failures} > 0 THEN ({observed_km}) / {failures} END AS mkbf_km,
          h.last_failure_day, coalesce(h.open_work_orders, array()) AS open_work_orders,
          {_cols(components)},
          {_cols(dues)},
          {_cols(f"l.`{c}`" for c in record)}
        FROM (SELECT *, CASE WHEN km_30d > 0 THEN km_30d / {recent_days} ELSE daily_km_mean END AS daily_km
              FROM {{latest}}) l
        LEFT JOIN {{faults}} f ON l.vehicle_number = f.vehicle_number
        LEFT JOIN {{recurring}} r ON l.vehicle_number = r.vehicle_number
        LEFT JOIN {{history}} h ON l.vehicle_number = h.vehicle_number
        """,
        latest=latest,
        faults=faults,
        recurring=recurring,
        history=history,
    )
    return frame.select(*SUMMARY_KEYS, *summary_columns(), *record)


def build_vehicle_dossier(
    vehicle_days: DataFrame, work_orders: DataFrame, faults: DataFrame, vehicles: DataFrame
) -> DataFrame:
    """The whole transform: vehicle-day records and lake tables in, one dossier row per vehicle out."""
    latest = cut_lineage(latest_records(vehicle_days, vehicles))  # one row per vehicle, read four times
    return assemble_dossier(
        latest, fault_history(faults, latest), recurring_codes(faults, latest), maintenance_history(work_orders, latest)
    )


def run(session: SparkSession, settings: Settings) -> None:
    vehicle_days = read_records(session, record_path(settings, VEHICLE_DAYS))
    (vehicles,) = read_lake(session, settings, contracts.VEHICLES)
    work_orders, faults = read_lake(session, settings, contracts.WORK_ORDERS, contracts.FAULTS, optional=True)
    dossier = build_vehicle_dossier(vehicle_days, work_orders, faults, vehicles)
    write_records(dossier, record_path(settings, VEHICLE_DOSSIER), partition_by=None, sort_by=("vehicle_number",))


def main() -> None:  # pragma: no cover - exercised through spark-submit by the fleet_records DAG test
    submit(run, "railpm-vehicle-dossier")


if __name__ == "__main__":  # pragma: no cover
    main()
