"""The one failure definition: the labels, the RAMS figures and the audit trail all date a failure by it.

A component **fails** when a ``corrective_replacement`` work order is opened for it. The failure's **time** is the
earlier of that opening and the major fault (grade A/B, a code of that component) logged on the same vehicle
within :data:`FAULT_LEAD_DAYS` before the opening: a work order is often opened hours or days after the fault
that stopped the vehicle, and dating the failure by the opening alone would let that very fault "warn" of a
failure that had already happened (it would leak into the fault-count features of the days in between).

The rule is one SQL statement, run as it is by Spark (the record jobs) and by DuckDB (the audit trail, over
pandas frames), so no second copy of it can drift.
"""

from __future__ import annotations

import pandas as pd

from railpm import contracts

FAILURE_ACTION = "corrective_replacement"
FAULT_LEAD_DAYS = 3
"""How long before a corrective work order's opening its component's major fault still dates the failure."""
FAILURE_COLUMNS = ("work_order_id", "vehicle_number", "component", "opened_at", "closed_at", "failed_at")


def failures_sql(work_orders: str, faults: str) -> str:
    """SQL over two relations (work orders, faults): one row per failure, :data:`FAILURE_COLUMNS`."""
    arms = " ".join(
        f"WHEN '{f.code}' THEN '{f.component}'" for f in contracts.FAULT_CODES if f.component
    )
    code_component = f"CASE fault_code {arms} END" if arms else "CAST(NULL AS STRING)"
    majors = ", ".join(f"'{g}'" for g in contracts.MAJOR_GRADES)
    return f"""
        SELECT o.work_order_id, o.vehicle_number, o.component, o.opened_at, o.closed_at,
          least(o.opened_at, coalesce(min(f.ts), o.opened_at)) AS failed_at
        FROM (SELECT * FROM {work_orders} WHERE action = '{FAILURE_ACTION}' AND component IS NOT NULL) o
        LEFT JOIN (SELECT vehicle_number, ts, {code_component} AS component FROM {faults} WHERE grade IN ({majors})) f
          ON f.vehicle_number = o.vehicle_number AND f.component = o.component
          AND f.ts <= o.opened_at AND f.ts >= o.opened_at - INTERVAL {FAULT_LEAD_DAYS} DAYS
        GROUP BY o.work_order_id, o.vehicle_number, o.component, o.opened_at, o.closed_at
    """


def failures(work_orders: pd.DataFrame, faults: pd.DataFrame) -> pd.DataFrame:
    """The failures of small pandas frames (one vehicle's trail, a test) by the same SQL, through DuckDB."""
    import duckdb

    # An empty frame read from nowhere has object columns, which DuckDB binds as NULL: no interval arithmetic.
    work_orders = work_orders.assign(**{c: pd.to_datetime(work_orders[c], utc=True) for c in ("opened_at", "closed_at")})
    faults = faults.assign(ts=pd.to_datetime(faults["ts"], utc=True))
    with duckdb.connect() as con:
        con.register("work_orders", work_orders)
        con.register("faults", faults)
        return con.execute(failures_sql("work_orders", "faults").replace("AS STRING", "AS VARCHAR")).df()
