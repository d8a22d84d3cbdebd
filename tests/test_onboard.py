"""Bring your own fleet: exports + mapping files -> landing files, through the real gate and the record jobs.

The example fleet brings its own catalogue, which railpm reads when it is imported (it fixes the contracts), so
its ingest and Spark record jobs run in a child process with the fleet's ``railpm.env``, as a user runs them,
like the public data sets' tests; everything else runs here.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from railpm import contracts
from railpm.cli import app
from railpm.config import Settings
from railpm.onboard import MAPPINGS_DIR, MappingError, load_mapping, onboard, write_onboarded
from railpm.onboard import units

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "own_fleet"
DATASETS = REPO.parent / "shared" / "datasets"


def _data_lines(path: Path, title_lines: int = 0, delimiter: str = ",") -> int:
    with path.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.reader(handle, delimiter=delimiter)) - 1 - title_lines


INGEST_AND_RECORDS = textwrap.dedent("""
    import json, sys
    from datetime import datetime, timezone
    from railpm.config import Settings, SparkSettings
    from railpm.ingest import ingest_landing
    from railpm.jobs import component_days, vehicle_days
    from railpm.jobs.spark import build_session

    settings = Settings()
    records = ingest_landing(settings, reference_time=datetime(2025, 6, 1, tzinfo=timezone.utc))
    spark = build_session(SparkSettings(master="local[1]", shuffle_partitions=1, driver_memory="1g"), app_name="onboard-test")
    vehicle_days.run(spark, settings)
    component_days.run(spark, settings)
    spark.stop()
    json.dump(records, open(sys.argv[1], "w"), default=str)
""")


@pytest.mark.slow
def test_example_exports_onboard_ingest_and_build_records_with_every_record_accounted_for(tmp_path):
    data = tmp_path / "data"
    command = ["onboard", str(EXAMPLES), "--mapping", str(EXAMPLES / "mappings"), "--data-root", str(data)]
    dry = CliRunner().invoke(app, [*command, "--dry-run"])
    assert dry.exit_code == 0 and "nothing written" in dry.output and not data.exists(), dry.output
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "railpm ingest will quarantine" in result.output.replace("`", "") and "7777" in result.output
    profile = json.loads((data / "onboard" / "profile.json").read_text())
    sources = {f"{s['mapping']}/{s['source']}": s for s in profile["sources"]}

    # every source row is landed, held (with file, line and reason) or folded: counted against the files themselves
    exports = {"register/fleet_register": _data_lines(EXAMPLES / "register" / "fleet_register.csv", 1, ";"),
               "tcms/tcms_events": _data_lines(EXAMPLES / "tcms" / "event_log_2025Q1.csv"),
               "sap_pm/malfunction_reports": _data_lines(EXAMPLES / "sap_pm" / "IW69_notifications.csv", 0, ";"),
               "sap_pm/orders": _data_lines(EXAMPLES / "sap_pm" / "IW69_notifications.csv", 0, ";"),
               "condition_monitoring/cm_readings": _data_lines(EXAMPLES / "condition_monitoring" / "cm_readings.csv")}
    assert set(sources) == set(exports)
    for name, lines in exports.items():
        source = sources[name]
        assert source["rows_in"] == lines == source["landed"] + source["held"] + source["folded"], name
        if source["held"]:
            held = pd.read_csv(source["held_file"], dtype=str)
            assert len(held) == source["held"] and held["reason"].notna().all() and held["line"].notna().all()
    sap_held = pd.read_csv(sources["sap_pm/malfunction_reports"]["held_file"], dtype=str).set_index("line")
    assert "does not exist or is ambiguous in Europe/Berlin" in sap_held.loc["43", "reason"]  # 02:30 on the spring change
    assert sap_held.loc["42", "reason"] == "grade: '9' is not in the lookup"
    assert sources["tcms/tcms_events"]["held_reasons"] == {"skipped: informational events are not faults": 63}

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAILPM_")}
    env.update(line.split("=", 1) for line in (data / "railpm.env").read_text().splitlines())
    out = tmp_path / "runs.json"
    done = subprocess.run([sys.executable, "-c", INGEST_AND_RECORDS, str(out)], env=env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = {r["file"]: r for r in json.loads(out.read_text())}

    # every landed row is accepted, quarantined with its rule, or a duplicate; the preview named the gate's rules
    assert set(runs) == {f"{key}.parquet" for key in profile["feeds"]}
    for key, entry in profile["feeds"].items():
        run = runs[f"{key}.parquet"]
        assert run["status"] == "ingested" and run["rows_in"] == entry["rows"]
        assert run["accepted"] + run["quarantined"] + run["duplicates_removed"] + run.get("held", 0) == run["rows_in"]
        assert run["rules"] == entry["rules"], key
    assert runs["faults/tcms.parquet"]["rules"] == {"depot_not_null": 1, "fault_code_allowed": 1, "subsystem_not_null": 1,
                                                    "vehicle_known": 1, "vehicle_type_not_null": 1}
    assert runs["telemetry/condition_monitoring.parquet"]["rules"] == {"converter_temp_c_in_range": 1}
    quarantined = pd.read_parquet(data / runs["faults/tcms.parquet"]["quarantine_file"])
    assert sorted(quarantined["fault_code"]) == ["3101", "7777"]

    # the records: every registered vehicle, its own signals, and the converter failure SAP reports on 7 March
    # (08:40 in Berlin), labelled on the days before it
    import pyarrow.dataset as pads

    days = pads.dataset(data / "records" / "component_days", format="parquet", partitioning="hive").to_table(
        columns=["vehicle_number", "day", "component", "label_days_to_failure"]).to_pandas()
    assert sorted(days["vehicle_number"].unique()) == [f"ET490-00{i}" for i in range(1, 7)]
    converter = days[(days["vehicle_number"] == "ET490-002") & (days["component"] == "traction_converter")]
    labelled = converter.dropna(subset=["label_days_to_failure"]).sort_values("day")
    assert labelled["day"].iloc[-1].isoformat() == "2025-03-06" and labelled["label_days_to_failure"].iloc[-1] == 1
    vehicle_days = pads.dataset(data / "records" / "vehicle_days", format="parquet", partitioning="hive").to_table(
        columns=["vehicle_number", "converter_temp_c_z_mean_7d"]).to_pandas()
    assert vehicle_days["converter_temp_c_z_mean_7d"].notna().any()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_a_mapping_with_a_typo_names_the_file_key_and_line(tmp_path):
    text = (EXAMPLES / "mappings" / "tcms.yaml").read_text()
    line = text.splitlines().index("      fault_code: {from: event_code}") + 1
    typo = _write(tmp_path / "tcms.yaml", text.replace("fault_code: {from: event_code}", "fault_code: {form: event_code}"))
    with pytest.raises(MappingError) as raised:
        load_mapping(typo)
    message = str(raised.value)
    assert f"line {line}" in message and str(typo) in message
    assert "sources[0].columns.fault_code.form: unknown key (did you mean 'from'?)" in message

    wrong_column = _write(tmp_path / "column.yaml", text.replace("fault_code: {from", "fault_cod: {from"))
    with pytest.raises(MappingError) as raised:
        load_mapping(wrong_column)
    assert f"line {line}" in str(raised.value) and "did you mean 'fault_code'" in str(raised.value)

    bad_unit = _write(tmp_path / "unit.yaml", (EXAMPLES / "mappings" / "condition_monitoring.yaml").read_text()
                      .replace("{from: psi, to: bar}", "{from: psi, to: furlongs}"))
    unit_line = bad_unit.read_text().splitlines().index(next(
        ln for ln in bad_unit.read_text().splitlines() if "furlongs" in ln)) + 1
    with pytest.raises(MappingError, match=r"brake_cylinder_bar.unit: no conversion from 'psi' to 'furlongs'") as raised:
        load_mapping(bad_unit)
    assert f"line {unit_line}," in str(raised.value)

    missing_column = _write(tmp_path / "m.yaml", text.replace("from: severity", "from: Severity"))
    with pytest.raises(MappingError, match=r"event_log_2025Q1.csv has no column 'Severity'") as raised:
        onboard(EXAMPLES, [EXAMPLES / "mappings" / "register.yaml", missing_column])
    assert f"line {text.splitlines().index('        from: severity') + 1}" in str(raised.value)

    broken = _write(tmp_path / "broken.yaml", "mapping: 1\nname: x\nsources:\n  - name: a\n   feed: faults\n")
    with pytest.raises(MappingError, match=r"not valid YAML.*line 5"):
        load_mapping(broken)


def test_unit_conversions_time_zones_vehicle_numbers_and_code_lookups_value_by_value(tmp_path):
    exports = tmp_path / "exports"
    _write(exports / "register.csv", """
        Fleet No.;Class;Depot;Since;Miles per day
        ET 490 001;490;Kiel;01.02.2019;100
        490002;490;Kiel;01.02.2019;0
        ET490-7;490;Kiel;01.02.2019;62,5
        """)
    _write(exports / "cm.csv", """
        unit,time,degF,psi,mph
        490001,30.03.2025 01:30,212,14.5037738,60
        490001,30.03.2025 02:30,32,0,0
        490001,30.03.2025 03:30,-40,145.037738,100
        490001,26.10.2025 02:30,50,1,1
        """)
    _write(exports / "sap.csv", """
        Order;Unit;Priority;Start
        1;ET490-001;1;2025-03-01T10:00:00+01:00
        2;ET490-001;2;2025-03-01T10:00:00Z
        3;ET490-001;3;2025-03-01T10:00:00
        4;ET490-001;9;2025-03-01T10:00:00+01:00
        """)
    mapping = _write(tmp_path / "m.yaml", """
        mapping: 1
        name: check
        catalogue:
          vehicle_types: {ET490: [doors]}
          depots: [KI]
          components: {doors: doors}
          signals:
            - {column: temp_c, component: doors, unit: degC, min: -50, max: 150}
            - {column: pressure_bar, component: doors, unit: bar, min: 0, max: 20}
          fault_codes: [{code: X, subsystem: doors, grade: C}]
        sources:
          - name: register
            files: register.csv
            feed: vehicles
            read: {delimiter: ";"}
            columns:
              vehicle_number: &vehicle
                from: Fleet No.
                vehicle: {pattern: '^(?:ET)?\\s*(?P<cls>\\d{3})[\\s-]*(?P<num>\\d{1,3})$', format: 'ET{cls}-{num:03d}'}
              vehicle_type: {from: Class, lookup: {"490": ET490}}
              home_depot: {from: Depot, lookup: {Kiel: KI}}
              commissioning_date: {from: Since, date: {format: "%d.%m.%Y"}}
              daily_km_mean: {from: Miles per day, decimal: ",", unit: {from: miles, to: km}}
          - name: cm
            files: cm.csv
            feed: telemetry
            columns:
              vehicle_number: {<<: *vehicle, from: unit}
              ts: {from: time, timestamp: {format: "%d.%m.%Y %H:%M", timezone: Europe/Berlin}}
              temp_c: {from: degF, unit: {from: degF, to: degC}}
              pressure_bar: {from: psi, unit: {from: psi, to: bar}}
              speed_kmh: {from: mph, unit: {from: mph, to: km/h}}
          - name: sap
            files: sap.csv
            feed: faults
            read: {delimiter: ";"}
            columns:
              event_id: {from: Order}
              vehicle_number: {from: Unit}
              vehicle_type: {registry: vehicle_type}
              depot: {registry: home_depot}
              ts: {from: Start, timestamp: {timezone: Europe/Berlin}}
              fault_code: {constant: X}
              subsystem: {catalogue: subsystem}
              grade: {from: Priority, lookup: {1: A, 2: B, 3: C}}
        """)
    result = onboard(exports, [mapping])
    feeds = result.landings["check"].feeds
    vehicles = feeds["vehicles"]
    assert vehicles["vehicle_number"].tolist() == ["ET490-001", "ET490-002", "ET490-007"]
    assert vehicles["daily_km_mean"].tolist() == pytest.approx([160.9344, 0.0, 100.584])
    assert vehicles["home_depot"].tolist() == ["KI"] * 3 and vehicles["vehicle_type"].tolist() == ["ET490"] * 3
    assert [d.isoformat() for d in vehicles["commissioning_date"]] == ["2019-02-01"] * 3

    telemetry = feeds["telemetry"]
    # 01:30 CET = 00:30 UTC; 02:30 does not exist that night; 03:30 CEST = 01:30 UTC; 26 Oct 02:30 happens twice
    assert [t.isoformat() for t in telemetry["ts"]] == ["2025-03-30T00:30:00+00:00", "2025-03-30T01:30:00+00:00"]
    assert telemetry["temp_c"].tolist() == pytest.approx([100.0, -40.0])
    assert telemetry["pressure_bar"].tolist() == pytest.approx([1.0, 10.0])
    assert telemetry["speed_kmh"].tolist() == pytest.approx([96.56064, 160.9344])
    held = result.held[("check", "cm")]
    assert held["_line"].tolist() == [3, 5] and all("does not exist or is ambiguous in Europe/Berlin" in r for r in held["reason"])

    faults = feeds["faults"]
    assert faults["grade"].tolist() == ["A", "B", "C"]  # SAP priority 1 -> A, 2 -> B, 3 -> C
    assert [t.isoformat() for t in faults["ts"]] == ["2025-03-01T09:00:00+00:00", "2025-03-01T10:00:00+00:00",
                                                     "2025-03-01T09:00:00+00:00"]  # own offset, Z, and the zone declared
    assert faults["subsystem"].tolist() == ["doors"] * 3 and faults["depot"].tolist() == ["KI"] * 3
    assert result.held[("check", "sap")]["reason"].tolist() == ["grade: '9' is not in the lookup"]

    assert units.conversion("km", "miles")[0] == pytest.approx(1 / 1.609344)
    assert units.convert(pd.Series([-40.0, 100.0]), "degC", "degF").tolist() == pytest.approx([-40.0, 212.0])
    assert units.conversion("furlongs", "km") is None


def test_a_later_export_finds_its_vehicles_in_the_registry_already_ingested(tmp_path):
    """Next quarter's event log is onboarded alone: types and depots come from the lake's registry."""
    exports = tmp_path / "exports" / "tcms"
    exports.mkdir(parents=True)
    shutil.copy(EXAMPLES / "tcms" / "event_log_2025Q1.csv", exports)
    register = onboard(EXAMPLES, [EXAMPLES / "mappings" / "register.yaml"]).landings["register"].feeds["vehicles"]
    mappings = sorted((EXAMPLES / "mappings").glob("*.yaml"))  # the fleet's mappings, all of them: one catalogue
    alone = onboard(tmp_path / "exports", mappings, registry=register)
    assert alone.catalogue == onboard(EXAMPLES, mappings).catalogue
    assert {r.source: len(r.files) for r in alone.sources}["fleet_register"] == 0
    assert set(alone.landings["tcms"].feeds) == {"faults"} and not alone.landings["register"].feeds
    faults = alone.landings["tcms"].feeds["faults"]
    assert faults.loc[faults["vehicle_number"] == "ET490-004", "depot"].unique().tolist() == ["KI"]
    assert alone.profile["feeds"]["faults/tcms"]["rules"]["vehicle_known"] == 1  # only ET490-009
    without = onboard(tmp_path / "exports", mappings)
    assert without.profile["feeds"]["faults/tcms"]["rules"]["vehicle_known"] == len(faults)


def _fill(draft: dict) -> dict:
    """What the person finishing the TCMS draft writes in its blanks."""
    catalogue = draft["catalogue"]
    del catalogue["name"]  # the register's mapping names the fleet
    catalogue["fault_codes"] = [{**c, "subsystem": "doors", "component": "doors", "grade": "C"} for c in catalogue["fault_codes"]]
    catalogue.update(vehicle_types={"ET490": ["doors"]}, components={"doors": "doors"})
    source = draft["sources"][0]
    columns = source["columns"]
    columns["event_id"] = {"concat": [{"constant": "TCMS"}, "vehicle", "car", "timestamp", "event_code"], "separator": "/"}
    columns["vehicle_number"]["vehicle"] = {"pattern": r"^(?P<cls>\d{3})(?P<num>\d{3})$", "format": "ET{cls}-{num:03d}"}
    columns["grade"]["lookup"] = {"CRITICAL": "A", "MAJOR": "B", "WARNING": "C", "INFO": "C"}
    return draft


def test_init_drafts_a_mapping_that_validates_once_the_blanks_are_filled(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(EXAMPLES / "tcms" / "event_log_2025Q1.csv", exports)
    target = tmp_path / "tcms-draft.yaml"
    result = CliRunner().invoke(app, ["onboard", "--init", str(exports), "--mapping", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    draft = yaml.safe_load(text)
    source = draft["sources"][0]
    assert source["feed"] == "faults" and source["files"] == "event_log_2025Q1.csv"
    assert source["columns"]["ts"] == {"from": "timestamp"}  # ISO 8601 with an offset: nothing to declare
    assert source["columns"]["vehicle_type"] == {"registry": "vehicle_type"}
    assert source["columns"]["fault_code"] == {"from": "event_code"}
    assert "TODO" in text and "# not mapped: car" in text
    with pytest.raises(MappingError, match="catalogue.fault_codes"):
        load_mapping(target)  # unfinished: the blanks are not grades

    again = CliRunner().invoke(app, ["onboard", "--init", str(exports), "--mapping", str(target)])
    assert again.exit_code == 1 and "does not overwrite" in again.output

    filled = tmp_path / "tcms.yaml"
    filled.write_text(yaml.safe_dump(_fill(draft), sort_keys=False))
    assert "TODO" not in filled.read_text()
    load_mapping(filled)
    shutil.copy(EXAMPLES / "register" / "fleet_register.csv", exports)
    register = _write(tmp_path / "register.yaml", (EXAMPLES / "mappings" / "register.yaml").read_text()
                      .replace("files: register/fleet_register*.csv", "files: fleet_register.csv"))
    done = onboard(exports, [filled, register])
    report = next(s for s in done.sources if s.feed == "faults")
    assert report.landed == report.rows_in == _data_lines(EXAMPLES / "tcms" / "event_log_2025Q1.csv")
    # the draft catalogued the codes of its sample; the profile names the one beyond it, and the unregistered unit
    profiled = done.profile["feeds"][f"faults/{draft['name']}"]
    assert profiled["not_in_catalogue"] == {"fault_code": {"7777": 1}, "vehicle_number": {"ET490-009": 1}}
    assert profiled["rules"] == {"depot_not_null": 1, "fault_code_allowed": 1, "subsystem_not_null": 1, "vehicle_known": 1,
                                 "vehicle_type_not_null": 1}


# --------------------------------------------------------------------------------------------------
# The public data sets: mapping files against the Python adapters
# --------------------------------------------------------------------------------------------------

needs_data = pytest.mark.skipif(
    not (DATASETS / "cmapss").is_dir() or not (DATASETS / "azure-pdm").is_dir(),
    reason=f"public data sets not available at {DATASETS} (provided beside the project; never downloaded)",
)


def _slice(source: Path, target: Path, files: list[str], column: str, first: int) -> None:
    """The data set's files, cut to the first units/machines line by line (the bytes of each kept line unchanged)."""
    target.mkdir(parents=True)
    for name in files:
        lines = (source / name).read_text().splitlines(keepends=True)
        if column == "unit":
            kept = [line for line in lines if int(line.split()[0]) <= first]
        else:
            at = next(csv.reader([lines[0]])).index(column)
            kept = lines[:1] + [line for line in lines[1:] if int(next(csv.reader([line]))[at]) <= first]
        (target / name).write_text("".join(kept))


@needs_data
@pytest.mark.parametrize("data_set", ["cmapss", "azure-pdm"])
def test_public_data_set_mappings_land_the_adapters_files(tmp_path, data_set):
    """Sliced to 3 engines / machines. The mappings land the registry and the readings (C-MAPSS) or the registry and
    the fault log (Azure) byte-for-byte in content; the work orders stay the adapters' (see the mappings' notes)."""
    from railpm.adapters import azure_pdm, cmapss, write_landing

    exports = tmp_path / "exports"
    if data_set == "cmapss":
        _slice(DATASETS / "cmapss", exports, ["train_FD001.txt", "test_FD001.txt"], "unit", 3)
        adapter, mapping, name = cmapss.cmapss_landing(exports), MAPPINGS_DIR / "cmapss.yaml", "cmapss-fd001"
        mapped_feeds = {"vehicles", "telemetry"}
    else:
        _slice(DATASETS / "azure-pdm", exports, list(azure_pdm.FILES), "machineID", 3)
        adapter, mapping, name = azure_pdm.azure_pdm_landing(exports), MAPPINGS_DIR / "azure_pdm.yaml", "azure-pdm"
        mapped_feeds = {"vehicles", "faults"}
    theirs, mine = Settings(data_root=tmp_path / "adapter"), Settings(data_root=tmp_path / "mapping")
    write_landing(adapter, theirs, name)
    result = onboard(exports, [mapping])
    write_onboarded(result, mine)

    assert result.catalogue == adapter.catalogue
    assert (mine.data_root / "catalogue.json").read_text() == (theirs.data_root / "catalogue.json").read_text()
    landed = {p.parent.name for p in mine.landing_dir.glob("*/*.parquet")}
    assert landed == mapped_feeds and set(adapter.feeds) - landed == {"work_orders"}
    for feed in sorted(mapped_feeds):
        ours = pq.read_table(mine.landing_dir / feed / f"{name}.parquet")
        adapters = pq.read_table(theirs.landing_dir / feed / f"{name}.parquet")
        key = [(k, "ascending") for k in contracts.FEEDS[feed].key]
        assert ours.schema == adapters.schema, feed
        assert ours.num_rows == adapters.num_rows > 0, feed
        assert ours.sort_by(key).equals(adapters.sort_by(key)), feed
    assert all(r.held == 0 for r in result.sources)  # every line of the slice is landed or folded into its engine
