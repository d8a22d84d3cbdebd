"""Run records: one JSON per landing file in ``runs/``, the ledger that reconciles every record.

A run record says what became of each record of its file (``rows_in = accepted + quarantined +
duplicates_removed + held``; a release of held records is a record of its own, ``status: released``), which rules rejected how many, how long each phase took, and the file's content hash,
by which a file already ingested is recognised and skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from railpm.errors import RailpmError
from railpm.ingest.landing import LandingFile


class ReconciliationError(RailpmError):
    """The counts of a file's records do not add up: a record would have been lost or made up."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_record_path(runs_dir: Path, feed: str, part: str) -> Path:
    return runs_dir / f"ingest-{feed}-{part}.json"


def read_run_record(runs_dir: Path, feed: str, part: str) -> dict | None:
    path = run_record_path(runs_dir, feed, part)
    return json.loads(path.read_text()) if path.exists() else None


def _write_json(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def delivery_record_path(runs_dir: Path, record: dict) -> Path:
    return runs_dir / "deliveries" / record["feed"] / f"{record['part']}@{(record.get('sha256') or 'unread')[:16]}-{record['status']}.json"


def write_run_record(runs_dir: Path, record: dict, *, delivery: bool = True) -> Path:
    """The file's current record (revised when a later file changes its records) and, once per delivery, an
    append-only copy under ``runs/deliveries/`` that no later delivery or revision overwrites."""
    path = run_record_path(runs_dir, record["feed"], record["part"])
    _write_json(path, record)
    if delivery:
        first = delivery_record_path(runs_dir, record)
        if not first.exists():
            _write_json(first, record)
    return path


def delivery_records(runs_dir: Path, feed: str, part: str) -> list[dict]:
    """Every delivery of one part as first recorded, oldest first."""
    folder = Path(runs_dir) / "deliveries" / feed
    found = [json.loads(p.read_text()) for p in folder.iterdir() if p.name.startswith(f"{part}@")] if folder.is_dir() else []
    return sorted((r for r in found if r["part"] == part), key=lambda r: r["reference_time"])


def write_ignored(runs_dir: Path, listing: dict) -> Path:
    """The files of the landing folder that are no landing file, with the time the listing last changed
    (a rerun that finds the same files changes nothing)."""
    path = Path(runs_dir) / "ignored.json"
    if not path.exists() or json.loads(path.read_text())["ignored"] != listing["ignored"]:
        _write_json(path, listing)
    return path


def read_ignored(runs_dir: Path) -> list[dict]:
    path = Path(runs_dir) / "ignored.json"
    return json.loads(path.read_text())["ignored"] if path.exists() else []


def read_run_records(runs_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(runs_dir).glob("ingest-*.json"))]


def already_ingested(runs_dir: Path, landing: LandingFile, sha256: str) -> dict | None:
    """The run record of this very content of this file, if it was ingested before."""
    record = read_run_record(runs_dir, landing.feed, landing.part)
    if record and record.get("sha256") == sha256 and record.get("file") == landing.relative and record.get("status") == "ingested":
        return record
    return None


def check_reconciles(record: dict) -> None:
    held = record.get("held", 0)
    accounted = record["accepted"] + record["quarantined"] + record["duplicates_removed"] + held
    if accounted != record["rows_in"]:
        raise ReconciliationError(
            f"{record['file']}: {record['rows_in']} records in, but {record['accepted']} accepted + "
            f"{record['quarantined']} quarantined + {record['duplicates_removed']} duplicates removed + {held} held = {accounted}"
        )


def validation_path(runs_dir: Path, feed: str, part: str) -> Path:
    return runs_dir / "validations" / feed / f"{part}.json"


def write_validation(runs_dir: Path, feed: str, part: str, result: dict) -> Path:
    path = validation_path(runs_dir, feed, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, default=str) + "\n")
    return path
