"""Model quality as MLflow records it: the registered versions, their aliases, and each one's backtest.

Read through ``MlflowClient`` only (never by opening the store's files), so the page works the same against
the default SQLite store and an MLflow server. The figures are the ones training logged: headline metrics
(``<method>.primary_pr_auc``, ``<method>.mean.<metric>``), the per-component backtest summary table
(``backtest/summary.json``) and the plots under ``plots/``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from railpm.review.data import HINTS, LayerMissing

ALIASES = ("champion", "challenger")
METHOD_LABELS = {"model": "model", "age_usage": "age/usage baseline", "schedule": "fixed schedule baseline"}
HEADLINE = (
    ("primary_pr_auc", "PR-AUC (primary)"),
    ("mean.precision_at_capacity", "precision at capacity"),
    ("mean.recall_at_capacity", "recall at capacity"),
    ("mean.cost_saving", "cost saving"),
    ("mean.warned_7d", "failures warned 7 d ahead"),
    ("mean.median_warning_days", "median warning (days)"),
    ("mean.false_alarms_per_1000_vehicle_days", "false alarms / 1000 vehicle-days"),
)
PLOTS = ("plots/pr_curves.png", "plots/calibration.png", "plots/lead_times.png")


@dataclass
class VersionQuality:
    version: str
    aliases: list[str]
    run_id: str
    created: pd.Timestamp
    gate: str | None
    headline: pd.DataFrame
    """One row per method (model and baselines), one column per headline metric."""
    backtest: pd.DataFrame | None
    """The per-component backtest summary (mean over folds), ``method`` and ``component`` columns."""
    images: dict[str, str] = field(default_factory=dict)
    """Training plots as ``data:`` URIs, so a static page shows them without the store."""
    sampling: str = ""
    """Which component-days the classifier was fitted on (day stride, share of healthy days and their weight)."""
    training: list[tuple[str, object]] = field(default_factory=list)
    """What the version was trained on, as label/value pairs (records up to, rows, features, sampling)."""
    run_link: str | None = None
    """The run in the MLflow UI when the tracking store is a server; None for a local store."""


@dataclass
class ModelQuality:
    model_name: str
    versions: pd.DataFrame
    """Every registered version: version, aliases, created, run id, gate reason."""
    compared: list[VersionQuality]
    """Champion first, then challenger (those that exist)."""

    @property
    def backtest(self) -> pd.DataFrame | None:
        return self.compared[0].backtest if self.compared else None


def read_model_quality(tracking_uri: str, model_name: str, with_images: bool = True) -> ModelQuality:
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
        raise LayerMissing(HINTS["models"])  # opening it would create an empty store as a side effect of reading
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException as exc:
        raise LayerMissing(f"{HINTS['models']} ({exc.message.splitlines()[0]})") from exc
    if not versions:
        raise LayerMissing(HINTS["models"])
    # Version search results do not carry aliases; the registered model does (alias -> version).
    aliases: dict[str, list[str]] = {}
    for alias, number in client.get_registered_model(model_name).aliases.items():
        aliases.setdefault(str(number), []).append(alias)
    rows = [{
        "version": str(v.version),
        "aliases": ", ".join(sorted(aliases.get(str(v.version), []))),
        "created": pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC"),
        "gate": (v.tags or {}).get("gate"),
        "run_id": v.run_id,
    } for v in sorted(versions, key=lambda v: int(v.version), reverse=True)]
    compared = []
    for alias in ALIASES:
        try:
            version = client.get_model_version_by_alias(model_name, alias)
        except MlflowException:
            continue
        if version.run_id:
            compared.append(_version_quality(client, version, sorted(aliases.get(str(version.version), [alias])), with_images))
    return ModelQuality(model_name, pd.DataFrame(rows), compared)


def _version_quality(client: MlflowClient, version, aliases: list[str], with_images: bool) -> VersionQuality:
    run = client.get_run(version.run_id)
    metrics = run.data.metrics
    headline = pd.DataFrame([
        {"method": METHOD_LABELS.get(method, method),
         **{label: metrics.get(f"{method}.{key}") for key, label in HEADLINE}}
        for method in METHOD_LABELS
    ])
    return VersionQuality(
        version=str(version.version),
        aliases=aliases,
        run_id=version.run_id,
        created=pd.Timestamp(version.creation_timestamp, unit="ms", tz="UTC"),
        gate=run.data.tags.get("railpm.gate_reason"),
        headline=headline,
        backtest=_logged_table(client, version.run_id, "backtest/summary.json"),
        images=_images(client, version.run_id) if with_images else {},
        training=_training(run),
        run_link=_run_link(client, run),
        sampling=training_sampling(run.data.params),
    )


def _training(run) -> list[tuple[str, object]]:
    """The training set in words, from the run's tags and parameters (only what training logged)."""
    params, tags = run.data.params, run.data.tags
    out: list[tuple[str, object]] = []
    if tags.get("railpm.last_day"):
        out.append(("records up to", tags["railpm.last_day"]))
    for key, label in (("rows", "training rows (component-days)"), ("numeric_features", "features")):
        if params.get(key, "").isdigit():
            out.append((label, int(params[key])))
    out += [(k.replace("settings.", "").replace("_", " "), v) for k, v in sorted(params.items())
            if any(word in k for word in ("sampl", "negative", "horizon_days", "min_train_days", "folds"))]
    return out


def _run_link(client: MlflowClient, run) -> str | None:
    uri = str(client.tracking_uri)
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    return None


def training_sampling(params: dict[str, str]) -> str:
    """The training run's sampling in words, from its MLflow params (``ModelParams``); empty if it logged none."""
    if "train_row_stride_days" not in params:
        return ""
    stride = params["train_row_stride_days"]
    share = float(params.get("healthy_sample_share", "1"))
    healthy = ("every healthy component-day" if share >= 1 else
               f"{share:.0%} of the healthy component-days (seeded draw), each weighted {1 / share:.3g}x")
    return f"classifier fitted on one day in {stride} per vehicle-component: every failing day and {healthy}"


def _logged_table(client: MlflowClient, run_id: str, path: str) -> pd.DataFrame | None:
    """A table logged with ``mlflow.log_table`` (JSON with ``columns`` and ``data``), or None if absent."""
    from railpm.models.tracking import logged_table

    try:
        frame = logged_table(client, run_id, path)
    except (MlflowException, OSError):
        return None
    if "method" in frame.columns:
        frame["method"] = frame["method"].map(lambda m: METHOD_LABELS.get(m, m))
    return frame


def _images(client: MlflowClient, run_id: str) -> dict[str, str]:
    images = {}
    for path in PLOTS:
        try:
            local = Path(client.download_artifacts(run_id, path))
        except (MlflowException, OSError):
            continue
        images[Path(path).stem.replace("_", " ")] = "data:image/png;base64," + base64.b64encode(local.read_bytes()).decode()
    return images
