"""Model quality as MLflow records it: the registered versions, their aliases, and each one's backtest.

Read through ``MlflowClient`` only (never by opening the store's files), so the page works the same against
the default SQLite store and an MLflow server. The figures are the ones training logged: headline metrics
(``<method>.primary_pr_auc``, ``<method>.mean.<metric>``), the per-component backtest summary table
(``backtest/summary.json``) and the plots under ``plots/``.
"""

from __future__ import annotations

import base64
import json
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
    training: list[tuple[str, object]] = field(default_factory=list)
    """What the version was trained on, as label/value pairs (``training_facts``: window, rows, features, sampling)."""
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


def read_model_quality(tracking_uri: str, model_name: str, with_images: bool = True,
                       mlflow_ui: str | None = None) -> ModelQuality:
    client, versions, aliases = _registry(tracking_uri, model_name)
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
            compared.append(_version_quality(client, version, sorted(aliases.get(str(version.version), [alias])), with_images,
                                             mlflow_ui))
    return ModelQuality(model_name, pd.DataFrame(rows), compared)


def _registry(tracking_uri: str, model_name: str) -> tuple[MlflowClient, list, dict[str, list[str]]]:
    """The client, every registered version and each version's aliases; ``LayerMissing`` before any training."""
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
    return client, versions, aliases


def _version_quality(client: MlflowClient, version, aliases: list[str], with_images: bool,
                     mlflow_ui: str | None = None) -> VersionQuality:
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
        gate=gate_in_words(run.data.tags, metrics, run.data.params),
        headline=headline,
        backtest=_logged_table(client, version.run_id, "backtest/summary.json"),
        images=_images(client, version.run_id) if with_images else {},
        training=training_facts(run.data.params, run.data.tags, []),
        run_link=_run_link(client, run, mlflow_ui),
    )


def _run_link(client: MlflowClient, run, mlflow_ui: str | None = None) -> str | None:
    """The run in the MLflow UI: ``mlflow_ui`` when configured (e.g. ``mlflow ui`` over a local store), else the
    tracking server itself; None for a local store nobody serves."""
    uri = mlflow_ui or str(client.tracking_uri)
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
               f"{share:.0%} of the healthy component-days (seeded draw), the failure odds divided by {1 / share:.3g}x"
               " back to the fleet's rate")
    days = "every day" if stride == "1" else f"one day in {stride}"
    return f"classifier fitted on {days} per vehicle-component: every failing day and {healthy}"


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


# --------------------------------------------------------------------------------------------------
# Model card: one registered version, everything a data team and an auditor ask of it
# --------------------------------------------------------------------------------------------------

COUNT_COLUMNS = ("rows", "positives", "failures", "alerts")
"""Backtest columns that count things: summed over the test folds (a mean over folds is not a count)."""


@dataclass
class ModelCard:
    model_name: str
    version: str
    aliases: list[str]
    run_id: str
    run_link: str | None
    created: pd.Timestamp
    training: list[tuple[str, object]]
    recipe: list[tuple[str, object]]
    decision: str
    """The champion/challenger decision at registration, in words, from the figures the run logged."""
    logged_reason: str | None
    """The gate's reason as training logged it (kept verbatim for the audit)."""
    freshness: str | None
    headline: pd.DataFrame
    backtest: pd.DataFrame | None
    folds: list[dict]
    images: dict[str, str]


def read_model_card(tracking_uri: str, model_name: str, version: str, mlflow_ui: str | None = None) -> ModelCard:
    """The card of one registered version; ``LayerMissing`` (with what exists) for a version never registered."""
    client, versions, by_version = _registry(tracking_uri, model_name)
    found = next((v for v in versions if str(v.version) == version), None)
    if found is None:
        known = ", ".join(sorted((str(v.version) for v in versions), key=int))
        raise LayerMissing(f"{model_name} has no version {version}: the registered versions are {known}")
    aliases = sorted(by_version.get(version, []))
    run = client.get_run(found.run_id)
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    recipe = json.loads(tags["railpm.recipe"]) if tags.get("railpm.recipe") else {}
    folds_spec = _logged_json(client, found.run_id, "backtest/folds_spec.json") or {}
    return ModelCard(
        model_name=model_name, version=str(found.version), aliases=aliases, run_id=found.run_id,
        run_link=_run_link(client, run, mlflow_ui),
        created=pd.Timestamp(found.creation_timestamp, unit="ms", tz="UTC"),
        training=training_facts(params, tags, folds_spec.get("folds", [])),
        recipe=sorted(recipe.items()),
        decision=gate_in_words(tags, metrics, params),
        logged_reason=tags.get("railpm.gate_reason"),
        freshness=tags.get("railpm.freshness_reason"),
        headline=_version_quality(client, found, aliases, False).headline,
        backtest=backtest_over_folds(client, found.run_id),
        folds=folds_spec.get("folds", []),
        images=_images(client, found.run_id),
    )


def training_facts(params: dict[str, str], tags: dict[str, str], folds: list[dict]) -> list[tuple[str, object]]:
    """Training window, rows, features and sampling as label/value pairs (only what the run logged)."""
    out: list[tuple[str, object]] = []
    first, last = tags.get("railpm.first_day"), tags.get("railpm.last_day")
    if last:
        out.append(("training window", f"{first} to {last}" if first else f"records up to {last}"))
    if folds:
        out.append(("backtest test periods", "; ".join(f"{f['test_start']} to {f['test_end']}" for f in folds)))
    for key, label in (("rows", "training rows (component-days)"), ("numeric_features", "features"),
                       ("feedback_weighted_rows", "rows weighted by engineers' feedback")):
        if params.get(key, "").isdigit():
            out.append((label, f"{int(params[key]):,}"))
    if "healthy_sample_share" in params:
        out.append(("healthy sample share", f"{float(params['healthy_sample_share']):.0%}"))
    if "train_row_stride_days" in params:
        stride = params["train_row_stride_days"]
        out.append(("day stride", "every day" if stride == "1" else f"one day in {stride}"))
    sampling = training_sampling(params)
    if sampling:
        out.append(("sampling", sampling))
    for key, label in (("settings.horizon_days", "horizon (days)"), ("settings.champion_margin", "champion margin (PR-AUC)"),
                       ("settings.backtest_folds", "backtest folds")):
        if key in params:
            out.append((label, params[key]))
    return out


def gate_in_words(tags: dict[str, str], metrics: dict[str, float], params: dict[str, str]) -> str:
    """The champion/challenger decision as a sentence, from the figures behind it (not the logged shorthand)."""
    alias = tags.get("railpm.gate")
    candidate = metrics.get("model.primary_pr_auc")
    if alias is None or candidate is None:
        return tags.get("railpm.gate_reason") or "no gate decision logged for this version"
    margin = params.get("settings.champion_margin")
    baselines = {METHOD_LABELS[m]: metrics[f"{m}.primary_pr_auc"] for m in ("age_usage", "schedule")
                 if f"{m}.primary_pr_auc" in metrics}
    parts = [f"Backtest PR-AUC {candidate:.3f}"]
    if baselines:
        best, value = max(baselines.items(), key=lambda kv: kv[1])
        beaten = margin is not None and candidate >= value + float(margin)
        parts.append(f"{'beats' if beaten else 'does not beat'} the best baseline ({best}, {value:.3f})"
                     + (f" by the margin of {margin}" if margin is not None else ""))
    sentence = ", ".join(parts) + "."
    previous = tags.get("railpm.previous_champion")
    if tags.get("railpm.freshness_reason"):
        sentence += f" Against champion version {previous or '?'}: {tags['railpm.freshness_reason']}."
    elif previous:
        sentence += f" The champion then was version {previous}."
    else:
        sentence += " There was no champion yet."
    verdict = "became the champion (it scores the fleet)" if alias == "champion" else "was registered as challenger (the champion kept scoring)"
    return f"{sentence} So it {verdict}."


def backtest_over_folds(client: MlflowClient, run_id: str) -> pd.DataFrame | None:
    """Per component and method: counts summed over the test folds, rates and figures averaged over them."""
    folds = _logged_table(client, run_id, "backtest/folds.json")
    if folds is None or "fold" not in folds.columns:
        return _logged_table(client, run_id, "backtest/summary.json")
    grouped = folds.drop(columns="fold").groupby(["component", "method"], sort=True)
    counts = [c for c in COUNT_COLUMNS if c in folds.columns]
    means = grouped.mean(numeric_only=True).drop(columns=counts)
    table = grouped[counts].sum().astype("int64").join(means).reset_index()
    table = table.rename(columns={c: f"{c} (all test folds)" for c in counts})
    # "all" components last: the per-component rows are what a reader scans.
    return table.sort_values(["component"], key=lambda s: s.eq("all"), kind="stable").reset_index(drop=True)


def _logged_json(client: MlflowClient, run_id: str, path: str) -> dict | None:
    try:
        return json.loads(Path(client.download_artifacts(run_id, path)).read_text())
    except (MlflowException, OSError, ValueError):
        return None
