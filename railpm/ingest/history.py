"""The lake's history, replayed per landing file: what each delivery of a file put in the lake.

The current delivery's records are the lake part itself; every earlier delivery that a changed re-delivery
(same file name) replaced is kept as ``revisions/<feed>/<part>@<sha16>.parquet`` beside the records it lost
(``.changes.parquet``, rules ``dropped_by_redelivery`` and ``changed_by_redelivery``). The deliveries
themselves are listed, append-only, in ``runs/deliveries/``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from railpm import contracts
from railpm.arrow import arrow_schema
from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.ingest import lake, runs


def deliveries(settings: Settings, feed: str, part: str) -> list[dict]:
    """The run records of every ingested delivery of one part, oldest first, as first written."""
    return [r for r in runs.delivery_records(settings.runs_dir, feed, part) if r["status"] == "ingested"]


def part_as_delivered(settings: Settings, feed: str, part: str, sha256: str) -> pa.Table:
    """The records one delivery of a landing file held in the lake (the current one: as the lake holds it now)."""
    current = runs.read_run_record(settings.runs_dir, feed, part)
    contract = contracts.FEEDS[feed]
    if current and current.get("sha256") == sha256:
        files = lake.lake_parts(settings.lake_dir, contract, part)
        return pa.concat_tables([pq.read_table(f) for f in files]) if files else arrow_schema(contract).empty_table()
    kept = settings.revisions_dir / feed / f"{part}@{sha256[:16]}.parquet"
    if not kept.exists():
        raise RailpmError(f"{feed}/{part}: no delivery with content hash {sha256[:16]} in the lake's history")
    return pq.read_table(kept)
