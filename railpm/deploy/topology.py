"""The production topology on one machine, without Docker: ``railpm up`` / ``railpm down``.

The same services as ``docker/compose.yaml``, run as plain processes: PostgreSQL from Debian's packages (one
cluster holding Airflow's metadata DB and MLflow's backend store), a Spark standalone master and worker, an
MLflow tracking server that serves the model artifacts, and Airflow's API server, scheduler, DAG processor
and triggerer with the LocalExecutor. The DAGs run through the real scheduler, not ``airflow dags test``.

Everything listens on 127.0.0.1 only. Each service is started in its own process group, its PID (with the
process's start time, so a recycled PID is never signalled) written to ``<state>/pids/<service>.pid`` and its
output to ``<state>/logs/<service>.log``; ``down`` stops the groups in the reverse order by those PIDs, then
any other group it started that still has members (what a crashed service left behind).
Passwords and signing keys come from the environment (``RAILPM_TOPOLOGY__*``) or are generated once into
``<state>/secrets.json`` (mode 0600); none is in the repository.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from railpm.config import Settings
from railpm.deploy.credentials import topology_secrets
from railpm.deploy.endpoints import Endpoints
from railpm.deploy.environment import AIRFLOW_USER, airflow_environment, base_environment, init_airflow
from railpm.deploy.health import Health
from railpm.deploy.orchestration import AIRFLOW_BIN
from railpm.deploy.postgres import create_databases, init_cluster, postgres_bin_dir, postgres_user
from railpm.deploy.processes import GroupLog, PidFile, Service, log_tail, processes_with_environment, stop_group
from railpm.errors import RailpmError

MLFLOW_BIN = AIRFLOW_BIN.with_name("mlflow")
SERVICES = ("postgres", "spark-master", "spark-worker", "mlflow", "airflow-api-server", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer")
"""Start order; ``down`` stops in the reverse order."""
AIRFLOW_COMPONENTS = {"airflow-api-server": "api-server", "airflow-scheduler": "scheduler",
                      "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}
__all__ = ["AIRFLOW_USER", "SERVICES", "AirflowApi", "Topology"]


# --------------------------------------------------------------------------------------------------
# The topology: its services and their lifecycle; addresses, secrets, environments, health checks and the
# databases' setup are the modules imported above
# --------------------------------------------------------------------------------------------------

@dataclass
class Topology:
    """Where the topology keeps its state and how its services are started and stopped, from ``Settings.topology``."""

    settings: Settings
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = (self.settings.topology.state_dir or self.settings.data_root / "topology").resolve()

    @cached_property
    def endpoints(self) -> Endpoints:
        return Endpoints(self.settings.topology)

    @cached_property
    def health(self) -> Health:
        return Health(self.endpoints)

    @property
    def airflow_url(self) -> str:
        return self.endpoints.airflow_url

    @property
    def mlflow_url(self) -> str:
        return self.endpoints.mlflow_url

    @property
    def spark_master_url(self) -> str:
        return self.endpoints.spark_master_url

    def spark_master_state(self) -> dict:
        return self.health.spark_master_state()

    def secrets(self) -> dict[str, str]:
        return topology_secrets(self.state / "secrets.json", self.settings.topology)

    # ---- places
    def log(self, service: str) -> Path:
        return self.state / "logs" / f"{service}.log"

    def pid_file(self, service: str) -> PidFile:
        return PidFile(self.state / "pids" / f"{service}.pid")

    @property
    def group_log(self) -> GroupLog:
        return GroupLog(self.state / "pids" / "groups.jsonl")

    def airflow_environment(self) -> dict[str, str]:
        return airflow_environment(self.state / "airflow", self.settings, self.endpoints, self.secrets(),
                                   base_environment(self.endpoints.host))

    # ---- services
    def services(self) -> dict[str, Service]:
        t, host, health = self.settings.topology, self.endpoints.host, self.health
        base, airflow_env = base_environment(host), self.airflow_environment()
        spark_class = str(Path(base["SPARK_HOME"]) / "bin" / "spark-class")
        services = {
            "postgres": Service(
                "postgres",
                [str(postgres_bin_dir() / "postgres"), "-D", str(self.state / "postgres"), "-c", f"listen_addresses={host}",
                 "-c", f"port={t.postgres_port}", "-c", "unix_socket_directories=", "-c", "max_connections=200"],
                base, health.postgres, user=postgres_user(),
            ),
            "spark-master": Service(
                "spark-master",
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", host, "--port",
                 str(t.spark_master_port), "--webui-port", str(t.spark_master_web_port)],
                base, health.spark_master,
            ),
            "spark-worker": Service(
                "spark-worker",
                [spark_class, "org.apache.spark.deploy.worker.Worker", self.spark_master_url, "--host", host,
                 "--cores", str(t.spark_worker_cores), "--memory", t.spark_worker_memory,
                 "--work-dir", str(self.state / "spark-worker"), "--webui-port", str(t.spark_worker_web_port)],
                base, health.spark_worker_registered,
            ),
            "mlflow": Service(
                "mlflow",
                [str(MLFLOW_BIN), "server", "--host", host, "--port", str(t.mlflow_port), "--workers", "1",
                 "--serve-artifacts", "--artifacts-destination", (self.state / "mlflow-artifacts").as_uri()],
                # The store URI holds the password: by environment, not on a command line anyone can list.
                {**base, "MLFLOW_BACKEND_STORE_URI": self.endpoints.database_url(self.secrets()["db_password"], "mlflow"),
                 # MLflow 3's job runner (GenAI evaluation, trace roll-ups) is not railpm's: without this it starts
                 # 15 huey worker processes that poll all day.
                 "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                health.mlflow,
            ),
        }
        for name, component in AIRFLOW_COMPONENTS.items():
            # Airflow's log server binds every interface; on one machine the API server reads the task logs
            # from disk, so it is not started.
            extra = ["--skip-serve-logs"] if component in ("scheduler", "triggerer") else []
            services[name] = Service(name, [str(AIRFLOW_BIN), component, *extra], airflow_env,
                                     lambda component=component: health.airflow_component(component))
        return services

    # ---- lifecycle
    def status(self) -> dict[str, int | None]:
        """Service -> its running PID (None: not running)."""
        return {name: self.pid_file(name).running_pid() for name in SERVICES}

    def start(self, name: str, service: Service | None = None, timeout_s: float | None = None) -> int:
        """Start one service (unless it runs already) and wait until it answers; returns its PID."""
        service = service or self.services()[name]
        pid_file = self.pid_file(name)
        pid = pid_file.running_pid()
        if pid is None:
            log = self.log(name)
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as out:
                process = subprocess.Popen(service.command, env=service.env, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True, user=service.user,
                                           cwd=str(self.state))
            pid_file.write(process.pid)
            self.group_log.add(process.pid)
            pid = process.pid
        deadline = time.monotonic() + (timeout_s or self.settings.topology.start_timeout_s)
        while not service.ready():
            if pid_file.running_pid() is None:
                raise RailpmError(f"{name} exited while starting; its log {self.log(name)} ends:\n{log_tail(self.log(name))}")
            if time.monotonic() > deadline:
                raise RailpmError(f"{name} did not answer within {timeout_s or self.settings.topology.start_timeout_s} s;"
                                  f" its log {self.log(name)} ends:\n{log_tail(self.log(name))}")
            time.sleep(0.5)
        return pid

    def stop(self, name: str, kill: bool = False) -> bool:
        """Stop one service by its recorded PID (``kill``: SIGKILL at once, as a crash would); True if it ran."""
        pid_file = self.pid_file(name)
        pid = pid_file.running_pid()
        stopped = False
        if pid is not None:
            service_signal = signal.SIGINT if name == "postgres" else signal.SIGTERM  # SIGINT: PostgreSQL's fast shutdown
            stopped = stop_group(pid, signal.SIGKILL if kill else service_signal)
        pid_file.path.unlink(missing_ok=True)
        return stopped

    def up(self, on_step: Callable[[str], None] | None = None) -> dict[str, float]:
        """Start every service in order (initialising the databases on first use); returns seconds per step."""
        step = on_step or (lambda _name: None)
        self.state.mkdir(parents=True, exist_ok=True)
        self.settings.data_root.mkdir(parents=True, exist_ok=True)
        services = self.services()
        timings: dict[str, float] = {}
        for name in SERVICES:
            started = time.perf_counter()
            step(name)
            if name == "postgres":
                self._init_postgres()
            if name == "airflow-api-server":
                self._init_airflow()
                timings["airflow db migrate"] = time.perf_counter() - started
                started = time.perf_counter()
            self.start(name, services[name])
            if name == "postgres":
                self._create_databases()
            timings[name] = time.perf_counter() - started
        return timings

    def down(self) -> list[str]:
        """Stop every running service, PostgreSQL last; returns the ones that were running.

        The others stop side by side: each may take its grace period to drain (the scheduler its task runners,
        the Spark worker its executors), so the slowest bounds the wait rather than their sum.
        """
        from concurrent.futures import ThreadPoolExecutor

        clients = [name for name in reversed(SERVICES) if name != "postgres"]
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            stopped = [name for name, ran in zip(clients, pool.map(self.stop, clients)) if ran]
        stopped += ["postgres"] if self.stop("postgres") else []
        for pgid in self.group_log.live_groups():  # what crashed services left behind
            stop_group(pgid)
        for pid in self.stray_task_processes():
            try:
                stop_group(os.getpgid(pid), signal.SIGKILL)
            except ProcessLookupError:
                continue
        self.group_log.clear()
        return stopped

    def stray_task_processes(self) -> list[int]:
        """Task processes of this topology that outlived their scheduler: Airflow's supervisor starts each task
        in a session of its own, so stopping the scheduler's process group does not reach them."""
        return processes_with_environment(f"AIRFLOW_HOME={self.state / 'airflow'}".encode())

    def _init_postgres(self) -> None:
        init_cluster(self.state / "postgres", self.secrets()["db_password"])

    def _create_databases(self) -> None:
        create_databases(self.endpoints.host, self.settings.topology.postgres_port, self.secrets()["db_password"])

    def _init_airflow(self) -> None:
        init_airflow(self.airflow_environment(), self.secrets()["airflow_password"])


# --------------------------------------------------------------------------------------------------
# Airflow's REST API
# --------------------------------------------------------------------------------------------------

TERMINAL_STATES = {"success", "failed"}


@dataclass
class AirflowApi:
    """The few calls of Airflow's public REST API (``/api/v2``) that operate the pipeline, as the admin user."""

    base_url: str
    username: str
    password: str
    _token: str | None = None

    @classmethod
    def of(cls, topology: Topology) -> AirflowApi:
        return cls(topology.airflow_url, AIRFLOW_USER, topology.secrets()["airflow_password"])

    def _request(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(f"{self.base_url}{path}", method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise RailpmError(f"Airflow API {method} {path}: HTTP {error.code} {error.read()[:500]!r}") from error

    def token(self) -> str:
        if self._token is None:
            answer = self._request("POST", "/auth/token", {"username": self.username, "password": self.password},
                                   auth=False)
            self._token = answer["access_token"]
        return self._token

    def wait_for_dags(self, dag_ids: Iterator[str] | tuple[str, ...], timeout_s: float = 300) -> None:
        """Wait until the DAG processor has parsed every DAG (the API knows them)."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout_s
        while True:
            known = {d["dag_id"] for d in self._request("GET", "/api/v2/dags?limit=100")["dags"]}
            if wanted <= known:
                return
            if time.monotonic() > deadline:
                raise RailpmError(f"Airflow did not parse {sorted(wanted - known)} within {timeout_s} s")
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Trigger a run now; returns its run id."""
        run = self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.request.quote(run_id, safe="")
        return self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=200")["task_instances"]

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        """Clear task instances so the scheduler runs them again now (what an operator does after a fix)."""
        self._request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
                      {"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": False,
                       "reset_dag_runs": True})

    def wait_for_run(self, dag_id: str, run_id: str | None = None, *, after: str | None = None,
                     timeout_s: float = 900) -> dict:
        """Wait for a run to finish: ``run_id``, or else the first run of ``dag_id`` queued after ``after``
        (an ISO time: a run the scheduler starts from an Asset). Returns the run."""
        deadline = time.monotonic() + timeout_s
        while True:
            if run_id is None:
                later = [r for r in self.runs(dag_id) if after is None or (r["queued_at"] or "") > after]
                run = later[0] if later else None
            else:
                run = self.run(dag_id, run_id)
            if run and run["state"] in TERMINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise RailpmError(f"{dag_id} run {run_id or '(from an asset)'} did not finish within {timeout_s} s: "
                                  f"{run['state'] if run else 'not started'}")
            time.sleep(3)
