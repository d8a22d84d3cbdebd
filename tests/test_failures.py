"""The one failure definition (railpm.failures): its edge cases once, and no feature leaking the failure's fault."""

from __future__ import annotations

import pandas as pd
import pytest

from railpm import contracts
from railpm.failures import FAULT_LEAD_DAYS, failures

DOOR_FAILURE = next(f for f in contracts.FAULT_CODES if f.component == "doors" and f.typical_grade in contracts.MAJOR_GRADES)
DOOR_WARNING = next(f for f in contracts.FAULT_CODES if f.component == "doors" and f.typical_grade not in contracts.MAJOR_GRADES)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def orders(*rows) -> pd.DataFrame:
    columns = ["work_order_id", "vehicle_number", "component", "action", "opened_at", "closed_at"]
    return pd.DataFrame([dict(zip(columns, r)) for r in rows], columns=columns)


def faults(*rows) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(["vehicle_number", "ts", "fault_code", "grade"], r)) for r in rows],
                        columns=["vehicle_number", "ts", "fault_code", "grade"])


def test_a_failure_is_a_corrective_work_order_dated_by_the_major_fault_that_led_to_it():
    work = orders(
        ("WO-1", "EMU-0001", "doors", "corrective_replacement", ts("2025-01-11T09:00"), ts("2025-01-11T15:00")),  # a day after its fault
        ("WO-2", "EMU-0001", "doors", "corrective_replacement", ts("2025-02-20T09:00"), None),  # its fault too long before
        ("WO-3", "EMU-0001", "doors", "preventive_replacement", ts("2025-03-01T09:00"), None),  # not a failure
        ("WO-4", "EMU-0002", "doors", "corrective_replacement", ts("2025-01-11T09:00"), None),  # another vehicle's fault
        ("WO-5", "EMU-0001", "doors", "corrective_replacement", ts("2025-04-02T09:00"), None),  # a minor fault does not date it
    )
    log = faults(
        ("EMU-0001", ts("2025-01-10T13:00"), DOOR_FAILURE.code, "A"),
        ("EMU-0001", ts("2025-02-20T09:00") - pd.Timedelta(days=FAULT_LEAD_DAYS, hours=1), DOOR_FAILURE.code, "A"),
        ("EMU-0001", ts("2025-04-01T09:00"), DOOR_WARNING.code, "C"),
    )
    found = failures(work, log).set_index("work_order_id")["failed_at"].sort_index()
    assert found.to_dict() == {
        "WO-1": ts("2025-01-10T13:00"),
        "WO-2": ts("2025-02-20T09:00"),
        "WO-4": ts("2025-01-11T09:00"),
        "WO-5": ts("2025-04-02T09:00"),
    }
    assert len(failures(work, faults())) == 4  # a fleet without a fault log: dated by the opening


@pytest.mark.slow
def test_no_failure_label_sees_its_own_fault_though_work_orders_open_after_it(spark, model_fleet):
    """The generator opens corrective work orders 1-30 hours after the failure's fault, often on the next day; a
    row labelled as failing later must not count a failure fault of its component logged on its own day."""
    import pyspark.sql.functions as F

    from railpm.jobs.records_io import record_path

    lake = model_fleet.lake_dir
    work = pd.read_parquet(lake / "work_orders", columns=["vehicle_number", "component", "action", "opened_at"])
    truth = pd.read_parquet(model_fleet.truth_dir / "failures.parquet")
    corrective = work[work["action"] == "corrective_replacement"].sort_values("opened_at")
    paired = pd.merge_asof(corrective, truth.sort_values("failed_at"), left_on="opened_at", right_on="failed_at",
                           by=["vehicle_number", "component"], direction="backward")
    assert (paired["opened_at"] > paired["failed_at"]).all()
    assert (paired["opened_at"].dt.date > paired["failed_at"].dt.date).sum() >= 5  # the delay crosses midnight often

    log = pd.read_parquet(lake / "faults", columns=["vehicle_number", "ts", "fault_code", "grade"])
    code_component = {f.code: f.component for f in contracts.FAULT_CODES if f.component}
    own = log[log["grade"].isin(contracts.MAJOR_GRADES)].assign(component=log["fault_code"].map(code_component)).dropna(subset=["component"])
    own = spark.createDataFrame(own.assign(day=own["ts"].dt.date)[["vehicle_number", "component", "day"]].drop_duplicates())
    records = spark.read.parquet(str(record_path(model_fleet, "component_days")))
    leaking = (records.where(F.col(contracts.LABEL_FAILS_WITHIN_HORIZON) & (F.col("comp_failure_faults_30d") > 0))
               .join(own, ["vehicle_number", "component", "day"])
               .where(F.col(contracts.LABEL_DAYS_TO_FAILURE) <= 2))
    assert leaking.count() == 0, leaking.select("vehicle_number", "component", "day", contracts.LABEL_DAYS_TO_FAILURE).limit(5).collect()
