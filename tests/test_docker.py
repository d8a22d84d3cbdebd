"""The production topology (docker/): services bound to loopback, no secret in the files, image versions in
step with constraints.txt. CI machines have a Docker client but no engine, so the files are checked as
data; the topology itself is not started here."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from railpm.config import Settings

DOCKER = Path(__file__).resolve().parents[1] / "docker"
CONSTRAINTS = (DOCKER.parent / "constraints.txt").read_text()


def pinned(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)$", CONSTRAINTS, flags=re.MULTILINE | re.IGNORECASE)
    assert match, f"{package} is not pinned in constraints.txt"
    return match.group(1)


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def test_every_published_port_is_bound_to_loopback():
    services = compose()["services"]
    published = {name: s.get("ports", []) for name, s in services.items()}
    assert any(published.values()), "the API server, Spark UI and MLflow are published"
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_no_secret_is_written_in_the_topology():
    """Passwords come from the environment (``${VAR}``, required with ``:?``), never as literals."""
    doc = compose()
    for text in strings(doc):
        for _user, secret in re.findall(r"://([^:/@\s]+):(\$?\$\{[^}]*\}|[^@\s]+)@", text):
            assert re.fullmatch(r"\$\$?\{[A-Z_]+(:\?[^}]*)?\}", secret), f"credentials written in: {text}"
    for service in doc["services"].values():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if re.search("PASSWORD|SECRET|TOKEN", key) and not key.endswith("_FILE"):  # a file's path is no secret
                assert str(value).startswith("${") and ":?" in str(value), (key, value)


def test_images_run_the_releases_railpm_is_locked_to():
    dockerfile = (DOCKER / "railpm.Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", dockerfile, flags=re.MULTILINE)
    assert base and base.group(1) == pinned("apache-airflow") and base.group(2) == "3.11"
    services = compose()["services"]
    spark = {services[name]["image"] for name in ("spark-master", "spark-worker")}
    assert spark == {f"spark:{pinned('pyspark')}-scala2.13-java17-python3-ubuntu"}  # cluster = client release
    railpm_roles = {name for name, s in services.items() if s.get("image") == "railpm:latest"}
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "mlflow"} <= railpm_roles


def test_the_dags_reach_the_cluster_and_the_tracking_server_by_settings_only():
    services = compose()["services"]
    environment = services["airflow-scheduler"]["environment"]
    assert environment["RAILPM_SPARK__MASTER"] == "spark://spark-master:7077"
    assert environment["RAILPM_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    for name in ("airflow-scheduler", "spark-worker"):
        assert "railpm-data:/data" in services[name]["volumes"], name  # the driver and executors share the data root


AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def topology_environment_in_compose_terms(data_root: Path) -> dict[str, str]:
    """What ``railpm up`` gives every Airflow process, its places rewritten as the compose file names them: the
    same variables must mean the same there (one signing key, the API server's address, the executor...)."""
    from railpm.deploy.environment import base_environment, railpm_environment
    from railpm.deploy.orchestration import REPO_DAGS_FOLDER
    from railpm.deploy.topology import Topology

    topology = Topology(Settings(data_root=data_root))
    endpoints = topology.endpoints
    env, inherited = topology.airflow_environment(), base_environment(endpoints.host)
    own = {k: v for k, v in env.items() if k not in inherited or k in railpm_environment(topology.settings, endpoints)}
    secrets, home = topology.secrets(), env["AIRFLOW_HOME"]
    places = {  # longest first: a URL before the host inside it
        endpoints.database_url(secrets["db_password"], "airflow"): "postgresql+psycopg2://railpm:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
                                          "@postgres:5432/airflow",
        topology.airflow_url: "http://airflow-apiserver:8080",
        topology.mlflow_url: "http://mlflow:5000",
        topology.spark_master_url: "spark://spark-master:7077",
        secrets["jwt_secret"]: "${AIRFLOW_JWT_SECRET:?set AIRFLOW_JWT_SECRET}",
        str(REPO_DAGS_FOLDER): "/opt/airflow/dags",
        home: "/opt/airflow",
        str(data_root.resolve()): "/data",
    }
    whole_values = {endpoints.host: "0.0.0.0", str(topology.settings.topology.airflow_port): "8080"}
    translated = {}
    for key, value in own.items():
        for place in sorted(places, key=len, reverse=True):
            value = value.replace(place, places[place])
        translated[key] = whole_values.get(value, value)
    # People open the UI through the published port, not at the container's name.
    translated["AIRFLOW__API__BASE_URL"] = "http://localhost:8080"
    return translated


def test_airflow_services_share_the_environment_railpm_up_gives_its_processes(tmp_path):
    expected = topology_environment_in_compose_terms(tmp_path / "data")
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in expected and "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in expected
    services = compose()["services"]
    for name in AIRFLOW_SERVICES:
        environment = {k: str(v) for k, v in services[name]["environment"].items()}
        # One extra: the Spark master also named as the deployment's Airflow connection (railpm.jobs.spark_submit).
        assert environment.pop("AIRFLOW_CONN_RAILPM_SPARK") == environment["RAILPM_SPARK__MASTER"], name
        assert environment == expected, name


def test_airflow_components_start_after_the_metadata_db_is_migrated():
    services = compose()["services"]
    assert services["airflow-init"]["command"][-1] == "airflow db migrate" and services["airflow-init"]["restart"] == "no"
    for name in AIRFLOW_SERVICES[1:]:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
