"""The three model steps as the CLI and the Airflow DAGs call them: settings in, one result out."""

from __future__ import annotations

import pandas as pd

from railpm.config import Settings
from railpm.costs import CostModel
from railpm.feedback import read_feedback, training_labels
from railpm.layers import COMPONENT_DAYS, feedback_dir_of, record_dir
from railpm.models.backtest import Backtest, run_backtest
from railpm.models.frames import normalise, read_component_days
from railpm.models.pipeline import ModelParams
from railpm.models.score import ScoringResult, score_day
from railpm.models.train import TrainingResult, train_and_register

def artifact_root(settings: Settings):
    """Artifacts beside a local SQLite store; a tracking server keeps its own artifact store."""
    uri = settings.tracking_uri
    return settings.data_root / "mlartifacts" if uri.startswith(("sqlite:", "file:")) or "://" not in uri else None


def recipe(settings: Settings, **overrides) -> ModelParams:
    """The training recipe: defaults, then ``Settings.model.recipe``, then explicit overrides (e.g. CLI options)."""
    return ModelParams(**{**settings.model.recipe, **{k: v for k, v in overrides.items() if v is not None}})


def training_records(settings: Settings) -> pd.DataFrame:
    """Component-day records with the engineers' feedback applied (``railpm.feedback.training_labels``).

    Inspection findings of a worn or replaced component complete the censored labels before them, and
    decisions the facts bear out weigh double; without feedback the records are used as they are.
    """
    records = read_component_days(record_dir(settings, COMPONENT_DAYS))
    entries = read_feedback(feedback_dir_of(settings.lake_dir))
    if entries.empty:
        return records
    return normalise(training_labels(records, entries, horizon_days=settings.model.horizon_days))


def backtest_fleet(settings: Settings, params: ModelParams | None = None, progress=None) -> Backtest:
    return run_backtest(training_records(settings), params or recipe(settings), settings.model, progress=progress,
                        costs=CostModel(settings.costs))


def train_fleet(settings: Settings, params: ModelParams | None = None, progress=None) -> TrainingResult:
    path = record_dir(settings, COMPONENT_DAYS)
    records = training_records(settings)
    return train_and_register(records, params or recipe(settings), settings.model, tracking_uri=settings.tracking_uri,
                              artifact_root=artifact_root(settings), records_source=str(path.resolve()),
                              progress=progress, costs=CostModel(settings.costs))


def score_fleet(settings: Settings, day: str | pd.Timestamp | None = None) -> ScoringResult:
    return score_day(record_dir(settings, COMPONENT_DAYS), settings.predictions_dir, settings.model, settings.tracking_uri,
                     None if day is None else pd.Timestamp(day), costs=CostModel(settings.costs))
