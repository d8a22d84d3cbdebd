"""End to end: a small dirty fleet from the generator through a real ``airflow dags test fleet_ingest``.

Every record the generator spoiled (``truth/dirt.parquet``) must end where the brief says, under the right
rule; no clean record may be quarantined; every run record reconciles; a second run adds nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers import run_dag_test, run_marked

from railpm import contracts
from railpm.config import DirtRates, FleetSettings, Settings
from railpm.ingest.runs import read_run_records
from railpm.synth import generate_fleet
from railpm.synth.dirt import DIRT_KINDS, quarantine_rule

pytestmark = pytest.mark.slow

DIRT = DirtRates(duplicate=0.01, late=0.01, out_of_order=0.02, dropout=0.01, stuck=0.05, wrong_unit=0.01, unknown_vehicle=0.01, malformed=0.01)


@pytest.fixture(scope="module")
def ingested_fleet(tmp_path_factory, airflow_env) -> Settings:
    fleet = FleetSettings(vehicles=8, days=60, seed=11, vehicles_per_file=4, telemetry_format="csv", dirt=DIRT)
    settings = Settings(data_root=tmp_path_factory.mktemp("fleet") / "data", fleet=fleet)
    generate_fleet(fleet, settings.landing_dir, settings.truth_dir)
    run_dag_test(airflow_env, "fleet_ingest", settings.data_root, extra_env={"RAILPM_FLEET__DAYS": str(fleet.days)})
    return settings


INGEST_EVENTS = """
import json
from sqlalchemy import select
from airflow.models.asset import AssetEvent, AssetModel
from airflow.utils.session import create_session
with create_session() as session:
    rows = session.execute(select(AssetModel.name, AssetEvent.source_task_id, AssetEvent.source_run_id, AssetEvent.extra)
                           .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                           .where(AssetEvent.source_dag_id == "fleet_ingest")).all()
print("EVENTS " + json.dumps([list(row) for row in rows]))
"""


def ingest_asset_events(airflow_env: dict[str, str]) -> list[list]:
    """The lake Asset events fleet_ingest runs published, read from Airflow's metadata DB."""
    return run_marked(INGEST_EVENTS, "EVENTS", airflow_env)


def read_all(folder: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.rglob("*.parquet"))], ignore_index=True)


def test_every_dirty_record_ends_where_it_should_and_no_clean_record_is_quarantined(ingested_fleet):
    settings = ingested_fleet
    dirt = pd.read_parquet(settings.truth_dir / "dirt.parquet")
    assert set(dirt["kind"]) == set(DIRT_KINDS)
    # A vehicle the registry never learns of is held (rule vehicle_known), not quarantined: it may still come.
    quarantine = pd.concat([read_all(settings.quarantine_dir), read_all(settings.held_dir)], ignore_index=True)
    quarantine = quarantine.rename(columns={"_source_file": "file", "_source_row": "row"})
    found = dirt.merge(quarantine[["file", "row", "_rules"]], on=["file", "row"], how="left")

    expected = pd.Series([quarantine_rule(kind, column) for kind, column in zip(found["kind"], found["column"])], dtype=object)
    spoilt = expected.notna()
    rules = found["_rules"].fillna("").str.split(",")
    assert [e in r for e, r in zip(expected[spoilt], rules[spoilt])] == [True] * int(spoilt.sum())
    assert found.loc[~spoilt, "_rules"].isna().all(), "duplicates, late and out-of-order records are not quarantined"

    clean = quarantine.merge(dirt[["file", "row"]], on=["file", "row"], how="left", indicator=True)
    assert (clean["_merge"] == "both").all(), clean.loc[clean["_merge"] != "both", ["file", "row", "_rules"]]

    records = read_run_records(settings.runs_dir)
    assert sum(r["duplicates_removed"] for r in records) == (dirt["kind"] == "duplicate").sum()
    late_and_shuffled = dirt[dirt["kind"].isin(["late", "out_of_order"]) & (dirt["feed"] == "telemetry")]
    lake = pd.read_parquet(settings.lake_dir / "telemetry")
    lake_keys = set(lake["vehicle_number"] + "|" + lake["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert set(late_and_shuffled["key"]) <= lake_keys
    assert (lake["ts"].dt.strftime("%Y-%m-%d") == lake["day"].astype(str)).all()


def test_every_run_record_reconciles_and_the_lake_holds_each_key_once(ingested_fleet):
    settings = ingested_fleet
    records = read_run_records(settings.runs_dir)
    summary = pd.read_json(settings.truth_dir / "fleet_summary.json", typ="series")
    assert {r["status"] for r in records} == {"ingested"}
    for record in records:
        assert record["rows_in"] == record["accepted"] + record["quarantined"] + record["duplicates_removed"] + record["held"], record
    for feed_name, feed in contracts.FEEDS.items():
        mine = [r for r in records if r["feed"] == feed_name]
        assert sum(r["rows_in"] for r in mine) == summary["records_by_feed"][feed_name], "every landing record counted"
        lake = pd.read_parquet(settings.lake_dir / feed_name)
        assert len(lake) == sum(r["accepted"] for r in mine)
        assert not lake.duplicated(list(feed.key)).any()
    assert (settings.data_docs_dir / "index.html").exists()
    pages = list((settings.data_docs_dir / "validations").rglob("*.html"))
    assert len(pages) == len(records)


def test_a_second_dag_run_adds_nothing(ingested_fleet, airflow_env):
    settings = ingested_fleet
    # The first run published every lake table at once: one event per table, all from its one publishing task,
    # naming the landing files behind it (one ingest run must start one fleet_records run, not one per table).
    events = ingest_asset_events(airflow_env)
    assert sorted(name for name, *_ in events) == sorted(f"railpm.lake.{feed}" for feed in contracts.FEEDS)
    assert {(task, run) for _, task, run, _ in events} == {("publish_lake_tables", events[0][2])}
    landing = {p.relative_to(settings.landing_dir).as_posix() for p in settings.landing_dir.rglob("*") if p.is_file()}
    assert {f for *_, extra in events for f in extra["landing_files"]} == landing
    layers = (settings.lake_dir, settings.quarantine_dir, settings.runs_dir)
    before = {p: p.read_bytes() for folder in layers for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".lock")}
    run_dag_test(airflow_env, "fleet_ingest", settings.data_root, extra_env={"RAILPM_FLEET__DAYS": "60"})
    after = {p: p.read_bytes() for folder in layers for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".lock")}
    assert after == before
    assert ingest_asset_events(airflow_env) == events  # nothing new, nothing published
