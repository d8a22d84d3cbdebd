"""Training: backtest the recipe, fit it on all records, log everything to MLflow, register, apply the gate.

This is the only place with MLflow side effects during training. The gate: the candidate must beat both
baselines on the backtest by the margin; then, against a serving champion, :mod:`railpm.models.freshness`
decides (the champion as registered against the refit, on the newest window neither learnt from). One run holds the recipe (params), the
records it saw (an MLflow dataset), the backtest per fold, component and method (metrics with ``step`` = fold,
and the table as an artifact), the plots, the reference predictions, and the model with its signature.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.types import ColSpec, Schema

from railpm.config import ModelSettings
from railpm.layers import COMPONENT_DAYS
from railpm.models import plots, tracking
from railpm.costs import CostModel
from railpm.models.backtest import ALL, METHODS, Backtest, primary_metric, run_backtest
from railpm.models.explain import candidate_features
from railpm.models.fit import classifier_rows, fit_models
from railpm.models.frames import LABEL
from railpm.models.freshness import FreshnessDecision, compare_on_window, freshness_decision, freshness_window
from railpm.models.pipeline import ModelParams, interval_quantiles
from railpm.models.serving import FailureModel

REASON_FEATURES = 12
"""Features the explainer tries per row: the most important on held-out rows (cost grows linearly with it)."""
PIP_REQUIREMENTS_OF = ("scikit-learn", "pandas", "numpy", "scipy", "mlflow", "pyarrow")


@dataclass
class TrainingResult:
    run_id: str
    model_version: str
    decision: tracking.GateDecision
    backtest: Backtest
    seconds: float
    backtest_seconds: float


def records_digest(records: pd.DataFrame) -> str:
    """A hash of every cell of the records and their column names."""
    digest = hashlib.sha256()
    digest.update(",".join(records.columns).encode())
    digest.update(pd.util.hash_pandas_object(records, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def records_dataset(records: pd.DataFrame, source: str, digest: str):
    """The training records as an MLflow dataset, described without MLflow's cell-by-cell inference.

    MLflow infers a pandas dataset's schema value by value and digests its first 10,000 rows: 31 s of a
    training run on the default fleet (84,000 x 399). Here the column types come from a thousand rows (the
    columns' dtypes are fixed), whether a column may be null from all of them, and the digest is the full
    content hash.
    """
    head = infer_signature(records.head(1000)).inputs
    nullable = records.isna().any()
    schema = Schema([ColSpec(c.type, c.name, required=not bool(nullable[c.name])) for c in head.inputs])
    dataset = mlflow.data.from_pandas(records, source=source, name=COMPONENT_DAYS, targets=LABEL, digest=digest[:32])
    dataset.__dict__["schema"] = schema  # the slot of the cached_property ``schema``: MLflow's inference never runs
    return dataset


def backtest_key(content: str, settings: ModelSettings, backtest: Backtest) -> str:
    """Identifies "the same backtest": the same records (``records_digest``) cut into the same folds and horizon."""
    digest = hashlib.sha256()
    digest.update(content.encode())
    digest.update(json.dumps([f.describe() for f in backtest.folds]).encode())
    digest.update(f"{settings.horizon_days}|{settings.capacity_top_k_per_week}".encode())
    return digest.hexdigest()[:32]


def fit_served_model(records: pd.DataFrame, params: ModelParams, settings: ModelSettings,
                     backtest: Backtest) -> FailureModel:
    """The recipe fitted on every record, wrapped with its explainer's reference values."""
    fitted = fit_models(records, params, interval_quantiles(settings.remaining_life_interval))
    reference = classifier_rows(records)[fitted.numeric_features].median().fillna(0.0).to_dict()
    reasons = candidate_features(backtest.importance, fitted.numeric_features, REASON_FEATURES)
    return FailureModel(fitted, reference, reasons, settings.horizon_days, settings.remaining_life_interval)


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in PIP_REQUIREMENTS_OF]


def _log_backtest(backtest: Backtest, settings: ModelSettings) -> dict[str, float]:
    metric_columns = [c for c in backtest.table.columns if c not in ("method", "fold", "component")]
    for fold, part in backtest.table.groupby("fold"):
        values = {f"{r.method}.{r.component}.{m}": float(getattr(r, m))
                  for r in part.itertuples() for m in metric_columns if np.isfinite(getattr(r, m))}
        mlflow.log_metrics(values, step=int(fold))
    for r in backtest.life.itertuples():
        mlflow.log_metrics({"life_interval.coverage": r.censored_aware, "life_interval.among_failures": r.among_failures,
                            "life_interval.known_miss": r.known_miss}, step=int(r.fold))
    summary = backtest.summary()
    mlflow.log_table(backtest.table, "backtest/folds.json")
    mlflow.log_table(summary, "backtest/summary.json")
    mlflow.log_table(backtest.events.assign(failure_day=backtest.events["failure_day"].dt.date.astype(str)),
                     "backtest/events.json")
    mlflow.log_table(backtest.life, "backtest/life_coverage.json")
    mlflow.log_dict({"folds": [f.describe() for f in backtest.folds]}, "backtest/folds_spec.json")
    headline = {tracking.PRIMARY_METRIC: backtest.primary_metric("model")}
    for method in METHODS:
        headline[f"{method}.primary_pr_auc"] = primary_metric(backtest.table, method)
        overall = summary[(summary["component"] == ALL) & (summary["method"] == method)].iloc[0]
        for m in ("precision_at_capacity", "recall_at_capacity", "cost_saving", "median_warning_days",
                  "false_alarms_per_1000_vehicle_days", *[f"warned_{n}d" for n in settings.warning_lead_days]):
            headline[f"{method}.mean.{m}"] = float(overall[m])
    headline["life_interval.mean_coverage"] = float(backtest.life["censored_aware"].mean())
    mlflow.log_metrics({k: v for k, v in headline.items() if np.isfinite(v)})
    mlflow.log_figure(plots.pr_curves(backtest.scored), "plots/pr_curves.png")
    mlflow.log_figure(plots.calibration(backtest.scored), "plots/calibration.png")
    mlflow.log_figure(plots.lead_times(backtest.events, settings.horizon_days), "plots/lead_times.png")
    if not backtest.importance.empty:
        mlflow.log_figure(plots.feature_importance(backtest.importance), "plots/feature_importance.png")
        mlflow.log_table(backtest.importance, "backtest/feature_importance.json")
    return headline


FRESH_CHAMPION_METRIC = "freshness.champion_window_pr_auc"
FRESH_REFIT_METRIC = "freshness.refit_window_pr_auc"


def champion_against_refit(client: MlflowClient, model_name: str, records: pd.DataFrame, params: ModelParams,
                           settings: ModelSettings) -> tuple[FreshnessDecision | None, str | None]:
    """The serving champion (loaded from the registry as it is) against the recipe refitted before the newest
    window neither learnt from (:mod:`railpm.models.freshness`); (None, None) without a champion."""
    record = tracking.champion_record(client, model_name)
    if record is None:
        return None, None
    version, champion_recipe, _, _ = record
    champion_last_day = pd.Timestamp(client.get_run(version.run_id).data.tags["railpm.last_day"])
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version.version}").unwrap_python_model()
    window = freshness_window(records["day"].max(), champion_last_day, settings.horizon_days)
    champion, refit = compare_on_window(records, params, model, champion_last_day, window, settings.horizon_days)
    same = champion_recipe == params.model_dump(mode="json")
    return freshness_decision(champion, refit, same, settings.champion_margin, window), str(version.version)


def train_and_register(records: pd.DataFrame, params: ModelParams, settings: ModelSettings, *, tracking_uri: str,
                       artifact_root: Path | None, records_source: str, min_train_days: int | None = None,
                       progress=None, costs: CostModel | None = None) -> TrainingResult:
    """Backtest, fit, log, register and gate one recipe on normalised component-day records."""
    started = time.perf_counter()
    backtest = run_backtest(records, params, settings, min_train_days=min_train_days, progress=progress, costs=costs)
    backtest_seconds = time.perf_counter() - started
    served = fit_served_model(records, params, settings, backtest)
    last_day = records["day"].max()
    reference_input = served.features(records[records["day"] == last_day])
    reference_output = served.predict(None, reference_input)
    content = records_digest(records)
    key = backtest_key(content, settings, backtest)

    experiment_id = tracking.use_tracking(tracking_uri, settings.registered_model_name, artifact_root)
    client = MlflowClient()
    # Measured before anything is registered, so a failure cannot leave a version without an alias.
    fresh, champion_version = champion_against_refit(client, settings.registered_model_name, records, params, settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{last_day:%Y-%m-%d}") as run:
        recipe = params.model_dump(mode="json")
        mlflow.set_tags({tracking.BACKTEST_KEY_TAG: key, tracking.RECIPE_TAG: json.dumps(recipe),
                         "railpm.first_day": f"{records['day'].min():%Y-%m-%d}", "railpm.last_day": f"{last_day:%Y-%m-%d}"})
        judged = int((records["sample_weight"] != 1).sum()) if "sample_weight" in records.columns else 0
        mlflow.log_params({**params.flat(), **{f"settings.{k}": str(v) for k, v in settings.model_dump().items()},
                           "rows": len(records), "numeric_features": len(served.numeric_features),
                           "feedback_weighted_rows": judged})
        mlflow.log_dict(recipe, tracking.RECIPE_FILE)
        mlflow.log_input(records_dataset(records, records_source, content), context="training")
        headline = _log_backtest(backtest, settings)
        with tempfile.TemporaryDirectory() as tmp:
            reference_input.to_parquet(Path(tmp) / "input.parquet")
            reference_output.to_parquet(Path(tmp) / "predictions.parquet")
            mlflow.log_artifacts(tmp, "reference")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=served, signature=infer_signature(reference_input, reference_output),
            input_example=reference_input.head(5), registered_model_name=settings.registered_model_name,
            pip_requirements=_pip_requirements(),
        )
        version = str(info.registered_model_version)
        decision = tracking.decide(
            headline[tracking.PRIMARY_METRIC],
            {m: headline[f"{m}.primary_pr_auc"] for m in METHODS if m != "model"},
            None, settings.champion_margin,
        )
        if fresh is not None:
            mlflow.log_metrics({k: v for k, v in {FRESH_CHAMPION_METRIC: fresh.champion, FRESH_REFIT_METRIC: fresh.refit}.items()
                                if np.isfinite(v)})
            mlflow.set_tags({"railpm.freshness_window": f"{fresh.window.start:%Y-%m-%d}..{fresh.window.end:%Y-%m-%d}",
                             "railpm.freshness_reason": fresh.reason})
            if decision.alias == tracking.CHAMPION:
                decision = tracking.GateDecision(tracking.CHAMPION if fresh.replace else tracking.CHALLENGER,
                                                 fresh.reason, decision.candidate, decision.best_baseline, fresh.champion)
            else:
                decision = tracking.GateDecision(decision.alias, decision.reason, decision.candidate, decision.best_baseline,
                                                 fresh.champion)
        tracking.set_alias(client, settings.registered_model_name, decision.alias, version)
        mlflow.set_tags({"railpm.gate": decision.alias, "railpm.gate_reason": decision.reason,
                         "railpm.previous_champion": champion_version or ""})
        client.set_model_version_tag(settings.registered_model_name, version, "gate", decision.reason)
    return TrainingResult(run.info.run_id, version, decision, backtest, time.perf_counter() - started,
                          backtest_seconds)
