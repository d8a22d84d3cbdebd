"""vehicle_days: one record per vehicle per day, every feature as it was known at the end of that day.

    spark-submit --master <local[*] | spark://host:7077 | yarn | k8s://...> jobs/vehicle_days.py

reads the lake under ``$RAILPM_DATA_ROOT`` and writes ``records/vehicle_days`` (Parquet, partitioned by month).
On a cluster the driver needs railpm installed (or ``--py-files``); executors run no Python at all.

How it stays fast on a fleet: hourly readings are scored against what is normal for their operating regime
and reduced to one row of additive sums per vehicle-day first; every window (1, 7, 30, 365 days) is then a
difference of running sums over that dense daily spine, so one pass of running sums and one of lags serve
all features, and the hourly table is shuffled once. The steps are written as Spark SQL over DataFrames:
a few hundred feature expressions analysed in one call each, instead of thousands of Py4J round trips, and
each stage is materialised before the next (``cut_lineage``) so that no plan grows to the whole job.

How it stays honest: the normal of a regime on day D is fitted on the fleet's readings up to D only; a work
order counts from its close (replacement, inspection) or open (corrective, until closed); windows only look
back. ``tests/test_jobs_vehicle_days.py`` proves it by changing everything after a day.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from railpm import contracts, rules
from railpm.config import Settings
from railpm.jobs.records_io import cut_lineage, read_lake, record_path, sql, submit, write_records
from railpm.layers import VEHICLE_DAYS

WINDOWS = (1, 7, 30)
"""Trailing windows in days, each ending with (and including) the record's day."""
# The service rules' windows and counts are stated once, in railpm.rules; the records' windows are the same
# calendar days [D-(n-1), D] as a difference of running sums.
MAJOR_WINDOW_DAYS = rules.MAJOR_WINDOW_DAYS
RECURRING_CODE_COUNT = rules.RECURRING_CODE_COUNT
RECURRING_MAJOR_COUNT = rules.MAJOR_COUNT
RECURRING_WINDOW_DAYS = rules.RECURRING_WINDOW_DAYS
assert RECURRING_WINDOW_DAYS in WINDOWS, "the recurring-fault window must be one of the records' windows"
Z_LIMIT = 3.0
"""A reading this many regime standard deviations from normal counts as beyond the limit."""
MIN_NORMAL_READINGS = 24
"""A regime needs this many readings before its normal is trusted; until then its readings get no score."""
SPEED_BANDS_KMH = (5.0, 60.0, 120.0)
LOAD_BANDS_PCT = (40.0, 80.0)
AMBIENT_BANDS_C = (0.0, 15.0, 25.0)
REGIME = ("speed_band", "load_band", "ambient_band")
SIGNAL_STATS = ("mean", "std", "min", "max", "slope", "share_beyond")
SIGNAL_COLUMNS = tuple(s.column for s in contracts.SIGNALS)

_MOMENTS = ("n", "sz", "szz", "st", "stt", "stz", "nb")
"""Per signal and window: readings scored, sum of z, of z^2, of time t (days since the data origin), of t^2,
of t*z, and readings beyond the limit: enough for mean, std, slope and share."""


# ------------------------------------------------------------------------------------------------
# Feature names (shared with the DuckDB reference implementation and the other jobs)
# ------------------------------------------------------------------------------------------------


def signal_feature(signal: str, stat: str, window: int) -> str:
    return f"{signal}_z_{stat}_{window}d"


def code_slug(code: str) -> str:
    return code.lower().replace("-", "_")


def fault_categories() -> dict[str, str]:
    """Name -> SQL condition for every counted fault family: grade, subsystem and code."""
    categories = {f"grade_{g.lower()}": f"grade = '{g}'" for g in contracts.GRADES}
    categories.update({s: f"subsystem = '{s}'" for s in contracts.SUBSYSTEMS})
    categories.update({f"code_{code_slug(f.code)}": f"fault_code = '{f.code}'" for f in contracts.FAULT_CODES})
    return categories


def fault_feature(category: str, window: int) -> str:
    return f"faults_{category}_{window}d"


def fitted_sql(component: str) -> str:
    """SQL condition: the vehicle's type carries the component."""
    types = ", ".join(f"'{t}'" for t, comps in contracts.VEHICLE_TYPE_COMPONENTS.items() if component in comps)
    return f"vehicle_type IN ({types})"


def band_sql(column: str, edges: tuple[float, ...]) -> str:
    """0 below the first edge, 1 up to the second, ...: the regime index of a reading."""
    return "(" + " + ".join(f"CASE WHEN {column} >= {edge} THEN 1 ELSE 0 END" for edge in edges) + ")"


def _cols(names) -> str:
    return ",\n  ".join(names)


_BY_VEHICLE = "PARTITION BY vehicle_number ORDER BY day"
_UPTO = f"({_BY_VEHICLE} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"


# ------------------------------------------------------------------------------------------------
# Telemetry: normal per operating regime, scores, daily sums
# ------------------------------------------------------------------------------------------------


def with_operating_regime(telemetry: DataFrame, vehicles: DataFrame) -> DataFrame:
    """Each reading with its vehicle's type, its day, its hour as a fraction of the day and its regime."""
    return sql(
        f"""
        SELECT /*+ BROADCAST(v) */ t.*, v.vehicle_type,
          to_date(t.ts) AS day,
          (unix_seconds(t.ts) % 86400) / 86400D AS hour_frac,
          {band_sql("t.speed_kmh", SPEED_BANDS_KMH)} AS speed_band,
          {band_sql("t.load_pct", LOAD_BANDS_PCT)} AS load_band,
          {band_sql("t.ambient_temp_c", AMBIENT_BANDS_C)} AS ambient_band
        FROM {{telemetry}} t JOIN {{vehicles}} v ON t.vehicle_number = v.vehicle_number
        """,
        telemetry=telemetry,
        vehicles=vehicles,
    )


def fit_regime_normals(readings: DataFrame) -> DataFrame:
    """What is normal for each signal, per vehicle type and regime, fitted on all readings up to each day.

    The fit expands day by day (running sums), so the normal a reading is compared with never includes a
    later day: a bearing at 80 km/h under full load in summer is judged against such bearings so far.
    """
    keys = ", ".join(("vehicle_type", *REGIME))
    daily = [f"count({s}) AS {s}__n, sum({s}) AS {s}__sx, sum({s} * {s}) AS {s}__sxx" for s in SIGNAL_COLUMNS]
    running = [f"sum({s}__{k}) OVER upto AS {s}__{k}" for s in SIGNAL_COLUMNS for k in ("n", "sx", "sxx")]
    normals = [
        f"CASE WHEN {s}__n >= {MIN_NORMAL_READINGS} THEN {s}__sx / {s}__n END AS {s}__normal, "
        f"CASE WHEN {s}__n >= {MIN_NORMAL_READINGS} "
        f"THEN sqrt(greatest(0.0, ({s}__sxx - {s}__sx * {s}__sx / {s}__n) / ({s}__n - 1))) END AS {s}__spread"
        for s in SIGNAL_COLUMNS
    ]
    return sql(
        f"""
        WITH daily AS (SELECT {keys}, day, {_cols(daily)} FROM {{readings}} GROUP BY {keys}, day),
        running AS (
          SELECT {keys}, day, {_cols(running)} FROM daily
          WINDOW upto AS (PARTITION BY {keys} ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        )
        SELECT {keys}, day, {_cols(normals)} FROM running
        """,
        readings=readings,
    )


def score_readings(readings: DataFrame, normals: DataFrame) -> DataFrame:
    """Each condition reading as a z-score against its regime's normal (null while no normal is trusted)."""
    keys = " AND ".join(f"r.{k} = n.{k}" for k in ("vehicle_type", *REGIME, "day"))
    scores = [
        f"r.{s}, n.{s}__normal, CASE WHEN n.{s}__spread > 1e-9 THEN (r.{s} - n.{s}__normal) / n.{s}__spread END AS {s}__z"
        for s in SIGNAL_COLUMNS
    ]
    return sql(
        f"""
        SELECT /*+ BROADCAST(n) */ r.vehicle_number, r.day, r.hour_frac, r.odometer_km, r.speed_kmh, r.load_pct,
          r.ambient_temp_c, {_cols(scores)}
        FROM {{readings}} r LEFT JOIN {{normals}} n ON {keys}
        """,
        readings=readings,
        normals=normals,
    )


def sum_signal_days(scored: DataFrame) -> DataFrame:
    """One row per vehicle-day of additive sums and extremes: the only aggregation over hourly rows."""
    sums = []
    for s in SIGNAL_COLUMNS:
        z, h = f"{s}__z", f"CASE WHEN {s}__z IS NOT NULL THEN hour_frac END"
        sums += [
            f"count({z}) AS {s}__n", f"sum({z}) AS {s}__sz", f"sum({z} * {z}) AS {s}__szz",
            f"sum({h}) AS {s}__sh", f"sum({h} * {h}) AS {s}__shh", f"sum(hour_frac * {z}) AS {s}__shz",
            f"count_if(abs({z}) > {Z_LIMIT}) AS {s}__nb",
            f"sum(CASE WHEN {z} IS NOT NULL THEN {s} END) AS {s}__sx",
            f"sum(CASE WHEN {z} IS NOT NULL THEN {s}__normal END) AS {s}__snorm",
            f"min({z}) AS {s}__zmin", f"max({z}) AS {s}__zmax",
        ]
    return sql(
        f"""
        SELECT vehicle_number, day, count(*) AS readings, max(odometer_km) AS odo_end, min(odometer_km) AS odo_start,
          avg(speed_kmh) AS speed_kmh_mean_1d, avg(load_pct) AS load_pct_mean_1d,
          avg(ambient_temp_c) AS ambient_temp_c_mean_1d,
          {_cols(sums)}
        FROM {{scored}} GROUP BY vehicle_number, day
        """,
        scored=scored,
    )


# ------------------------------------------------------------------------------------------------
# The spine, faults and work orders as daily events
# ------------------------------------------------------------------------------------------------


def data_period(signal_days: DataFrame, faults: DataFrame, work_orders: DataFrame) -> DataFrame:
    """One row: the first day of telemetry (the time origin) and the last day any feed reports.

    A fleet that sends no telemetry (only a fault log and work orders) starts at its first fault, or at its
    first work order if it has no fault log either.
    """
    return sql(
        """
        SELECT coalesce(s.first_day, f.first_fault, w.first_order) AS first_day,
          greatest(s.last_telemetry, f.last_fault, w.last_order) AS last_day
        FROM (SELECT min(day) AS first_day, max(day) AS last_telemetry FROM {signal_days}) s
        CROSS JOIN (SELECT min(to_date(ts)) AS first_fault, max(to_date(ts)) AS last_fault FROM {faults}) f
        CROSS JOIN (SELECT min(to_date(opened_at)) AS first_order, max(to_date(opened_at)) AS last_order
                    FROM {work_orders}) w
        """,
        signal_days=signal_days,
        faults=faults,
        work_orders=work_orders,
    )


def vehicle_starts(vehicles: DataFrame, period: DataFrame) -> DataFrame:
    """Per vehicle, its record period: from commissioning (or the data start) to the last day of the data."""
    return sql(
        """
        SELECT /*+ BROADCAST(p) */ v.vehicle_number, v.vehicle_type, v.home_depot, v.commissioning_date,
          p.first_day, p.last_day, greatest(v.commissioning_date, p.first_day) AS start_day
        FROM {vehicles} v CROSS JOIN {period} p
        WHERE v.commissioning_date <= p.last_day
        """,
        vehicles=vehicles,
        period=period,
    )


def vehicle_day_spine(starts: DataFrame) -> DataFrame:
    """Every day of every vehicle, gaps included, so that a window of k days is exactly k rows."""
    return sql(
        """
        SELECT vehicle_number, vehicle_type, home_depot, commissioning_date, first_day,
          explode(sequence(start_day, last_day)) AS day
        FROM {starts}
        """,
        starts=starts,
    )


def count_fault_days(faults: DataFrame) -> DataFrame:
    """Faults per vehicle-day by grade, subsystem and code (wide)."""
    counts = [f"count_if({cond}) AS f__{name}" for name, cond in fault_categories().items()]
    majors = ", ".join(f"'{g}'" for g in contracts.MAJOR_GRADES)
    return sql(
        f"""
        SELECT vehicle_number, to_date(ts) AS day, {_cols(counts)}, count_if(grade IN ({majors})) AS f__major
        FROM {{faults}} GROUP BY vehicle_number, to_date(ts)
        """,
        faults=faults,
    )


def maintenance_days(work_orders: DataFrame, starts: DataFrame) -> DataFrame:
    """Work-order events per vehicle-day: the last replacement per component and the last inspection per
    level closed that day (with the odometer), and corrective work orders opened and closed.

    A level-L inspection also counts for every lower level (the higher level includes their work). Events
    before a vehicle's first record day are moved onto it, keeping their own date, so that history before the
    telemetry still sets 'days since'.
    """
    done = "named_struct('closed_at', closed_at, 'day', to_date(closed_at), 'odometer_km', odometer_km)"
    replaced = "action IN ('corrective_replacement', 'preventive_replacement') AND closed_at IS NOT NULL"
    inspected = "action = 'inspection' AND closed_at IS NOT NULL"
    completions = [
        f"max(CASE WHEN {replaced} AND component = '{c}' THEN {done} END) AS m__repl_{c}" for c in contracts.COMPONENTS
    ] + [
        f"max(CASE WHEN {inspected} AND maintenance_level >= {lvl} THEN {done} END) AS m__insp_{lvl}"
        for lvl in contracts.LEVELS
    ]
    return sql(
        f"""
        WITH orders AS (
          SELECT /*+ BROADCAST(s) */ o.*, s.start_day FROM {{work_orders}} o
          JOIN {{starts}} s ON o.vehicle_number = s.vehicle_number
        ),
        closed AS (
          SELECT vehicle_number, greatest(to_date(closed_at), start_day) AS day, {_cols(completions)},
            count_if(action = 'corrective_replacement') AS m__closed_corrective
          FROM orders WHERE closed_at IS NOT NULL GROUP BY 1, 2
        ),
        opened AS (
          SELECT vehicle_number, greatest(to_date(opened_at), start_day) AS day, count(*) AS m__opened_corrective
          FROM orders WHERE action = 'corrective_replacement' GROUP BY 1, 2
        )
        SELECT * FROM closed FULL JOIN opened USING (vehicle_number, day)
        """,
        work_orders=work_orders,
        starts=starts,
    )


# ------------------------------------------------------------------------------------------------
# Windows over the daily spine
# ------------------------------------------------------------------------------------------------


def join_daily_facts(spine: DataFrame, signal_days: DataFrame, fault_days: DataFrame, maint_days: DataFrame) -> DataFrame:
    """The dense spine with the day's sums, fault counts and events (zero where nothing happened), and the
    time axis: t = days since the data origin + hour of day, as per-day sums of t, t^2 and t*z."""
    per_signal = []
    for s in SIGNAL_COLUMNS:
        n, sh, shh, sz, shz = (f"coalesce(d.{s}__{k}, 0)" for k in ("n", "sh", "shh", "sz", "shz"))
        per_signal += [
            f"{n} AS {s}__n", f"{sz} AS {s}__sz", f"coalesce(d.{s}__szz, 0) AS {s}__szz",
            f"{n} * o + {sh} AS {s}__st", f"{n} * o * o + 2 * o * {sh} + {shh} AS {s}__stt",
            f"o * {sz} + {shz} AS {s}__stz", f"coalesce(d.{s}__nb, 0) AS {s}__nb",
            f"coalesce(d.{s}__sx, 0) AS {s}__sx", f"coalesce(d.{s}__snorm, 0) AS {s}__snorm",
            f"d.{s}__zmin", f"d.{s}__zmax",
        ]
    faults = [f"coalesce(f.f__{c}, 0) AS f__{c}" for c in (*fault_categories(), "major")]
    events = [f"m.m__repl_{c}" for c in contracts.COMPONENTS] + [f"m.m__insp_{lvl}" for lvl in contracts.LEVELS]
    return sql(
        f"""
        SELECT s.vehicle_number, s.day, s.vehicle_type, s.home_depot, s.commissioning_date,
          coalesce(d.readings, 0) AS readings, d.odo_end, d.odo_start,
          d.speed_kmh_mean_1d, d.load_pct_mean_1d, d.ambient_temp_c_mean_1d,
          {_cols(per_signal)},
          {_cols(faults)},
          {_cols(events)},
          coalesce(m.m__opened_corrective, 0) - coalesce(m.m__closed_corrective, 0) AS m__open_change
        FROM (SELECT *, CAST(datediff(day, first_day) AS DOUBLE) AS o FROM {{spine}}) s
        LEFT JOIN {{signal_days}} d ON s.vehicle_number = d.vehicle_number AND s.day = d.day
        LEFT JOIN {{fault_days}} f ON s.vehicle_number = f.vehicle_number AND s.day = f.day
        LEFT JOIN {{maint_days}} m ON s.vehicle_number = m.vehicle_number AND s.day = m.day
        """,
        spine=spine,
        signal_days=signal_days,
        fault_days=fault_days,
        maint_days=maint_days,
    )


def _additive_columns() -> list[str]:
    return [f"{s}__{k}" for s in SIGNAL_COLUMNS for k in (*_MOMENTS, "sx", "snorm")] + [
        f"f__{c}" for c in (*fault_categories(), "major")
    ] + ["km_1d"]


def _power_of_two_spans() -> list[int]:
    """1, 2, 4, ... up to the longest power of two within the longest window."""
    spans = [1]
    while spans[-1] * 2 <= max(WINDOWS):
        spans.append(spans[-1] * 2)
    return spans


def _extreme_span(extreme: str, span: int) -> str:
    """A helper column: the daily extreme (``zmin``/``zmax``) of a signal over the last ``span`` days."""
    return f"{extreme}" if span == 1 else f"{extreme}__{span}dspan"


def trailing_extremes(daily: DataFrame) -> DataFrame:
    """Rolling min and max of each signal's daily z extremes over every window, by doubling lags.

    A sliding ``ROWS BETWEEN w-1 PRECEDING`` frame makes Spark recompute min and max over the whole frame at
    each row (they cannot be subtracted like sums), for every signal and window. On the dense spine a lag of k
    rows is k days back, so the extreme over 2k days is the extreme of two k-day spans, ``least(m_k(t),
    m_k(t-k))``, and a window of w days, 2^k <= w < 2^(k+1), is covered by two overlapping 2^k spans:
    ``least(m_2^k(t), m_2^k(t - (w - 2^k)))``. Each step is a plain lag over the vehicle's ordered days
    (no frame), so the passes share one sort. Before a vehicle's first day a lag is null and least/greatest
    skip nulls, so partial windows hold exactly the days there are, like the frame did.
    """
    spans = _power_of_two_spans()
    extremes = [x for s in SIGNAL_COLUMNS for x in ((f"{s}__zmin", "least"), (f"{s}__zmax", "greatest"))]
    frame = daily
    for half, span in zip(spans, spans[1:]):
        doubled = [
            f"{pick}({_extreme_span(x, half)}, lag({_extreme_span(x, half)}, {half}) OVER by_vehicle)"
            f" AS {_extreme_span(x, span)}"
            for x, pick in extremes
        ]
        frame = sql(f"SELECT *, {_cols(doubled)} FROM {{frame}} WINDOW by_vehicle AS ({_BY_VEHICLE})", frame=frame)
    features = []
    for w in WINDOWS[1:]:
        span = max(k for k in spans if k <= w)
        for s in SIGNAL_COLUMNS:
            for stat, pick, extreme in (("min", "least", f"{s}__zmin"), ("max", "greatest", f"{s}__zmax")):
                covered = _extreme_span(extreme, span)
                rest = f", lag({covered}, {w - span}) OVER by_vehicle" if w > span else ""
                features.append(f"{pick}({covered}{rest}) AS {signal_feature(s, stat, w)}")
    helpers = [_extreme_span(x, span) for x, _ in extremes for span in spans[1:]]
    return sql(
        f"SELECT *, {_cols(features)} FROM {{frame}} WINDOW by_vehicle AS ({_BY_VEHICLE})", frame=frame
    ).drop(*helpers)


def running_totals(daily: DataFrame) -> DataFrame:
    """Rolling extremes, then running sums and carried-forward last events and odometer: passes over the
    vehicle's ordered days that share one sort.

    The day's distance is the odometer's advance since the last day it reported (or within the day).
    """
    cums = [f"sum({c}) OVER upto AS cum__{c}" for c in _additive_columns()]
    lasts = [f"last(m__{e}, true) OVER upto AS last__{e}" for e in
             [f"repl_{c}" for c in contracts.COMPONENTS] + [f"insp_{lvl}" for lvl in contracts.LEVELS]]
    return sql(
        f"""
        SELECT *, last(odo_end, true) OVER upto AS odometer_km,
          sum(m__open_change) OVER upto AS open_corrective_work_orders,
          {_cols(cums)},
          {_cols(lasts)}
        FROM (
          SELECT *, CASE WHEN odo_end IS NULL THEN 0.0
            ELSE odo_end - coalesce(last(odo_end, true) OVER ({_BY_VEHICLE} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                                    odo_start) END AS km_1d
          FROM {{daily}}
        )
        WINDOW upto AS {_UPTO}
        """,
        daily=trailing_extremes(daily),
    )


def window_sum_columns() -> dict[str, tuple[str, int]]:
    """Every trailing-window sum the features need: name -> (daily column, days)."""
    wanted = [(f"{s}__{k}", w) for s in SIGNAL_COLUMNS for k in _MOMENTS for w in WINDOWS[1:]]
    wanted += [(f"{s}__{k}", 7) for s in SIGNAL_COLUMNS for k in ("sx", "snorm")]
    wanted += [(f"f__{c}", w) for c in fault_categories() for w in WINDOWS[1:]]
    wanted += [("f__major", MAJOR_WINDOW_DAYS)] + [("km_1d", w) for w in WINDOWS[1:]]
    return {f"{c}__{w}d": (c, w) for c, w in wanted}


def window_sums(totals: DataFrame) -> DataFrame:
    """Trailing-window sums as differences of running sums (the dense spine makes lag k exactly k days back)."""
    sums = [
        f"cum__{c} - coalesce(lag(cum__{c}, {days}) OVER by_vehicle, 0) AS {name}"
        for name, (c, days) in window_sum_columns().items()
    ]
    return sql(
        f"SELECT *, {_cols(sums)} FROM {{totals}} WINDOW by_vehicle AS ({_BY_VEHICLE})",
        totals=totals,
    )


def _in_window(column: str, days: int) -> str:
    return column if days == 1 else f"{column}__{days}d"


def _signal_features(s: str, w: int) -> list[str]:
    n, sz, szz, st, stt, stz, nb = (_in_window(f"{s}__{k}", w) for k in _MOMENTS)
    spread = f"({n} * {stt} - {st} * {st})"
    extreme = {"min": f"{s}__zmin", "max": f"{s}__zmax"} if w == 1 else {
        "min": signal_feature(s, "min", w), "max": signal_feature(s, "max", w)}
    exprs = {
        "mean": f"CASE WHEN {n} > 0 THEN {sz} / {n} END",
        "std": f"CASE WHEN {n} > 1 THEN sqrt(greatest(0.0, ({szz} - {sz} * {sz} / {n}) / ({n} - 1))) END",
        "min": extreme["min"],
        "max": extreme["max"],
        "slope": f"CASE WHEN {n} > 1 AND {spread} > 1e-9 THEN ({n} * {stz} - {st} * {sz}) / {spread} END",
        "share_beyond": f"CASE WHEN {n} > 0 THEN {nb} / {n} END",
    }
    return [f"{exprs[stat]} AS {signal_feature(s, stat, w)}" for stat in SIGNAL_STATS]


def vehicle_day_columns() -> list[str]:
    """The record's columns in order (keys, context, signals, faults, maintenance)."""
    signal_names = [
        name for s in SIGNAL_COLUMNS for name in (
            *(signal_feature(s, stat, w) for w in WINDOWS for stat in SIGNAL_STATS), f"{s}_mean_7d", f"{s}_normal_7d",
        )
    ]
    return [
        "vehicle_number", "day", "vehicle_type", "home_depot", "age_days", "odometer_km",
        *(f"km_{w}d" for w in WINDOWS), "readings_1d", "speed_kmh_mean_1d", "load_pct_mean_1d",
        "ambient_temp_c_mean_1d", *signal_names,
        *(fault_feature(c, w) for c in fault_categories() for w in WINDOWS),
        f"faults_major_{MAJOR_WINDOW_DAYS}d", "recurring_codes_30d", "recurring_code_flag", "recurring_major_flag",
        "open_corrective_work_orders",
        *(f"{k}_since_replacement_{c}" for c in contracts.COMPONENTS for k in ("days", "km")),
        *(f"{k}_since_inspection_l{lvl}" for lvl in contracts.LEVELS for k in ("days", "km")),
    ]


def assemble_vehicle_days(sums: DataFrame) -> DataFrame:
    """The record's features from the window sums."""
    signals = []
    for s in SIGNAL_COLUMNS:
        for w in WINDOWS:
            signals += _signal_features(s, w)
        n7 = f"{s}__n__7d"
        signals += [
            f"CASE WHEN {n7} > 0 THEN {s}__sx__7d / {n7} END AS {s}_mean_7d",
            f"CASE WHEN {n7} > 0 THEN {s}__snorm__7d / {n7} END AS {s}_normal_7d",
        ]
    faults = [
        f"CAST({_in_window(f'f__{c}', w)} AS BIGINT) AS {fault_feature(c, w)}" for c in fault_categories() for w in WINDOWS
    ]
    recurring = " + ".join(
        f"CASE WHEN f__code_{code_slug(f.code)}__{RECURRING_WINDOW_DAYS}d >= {RECURRING_CODE_COUNT} THEN 1 ELSE 0 END"
        for f in contracts.FAULT_CODES
    ) or "0"  # a catalogue without fault codes
    major = f"f__major__{MAJOR_WINDOW_DAYS}d"
    maintenance = []
    for c in contracts.COMPONENTS:
        last = f"last__repl_{c}"
        maintenance += [
            f"CASE WHEN {fitted_sql(c)} THEN CAST(datediff(day, coalesce({last}.day, commissioning_date)) AS BIGINT) END"
            f" AS days_since_replacement_{c}",
            f"CASE WHEN {fitted_sql(c)} THEN odometer_km - coalesce({last}.odometer_km, 0.0) END AS km_since_replacement_{c}",
        ]
    for lvl in contracts.LEVELS:
        last = f"last__insp_{lvl}"
        maintenance += [
            f"CAST(datediff(day, coalesce({last}.day, commissioning_date)) AS BIGINT) AS days_since_inspection_l{lvl}",
            f"odometer_km - coalesce({last}.odometer_km, 0.0) AS km_since_inspection_l{lvl}",
        ]
    return sql(
        f"""
        SELECT vehicle_number, day, vehicle_type, home_depot,
          CAST(datediff(day, commissioning_date) AS BIGINT) AS age_days,
          odometer_km, km_1d, km_1d__7d AS km_7d, km_1d__30d AS km_30d,
          CAST(readings AS BIGINT) AS readings_1d, speed_kmh_mean_1d, load_pct_mean_1d, ambient_temp_c_mean_1d,
          {_cols(signals)},
          {_cols(faults)},
          CAST({major} AS BIGINT) AS faults_major_{MAJOR_WINDOW_DAYS}d,
          CAST({recurring} AS BIGINT) AS recurring_codes_30d,
          ({recurring}) > 0 AS recurring_code_flag,
          {major} >= {RECURRING_MAJOR_COUNT} AS recurring_major_flag,
          CAST(open_corrective_work_orders AS BIGINT) AS open_corrective_work_orders,
          {_cols(maintenance)}
        FROM {{sums}}
        """,
        sums=sums,
    ).select(*vehicle_day_columns())


def build_vehicle_days(telemetry: DataFrame, faults: DataFrame, work_orders: DataFrame, vehicles: DataFrame) -> DataFrame:
    """The whole transform: lake tables in, one record per vehicle-day out."""
    readings = cut_lineage(with_operating_regime(telemetry, vehicles))  # scanned once, read by two steps
    signal_days = cut_lineage(sum_signal_days(score_readings(readings, fit_regime_normals(readings))))
    starts = cut_lineage(vehicle_starts(vehicles, data_period(signal_days, faults, work_orders)))
    daily = join_daily_facts(
        vehicle_day_spine(starts), signal_days, count_fault_days(faults), maintenance_days(work_orders, starts)
    )
    totals = cut_lineage(running_totals(cut_lineage(daily)))
    return assemble_vehicle_days(cut_lineage(window_sums(totals)))


def run(session: SparkSession, settings: Settings) -> None:
    (vehicles,) = read_lake(session, settings, contracts.VEHICLES)
    # A fleet may send no telemetry or no fault log (its features are then null or zero), not no registry.
    telemetry, faults, work_orders = read_lake(
        session, settings, contracts.TELEMETRY, contracts.FAULTS, contracts.WORK_ORDERS, optional=True
    )
    records = build_vehicle_days(telemetry, faults, work_orders, vehicles)
    write_records(records, record_path(settings, VEHICLE_DAYS), sort_by=("vehicle_number",))


def main() -> None:  # pragma: no cover - exercised through spark-submit in the tests
    submit(run, "railpm-vehicle-days")


if __name__ == "__main__":  # pragma: no cover
    main()
