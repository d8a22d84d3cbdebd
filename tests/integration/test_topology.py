"""The production topology for real: ``railpm up`` (PostgreSQL, Spark master and worker, MLflow server, Airflow
API server, scheduler, DAG processor and triggerer), the pipeline triggered through Airflow's REST API and run
by the real scheduler on the synthetic fleet, then failure drills, then ``railpm down``.

A CI step of its own (``make integration``): the tests of this module share one topology and run in order.
Timings are printed (``-s``) for the closing note, never asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from railpm.config import Settings
from railpm.deploy.demo import PIPELINE_DAGS
from railpm.models.tracking import CHAMPION
from railpm.deploy.topology import SERVICES, AirflowApi, Topology

from helpers import free_port

pytestmark = pytest.mark.integration


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def say(message: str) -> None:
    print(f"[topology] {message}", flush=True)


def processes_started_since(moment: float) -> list[str]:
    """Service processes (Airflow, Spark, PostgreSQL, MLflow) started after ``moment`` and still alive, found by
    scanning every process rather than by what the topology recorded: orphans of a killed service count too.
    (Not by their environment: Airflow's setproctitle overwrites what /proc shows of it.)"""
    import psutil

    services = ("airflow", "spark", "postgres", "mlflow", "gunicorn", "uvicorn", "java")
    found = []
    for process in psutil.process_iter(["pid", "create_time", "cmdline", "status"]):
        info = process.info
        command = " ".join(info["cmdline"] or [])
        if (info["create_time"] >= moment and info["pid"] != os.getpid() and info["status"] != psutil.STATUS_ZOMBIE
                and any(word in command.lower() for word in services)):
            found.append(f"{info['pid']} {command[:120]}")
    return found


@pytest.fixture(scope="module")
def topology():
    # PostgreSQL runs as the postgres user when we are root: its folder must be reachable by others, which
    # pytest's private temporary root is not.
    before = time.time()
    base = Path(tempfile.mkdtemp(prefix="railpm-topology-"))
    base.chmod(0o755)
    ports = ("postgres_port", "airflow_port", "mlflow_port", "spark_master_port", "spark_master_web_port",
             "spark_worker_web_port")
    env = {
        "RAILPM_DATA_ROOT": str(base / "data"),
        # Small, with failures enough for a backtest and a champion; the recipe cut down (the models' own tests
        # judge quality).
        "RAILPM_FLEET__VEHICLES": "16", "RAILPM_FLEET__DAYS": "200",
        "RAILPM_SPARK__SHUFFLE_PARTITIONS": "4", "RAILPM_SPARK__DRIVER_MEMORY": "2g",
        "RAILPM_TOPOLOGY__SPARK_WORKER_MEMORY": "2g",
        "RAILPM_MODEL__BACKTEST_FOLDS": "2",
        "RAILPM_MODEL__RECIPE": json.dumps({"max_iter": 40, "life_max_iter": 30, "importance_rows": 500}),
        # The worker-kill drill waits this long for the records task's second try (the deployment's default is 120).
        "RAILPM_TOPOLOGY__TASK_RETRY_DELAY_S": "10",
        **{f"RAILPM_TOPOLOGY__{p.upper()}": str(free_port()) for p in ports},
    }
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith(("RAILPM_", "AIRFLOW"))]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        settings = Settings()
        from railpm.synth import generate_fleet

        generate_fleet(settings.fleet, settings.landing_dir, settings.truth_dir)
        topology = Topology(settings)
        started = time.perf_counter()
        try:
            timings = topology.up()
            say(f"up in {time.perf_counter() - started:.1f} s: "
                + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
            yield topology
        finally:
            started = time.perf_counter()
            topology.down()
            say(f"down in {time.perf_counter() - started:.1f} s")
            leftovers = processes_started_since(before)
            assert not leftovers, f"processes left running after railpm down: {leftovers}"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def api(topology) -> AirflowApi:
    api = AirflowApi.of(topology)
    api.wait_for_dags(PIPELINE_DAGS)
    return api


def services_listen_on_loopback_only(topology: Topology) -> None:
    import psutil

    pids = {p for pid in topology.status().values() if pid for p in (pid, *[c.pid for c in psutil.Process(pid).children(recursive=True)])}
    listening = [c for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert listening
    assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, listening


def task_timings(api: AirflowApi, dag_id: str, run_id: str) -> str:
    """Each task's seconds in the run, and the wait before it started since the previous one ended (the
    scheduler's and the task start's share), in start order: printed for the closing note."""
    def moment(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    started = [t for t in api.task_instances(dag_id, run_id) if t.get("start_date") and t.get("end_date")]
    previous_end, parts = None, []
    for t in sorted(started, key=lambda t: t["start_date"]):
        map_index = t.get("map_index")
        name = t["task_id"] + (f"[{map_index}]" if map_index is not None and map_index >= 0 else "")
        start, end = moment(t["start_date"]), moment(t["end_date"])
        wait = f" after {start - previous_end:.1f}" if previous_end is not None else ""
        parts.append(f"{name} {end - start:.1f}{wait}")
        previous_end = end if previous_end is None else max(previous_end, end)
    return "; ".join(parts)


def test_every_service_runs_by_pid_on_loopback(topology):
    status = topology.status()
    assert all(status[name] for name in SERVICES), status
    services_listen_on_loopback_only(topology)
    secrets = topology.state / "secrets.json"
    assert secrets.stat().st_mode & 0o077 == 0


def test_rest_api_refuses_a_wrong_password(topology):
    from railpm.errors import RailpmError

    with pytest.raises(RailpmError, match="HTTP 401"):
        AirflowApi(topology.airflow_url, "railpm", "not-the-password").token()


def test_pipeline_triggered_through_the_rest_api_runs_on_the_scheduler(topology, api):
    settings = topology.settings
    for dag_id in PIPELINE_DAGS:
        api.unpause(dag_id)
    started = time.perf_counter()
    since = now_iso()
    run_id = api.trigger("fleet_ingest")
    assert api.wait_for_run("fleet_ingest", run_id)["state"] == "success"
    say(f"fleet_ingest {time.perf_counter() - started:.1f} s: {task_timings(api, 'fleet_ingest', run_id)}")
    records = api.wait_for_run("fleet_records", after=since)
    assert records["state"] == "success", records
    say(f"fleet_records (from the lake Assets) done at {time.perf_counter() - started:.1f} s")
    # Every lake table was new, published at once: one records run, not one per table.
    assert [r["dag_run_id"] for r in api.runs("fleet_records") if (r["queued_at"] or "") > since] == [records["dag_run_id"]]
    # The records started fleet_score, which had no champion to score with: skipped, not failed.
    first_score = api.wait_for_run("fleet_score", after=since)
    states = {t["task_id"]: t["state"] for t in api.task_instances("fleet_score", first_score["dag_run_id"])}
    assert states == {"score_latest_records": "skipped"}, states

    since = now_iso()
    train_id = api.trigger("fleet_train")
    assert api.wait_for_run("fleet_train", train_id)["state"] == "success"
    say(f"fleet_train done at {time.perf_counter() - started:.1f} s")
    # The new model started fleet_score, whose predictions started fleet_plan.
    assert api.wait_for_run("fleet_score", after=since)["state"] == "success"
    assert api.wait_for_run("fleet_plan", after=since)["state"] == "success"
    say(f"pipeline through fleet_plan in {time.perf_counter() - started:.1f} s")

    runs = [json.loads(p.read_text()) for p in settings.runs_dir.glob("ingest-*.json")]
    assert {r["feed"] for r in runs} == {"vehicles", "parts", "stock", "telemetry", "faults", "work_orders"}
    assert all(r["rows_in"] == r["accepted"] + r["quarantined"] + r["duplicates_removed"] + r.get("held", 0) for r in runs)
    # The records jobs ran on the Spark cluster, not in a local JVM.
    master = topology.spark_master_state()
    assert "railpm-records" in {a["name"] for a in master["completedapps"]}  # one application for the four jobs
    # The registry lives in the MLflow server (backed by PostgreSQL) and names a champion.
    client = MlflowClient(tracking_uri=topology.mlflow_url, registry_uri=topology.mlflow_url)
    model = client.get_registered_model(settings.model.registered_model_name)
    assert CHAMPION in model.aliases
    predictions = sorted(settings.predictions_dir.glob("predictions-*.parquet"))
    assert len(predictions) == 1 and len(pd.read_parquet(predictions[0])) > 0
    assert list(settings.plans_dir.glob("*/inspection_plan.parquet"))
    assert (settings.reports_dir / "index.html").exists()


def read_table(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)


def wait_until(condition, timeout_s: float, what: str, every_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)
    return value


def test_drill_garbage_file_spark_worker_and_scheduler_killed_mid_run(topology, api):
    """A landing file of garbage is set aside with its reason and the run goes on; the records run it starts loses its Spark
    worker mid-job, then its scheduler, and still completes once with records identical to the undisturbed run's."""
    settings = topology.settings
    vehicle_days = settings.records_dir / "vehicle_days"
    undisturbed = read_table(vehicle_days)
    undisturbed_components = read_table(settings.records_dir / "component_days").shape
    garbage = settings.landing_dir / "faults" / "faults-drill-garbage.jsonl"
    garbage.write_text("".join(f"{{not json at all, line {i}\n" for i in range(25)) + "\x13\x37 junk\n")
    garbage_bytes = garbage.read_bytes()
    since = now_iso()
    started = time.perf_counter()
    api.trigger("fleet_ingest")
    # The garbage brought no record into the lake, yet a new faults file was read, so the records are rebuilt:
    # kill the worker while that rebuild's first job runs on it.
    wait_until(lambda: any(a["name"] == "railpm-records" for a in topology.spark_master_state().get("activeapps", [])),
               900, "the records job on the Spark cluster")
    time.sleep(5)
    assert topology.stop("spark-worker", kill=True)
    killed = time.perf_counter()
    time.sleep(5)
    topology.start("spark-worker")
    say(f"drill spark worker: killed {killed - started:.1f} s after the ingest was triggered, back after "
        f"{time.perf_counter() - killed:.1f} s")
    # Then the scheduler, SIGKILLed like a crashed host process, while the records task runs (again, if the
    # worker's loss failed its first try).
    run = wait_until(lambda: next((r for r in api.runs("fleet_records") if (r["queued_at"] or "") > since), None),
                     300, "the records run")
    wait_until(lambda: any(t["task_id"] == "build_records" and t["state"] == "running"
                           for t in api.task_instances("fleet_records", run["dag_run_id"])), 900, "build_records to run")
    time.sleep(5)
    scheduler = topology.status()["airflow-scheduler"]
    os.kill(scheduler, signal.SIGKILL)
    crashed = time.perf_counter()
    time.sleep(3)
    topology.start("airflow-scheduler")
    say(f"drill scheduler: restarted {time.perf_counter() - crashed:.1f} s after the kill")
    records = api.wait_for_run("fleet_records", run["dag_run_id"])
    assert records["state"] == "success", records
    tries = {t["task_id"]: t["try_number"] for t in api.task_instances("fleet_records", records["dag_run_id"])}
    say(f"drills: fleet_records succeeded {time.perf_counter() - killed:.1f} s after the worker kill, "
        f"{time.perf_counter() - crashed:.1f} s after the scheduler kill; tries {tries}")
    # Nothing duplicated: one records run for the garbage file, the same records, the same lake.
    assert [r for r in api.runs("fleet_records") if (r["queued_at"] or "") > since] == [api.run("fleet_records", run["dag_run_id"])]
    pd.testing.assert_frame_equal(read_table(vehicle_days), undisturbed)
    assert read_table(settings.records_dir / "component_days").shape == undisturbed_components

    # The garbage does not parse at all: the file is set aside whole with the reason, and the run went on.
    record = next(json.loads(p.read_text()) for p in settings.runs_dir.glob("ingest-*.json")
                  if json.loads(p.read_text())["file"] == "faults/faults-drill-garbage.jsonl")
    assert record["status"] == "rejected" and record["error"], record
    kept = settings.data_root / record["moved_to"]
    assert kept.read_bytes() == garbage_bytes and kept.with_name(f"{kept.name}.error.txt").exists()
    say(f"drill garbage: {record['moved_to']} set aside: {record['error'][:200]}")
    # Let the rest of the cascade finish before the next drill. fleet_score starts as soon as component_days
    # publishes, so score and plan may be queued before the records run itself ends: wait from the drill's start.
    assert api.wait_for_run("fleet_score", after=since)["state"] == "success"
    assert api.wait_for_run("fleet_plan", after=since)["state"] == "success"


def test_drill_mlflow_server_stopped_during_scoring(topology, api):
    """Scoring without the MLflow server fails with a clear error and publishes nothing; with the server back,
    the retried task writes the predictions."""
    settings = topology.settings
    before = {p.name: p.stat().st_mtime_ns for p in settings.predictions_dir.glob("*")}
    assert topology.stop("mlflow")
    stopped = time.perf_counter()
    run_id = api.trigger("fleet_score")
    task = wait_until(lambda: next((t for t in api.task_instances("fleet_score", run_id)
                                    if t["state"] in ("up_for_retry", "failed")), None), 600, "the scoring task to fail")
    say(f"drill mlflow: scoring failed {time.perf_counter() - stopped:.1f} s after the server stopped ({task['state']})")
    assert {p.name: p.stat().st_mtime_ns for p in settings.predictions_dir.glob("*")} == before
    logs = topology.state / "airflow" / "logs" / "dag_id=fleet_score" / f"run_id={run_id}"
    log = "\n".join(p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file())
    assert topology.mlflow_url.split("//")[1] in log and ("Connection refused" in log or "Max retries" in log), log[-3000:]
    topology.start("mlflow")
    api.clear("fleet_score", run_id, ["score_latest_records"])
    assert api.wait_for_run("fleet_score", run_id)["state"] == "success"
    say(f"drill mlflow: scoring succeeded {time.perf_counter() - stopped:.1f} s after the server stopped")
    predictions = sorted(settings.predictions_dir.glob("predictions-*.parquet"))
    assert len(predictions) == 1 and len(pd.read_parquet(predictions[0])) > 0
