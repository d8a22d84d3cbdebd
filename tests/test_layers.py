"""The data layers' one owner: where each table lives and how the steps read it back.

Two readers of predictions with different contracts are kept on purpose: the steps that act on predictions
(plan, feedback, trace) read one scored day strictly; analysis reads every scored day and takes "none yet"
as an empty frame.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from railpm import contracts, layers
from railpm.arrow import arrow_schema
from railpm.config import Settings
from railpm.errors import BadInputError, RailpmError
from railpm.planning.examples import example_inputs


def write_scored_day(predictions_dir, day: date, vehicles: int = 3):
    frame = example_inputs(vehicles, scored_day=day).predictions
    path = layers.predictions_path(predictions_dir, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=arrow_schema(contracts.PREDICTIONS), preserve_index=False), path)
    return frame


def test_record_tables_live_under_records_and_an_unknown_name_fails(tmp_path):
    settings = Settings(data_root=tmp_path)
    assert layers.record_dir(settings, layers.COMPONENT_DAYS) == tmp_path / "records" / "component_days"
    with pytest.raises(RailpmError, match="unknown record table 'component_day'.*component_days"):
        layers.record_dir(settings, "component_day")


def test_feedback_is_a_lake_feed(tmp_path):
    settings = Settings(data_root=tmp_path)
    assert layers.feedback_dir_of(settings.lake_dir) == layers.lake_table(settings, contracts.FEEDBACK) == tmp_path / "lake" / "feedback"


def test_read_predictions_gives_one_scored_day_the_latest_by_default(tmp_path):
    first = write_scored_day(tmp_path, date(2025, 6, 1), vehicles=2)
    latest = write_scored_day(tmp_path, date(2025, 6, 2), vehicles=3)
    (tmp_path / "notes.parquet.tmp").write_text("half a file")  # not a scored day's file

    assert [p.name for p in layers.predictions_files(tmp_path)] == ["predictions-2025-06-01.parquet", "predictions-2025-06-02.parquet"]
    got = layers.read_predictions(tmp_path)
    assert list(got.columns) == contracts.PREDICTIONS.column_names
    assert set(got["scored_day"]) == {date(2025, 6, 2)} and len(got) == len(latest)
    assert len(layers.read_predictions(tmp_path, date(2025, 6, 1))) == len(first)


def test_read_predictions_of_a_day_not_scored_names_the_latest(tmp_path):
    write_scored_day(tmp_path, date(2025, 6, 1))
    with pytest.raises(RailpmError, match=r"no predictions for 2025-05-31 under .* \(latest: 2025-06-01\)"):
        layers.read_predictions(tmp_path, date(2025, 5, 31))
    with pytest.raises(RailpmError, match="no Parquet files"):
        layers.read_predictions(tmp_path / "nothing-here")


def test_read_predictions_rejects_a_file_without_the_contract_columns(tmp_path):
    frame = example_inputs(2).predictions.drop(columns=["reasons"])
    frame.to_parquet(tmp_path / "predictions-2025-06-01.parquet", index=False)
    with pytest.raises(BadInputError, match=r"predictions lack columns \['reasons'\]") as caught:
        layers.read_predictions(tmp_path)
    assert caught.value.rule == "predictions_contract"


def test_prediction_history_holds_every_scored_day_and_none_yet_is_empty(tmp_path):
    assert layers.read_prediction_history(tmp_path / "predictions").empty
    assert list(layers.read_prediction_history(tmp_path).columns) == contracts.PREDICTIONS.column_names
    a = write_scored_day(tmp_path, date(2025, 6, 1), vehicles=2)
    b = write_scored_day(tmp_path, date(2025, 6, 2), vehicles=3)
    history = layers.read_prediction_history(tmp_path)
    assert len(history) == len(a) + len(b)
    assert sorted(pd.to_datetime(history["scored_day"]).dt.date.unique()) == [date(2025, 6, 1), date(2025, 6, 2)]


def test_read_table_reads_hive_partitions_and_names_a_missing_column(tmp_path):
    table = tmp_path / "lake" / "faults"
    for day, n in (("2025-01-01", 2), ("2025-01-02", 1)):
        (table / f"day={day}").mkdir(parents=True)
        pd.DataFrame({"vehicle_number": [f"V{i}" for i in range(n)]}).to_parquet(table / f"day={day}" / "part-1.parquet")
    frame = layers.read_table(table)
    assert sorted(frame["day"].astype(str)) == ["2025-01-01", "2025-01-01", "2025-01-02"]
    with pytest.raises(BadInputError, match=r"lacks columns \['grade'\]") as caught:
        layers.read_table(table, ["vehicle_number", "grade"])
    assert caught.value.rule == "columns_present"


def test_plans_are_written_whole_and_found_per_scored_day(tmp_path):
    for day in (date(2025, 6, 2), date(2025, 6, 1)):
        folder = layers.plan_folder(tmp_path, day)
        folder.mkdir(parents=True)
        written = layers.write_atomically(pd.DataFrame({"day": [day]}), folder, "inspection_plan")
        assert [p.name for p in written] == ["inspection_plan.parquet", "inspection_plan.csv"]
    assert not [p for p in tmp_path.rglob(".*")], "no temporary file is left behind"
    assert [p.parent.name for p in layers.plan_files(tmp_path, "inspection_plan")] == ["2025-06-01", "2025-06-02"]
    assert layers.plan_files(tmp_path, "spares_plan") == []
