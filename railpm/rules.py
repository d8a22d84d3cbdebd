"""The service rules, each stated once: recurring faults, vehicle escalation, and the A-grade response clocks.

Every place that applies a rule takes it from here: the Spark records (``jobs.vehicle_days``), the dossier
(``jobs.vehicle_dossier``), the RAMS figures (``jobs.fleet_rams``), the review app (``review.data``) and
planning (``planning.run``). Spark and DuckDB run the same SQL window (``trailing_days``) over an integer day
number; the pandas functions below run that SQL in DuckDB, so there is one definition of each window.

- **Recurring fault**: the same fault code on the same vehicle ``RECURRING_CODE_COUNT`` (3) times within
  ``RECURRING_WINDOW_DAYS`` (30) *calendar days* ``[D-29, D]``, the fault's UTC day ``D`` included. Faults on
  days 0, 15 and 30 are **not** recurring (day 0 is outside [1, 30]); on days 0, 15 and 29 they are.
  It creates one replacement work request for the code's component per vehicle and window: the request is
  raised on the day the count reaches 3, and a further trigger for the same vehicle and component within the
  window that raised it (``[R, R+29]``) adds to that request instead of raising another.
- **Vehicle escalation**: ``MAJOR_COUNT`` (4) or more A/B faults on one vehicle within ``MAJOR_WINDOW_DAYS``
  (365) calendar days ``[D-364, D]``; it raises one overhaul review per vehicle and window the same way.
- **Response clocks** of an A-grade fault, from the fault's timestamp to the work order raised for it (the
  first corrective work order on the vehicle opened at or after the fault, within ``RESPONSE_MATCH_HOURS``):
  *feedback* within ``FEEDBACK_HOURS`` (2 h) is measured to the work order's opening; *on site* within
  ``ON_SITE_HOURS`` (8 h) to its ``on_site_at`` event when the work-order feed carries one, else to its
  closing: a closed work order means someone was on site by then, so that measure is an upper bound and
  the on-time rate a lower bound. A fault no work order answered is late on both clocks.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from railpm import contracts

RECURRING_CODE_COUNT = 3
RECURRING_WINDOW_DAYS = 30
MAJOR_COUNT = 4
MAJOR_WINDOW_DAYS = 365
FEEDBACK_HOURS = 2.0
ON_SITE_HOURS = 8.0
RESPONSE_MATCH_HOURS = 72.0
"""A work order opened this long after an A-grade fault no longer answers it."""

WORK_REQUEST_COLUMNS = ["kind", "vehicle_number", "component", "fault_code", "raised_day", "window_end", "faults",
                        "rule"]
CLOCK_COLUMNS = ["event_id", "vehicle_number", "depot", "ts", "work_order_id", "feedback_hours", "on_site_hours",
                 "on_site_measured_by", "feedback_on_time", "on_site_on_time"]


def trailing_days(days: int) -> str:
    """SQL window frame: the ``days`` calendar days ending with the row's day, over an integer day number."""
    return f"RANGE BETWEEN {days - 1} PRECEDING AND CURRENT ROW"


def same_code_count(day_number: str) -> str:
    """SQL: occurrences of the row's fault code on its vehicle within the recurring window (Spark and DuckDB)."""
    return (f"count(*) OVER (PARTITION BY vehicle_number, fault_code ORDER BY {day_number} "
            f"{trailing_days(RECURRING_WINDOW_DAYS)})")


def major_count(day_number: str) -> str:
    """SQL: A/B faults on the row's vehicle within the escalation window, over a frame of A/B faults only."""
    return f"count(*) OVER (PARTITION BY vehicle_number ORDER BY {day_number} {trailing_days(MAJOR_WINDOW_DAYS)})"


DUCKDB_DAY = "(CAST(ts AS DATE) - DATE '1970-01-01')"
"""The fault's UTC day as an integer in DuckDB (sessions run in UTC); Spark uses ``unix_date(to_date(ts))``."""
MAJORS_SQL = ", ".join(f"'{g}'" for g in contracts.MAJOR_GRADES)


def _duckdb(sql: str, **frames: pd.DataFrame) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, frame in frames.items():
            con.register(name, frame)
        return con.execute(sql).df()
    finally:
        con.close()


def counted_faults(faults: pd.DataFrame) -> pd.DataFrame:
    """Every fault with its same-code count in the recurring window (``n_code``) and, for A/B faults, the
    vehicle's A/B count in the escalation window (``n_major``, null for grade C)."""
    frame = faults[["vehicle_number", "fault_code", "grade", "ts"]].copy()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return _duckdb(
        f"""
        WITH f AS (SELECT *, {DUCKDB_DAY} AS day_number FROM faults),
        coded AS (SELECT *, {same_code_count('day_number')} AS n_code FROM f),
        majors AS (SELECT vehicle_number, fault_code, ts, {major_count('day_number')} AS n_major
                   FROM f WHERE grade IN ({MAJORS_SQL}))
        SELECT c.vehicle_number, c.fault_code, c.grade, c.ts, CAST(c.ts AS DATE) AS day, c.n_code, max(m.n_major) AS n_major
        FROM coded c LEFT JOIN majors m
          ON c.vehicle_number = m.vehicle_number AND c.fault_code = m.fault_code AND c.ts = m.ts
        GROUP BY ALL ORDER BY c.vehicle_number, c.ts, c.fault_code
        """,
        faults=frame,
    )


def _one_per_window(triggers: pd.DataFrame, keys: list[str], window_days: int) -> pd.DataFrame:
    """The first trigger of each key, then the first one past the window that raised the previous request."""
    rows = []
    for key, group in triggers.sort_values([*keys, "day"]).groupby(keys, sort=True):
        raised = None
        for row in group.itertuples(index=False):
            if raised is None or (row.day - raised).days >= window_days:
                raised = row.day
                rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "fault_code": row.fault_code,
                             "raised_day": row.day, "window_end": row.day + pd.Timedelta(days=window_days - 1)})
    return pd.DataFrame(rows)


def work_requests(faults: pd.DataFrame) -> pd.DataFrame:
    """The work the rules create from a fault log: ``replace_component`` per recurring fault (vehicle, component,
    window) and ``vehicle_escalation`` (an overhaul review) per vehicle and escalation window."""
    counted = counted_faults(faults)
    counted["day"] = pd.to_datetime(counted["day"])
    component = {code: f.component for code, f in contracts.FAULT_CODE_BY_CODE.items()}
    counted["component"] = counted["fault_code"].map(component)
    recurring = counted.loc[(counted["n_code"] >= RECURRING_CODE_COUNT) & counted["component"].notna()]
    replace = _one_per_window(recurring, ["vehicle_number", "component"], RECURRING_WINDOW_DAYS)
    escalate = _one_per_window(counted.loc[counted["n_major"] >= MAJOR_COUNT], ["vehicle_number"], MAJOR_WINDOW_DAYS)
    parts = []
    if len(replace):
        parts.append(replace.assign(kind="replace_component",
                                    rule=f"same code {RECURRING_CODE_COUNT}x in {RECURRING_WINDOW_DAYS} days"))
    if len(escalate):
        parts.append(escalate.assign(kind="vehicle_escalation", component=None, fault_code="A/B",
                                     rule=f"{MAJOR_COUNT}+ A/B faults in {MAJOR_WINDOW_DAYS} days"))
    if not parts:
        return pd.DataFrame(columns=WORK_REQUEST_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["faults"] = [_faults_in(counted, r) for r in out.itertuples(index=False)]
    for column in ("raised_day", "window_end"):
        out[column] = pd.to_datetime(out[column]).dt.date
    return out[WORK_REQUEST_COLUMNS].sort_values(["raised_day", "vehicle_number", "kind"]).reset_index(drop=True)


def _faults_in(counted: pd.DataFrame, request) -> int:
    """Faults behind a request: its rule's faults from the window before it was raised to the end of its window."""
    days = RECURRING_WINDOW_DAYS if request.kind == "replace_component" else MAJOR_WINDOW_DAYS
    first = pd.Timestamp(request.raised_day) - pd.Timedelta(days=days - 1)
    pick = (counted["vehicle_number"] == request.vehicle_number) & counted["day"].between(first, pd.Timestamp(request.window_end))
    pick &= (counted["component"] == request.component) if request.kind == "replace_component" else counted["grade"].isin(contracts.MAJOR_GRADES)
    return int(pick.sum())


def response_clocks_sql(faults: str, orders: str, micros: str) -> str:
    """SQL (Spark and DuckDB) of the clocks: one row per A-grade fault of ``faults`` with the work order of ``orders``
    that answered it. ``orders`` has work_order_id, vehicle_number, action, opened_at, on_site_event; ``micros``
    names the dialect's timestamp-to-microseconds function (Spark ``unix_micros``, DuckDB ``epoch_us``)."""
    hours = f"({micros}(o.opened_at) - {micros}(f.ts)) / 3.6e9"
    return f"""
        WITH answered AS (
          SELECT f.event_id, f.vehicle_number, f.depot, f.ts, min_by(o.work_order_id, o.opened_at) AS work_order_id,
            min(o.opened_at) AS opened_at, min_by(o.on_site_event, o.opened_at) AS on_site_event
          FROM (SELECT * FROM {faults} WHERE grade = 'A') f
          LEFT JOIN (SELECT * FROM {orders} WHERE action = 'corrective_replacement') o
            ON o.vehicle_number = f.vehicle_number AND o.opened_at >= f.ts AND {hours} <= {RESPONSE_MATCH_HOURS}
          GROUP BY f.event_id, f.vehicle_number, f.depot, f.ts
        )
        SELECT event_id, vehicle_number, depot, ts, work_order_id,
          ({micros}(opened_at) - {micros}(ts)) / 3.6e9 AS feedback_hours,
          ({micros}(on_site_event) - {micros}(ts)) / 3.6e9 AS on_site_hours,
          coalesce(({micros}(opened_at) - {micros}(ts)) / 3.6e9 <= {FEEDBACK_HOURS}, false) AS feedback_on_time,
          coalesce(({micros}(on_site_event) - {micros}(ts)) / 3.6e9 <= {ON_SITE_HOURS}, false) AS on_site_on_time
        FROM answered
        """


def on_site_column(columns) -> str:
    """The work-order event on-site time is measured to: ``on_site_at`` if the feed has it, else ``closed_at``."""
    return "on_site_at" if "on_site_at" in columns else "closed_at"


def response_clocks(faults: pd.DataFrame, work_orders: pd.DataFrame) -> pd.DataFrame:
    """One row per A-grade fault: hours to feedback and to on site, and whether each was on time."""
    on_site = on_site_column(work_orders.columns)
    orders = work_orders[["work_order_id", "vehicle_number", "action", "opened_at", on_site]].rename(columns={on_site: "on_site_event"})
    a = faults[["event_id", "vehicle_number", "depot", "ts", "grade"]].copy()
    for frame, columns in ((a, ["ts"]), (orders, ["opened_at", "on_site_event"])):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    clocks = _duckdb(response_clocks_sql("a", "orders", "epoch_us") + " ORDER BY ts, event_id", a=a, orders=orders)
    clocks["on_site_measured_by"] = on_site
    return clocks[CLOCK_COLUMNS]
