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

import glob
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.deploy.orchestration import AIRFLOW_BIN, REPO_DAGS_FOLDER, migrate_metadata_db

MLFLOW_BIN = Path(sys.executable).with_name("mlflow")
AIRFLOW_USER = "railpm"
"""The Airflow admin (simple auth manager) the REST API is called as; its password is a topology secret."""
SERVICES = ("postgres", "spark-master", "spark-worker", "mlflow", "airflow-api-server", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer")
"""Start order; ``down`` stops in the reverse order."""
AIRFLOW_COMPONENTS = {"airflow-api-server": "api-server", "airflow-scheduler": "scheduler",
                      "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}


# --------------------------------------------------------------------------------------------------
# Processes by PID
# --------------------------------------------------------------------------------------------------

def group_members(pgid: int) -> list[psutil.Process]:
    """Live processes of a process group (zombies left to their reaper do not count)."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def stop_group(pgid: int, first: signal.Signals = signal.SIGTERM, grace_s: float = 30) -> bool:
    """Signal a service's process group (the service and what it forked: executors, task runners), SIGKILL
    whatever outlives ``grace_s``; True if the group was running."""
    if not group_members(pgid):
        return False
    for sig, grace in ((first, grace_s), (signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_members(pgid):
            break
    return True


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]
    """True once the service answers (a port, a health endpoint)."""
    user: str | None = None
    """Run as this system user (PostgreSQL refuses to run as root)."""


@dataclass
class PidFile:
    path: Path

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": pid, "started": psutil.Process(pid).create_time()}))

    def running_pid(self) -> int | None:
        """The recorded PID if that very process still runs (same start time), else None."""
        try:
            record = json.loads(self.path.read_text())
            process = psutil.Process(record["pid"])
            if abs(process.create_time() - record["started"]) < 0.01 and process.status() != psutil.STATUS_ZOMBIE:
                return process.pid
        except (OSError, ValueError, KeyError, psutil.Error):
            pass
        return None


@dataclass
class GroupLog:
    """Every process group the topology ever started, so ``down`` also reaches the children of a service that
    crashed: a SIGKILLed scheduler leaves its LocalExecutor workers running in its old group, under no PID file."""

    path: Path

    def add(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as log:
            log.write(json.dumps({"pgid": pid, "started": psutil.Process(pid).create_time()}) + "\n")

    def live_groups(self) -> list[int]:
        """Recorded groups that still have members. A group id is never reused while any member lives; a live
        leader with another start time means the id was reused after the group ended, so it is not ours."""
        groups = []
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        for record in map(json.loads, lines):
            try:
                if abs(psutil.Process(record["pgid"]).create_time() - record["started"]) >= 0.01:
                    continue
            except psutil.NoSuchProcess:
                pass
            if group_members(record["pgid"]):
                groups.append(record["pgid"])
        return groups

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# The topology
# --------------------------------------------------------------------------------------------------

def _get(url: str, timeout: float = 5) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            return json.loads(body) if body.strip().startswith((b"{", b"[")) else {"status": body.decode()}
    except (OSError, ValueError):
        return None


def postgres_bin_dir() -> Path:
    """The newest PostgreSQL server installed from Debian's packages (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RailpmError("PostgreSQL server not found under /usr/lib/postgresql: install Debian's postgresql "
                          "package (scripts/install-system-deps.sh does)")
    return Path(found[-1]).parent


@dataclass
class Topology:
    """Where the topology keeps its state and how its services are reached, from ``Settings.topology``."""

    settings: Settings
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = (self.settings.topology.state_dir or self.settings.data_root / "topology").resolve()

    # ---- places and addresses
    @property
    def host(self) -> str:
        return self.settings.topology.host

    @property
    def airflow_url(self) -> str:
        return f"http://{self.host}:{self.settings.topology.airflow_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.settings.topology.mlflow_port}"

    @property
    def spark_master_url(self) -> str:
        return f"spark://{self.host}:{self.settings.topology.spark_master_port}"

    def log(self, service: str) -> Path:
        return self.state / "logs" / f"{service}.log"

    def pid_file(self, service: str) -> PidFile:
        return PidFile(self.state / "pids" / f"{service}.pid")

    @property
    def group_log(self) -> GroupLog:
        return GroupLog(self.state / "pids" / "groups.jsonl")

    # ---- secrets: from the environment, else generated once and kept beside the state (0600)
    def secrets(self) -> dict[str, str]:
        path = self.state / "secrets.json"
        kept = json.loads(path.read_text()) if path.exists() else {}
        given = self.settings.topology
        values = {
            "db_password": given.db_password.get_secret_value() if given.db_password else None,
            "airflow_password": given.airflow_password.get_secret_value() if given.airflow_password else None,
            "jwt_secret": given.jwt_secret.get_secret_value() if given.jwt_secret else None,
        }
        values = {k: v or kept.get(k) or secrets.token_urlsafe(24) for k, v in values.items()}
        if values != kept:
            self.state.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            os.chmod(path, 0o600)
            path.write_text(json.dumps(values))
        return values

    def database_url(self, database: str) -> str:
        password = self.secrets()["db_password"]
        return f"postgresql+psycopg2://railpm:{password}@{self.host}:{self.settings.topology.postgres_port}/{database}"

    # ---- environments
    def railpm_environment(self) -> dict[str, str]:
        """What every railpm task needs to use the topology: the data root, the Spark master, the MLflow server."""
        return {
            "RAILPM_DATA_ROOT": str(self.settings.data_root.resolve()),
            "RAILPM_SPARK__MASTER": self.spark_master_url,
            "RAILPM_MLFLOW_TRACKING_URI": self.mlflow_url,
        }

    def airflow_environment(self) -> dict[str, str]:
        home = self.state / "airflow"
        t = self.settings.topology
        env = {
            **self.base_environment(),
            **self.railpm_environment(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(t.airflow_parallelism),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url("airflow"),
            "AIRFLOW__API__HOST": self.host,
            "AIRFLOW__API__PORT": str(t.airflow_port),
            "AIRFLOW__API__BASE_URL": self.airflow_url,
            # Workers reach the Execution API at the API server's own address, whatever port it was given.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
            # One signing key for every component, or tokens one issues the next rejects.
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secrets()["jwt_secret"],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
            "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # A task whose runner died with a killed scheduler is failed (and retried) after this, not 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(t.task_heartbeat_timeout_s),
            # A restarted scheduler looks for the dead one's tasks within this, not 5 minutes.
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "30",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # A task that cannot reach the MLflow server fails within seconds and is retried by Airflow, instead
            # of MLflow's own back-off of several minutes.
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
        }
        return env

    def base_environment(self) -> dict[str, str]:
        """The caller's environment without Airflow settings of another installation; railpm settings stay."""
        import pyspark

        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SPARK_"))}
        env.update(SPARK_HOME=str(Path(pyspark.__path__[0])), SPARK_LOCAL_IP=self.host,
                   PYSPARK_PYTHON=env.get("PYSPARK_PYTHON", sys.executable),
                   PYSPARK_DRIVER_PYTHON=env.get("PYSPARK_DRIVER_PYTHON", sys.executable))
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    # ---- services
    def services(self) -> dict[str, Service]:
        t = self.settings.topology
        spark_class = str(Path(self.base_environment()["SPARK_HOME"]) / "bin" / "spark-class")
        base, airflow_env = self.base_environment(), self.airflow_environment()
        pg_bin = postgres_bin_dir()
        services = {
            "postgres": Service(
                "postgres",
                [str(pg_bin / "postgres"), "-D", str(self.state / "postgres"), "-c", f"listen_addresses={self.host}",
                 "-c", f"port={t.postgres_port}", "-c", "unix_socket_directories=", "-c", "max_connections=200"],
                base, self._postgres_ready,
                user="postgres" if os.geteuid() == 0 else None,
            ),
            "spark-master": Service(
                "spark-master",
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", self.host, "--port",
                 str(t.spark_master_port), "--webui-port", str(t.spark_master_web_port)],
                base, lambda: _get(f"http://{self.host}:{t.spark_master_web_port}/json/") is not None,
            ),
            "spark-worker": Service(
                "spark-worker",
                [spark_class, "org.apache.spark.deploy.worker.Worker", self.spark_master_url, "--host", self.host,
                 "--cores", str(t.spark_worker_cores), "--memory", t.spark_worker_memory,
                 "--work-dir", str(self.state / "spark-worker"), "--webui-port", str(t.spark_worker_web_port)],
                base, self.spark_worker_registered,
            ),
            "mlflow": Service(
                "mlflow",
                [str(MLFLOW_BIN), "server", "--host", self.host, "--port", str(t.mlflow_port), "--workers", "1",
                 "--serve-artifacts", "--artifacts-destination", (self.state / "mlflow-artifacts").as_uri()],
                # The store URI holds the password: by environment, not on a command line anyone can list.
                {**base, "MLFLOW_BACKEND_STORE_URI": self.database_url("mlflow")},
                lambda: (_get(f"{self.mlflow_url}/health") or {}).get("status") == "OK",
            ),
        }
        for name, component in AIRFLOW_COMPONENTS.items():
            # Airflow's log server binds every interface; on one machine the API server reads the task logs
            # from disk, so it is not started.
            extra = ["--skip-serve-logs"] if component in ("scheduler", "triggerer") else []
            services[name] = Service(name, [str(AIRFLOW_BIN), component, *extra], airflow_env,
                                     lambda component=component: self.airflow_component_healthy(component))
        return services

    def _postgres_ready(self) -> bool:
        result = subprocess.run([str(postgres_bin_dir() / "pg_isready"), "-h", self.host, "-p",
                                 str(self.settings.topology.postgres_port)], capture_output=True)
        return result.returncode == 0

    def spark_master_state(self) -> dict:
        """The master's JSON status: workers, running and completed applications."""
        return _get(f"http://{self.host}:{self.settings.topology.spark_master_web_port}/json/") or {}

    def spark_worker_registered(self) -> bool:
        return self.spark_master_state().get("aliveworkers", 0) >= 1

    def airflow_health(self) -> dict:
        return _get(f"{self.airflow_url}/api/v2/monitor/health") or {}

    def airflow_component_healthy(self, component: str) -> bool:
        health = self.airflow_health()
        if component == "api-server":
            return bool(health)
        key = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}[component]
        return (health.get(key) or {}).get("status") == "healthy"

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
        """Stop every running service, last started first; returns the ones that were running."""
        stopped = [name for name in reversed(SERVICES) if self.stop(name)]
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
        home = f"AIRFLOW_HOME={self.state / 'airflow'}".encode()
        strays = []
        for process in psutil.process_iter():
            try:
                if process.pid != os.getpid() and home in Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0"):
                    strays.append(process.pid)
            except (OSError, psutil.Error):
                continue
        return strays

    def _init_postgres(self) -> None:
        data = self.state / "postgres"
        if (data / "PG_VERSION").exists():
            return
        as_root = os.geteuid() == 0
        data.mkdir(parents=True, exist_ok=True)
        password_file = self.state / "postgres.pw"
        password_file.write_text(self.secrets()["db_password"])
        os.chmod(password_file, 0o600)
        try:
            if as_root:
                self._reachable_by_postgres(data)
                for path in (data, password_file):
                    os.chown(path, *_uid_gid("postgres"))
            done = subprocess.run(
                [str(postgres_bin_dir() / "initdb"), "-D", str(data), "-U", "railpm", f"--pwfile={password_file}",
                 "--auth-host=scram-sha-256", "--auth-local=reject", "-E", "UTF8", "--no-instructions"],
                capture_output=True, text=True, user="postgres" if as_root else None,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if done.returncode != 0:
            raise RailpmError(f"initdb failed for {data}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def _reachable_by_postgres(self, data: Path) -> None:
        """As root, PostgreSQL runs as the ``postgres`` user, who must be able to walk down to its data folder."""
        blocked = [p for p in reversed(data.parents) if p.stat().st_mode & 0o001 == 0 and p.stat().st_uid != _uid_gid("postgres")[0]]
        if blocked:
            raise RailpmError(f"the postgres user cannot reach {data}: {blocked[0]} is not searchable by others "
                              "(chmod o+x it, or set RAILPM_TOPOLOGY__STATE_DIR to a folder it can reach)")

    def _create_databases(self) -> None:
        import psycopg2

        t = self.settings.topology
        connection = psycopg2.connect(host=self.host, port=t.postgres_port, user="railpm", dbname="postgres",
                                      password=self.secrets()["db_password"])
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT datname FROM pg_database")
                existing = {row[0] for row in cursor.fetchall()}
                for database in ("airflow", "mlflow"):
                    if database not in existing:
                        cursor.execute(f"CREATE DATABASE {database}")
        finally:
            connection.close()

    def _init_airflow(self) -> None:
        env = self.airflow_environment()
        home = Path(env["AIRFLOW_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        passwords = home / "passwords.json"
        passwords.touch(mode=0o600)
        passwords.write_text(json.dumps({AIRFLOW_USER: self.secrets()["airflow_password"]}))
        migrate_metadata_db(env)


def _uid_gid(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


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
