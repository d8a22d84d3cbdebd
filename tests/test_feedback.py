"""Feedback: append-only store, validation that names field and value, the trace, labels and weights, the CLI."""

from __future__ import annotations

import stat
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from typer.testing import CliRunner

from railpm import contracts
from railpm.cli import app
from railpm.errors import BadInputError
from railpm.feedback import (
    Feedback,
    feedback_dir_of,
    read_feedback,
    record_feedback,
    trace_predictions,
    training_labels,
)

D1, D2 = date(2025, 5, 1), date(2025, 6, 20)
NOW = datetime(2025, 7, 1, 9, 30, tzinfo=timezone.utc)

VEHICLES = pd.DataFrame(
    {
        "vehicle_number": ["EMU-0001", "EMU-0002", "WAG-0001"],
        "vehicle_type": ["EMU", "EMU", "WAGON"],
        "home_depot": ["DEP-NORTH", "DEP-SOUTH", "DEP-EAST"],
        "commissioning_date": [date(2015, 1, 1)] * 3,
        "daily_km_mean": [500.0] * 3,
    }
)


def prediction(day, vehicle, component, p=0.4, version="m1"):
    return {
        "scored_day": day, "vehicle_number": vehicle, "vehicle_type": "EMU", "home_depot": "DEP-NORTH",
        "component": component, "failure_probability": p, "risk_band": "high", "alert": True,
        "remaining_life_days": 12.0, "remaining_life_low_days": 6.0, "remaining_life_high_days": 25.0,
        "reasons": "[]", "model_version": version,
    }


PREDICTIONS = pd.DataFrame(
    [
        prediction(D1, "EMU-0001", "brake_unit"),
        prediction(D1, "EMU-0001", "doors"),
        prediction(D1, "EMU-0002", "wheelset"),
        prediction(D2, "EMU-0002", "wheelset", version="m2"),
        prediction(D2, "EMU-0001", "brake_unit", version="m2"),
    ]
)


def entry(**changes) -> Feedback:
    base = dict(kind="confirm", vehicle_number="EMU-0001", component="brake_unit", recorded_by="alice",
                scored_day=D1, model_version="m1")
    return Feedback(**(base | changes))


def test_each_entry_is_a_new_file_and_earlier_ones_are_never_touched(tmp_path):
    store = tmp_path / "lake" / "feedback"
    first = record_feedback(entry(), store, VEHICLES, predictions=PREDICTIONS, recorded_at=NOW)
    before = (first.read_bytes(), first.stat().st_mtime_ns)
    second = record_feedback(
        entry(kind="dismiss", recorded_by="bob", reason="sensor replaced last week, reading is an artefact"),
        store, VEHICLES, predictions=PREDICTIONS, recorded_at=NOW + timedelta(minutes=5),
    )

    assert second != first and sorted(store.iterdir()) == sorted([first, second])
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before
    assert stat.S_IMODE(first.stat().st_mode) == 0o444
    stored = read_feedback(store)
    assert list(stored.columns) == contracts.FEEDBACK.column_names
    assert list(stored["kind"]) == ["confirm", "dismiss"]
    assert list(stored["recorded_by"]) == ["alice", "bob"]
    assert stored["recorded_at"].iloc[0] == pd.Timestamp(NOW)
    assert stored["scored_day"].iloc[0] == D1
    assert stored["feedback_id"].is_unique


@pytest.mark.parametrize(
    "changes, field, value",
    [
        ({"kind": "approve"}, "kind", "'approve'"),
        ({"vehicle_number": "EMU-9999"}, "vehicle_number", "'EMU-9999'"),
        ({"component": "wheel"}, "component", "'wheel'"),
        ({"vehicle_number": "WAG-0001", "component": "doors"}, "component", "'doors'"),
        ({"recorded_by": "   "}, "recorded_by", "'   '"),
        ({"kind": "dismiss", "reason": "no"}, "reason", "'no'"),
        ({"reason": "x" * 501}, "reason", "'xxxxx"),
        ({"scored_day": None}, "scored_day", "None"),
        ({"model_version": "m7"}, "model_version", "'m7'"),
        ({"scored_day": date(2025, 5, 2)}, "scored_day", "'2025-05-02'"),
        ({"kind": "finding", "finding": "broken", "inspected_on": D1}, "finding", "'broken'"),
        ({"kind": "finding", "finding": "replaced"}, "inspected_on", "None"),
        ({"kind": "finding", "finding": "replaced", "inspected_on": date(2025, 8, 1)}, "inspected_on", "'2025-08-01'"),
        ({"kind": "finding", "finding": "replaced", "inspected_on": date(2025, 4, 1)}, "inspected_on", "'2025-04-01'"),
        ({"finding": "component_worn"}, "finding", "'component_worn'"),
    ],
)
def test_invalid_entries_name_the_field_and_value_and_write_nothing(tmp_path, changes, field, value):
    store = tmp_path / "feedback"
    with pytest.raises(BadInputError) as error:
        record_feedback(entry(**changes), store, VEHICLES, predictions=PREDICTIONS, recorded_at=NOW)
    message = str(error.value)
    assert f"feedback field {field!r} = {value}" in message
    assert error.value.rule == f"feedback_{field}"
    assert not store.exists() or not any(store.iterdir())


def feedback_rows(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {c: None for c in contracts.FEEDBACK.column_names}
            | {"feedback_id": f"f{i}", "model_version": None}
            | row
            for i, row in enumerate(rows)
        ],
        columns=contracts.FEEDBACK.column_names,
    )
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
    return frame


def test_trace_follows_each_prediction_to_its_outcome():
    plans = pd.DataFrame(
        [
            {"scored_day": D1, "vehicle_number": "EMU-0001", "component": None, "day": date(2025, 5, 3), "depot": "DEP-NORTH",
             "kind": "predictive_visit", "maintenance_level": 2},
            {"scored_day": D1, "vehicle_number": "EMU-0001", "component": "brake_unit", "day": date(2025, 5, 3), "depot": "DEP-NORTH",
             "kind": "inspection", "maintenance_level": 2},
            {"scored_day": D1, "vehicle_number": "EMU-0002", "component": "wheelset", "day": date(2025, 5, 5), "depot": "DEP-SOUTH",
             "kind": "ride_along", "maintenance_level": 2},
        ]
    )
    t = pd.Timestamp("2025-05-01T10:00:00Z")
    feedback = feedback_rows(
        {"kind": "confirm", "recorded_by": "alice", "recorded_at": t, "scored_day": D1, "vehicle_number": "EMU-0001",
         "component": "brake_unit", "model_version": "m1"},
        {"kind": "dismiss", "recorded_by": "bob", "recorded_at": t + pd.Timedelta(hours=2), "scored_day": D1,
         "vehicle_number": "EMU-0001", "component": "brake_unit", "model_version": "m1", "reason": "known sensor fault"},
        {"kind": "finding", "recorded_by": "carol", "recorded_at": t + pd.Timedelta(days=2), "vehicle_number": "EMU-0001",
         "component": "brake_unit", "finding": "component_worn", "inspected_on": date(2025, 5, 3)},
        {"kind": "finding", "recorded_by": "carol", "recorded_at": t + pd.Timedelta(days=3), "vehicle_number": "EMU-0001",
         "component": "brake_unit", "finding": "replaced", "inspected_on": date(2025, 5, 3)},  # corrects the one above
        {"kind": "finding", "recorded_by": "dave", "recorded_at": t, "vehicle_number": "EMU-0002",
         "component": "wheelset", "finding": "no_fault_found", "inspected_on": date(2025, 4, 20)},  # before the prediction
        {"kind": "confirm", "recorded_by": "erin", "recorded_at": t, "scored_day": D1, "vehicle_number": "EMU-0002",
         "component": "wheelset", "model_version": "m0"},  # on another model's prediction: not this one
    )
    failures = pd.DataFrame(
        {
            "vehicle_number": ["EMU-0001", "EMU-0002"],
            "component": ["doors", "wheelset"],
            "failed_at": pd.to_datetime(["2025-05-10T04:00:00Z", "2025-06-25T13:00:00Z"]),
        }
    )
    trace = trace_predictions(PREDICTIONS, plans, feedback, failures, horizon_days=30, as_of=date(2025, 6, 30))

    assert len(trace) == len(PREDICTIONS)
    got = trace.set_index(["scored_day", "vehicle_number", "component"])
    brake = got.loc[(D1, "EMU-0001", "brake_unit")]
    assert (brake["planned_day"], brake["planned_kind"], brake["planned_depot"]) == (date(2025, 5, 3), "inspection", "DEP-NORTH")
    assert (brake["decision"], brake["decided_by"], brake["decisions_recorded"]) == ("dismiss", "bob", 2)
    assert brake["decision_reason"] == "known sensor fault"
    assert (brake["finding"], brake["inspected_on"], brake["finding_by"]) == ("replaced", date(2025, 5, 3), "carol")
    assert brake["outcome"] == "no failure" and pd.isna(brake["failed_at"])

    doors = got.loc[(D1, "EMU-0001", "doors")]
    assert pd.isna(doors["planned_day"]) and pd.isna(doors["decision"]) and pd.isna(doors["finding"])
    assert doors["outcome"] == "failed" and doors["failed_at"] == pd.Timestamp("2025-05-10T04:00:00Z")

    wheel = got.loc[(D1, "EMU-0002", "wheelset")]
    assert wheel["planned_kind"] == "ride_along" and pd.isna(wheel["decision"]) and pd.isna(wheel["finding"])
    assert wheel["decisions_recorded"] == 0
    assert wheel["outcome"] == "no failure"  # it failed on 25 June, after this prediction's horizon
    assert got.loc[(D2, "EMU-0002", "wheelset"), "outcome"] == "failed"
    assert got.loc[(D2, "EMU-0001", "brake_unit"), "outcome"] == "open"  # horizon not over by 30 June
    assert pd.isna(got.loc[(D2, "EMU-0001", "brake_unit"), "finding"])  # the May finding predates it


def test_training_labels_complete_censored_rows_and_weigh_judgements_the_facts_bear_out():
    label = contracts.LABEL_FAILS_WITHIN_HORIZON
    days = pd.date_range("2025-04-01", "2025-05-10", freq="D")
    brake = pd.DataFrame({"vehicle_number": "EMU-0001", "component": "brake_unit", "day": days,
                          label: pd.array([False if d < pd.Timestamp("2025-04-20") else None for d in days], dtype="boolean")})
    judged = pd.DataFrame(
        {
            "vehicle_number": ["EMU-0002", "EMU-0002", "EMU-0002", "EMU-0001"],
            "component": ["wheelset", "doors", "hvac", "doors"],
            "day": pd.to_datetime([D1] * 4),
            label: pd.array([False, False, True, None], dtype="boolean"),
        }
    )
    records = pd.concat([brake, judged], ignore_index=True)
    t = pd.Timestamp("2025-05-02T10:00:00Z")
    feedback = feedback_rows(
        {"kind": "finding", "recorded_at": t, "vehicle_number": "EMU-0001", "component": "brake_unit",
         "finding": "component_worn", "inspected_on": date(2025, 5, 3)},
        {"kind": "finding", "recorded_at": t, "vehicle_number": "EMU-0001", "component": "doors",
         "finding": "no_fault_found", "inspected_on": date(2025, 5, 3)},
        {"kind": "dismiss", "recorded_at": t, "scored_day": D1, "vehicle_number": "EMU-0002", "component": "wheelset"},
        {"kind": "confirm", "recorded_at": t, "scored_day": D1, "vehicle_number": "EMU-0002", "component": "doors"},
        {"kind": "confirm", "recorded_at": t, "scored_day": D1, "vehicle_number": "EMU-0002", "component": "hvac"},
        {"kind": "dismiss", "recorded_at": t, "scored_day": D1, "vehicle_number": "EMU-0001", "component": "doors"},
    )
    out = training_labels(records, feedback, horizon_days=10)

    on_brake = out.iloc[: len(brake)].set_index("day")
    filled = on_brake.index[(on_brake.index >= "2025-04-23") & (on_brake.index < "2025-05-03")]
    assert on_brake.loc[filled, label].eq(True).all() and (on_brake.loc[filled, "label_source"] == "finding").all()
    assert on_brake.loc[:"2025-04-19", label].eq(False).all()  # observed labels are never changed
    assert (on_brake.loc[:"2025-04-19", "label_source"] == "observed").all()
    untouched = on_brake.index[(on_brake.index >= "2025-04-20") & (on_brake.index < "2025-04-23") | (on_brake.index >= "2025-05-03")]
    assert on_brake.loc[untouched, label].isna().all() and (on_brake.loc[untouched, "label_source"] == "censored").all()
    assert (on_brake["sample_weight"] == 1.0).all()

    assert list(out.iloc[len(brake):]["sample_weight"]) == [2.0, 1.0, 2.0, 1.0]
    assert out.iloc[-1:][label].isna().all()  # a dismissal never invents a label


# --------------------------------------------------------------------------------------------------
# Command line, on a lake written here
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    (root / "lake" / "vehicles").mkdir(parents=True)
    VEHICLES.to_parquet(root / "lake" / "vehicles" / "vehicles.parquet", index=False)
    (root / "predictions").mkdir()
    PREDICTIONS.to_parquet(root / "predictions" / "predictions.parquet", index=False)
    return root


def test_cli_records_decisions_and_findings_and_traces_them(data_root):
    runner = CliRunner()
    common = ["--vehicle", "EMU-0001", "--component", "brake_unit", "--data-root", str(data_root)]
    done = runner.invoke(app, ["feedback", "confirm", "--scored-day", "2025-05-01", "--user", "alice", *common])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["feedback", "finding", "--finding", "component_worn", "--inspected-on", "2025-05-03",
                               "--user", "carol", *common])
    assert done.exit_code == 0, done.output

    stored = read_feedback(feedback_dir_of(data_root / "lake"))
    assert list(stored["kind"]) == ["confirm", "finding"]
    assert stored["model_version"].iloc[0] == "m1"  # taken from the prediction it refers to

    refused = runner.invoke(app, ["feedback", "dismiss", "--scored-day", "2025-05-01", "--user", "bob", "--reason", "no", *common])
    assert refused.exit_code == 1
    assert "'reason' = 'no'" in refused.output
    refused = runner.invoke(app, ["feedback", "confirm", "--scored-day", "2025-05-02", "--user", "bob", *common])
    assert refused.exit_code == 1 and "'scored_day'" in refused.output
    assert len(read_feedback(feedback_dir_of(data_root / "lake"))) == 2

    shown = runner.invoke(app, ["feedback", "trace", "--scored-day", "2025-05-01", "--vehicle", "EMU-0001",
                                "--component", "brake_unit", "--data-root", str(data_root)], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "confirm" in shown.output and "alice" in shown.output and "component_worn" in shown.output
