"""A second, independent implementation of the vehicle_days features in DuckDB, as a yardstick.

The benchmark runs it on the same lake as the Spark job to compare speed on one machine, and the tests and
the benchmark compare its output with Spark's column by column. It shares only the definitions (feature
names, regimes, limits) with ``railpm.jobs.vehicle_days``, not the mechanics: windows are RANGE frames over
dates instead of differences of running sums over a dense spine, the last replacement and inspection are
ASOF joins instead of carried-forward events, open work orders a range join instead of a running balance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from railpm import contracts
from railpm.jobs.vehicle_days import (
    AMBIENT_BANDS_C,
    LOAD_BANDS_PCT,
    MAJOR_WINDOW_DAYS,
    MIN_NORMAL_READINGS,
    RECURRING_CODE_COUNT,
    RECURRING_MAJOR_COUNT,
    SIGNAL_COLUMNS,
    SPEED_BANDS_KMH,
    WINDOWS,
    Z_LIMIT,
    band_sql,
    code_slug,
    fault_categories,
    fault_feature,
    fitted_sql,
    signal_feature,
    vehicle_day_columns,
)
from railpm.layers import lake_dir_of


def _lake(lake_dir: Path, feed: contracts.Feed) -> str:
    path = lake_dir_of(lake_dir, feed)
    pattern = path / "**" / "*.parquet" if feed.time_column else path / "*.parquet"
    columns = ", ".join(feed.column_names)
    return f"(SELECT {columns} FROM read_parquet('{pattern}', hive_partitioning = false))"


def _range(days: int) -> str:
    return f"(PARTITION BY vehicle_number ORDER BY day RANGE BETWEEN INTERVAL {days - 1} DAYS PRECEDING AND CURRENT ROW)"


def _last_done_sql(condition: str) -> str:
    """Closed work orders matching the condition, one per vehicle and day (the latest closed that day), for an
    ASOF join that picks the latest day on or before each record day."""
    return (
        "SELECT vehicle_number, CAST(closed_at AS DATE) AS done_day, arg_max(odometer_km, closed_at) AS odometer_km "
        f"FROM orders WHERE closed_at IS NOT NULL AND {condition} GROUP BY 1, 2"
    )


def vehicle_days_sql(lake_dir: Path) -> str:
    telemetry, faults = _lake(lake_dir, contracts.TELEMETRY), _lake(lake_dir, contracts.FAULTS)
    orders, vehicles = _lake(lake_dir, contracts.WORK_ORDERS), _lake(lake_dir, contracts.VEHICLES)
    regime = "vehicle_type, speed_band, load_band, ambient_band"

    daily_regime = ", ".join(f"count({s}) AS {s}_n, sum({s}) AS {s}_sx, sum({s} * {s}) AS {s}_sxx" for s in SIGNAL_COLUMNS)
    running = ", ".join(
        f"sum({s}_{k}) OVER (PARTITION BY {regime} ORDER BY day ROWS UNBOUNDED PRECEDING) AS {s}_{k}"
        for s in SIGNAL_COLUMNS for k in ("n", "sx", "sxx")
    )
    z = ", ".join(
        f"CASE WHEN g.{s}_n >= {MIN_NORMAL_READINGS} AND "
        f"sqrt(greatest(0.0, (g.{s}_sxx - g.{s}_sx * g.{s}_sx / g.{s}_n) / (g.{s}_n - 1))) > 1e-9 "
        f"THEN (r.{s} - g.{s}_sx / g.{s}_n) / sqrt(greatest(0.0, (g.{s}_sxx - g.{s}_sx * g.{s}_sx / g.{s}_n) / (g.{s}_n - 1))) "
        f"END AS {s}_z, r.{s} AS {s}_x, "
        f"CASE WHEN g.{s}_n >= {MIN_NORMAL_READINGS} THEN g.{s}_sx / g.{s}_n END AS {s}_normal"
        for s in SIGNAL_COLUMNS
    )
    day_sums = []
    for s in SIGNAL_COLUMNS:
        t = f"CASE WHEN {s}_z IS NOT NULL THEN t END"
        day_sums += [
            f"count({s}_z) AS {s}_n", f"sum({s}_z) AS {s}_sz", f"sum({s}_z * {s}_z) AS {s}_szz",
            f"sum({t}) AS {s}_st", f"sum({t} * {t}) AS {s}_stt", f"sum(t * {s}_z) AS {s}_stz",
            f"count(*) FILTER (WHERE abs({s}_z) > {Z_LIMIT}) AS {s}_nb",
            f"sum(CASE WHEN {s}_z IS NOT NULL THEN {s}_x END) AS {s}_sx",
            f"sum(CASE WHEN {s}_z IS NOT NULL THEN {s}_normal END) AS {s}_snorm",
            f"min({s}_z) AS {s}_zmin", f"max({s}_z) AS {s}_zmax",
        ]
    fault_counts = ", ".join(
        f"count(*) FILTER (WHERE {cond}) AS f_{name}" for name, cond in fault_categories().items()
    )
    majors = ", ".join(f"'{g}'" for g in contracts.MAJOR_GRADES)

    windowed = []
    for s in SIGNAL_COLUMNS:
        for w in WINDOWS:
            frame = _range(w)
            n, sz, szz, st, stt, stz, nb = (f"sum(coalesce(d.{s}_{k}, 0)) OVER {frame}" for k in
                                            ("n", "sz", "szz", "st", "stt", "stz", "nb"))
            spread = f"({n} * {stt} - {st} * {st})"
            windowed += [
                f"CASE WHEN {n} > 0 THEN {sz} / {n} END AS {signal_feature(s, 'mean', w)}",
                f"CASE WHEN {n} > 1 THEN sqrt(greatest(0.0, ({szz} - {sz} * {sz} / {n}) / ({n} - 1))) END"
                f" AS {signal_feature(s, 'std', w)}",
                f"min(d.{s}_zmin) OVER {frame} AS {signal_feature(s, 'min', w)}",
                f"max(d.{s}_zmax) OVER {frame} AS {signal_feature(s, 'max', w)}",
                f"CASE WHEN {n} > 1 AND {spread} > 1e-9 THEN ({n} * {stz} - {st} * {sz}) / {spread} END"
                f" AS {signal_feature(s, 'slope', w)}",
                f"CASE WHEN {n} > 0 THEN {nb} / {n} END AS {signal_feature(s, 'share_beyond', w)}",
            ]
        n7 = f"sum(coalesce(d.{s}_n, 0)) OVER {_range(7)}"
        windowed += [
            f"CASE WHEN {n7} > 0 THEN sum(coalesce(d.{s}_sx, 0)) OVER {_range(7)} / {n7} END AS {s}_mean_7d",
            f"CASE WHEN {n7} > 0 THEN sum(coalesce(d.{s}_snorm, 0)) OVER {_range(7)} / {n7} END AS {s}_normal_7d",
        ]
    for name in fault_categories():
        for w in WINDOWS:
            windowed.append(f"CAST(sum(coalesce(f.f_{name}, 0)) OVER {_range(w)} AS BIGINT) AS {fault_feature(name, w)}")
    windowed.append(
        f"CAST(sum(coalesce(f.f_major, 0)) OVER {_range(MAJOR_WINDOW_DAYS)} AS BIGINT) AS faults_major_{MAJOR_WINDOW_DAYS}d"
    )
    for w in WINDOWS[1:]:
        windowed.append(f"sum(km_1d) OVER {_range(w)} AS km_{w}d")

    recurring = " + ".join(
        f"CASE WHEN {fault_feature('code_' + code_slug(f.code), 30)} >= {RECURRING_CODE_COUNT} THEN 1 ELSE 0 END"
        for f in contracts.FAULT_CODES
    )
    replaced = "action IN ('corrective_replacement', 'preventive_replacement')"
    clocks = [(f"r_{c}", f"{replaced} AND component = '{c}'", f"replacement_{c}", fitted_sql(c)) for c in contracts.COMPONENTS]
    clocks += [(f"i_{lvl}", f"action = 'inspection' AND maintenance_level >= {lvl}", f"inspection_l{lvl}", None)
               for lvl in contracts.LEVELS]
    last_done_joins, maintenance = [], []
    for alias, condition, suffix, fitted in clocks:
        last_done_joins.append(
            f"ASOF LEFT JOIN ({_last_done_sql(condition)}) {alias} "
            f"ON w.vehicle_number = {alias}.vehicle_number AND w.day >= {alias}.done_day"
        )
        days = f"CAST(w.day - coalesce({alias}.done_day, w.commissioning_date) AS BIGINT)"
        km = f"w.odometer_km - coalesce({alias}.odometer_km, 0.0)"
        if fitted:  # a component the vehicle's type does not carry has no clock
            days, km = (f"CASE WHEN {fitted} THEN {e} END" for e in (days, km))
        maintenance += [f"{days} AS days_since_{suffix}", f"{km} AS km_since_{suffix}"]
    return f"""
    WITH orders AS (SELECT * FROM {orders}),
    readings AS (
      SELECT t.*, v.vehicle_type, CAST(t.ts AS DATE) AS day,
        (epoch(t.ts) % 86400) / 86400.0 AS hour_frac,
        {band_sql('t.speed_kmh', SPEED_BANDS_KMH)} AS speed_band,
        {band_sql('t.load_pct', LOAD_BANDS_PCT)} AS load_band,
        {band_sql('t.ambient_temp_c', AMBIENT_BANDS_C)} AS ambient_band
      FROM {telemetry} t JOIN {vehicles} v USING (vehicle_number)
    ),
    regime_days AS (SELECT {regime}, day, {daily_regime} FROM readings GROUP BY ALL),
    normals AS (SELECT {regime}, day, {running} FROM regime_days),
    origin AS (SELECT min(day) AS first_day FROM readings),
    scored AS (
      SELECT r.vehicle_number, r.day, r.odometer_km, r.speed_kmh, r.load_pct, r.ambient_temp_c,
        (r.day - o.first_day) + r.hour_frac AS t, {z}
      FROM readings r JOIN normals g USING ({regime}, day) CROSS JOIN origin o
    ),
    signal_days AS (
      SELECT vehicle_number, day, count(*) AS readings, max(odometer_km) AS odo_end, min(odometer_km) AS odo_start,
        avg(speed_kmh) AS speed_kmh_mean_1d, avg(load_pct) AS load_pct_mean_1d,
        avg(ambient_temp_c) AS ambient_temp_c_mean_1d, {", ".join(day_sums)}
      FROM scored GROUP BY vehicle_number, day
    ),
    fault_days AS (
      SELECT vehicle_number, CAST(ts AS DATE) AS day, {fault_counts},
        count(*) FILTER (WHERE grade IN ({majors})) AS f_major
      FROM {faults} GROUP BY ALL
    ),
    period AS (
      SELECT o.first_day, greatest(
        (SELECT max(day) FROM signal_days), (SELECT max(CAST(ts AS DATE)) FROM {faults}),
        (SELECT max(CAST(opened_at AS DATE)) FROM orders)) AS last_day
      FROM origin o
    ),
    spine AS (
      SELECT v.vehicle_number, v.vehicle_type, v.home_depot, v.commissioning_date,
        CAST(unnest(generate_series(greatest(v.commissioning_date, p.first_day), p.last_day, INTERVAL 1 DAY)) AS DATE) AS day
      FROM {vehicles} v CROSS JOIN period p WHERE v.commissioning_date <= p.last_day
    ),
    odometer AS (
      SELECT s.*, d.odo_end, d.odo_start, d.readings, d.speed_kmh_mean_1d, d.load_pct_mean_1d, d.ambient_temp_c_mean_1d,
        last_value(d.odo_end IGNORE NULLS) OVER (PARTITION BY s.vehicle_number ORDER BY s.day
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS odometer_km,
        last_value(d.odo_end IGNORE NULLS) OVER (PARTITION BY s.vehicle_number ORDER BY s.day
          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS odo_before
      FROM spine s LEFT JOIN signal_days d USING (vehicle_number, day)
    ),
    base AS (
      SELECT *, CASE WHEN odo_end IS NULL THEN 0.0 ELSE odo_end - coalesce(odo_before, odo_start) END AS km_1d
      FROM odometer
    ),
    windowed AS (
      SELECT b.vehicle_number, b.day, b.vehicle_type, b.home_depot, b.commissioning_date, b.odometer_km, b.km_1d,
        b.readings, b.speed_kmh_mean_1d, b.load_pct_mean_1d, b.ambient_temp_c_mean_1d,
        {", ".join(windowed)}
      FROM base b LEFT JOIN signal_days d USING (vehicle_number, day) LEFT JOIN fault_days f USING (vehicle_number, day)
    ),
    open_orders AS (
      SELECT s.vehicle_number, s.day, count(o.work_order_id) AS open_corrective_work_orders
      FROM spine s LEFT JOIN orders o ON o.vehicle_number = s.vehicle_number
        AND o.action = 'corrective_replacement' AND CAST(o.opened_at AS DATE) <= s.day
        AND (o.closed_at IS NULL OR CAST(o.closed_at AS DATE) > s.day)
      GROUP BY ALL
    )
    SELECT w.*, CAST(datediff('day', w.commissioning_date, w.day) AS BIGINT) AS age_days,
      CAST(coalesce(w.readings, 0) AS BIGINT) AS readings_1d,
      CAST({recurring} AS BIGINT) AS recurring_codes_30d,
      ({recurring}) > 0 AS recurring_code_flag,
      faults_major_{MAJOR_WINDOW_DAYS}d >= {RECURRING_MAJOR_COUNT} AS recurring_major_flag,
      CAST(oo.open_corrective_work_orders AS BIGINT) AS open_corrective_work_orders,
      {", ".join(maintenance)}
    FROM windowed w JOIN open_orders oo USING (vehicle_number, day)
    {" ".join(last_done_joins)}
    """


def build_vehicle_days(
    lake_dir: Path, out_path: Path, threads: int | None = None, memory_limit: str | None = None
) -> int:
    """Compute vehicle_days from the lake with DuckDB and write it to one Parquet file; returns the rows.

    ``memory_limit`` (e.g. ``"4GB"``) bounds DuckDB's buffers, which spill beside the output past it; by
    default DuckDB takes up to 80 % of the machine's memory.
    """
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        if threads:
            con.execute(f"SET threads = {threads}")
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET temp_directory = '{out_path.parent / '.duckdb_spill'}'")
        columns = ", ".join(c for c in vehicle_day_columns())
        out_path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT {columns} FROM ({vehicle_days_sql(lake_dir)}) ORDER BY vehicle_number, day) "
            f"TO '{out_path}' (FORMAT parquet)"
        )
        return con.execute(f"SELECT count(*) FROM read_parquet('{out_path}')").fetchone()[0]
    finally:
        con.close()


@dataclass
class Comparison:
    """Cell-by-cell agreement of two vehicle_days tables, joined on (vehicle_number, day)."""

    rows_spark: int
    rows_reference: int
    rows_one_side: int
    """Keys present in only one of the two tables."""
    missing_columns: list[str]
    """Columns only one of the two tables has."""
    columns: int
    cells: int
    differing: dict[str, dict]
    """Per column with any differing cell: ``{"cells": n, "max_abs_diff": x}``."""
    max_abs_diff: float
    """Largest absolute difference of a numeric cell present on both sides (within tolerance or not)."""
    max_abs_diff_column: str | None

    @property
    def mismatches(self) -> int:
        return sum(d["cells"] for d in self.differing.values())

    @property
    def agree(self) -> bool:
        return not (self.rows_one_side or self.missing_columns or self.differing)

    def as_dict(self) -> dict:
        return {**asdict(self), "mismatches": self.mismatches, "agree": self.agree}

    def describe(self, most: int = 12) -> str:
        """What differs, most differing columns first (a key on one side only differs in every column)."""
        worst = sorted(self.differing.items(), key=lambda item: -item[1]["cells"])
        columns = ", ".join(f"{c} ({d['cells']} cells, max abs diff {d['max_abs_diff']})" for c, d in worst[:most])
        more = f" and {len(worst) - most} more columns" if len(worst) > most else ""
        return (f"{self.rows_spark} Spark rows, {self.rows_reference} reference rows, {self.rows_one_side} keys on one "
                f"side only; columns on one side only: {self.missing_columns or 'none'}; {self.mismatches} of "
                f"{self.cells} cells differ: {columns or 'none'}{more}")


def compare_vehicle_days(spark_records: Path, reference: Path, rtol: float = 1e-9, atol: float = 1e-9) -> Comparison:
    """Compare Spark's ``records/vehicle_days`` with the reference file cell by cell.

    Floats agree within ``atol + rtol * |reference|`` (the engines sum in different orders), everything else
    exactly; null agrees only with null. A key on one side only counts as differing in every column.
    """
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        spark_rows = f"read_parquet('{Path(spark_records) / '**' / '*.parquet'}', hive_partitioning = true)"
        con.execute(f"CREATE VIEW r AS SELECT * FROM read_parquet('{reference}')")

        def types(view: str) -> dict[str, str]:
            return dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view})").fetchall())

        reference_types = types("r")
        # The partition folder (month=YYYY-MM) is how the records are stored, not a feature.
        con.execute(f"CREATE VIEW s_stored AS SELECT * FROM {spark_rows}")
        storage = [c for c in types("s_stored") if c == contracts.RECORD_PARTITION and c not in reference_types]
        exclude = f"EXCLUDE ({', '.join(storage)})" if storage else ""
        con.execute(f"CREATE VIEW s AS SELECT * {exclude} REPLACE (CAST(day AS DATE) AS day) FROM s_stored")
        spark_types = types("s")
        missing = sorted(set(spark_types) ^ set(reference_types))
        columns = [c for c in reference_types if c in spark_types and c not in contracts.VEHICLE_DAY_KEY]
        numeric = {"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "HUGEINT", "SMALLINT", "TINYINT", "DECIMAL"}
        checks = ["count(*) FILTER (WHERE s.vehicle_number IS NULL OR r.vehicle_number IS NULL)",
                  "count(s.vehicle_number)", "count(r.vehicle_number)", "count(*)"]
        for c in columns:
            if reference_types[c] in ("DOUBLE", "FLOAT"):
                same = f"(s.{c} IS NULL AND r.{c} IS NULL) OR abs(s.{c} - r.{c}) <= {atol} + {rtol} * abs(r.{c})"
            else:
                same = f"s.{c} IS NOT DISTINCT FROM r.{c}"
            checks.append(f"count(*) FILTER (WHERE NOT coalesce({same}, false))")
            is_number = reference_types[c].split("(")[0] in numeric and spark_types[c].split("(")[0] in numeric
            checks.append(f"max(abs(CAST(s.{c} AS DOUBLE) - CAST(r.{c} AS DOUBLE)))" if is_number else "NULL")
        row = con.execute(
            f"SELECT {', '.join(checks)} FROM s FULL JOIN r ON s.vehicle_number = r.vehicle_number AND s.day = r.day"
        ).fetchone()
        one_side, rows_spark, rows_reference, joined = row[:4]
        differing, worst, worst_column = {}, 0.0, None
        for i, c in enumerate(columns):
            cells, diff = row[4 + 2 * i], row[5 + 2 * i]
            if cells:
                differing[c] = {"cells": int(cells), "max_abs_diff": diff}
            if diff is not None and diff > worst:
                worst, worst_column = float(diff), c
        return Comparison(
            rows_spark=rows_spark, rows_reference=rows_reference, rows_one_side=one_side, missing_columns=missing,
            columns=len(columns), cells=len(columns) * joined,
            differing=differing, max_abs_diff=worst, max_abs_diff_column=worst_column,
        )
    finally:
        con.close()
