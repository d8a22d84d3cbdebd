"""Every DAG file imports cleanly in Airflow's DagBag, is well-formed, and does no heavy work at parse time.

Each file is loaded in a fresh interpreter (with the session's AIRFLOW_HOME), so that what it imports at
parse time is visible in ``sys.modules`` and no other test's imports hide it.
"""

from __future__ import annotations

import pytest

from helpers import REPO_ROOT, run_marked

pytestmark = pytest.mark.airflow  # each test asks a subprocess with Airflow imported

DAG_FILES = sorted((REPO_ROOT / "dags").glob("*.py"))
HEAVY = ("pyspark", "sklearn", "mlflow", "great_expectations", "duckdb")

INSPECT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "tags": sorted(dag.tags or []),
        "retries": (dag.default_args or {}).get("retries"),
        "catchup": dag.catchup,
        "doc_md": bool(dag.doc_md),
        "start_date_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
        "tasks": len(dag.tasks),
        "task_retries": sorted({t.retries for t in dag.tasks}),
    }
heavy = [m for m in sys.argv[2:] if m in sys.modules]
print("INSPECTION " + json.dumps({"errors": {str(k): v for k, v in bag.import_errors.items()}, "dags": dags, "heavy": heavy}))
"""


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_file_imports_cleanly_and_is_well_formed(dag_file, airflow_env):
    found = run_marked(INSPECT, "INSPECTION", airflow_env, str(dag_file), *HEAVY)
    assert found["errors"] == {}, found["errors"]  # import errors and dependency cycles
    assert found["dags"], f"{dag_file.name} defines no DAG"
    for dag_id, dag in found["dags"].items():
        assert dag_id == dag_file.stem, "one DAG per file, named like the file"
        assert dag["tags"] and dag["doc_md"], dag_id
        assert dag["retries"] and dag["retries"] >= 1 and min(dag["task_retries"]) >= 1, dag_id
        assert dag["catchup"] is False and dag["start_date_tz"] in ("UTC", "tzutc()", "Timezone('UTC')"), dag
        assert dag["tasks"] > 0
    assert found["heavy"] == [], f"{dag_file.name} imports {found['heavy']} at parse time; import inside tasks"


def test_fleet_ingest_wires_stages_in_order_and_publishes_each_lake_table(airflow_env):
    """Structure: registry and catalogue, then events; Data Docs and the one publishing task after."""
    script = """
import json
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=%r).dags["fleet_ingest"]
print("INSPECTION " + json.dumps({t.task_id: [sorted(t.downstream_task_ids), [o.name for o in t.outlets]] for t in dag.tasks}))
""" % str(REPO_ROOT / "dags" / "fleet_ingest.py")
    tasks = run_marked(script, "INSPECTION", airflow_env)
    downstream = {task: set(d) for task, (d, _) in tasks.items()}

    after = {"build_data_docs", "publish_lake_tables"}  # they also read every stage's file list
    assert downstream["ingest_reference_files"] == {"list_new_event_files"} | after  # registry, then catalogue, in one task
    assert downstream["list_new_event_files"] == {"ingest_events"} | after
    assert downstream["ingest_events"] == {"release_held_records"}  # held records wait for the whole registry stage
    assert downstream["release_held_records"] == after
    # One publishing task, through the alias (it adds an event for each lake table with new files, all at once).
    assert {task: outlets for task, (_, outlets) in tasks.items() if outlets} == {"publish_lake_tables": ["railpm.lake.updates"]}
