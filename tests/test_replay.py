"""Day after day (issue 15): the generator's daily deliveries, and `railpm replay` through the real DAGs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from railpm import contracts
from railpm.config import DirtRates, FleetSettings, Settings
from railpm.deploy.replay import deliver
from railpm.ingest.held import read_held
from railpm.ingest.lake import RULES, read_lake_table
from railpm.ingest.step import SUPERSEDED
from railpm.synth import generate_fleet
from helpers import REPO_ROOT
from railpm.synth.deliveries import (
    CORRECTED, FORMATS, GARBAGE, LATE_DROP, ORIGINAL, REGULAR, REPEATED, UPDATE, generate_deliveries, key_text,
)

RAILPM = Path(sys.executable).with_name("railpm")
FLEET = FleetSettings(vehicles=6, days=40, seed=11, vehicles_per_file=6)
GO_LIVE = 30


def read_keys(path: Path, feed: str) -> pd.Series:
    """The keys of a delivered file, in file order, read the way a feed's reader would."""
    if FORMATS[feed] == "parquet":
        frame = pq.read_table(path).to_pandas()
    elif FORMATS[feed] == "jsonl":
        frame = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return key_text(frame, contracts.FEEDS[feed])


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    root = tmp_path_factory.mktemp("deliveries")
    summary = generate_deliveries(FLEET, root / "deliveries", root / "truth", GO_LIVE)
    batch = tmp_path_factory.mktemp("batch")
    generate_fleet(FLEET.model_copy(update={"dirt": DirtRates.clean()}), batch / "landing", batch / "truth")
    return summary, root, batch


def test_deliveries_reconcile_with_their_truth(drops):
    summary, root, batch = drops
    truth = pd.read_parquet(root / "truth" / "deliveries.parquet")
    listing = json.loads((root / "truth" / "drops.json").read_text())

    # Every file of every drop is listed with its kind, and nothing else lies in the drops.
    listed = {(day, f["file"]): f for day, files in listing["drops"].items() for f in files}
    on_disk = {(p.parts[-3], f"{p.parts[-2]}/{p.name}") for p in (root / "deliveries").rglob("*") if p.is_file()}
    assert on_disk == set(listed)

    # Each record is delivered once as an original; beyond that only the stated updates and resends.
    originals = truth[truth["version"] == ORIGINAL]
    assert not originals.duplicated(["feed", "key"]).any()
    assert set(truth.loc[truth["version"] == UPDATE, "feed"]) == {"vehicles", "parts", "stock", "work_orders"}
    for (day, relative), entry in listed.items():
        feed = relative.split("/")[0]
        path = root / "deliveries" / day / relative
        if entry["kind"] == GARBAGE:
            assert path.read_bytes()[:1] == b"\x00"
            continue
        keys = read_keys(path, feed)
        stated = truth[truth["file"] == relative]
        if entry["kind"] in (REGULAR, LATE_DROP):
            assert (stated["delivered_on"] == day).all(), relative
            assert keys.tolist() == stated.sort_values("row")["key"].tolist(), relative
        else:  # a resend: the same file of an earlier drop, its records again
            assert entry["kind"] in (REPEATED, CORRECTED)
            original = root / "deliveries" / truth.loc[truth["file"] == relative, "delivered_on"].iloc[0] / relative
            assert keys.tolist() == read_keys(original, feed).tolist()
            assert (path.read_bytes() == original.read_bytes()) == (entry["kind"] == REPEATED)

    # The originals are the one-batch fleet's records, less a commissioned vehicle's life before it and a retired one's after.
    changes = {(c["change"], c.get("vehicle")): date.fromisoformat(c["day"]) for c in listing["registry_changes"]}
    commissioned = {v: d for (c, v), d in changes.items() if c == "commissioned"}
    retired = {v: d for (c, v), d in changes.items() if c == "retired"}
    assert commissioned and retired and any(c == "transferred" for c, _ in changes)
    for feed, time_column in (("telemetry", "ts"), ("faults", "ts"), ("work_orders", "opened_at")):
        contract = contracts.FEEDS[feed]
        frames = [pq.read_table(p).to_pandas() if FORMATS[feed] == "parquet" else
                  pd.DataFrame([json.loads(line) for line in p.read_text().splitlines()]) if FORMATS[feed] == "jsonl" else
                  pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted((batch / "landing" / feed).iterdir())]
        batch_frame = pd.concat(frames, ignore_index=True)
        day = pd.to_datetime(batch_frame[time_column], utc=True).dt.date
        first = batch_frame["vehicle_number"].map(lambda v: commissioned.get(v, date.min))
        final = batch_frame["vehicle_number"].map(lambda v: retired.get(v, date.max))
        expected = key_text(batch_frame[(day >= first) & (day <= final)], contract)
        assert sorted(originals.loc[originals["feed"] == feed, "key"]) == sorted(expected), feed


def test_deliveries_arrive_as_real_feeds_do(drops):
    summary, root, _ = drops
    truth = pd.read_parquet(root / "truth" / "deliveries.parquet")
    listing = json.loads((root / "truth" / "drops.json").read_text())
    go_live = date.fromisoformat(listing["go_live"])
    missing = next(d for d in listing["drills"] if d["drill"] == "missing drop")
    telemetry = truth[truth["feed"] == "telemetry"]
    measured = pd.to_datetime(telemetry["key"].str.split("|").str[1], utc=True).dt.date
    delivered = pd.to_datetime(telemetry["delivered_on"]).dt.date
    lag = np.array([(d - m).days for d, m in zip(delivered, measured)])
    after_go_live = (measured >= go_live).to_numpy()
    late_drop = (telemetry["file"].str.contains(missing["day"])).to_numpy()
    assert set(lag[after_go_live & ~late_drop]) == {0, 1, 2, 3}  # day D arrives on D to D+3
    assert set(lag[late_drop & after_go_live]) <= {2, 3, 4, 5}  # its drop came two days late
    # The history arrives with the go-live drop, save what was still on its way then.
    assert (delivered >= go_live).all()
    assert set(lag[(delivered > go_live).to_numpy() & ~after_go_live & ~late_drop]) <= {1, 2, 3}
    assert (delivered[~after_go_live] == go_live).mean() > 0.95
    # Work orders opened, then closed days later: the closed version comes in a file of its own whose name sorts
    # after the opening's (the gate's rule for a correction), even when the opening's drop came late.
    updates = truth[(truth["feed"] == "work_orders") & (truth["version"] == UPDATE)]
    assert len(updates)
    first = truth[(truth["feed"] == "work_orders") & (truth["version"] == ORIGINAL)].set_index("key")
    assert (updates["file"].to_numpy() > first.loc[updates["key"], "file"].to_numpy()).all()
    assert (updates["delivered_on"].to_numpy() > first.loc[updates["key"], "delivered_on"].to_numpy()).mean() > 0.8
    # The drills: a drop missing on its day, one delivered twice, a corrected resend, a garbage file.
    assert {d["drill"] for d in listing["drills"]} == {"missing drop", "drop delivered twice", "corrected resend", "garbage file"}
    assert missing["day"] not in listing["drops"]
    first_new = next(c for c in listing["registry_changes"] if c.get("note", "").startswith("its telemetry"))
    row = truth[(truth["feed"] == "vehicles") & (truth["key"] == first_new["vehicle"])]
    assert (pd.to_datetime(row["delivered_on"]).dt.date == date.fromisoformat(first_new["day"]) + timedelta(days=1)).all()


def test_delivering_a_drop_says_what_came_and_happens_once(drops):
    """The replay's delivery step alone (no DAG): drops into landing/, each bad delivery named, nothing twice."""
    _, root, _ = drops
    settings = Settings(data_root=root)
    listing = json.loads((root / "truth" / "drops.json").read_text())
    drills = {d["drill"]: d for d in listing["drills"]}
    go_live, state, notes = date.fromisoformat(listing["go_live"]), {"delivered": {}, "days": {}}, {}
    for offset in range(4):
        day = go_live + timedelta(days=offset)
        delivered, notes[day.isoformat()] = deliver(settings, day, state)
        assert sorted(delivered) == sorted(f["file"] for f in listing["drops"].get(day.isoformat(), []))
    assert notes[drills["missing drop"]["day"]] == ["no drop delivered for this day; its records may come in a later drop"]
    again = notes[drills["drop delivered twice"]["again"]]
    repeated = [f for f in listing["drops"][drills["drop delivered twice"]["again"]] if f["kind"] == REPEATED]
    assert sum("delivered again byte for byte" in n for n in again) == len(repeated) > 0
    corrected = notes[drills["corrected resend"]["again"]]
    assert any(n.startswith(f"{drills['corrected resend']['file']}: re-delivered with changes") for n in corrected)
    fixed = pq.read_table(settings.landing_dir / drills["corrected resend"]["file"]).to_pandas()
    sent = pq.read_table(root / "deliveries" / drills["corrected resend"]["again"] / drills["corrected resend"]["file"]).to_pandas()
    pd.testing.assert_frame_equal(fixed, sent)  # landing holds the latest delivery of the name
    assert not list(settings.landing_dir.rglob(".*"))  # no half-written file left behind
    # A rerun of a day delivers nothing again.
    before = dict(state["delivered"])
    assert deliver(settings, go_live + timedelta(days=2), state) == ([], [])
    assert state["delivered"] == before


# --------------------------------------------------------------------------------------------------
# `railpm replay` through the real DAGs (slow: every day is five `airflow dags test` runs with Spark)
# --------------------------------------------------------------------------------------------------

REPLAY_RAILPM = Path(sys.executable).with_name("railpm")
FLEET = FleetSettings(vehicles=6, days=150, seed=11, vehicles_per_file=6)
REPLAY_GO_LIVE = 140
REPLAY_DAYS = 4
"""Go-live (the history, a first model) and the three days of the registry changes and the drills: what the suite
can afford (each day costs minutes on 2 cores, see the README's "Day after day")."""


def replay_environment(data_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAILPM_", "AIRFLOW"))}
    return env | {
        "RAILPM_DATA_ROOT": str(data_root), "COLUMNS": "200",
        "RAILPM_FLEET__VEHICLES": str(REPLAY_FLEET.vehicles), "RAILPM_FLEET__DAYS": str(REPLAY_FLEET.days),
        "RAILPM_FLEET__SEED": str(REPLAY_FLEET.seed), "RAILPM_FLEET__VEHICLES_PER_FILE": str(REPLAY_FLEET.vehicles_per_file),
        "RAILPM_SPARK__MASTER": "local[2]", "RAILPM_SPARK__SHUFFLE_PARTITIONS": "2", "RAILPM_SPARK__DRIVER_MEMORY": "1g",
        "RAILPM_MODEL__BACKTEST_FOLDS": "2", "RAILPM_MODEL__HORIZON_DAYS": "14",
        "RAILPM_MODEL__RECIPE": json.dumps({"max_iter": 60, "life_max_iter": 40, "calibration_folds": 2,
                                            "train_row_stride_days": 2, "importance_rows": 1500}),
    }


def run_railpm(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(RAILPM), *args], env=env, capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, f"railpm {' '.join(args)} failed:\n{done.stdout[-8000:]}\n{done.stderr[-8000:]}"
    return done.stdout


@dataclass(frozen=True)
class Replayed:
    settings: Settings
    env: dict[str, str]
    stdout: str
    days: list[date]
    listing: dict


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> Replayed:
    settings = Settings(data_root=tmp_path_factory.mktemp("replay") / "data", fleet=REPLAY_FLEET)
    env = replay_environment(settings.data_root)
    run_railpm(env, "generate", "--deliveries", "daily", "--go-live-day", str(REPLAY_GO_LIVE))
    first = REPLAY_FLEET.start + timedelta(days=REPLAY_GO_LIVE)
    days = [first + timedelta(days=i) for i in range(REPLAY_DAYS)]
    stdout = run_railpm(env, "replay", "--from", first.isoformat(), "--to", days[-1].isoformat())
    return Replayed(settings, env, stdout, days, json.loads((settings.truth_dir / "drops.json").read_text()))


def lake_keys(settings: Settings, feed: str) -> pd.Series:
    contract = contracts.FEEDS[feed]
    return key_text(read_lake_table(settings.lake_dir, contract, list(contract.key)), contract)


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.replay
def test_replay_runs_every_day_through_the_dags(replayed):
    settings, days = replayed.settings, replayed.days
    state = json.loads((settings.replay_dir / "state.json").read_text())
    assert [d for d, s in sorted(state["days"].items()) if s["done"]] == [d.isoformat() for d in days]
    missing = next(d["day"] for d in replayed.listing["drills"] if d["drill"] == "missing drop")
    for day in days:  # each day scored and planned by the champion (the day whose drop did not come: its latest)
        assert state["days"][day.isoformat()]["champion"], day
        if day.isoformat() == missing:
            assert f"no records of {day} yet" in replayed.stdout
            continue
        assert (settings.predictions_dir / f"predictions-{day}.parquet").is_file(), day
        assert any((settings.plans_dir / day.isoformat()).iterdir()), day
        steps = {s["step"]: s["status"] for s in state["days"][day.isoformat()]["steps"]}
        assert steps["fleet_ingest"] == steps["fleet_records"] == steps["fleet_score"] == steps["fleet_plan"] == "ok"

    # Nothing of a valid day quarantined: only the older versions the updates and corrections replaced.
    rules = pd.concat([pq.read_table(p).to_pandas() for p in settings.quarantine_dir.rglob("*.parquet")])[RULES]
    assert set(rules) == {SUPERSEDED}

    # Every record delivered up to the last day is in the lake exactly once: nothing lost, nothing twice.
    truth = pd.read_parquet(settings.truth_dir / "deliveries.parquet")
    delivered = truth[truth["delivered_on"] <= days[-1].isoformat()]
    for feed in ("telemetry", "faults", "work_orders", "vehicles", "parts", "stock"):
        keys = lake_keys(settings, feed)
        assert not keys.duplicated().any(), feed
        assert set(keys) == set(delivered.loc[delivered["feed"] == feed, "key"]), feed

    # Held until the registry knew the vehicle, then released and counted once.
    counts = [state["days"][d.isoformat()]["counts"] for d in days]
    assert sum(c["held"] for c in counts) == sum(c["released"] for c in counts) > 0
    assert read_held(settings).empty
    late = next(c for c in replayed.listing["registry_changes"] if c.get("note", "").startswith("its telemetry"))
    assert (lake_keys(settings, "telemetry").str.startswith(f"{late['vehicle']}|")).any()
    assert "held records released" in replayed.stdout


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.replay
def test_bad_deliveries_are_named_and_do_not_stop_the_days_after(replayed):
    out, drills = replayed.stdout, {d["drill"]: d for d in replayed.listing["drills"]}
    assert f"{drills['missing drop']['day']}: no drop delivered for this day" in out
    assert "delivered again byte for byte" in out
    assert f"{drills['corrected resend']['file']}: re-delivered with changes" in out
    garbage = drills["garbage file"]["file"]
    line = next(line for line in out.splitlines() if garbage in line and "set aside whole" in line)
    assert "rejected_files/faults" in line and "line" in line and "rule" in line
    assert (replayed.settings.rejected_files_dir / "faults" / Path(garbage).name).is_file()
    # The corrected reading is what the lake holds now; the first delivery is kept as a revision.
    vehicle, ts = drills["corrected resend"]["key"].split("|")
    telemetry = read_lake_table(replayed.settings.lake_dir, contracts.TELEMETRY, ["vehicle_number", "ts", "ambient_temp_c"])
    corrected = telemetry[(telemetry["vehicle_number"] == vehicle) & (telemetry["ts"] == pd.Timestamp(ts))]
    sent = [pq.read_table(replayed.settings.deliveries_dir / drills["corrected resend"][when] / drills["corrected resend"]["file"])
            .to_pandas().iloc[drills["corrected resend"]["row"] - 1]["ambient_temp_c"] for when in ("day", "again")]
    assert sent[0] != sent[1] and corrected["ambient_temp_c"].tolist() == [sent[1]]
    assert any(replayed.settings.revisions_dir.rglob("*.parquet"))


def snapshot(settings: Settings, day: date) -> dict:
    """What a rerun of ``day`` must leave as it was: lake and quarantine bytes, run records, the day's outputs."""
    files = {str(p.relative_to(settings.data_root)): p.read_bytes()
             for folder in (settings.lake_dir, settings.quarantine_dir, settings.held_dir, settings.runs_dir / "deliveries")
             for p in sorted(folder.rglob("*")) if p.is_file()}
    files["landing"] = json.dumps(sorted(str(p.relative_to(settings.landing_dir)) for p in settings.landing_dir.rglob("*"))).encode()
    files["delivered"] = json.dumps(json.loads((settings.replay_dir / "state.json").read_text())["delivered"]).encode()
    records = pd.read_parquet(settings.records_dir / "component_days")
    order = ["vehicle_number", "component", "day"]
    return {"files": files, "records": records.sort_values(order).reset_index(drop=True),
            "predictions": pd.read_parquet(settings.predictions_dir / f"predictions-{day}.parquet"),
            "plans": {p.name: pd.read_csv(p) for p in sorted((settings.plans_dir / day.isoformat()).glob("*.csv"))}}


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.replay
def test_a_rerun_of_a_day_changes_nothing(replayed):
    day = replayed.days[-1]
    before = snapshot(replayed.settings, day)
    out = run_railpm(replayed.env, "replay", "--from", day.isoformat(), "--to", day.isoformat(), "--rerun")
    after = snapshot(replayed.settings, day)
    assert f"{day} done" in out
    assert after["files"].keys() == before["files"].keys()
    assert [k for k in before["files"] if before["files"][k] != after["files"][k]] == []
    pd.testing.assert_frame_equal(after["records"], before["records"])
    pd.testing.assert_frame_equal(after["predictions"], before["predictions"])
    assert after["plans"].keys() == before["plans"].keys()
    for name in before["plans"]:
        pd.testing.assert_frame_equal(after["plans"][name], before["plans"][name])
