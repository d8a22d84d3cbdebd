"""The README's main command, end to end on a tiny fleet: generate, then the real Airflow DAGs it chains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from railpm.demo import PIPELINE_DAGS

RAILPM = Path(sys.executable).with_name("railpm")


@pytest.mark.slow
def test_demo_generates_the_fleet_and_runs_every_chained_dag(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAILPM_", "AIRFLOW"))}
    env |= {"RAILPM_FLEET__VEHICLES": "4", "RAILPM_FLEET__DAYS": "10"}
    data_root = tmp_path / "data"
    done = subprocess.run([str(RAILPM), "demo", "--data-root", str(data_root)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for dag_id in PIPELINE_DAGS:
        assert dag_id in done.stdout
    summary = json.loads((data_root / "truth" / "fleet_summary.json").read_text())
    runs = [json.loads(p.read_text()) for p in (data_root / "runs").glob("ingest-*.json")]
    assert {r["feed"] for r in runs} == {"vehicles", "parts", "stock", "telemetry", "faults", "work_orders"}
    assert sum(r["accepted"] for r in runs if r["feed"] == "vehicles") == summary["vehicles"] == 4
    assert sum(r["accepted"] for r in runs if r["feed"] == "telemetry") > 0
    assert all(r["rows_in"] == r["accepted"] + r["quarantined"] + r["duplicates_removed"] for r in runs)
    assert (data_root / "data_docs" / "index.html").exists()


def test_demo_refuses_an_unknown_dag(tmp_path):
    done = subprocess.run([str(RAILPM), "demo", "--data-root", str(tmp_path), "--until", "no_such_dag"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "--until must name one of the pipeline DAGs" in done.stderr
