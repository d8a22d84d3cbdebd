"""Where each service of the topology listens: one host (loopback unless a deployment opens it), the ports of
``Settings.topology``."""

from __future__ import annotations

from dataclasses import dataclass

from railpm.config import TopologySettings


@dataclass(frozen=True)
class Endpoints:
    config: TopologySettings

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def airflow_url(self) -> str:
        return f"http://{self.host}:{self.config.airflow_port}"

    @property
    def airflow_health_url(self) -> str:
        return f"{self.airflow_url}/api/v2/monitor/health"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.config.mlflow_port}"

    @property
    def mlflow_health_url(self) -> str:
        return f"{self.mlflow_url}/health"

    @property
    def spark_master_url(self) -> str:
        return f"spark://{self.host}:{self.config.spark_master_port}"

    @property
    def spark_master_status_url(self) -> str:
        """The master web UI's JSON status (workers, applications)."""
        return f"http://{self.host}:{self.config.spark_master_web_port}/json/"

    def database_url(self, password: str, database: str) -> str:
        return f"postgresql+psycopg2://railpm:{password}@{self.host}:{self.config.postgres_port}/{database}"
