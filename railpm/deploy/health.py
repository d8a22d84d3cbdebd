"""Is a service of the topology answering? Each check asks the service itself (a port, a health endpoint),
never only whether its process runs."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass

from railpm.deploy.endpoints import Endpoints
from railpm.deploy.postgres import postgres_ready

AIRFLOW_HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
"""Airflow component -> its entry in the API server's health answer."""


def get_json(url: str, timeout: float = 5) -> dict | None:
    """The JSON (or plain-text status) a URL answers, None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            return json.loads(body) if body.strip().startswith((b"{", b"[")) else {"status": body.decode()}
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Health:
    endpoints: Endpoints

    def postgres(self) -> bool:
        return postgres_ready(self.endpoints.host, self.endpoints.config.postgres_port)

    def spark_master_state(self) -> dict:
        """The master's JSON status: workers, running and completed applications."""
        return get_json(self.endpoints.spark_master_status_url) or {}

    def spark_master(self) -> bool:
        return get_json(self.endpoints.spark_master_status_url) is not None

    def spark_worker_registered(self) -> bool:
        return self.spark_master_state().get("aliveworkers", 0) >= 1

    def mlflow(self) -> bool:
        return (get_json(self.endpoints.mlflow_health_url) or {}).get("status") == "OK"

    def airflow(self) -> dict:
        return get_json(self.endpoints.airflow_health_url) or {}

    def airflow_component(self, component: str) -> bool:
        health = self.airflow()
        if component == "api-server":
            return bool(health)
        return (health.get(AIRFLOW_HEALTH_KEYS[component]) or {}).get("status") == "healthy"
