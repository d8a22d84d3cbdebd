"""Day after day (issue 15): the generator's daily deliveries, and `railpm replay` through the real DAGs."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from railpm import contracts
from railpm.config import DirtRates, FleetSettings
from railpm.synth import generate_fleet
from railpm.synth.deliveries import (
    CORRECTED, FORMATS, GARBAGE, LATE_DROP, ORIGINAL, REGULAR, REPEATED, UPDATE, generate_deliveries, key_text,
)

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
