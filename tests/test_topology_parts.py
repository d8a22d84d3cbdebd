"""The production topology's parts that start no service: addresses, secrets, environments, health checks
against a real local HTTP server, and processes found again by PID file. ``railpm up`` itself is the
integration test's (``make integration``)."""

from __future__ import annotations

import json
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pydantic import SecretStr

from helpers import free_port
from railpm.config import Settings, TopologySettings
from railpm.deploy.credentials import topology_secrets
from railpm.deploy.endpoints import Endpoints
from railpm.deploy.environment import AIRFLOW_USER, airflow_environment, base_environment
from railpm.deploy.health import Health, get_json
from railpm.deploy.processes import GroupLog, PidFile, stop_group
from railpm.deploy.topology import AIRFLOW_COMPONENTS, SERVICES, Topology


def test_every_address_is_on_the_configured_host_and_port():
    e = Endpoints(TopologySettings(host="127.0.0.2", airflow_port=1001, mlflow_port=1002, spark_master_port=1003,
                                   spark_master_web_port=1004, postgres_port=1005))
    assert (e.airflow_url, e.mlflow_url, e.spark_master_url) == ("http://127.0.0.2:1001", "http://127.0.0.2:1002", "spark://127.0.0.2:1003")
    assert e.spark_master_status_url == "http://127.0.0.2:1004/json/"
    assert e.database_url("pw", "mlflow") == "postgresql+psycopg2://railpm:pw@127.0.0.2:1005/mlflow"


def test_secrets_come_from_the_settings_else_are_generated_once_and_kept_private(tmp_path):
    path = tmp_path / "state" / "secrets.json"
    first = topology_secrets(path, TopologySettings())
    assert set(first) == {"db_password", "airflow_password", "jwt_secret"} and len(set(first.values())) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert topology_secrets(path, TopologySettings()) == first, "kept, not generated again"
    given = topology_secrets(path, TopologySettings(jwt_secret=SecretStr("from-the-environment")))
    assert given == {**first, "jwt_secret": "from-the-environment"}
    assert json.loads(path.read_text()) == given


def test_every_airflow_component_gets_one_environment_pointing_at_the_topology(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", "/somewhere/else")  # another installation's setting
    monkeypatch.setenv("RAILPM_PLAN__SERVICE_LEVEL", "0.9")
    settings = Settings(data_root=tmp_path / "data", topology=TopologySettings(state_dir=tmp_path / "state"))
    topology = Topology(settings)
    env = topology.airflow_environment()
    secrets = topology.secrets()
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == secrets["jwt_secret"]
    assert secrets["db_password"] in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags") and env["AIRFLOW__CORE__DAGS_FOLDER"] != "/somewhere/else"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{AIRFLOW_USER}:admin"
    assert env["RAILPM_SPARK__MASTER"] == topology.spark_master_url and env["RAILPM_MLFLOW_TRACKING_URI"] == topology.mlflow_url
    assert env["RAILPM_DATA_ROOT"] == str((tmp_path / "data").resolve()) and env["RAILPM_PLAN__SERVICE_LEVEL"] == "0.9"
    assert env == airflow_environment(tmp_path / "state" / "airflow", settings, topology.endpoints, secrets,
                                      base_environment("127.0.0.1"))
    base = base_environment("127.0.0.1", {"AIRFLOW_HOME": "/x", "SPARK_HOME": "/y", "RAILPM_DATA_ROOT": "/d", "PATH": "/bin"})
    assert "AIRFLOW_HOME" not in base and base["SPARK_HOME"] != "/y" and base["RAILPM_DATA_ROOT"] == "/d"


def test_services_start_in_order_bound_to_the_configured_host(tmp_path):
    settings = Settings(data_root=tmp_path / "data", topology=TopologySettings(state_dir=tmp_path / "state"))
    try:
        services = Topology(settings).services()
    except Exception as exc:  # noqa: BLE001 - PostgreSQL's server is a system package
        pytest.skip(f"no PostgreSQL server here: {exc}")
    assert tuple(services) == SERVICES and set(AIRFLOW_COMPONENTS) <= set(services)
    for name in ("postgres", "spark-master", "spark-worker", "mlflow"):
        assert any("127.0.0.1" in part for part in services[name].command), name
    assert not any(settings.topology.host in part and "railpm:" in part for part in services["mlflow"].command), \
        "the store URI (with its password) is passed by environment, not on the command line"


class _Health(BaseHTTPRequestHandler):
    answers: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.answers.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()


def test_health_checks_read_what_the_services_answer(health_server):
    port = health_server
    _Health.answers = {
        "/api/v2/monitor/health": json.dumps({"scheduler": {"status": "healthy"}, "triggerer": {"status": "unhealthy"}}).encode(),
        "/health": b"OK",
        "/json/": json.dumps({"aliveworkers": 0}).encode(),
    }
    health = Health(Endpoints(TopologySettings(airflow_port=port, mlflow_port=port, spark_master_web_port=port)))
    assert health.airflow_component("api-server") and health.airflow_component("scheduler")
    assert not health.airflow_component("triggerer") and not health.airflow_component("dag-processor")
    assert health.mlflow() and health.spark_master() and not health.spark_worker_registered()
    _Health.answers["/json/"] = json.dumps({"aliveworkers": 1}).encode()
    assert health.spark_worker_registered()
    assert get_json(f"http://127.0.0.1:{free_port()}/") is None, "nothing listening is no answer, not an error"


def test_a_process_is_found_by_its_pid_file_and_its_group_stopped(tmp_path):
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        pid_file, groups = PidFile(tmp_path / "pids" / "sleep.pid"), GroupLog(tmp_path / "pids" / "groups.jsonl")
        pid_file.write(process.pid)
        groups.add(process.pid)
        assert pid_file.running_pid() == process.pid and groups.live_groups() == [process.pid]
        assert stop_group(process.pid, grace_s=5)
        process.wait(timeout=10)
        assert pid_file.running_pid() is None and groups.live_groups() == []
        assert not stop_group(process.pid), "a group that is gone is not running"
    finally:
        if process.poll() is None:
            process.kill()
