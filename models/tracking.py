"""MLflow plumbing: the experiment, the registry aliases and the champion gate.

The gate (documented in the README): a new version becomes ``champion`` only if its backtest primary metric
(``backtest.primary_metric``: mean PR-AUC over folds and components) beats both baselines (the fixed schedule
and the age/usage model) on the same folds by at least ``Settings.model.champion_margin``, and, when a champion
serves, if :mod:`railpm.models.freshness` says so: the champion as registered against the recipe refitted
before the newest window neither learnt from (a refit of the same recipe wins unless worse by more than the
margin; a new recipe must beat it by the margin). Otherwise the version gets the alias ``challenger``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from railpm.errors import RailpmError

CHAMPION = "champion"
CHALLENGER = "challenger"
PRIMARY_METRIC = "primary_pr_auc"
BACKTEST_KEY_TAG = "railpm.backtest_key"
RECIPE_FILE = "recipe.json"
RECIPE_TAG = "railpm.recipe"


def use_tracking(tracking_uri: str, experiment_name: str, artifact_root: Path | None) -> str:
    """Point MLflow at the store and return the experiment id, creating it with local artifacts if needed.

    A SQLite store would otherwise put artifacts in ``./mlruns`` of whatever folder the process runs in.
    """
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    location = Path(artifact_root).resolve().as_uri() if artifact_root is not None else None
    try:
        return mlflow.create_experiment(experiment_name, artifact_location=location)
    except MlflowException:  # created meanwhile by a concurrent run
        return mlflow.get_experiment_by_name(experiment_name).experiment_id


NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
"""MLflow's error codes for a registered model or alias that does not exist (the server answered)."""


def version_by_alias(client: MlflowClient, model_name: str, alias: str):
    """The version carrying ``alias``, None if there is none; an unreachable store is an error, not 'none'
    (a scoring task must fail and be retried, not skip as if no champion existed)."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            return None
        raise RailpmError(f"the MLflow registry did not answer for {model_name}@{alias}: {exc}") from exc


@dataclass(frozen=True)
class GateDecision:
    alias: str
    reason: str
    candidate: float
    best_baseline: float
    champion: float | None


def decide(candidate: float, baselines: dict[str, float], champion: float | None, margin: float) -> GateDecision:
    """Apply the gate rule to measured figures (pure, so it can be read and tested on its own)."""
    best_name, best = max(baselines.items(), key=lambda kv: kv[1])
    if not candidate >= best + margin:
        return GateDecision(CHALLENGER, f"{candidate:.4f} does not beat the {best_name} baseline {best:.4f} by {margin}",
                            candidate, best, champion)
    if champion is not None and not candidate >= champion + margin:
        return GateDecision(CHALLENGER, f"{candidate:.4f} does not beat the champion's {champion:.4f} by {margin}",
                            candidate, best, champion)
    against = "no champion yet" if champion is None else f"beats the champion's {champion:.4f}"
    return GateDecision(CHAMPION, f"{candidate:.4f} beats the {best_name} baseline {best:.4f} and {against}"
                                  f" by at least {margin}", candidate, best, champion)


def champion_record(client: MlflowClient, model_name: str) -> tuple[object, dict, str | None, float | None] | None:
    """The champion version, its recipe, the backtest key it was measured on and its primary metric."""
    version = version_by_alias(client, model_name, CHAMPION)
    if version is None:
        return None
    run = client.get_run(version.run_id)
    if RECIPE_TAG in run.data.tags:
        recipe = json.loads(run.data.tags[RECIPE_TAG])
    else:  # runs logged before the recipe became a tag
        recipe = json.loads(Path(client.download_artifacts(version.run_id, RECIPE_FILE)).read_text())
    return version, recipe, run.data.tags.get(BACKTEST_KEY_TAG), run.data.metrics.get(PRIMARY_METRIC)


def set_alias(client: MlflowClient, model_name: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(model_name, alias, version)


def logged_table(client: MlflowClient, run_id: str, path: str) -> pd.DataFrame:
    """A table a run logged with ``mlflow.log_table`` (JSON ``columns`` + ``data``), read from its artifacts.

    ``MlflowClient.load_table`` finds a run's tables through a tag that a run logged from an Airflow task lacks.
    """
    payload = json.loads(Path(client.download_artifacts(run_id, path)).read_text())
    return pd.DataFrame(payload["data"], columns=payload["columns"])
