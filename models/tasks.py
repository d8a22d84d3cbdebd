"""The three model steps as the CLI and the Airflow DAGs call them: settings in, one result out."""

from __future__ import annotations

import pandas as pd

from railpm.config import Settings
from railpm.models.backtest import Backtest, run_backtest
from railpm.models.frames import read_component_days
from railpm.models.pipeline import ModelParams
from railpm.models.score import ScoringResult, score_day
from railpm.models.train import TrainingResult, train_and_register

COMPONENT_DAYS = "component_days"


def component_days_dir(settings: Settings):
    return settings.records_dir / COMPONENT_DAYS


def artifact_root(settings: Settings):
    """Artifacts beside a local SQLite store; a tracking server keeps its own artifact store."""
    uri = settings.tracking_uri
    return settings.data_root / "mlartifacts" if uri.startswith(("sqlite:", "file:")) or "://" not in uri else None


def backtest_fleet(settings: Settings, params: ModelParams | None = None, progress=None) -> Backtest:
    records = read_component_days(component_days_dir(settings))
    return run_backtest(records, params or ModelParams(), settings.model, progress=progress)


def train_fleet(settings: Settings, params: ModelParams | None = None, progress=None) -> TrainingResult:
    path = component_days_dir(settings)
    records = read_component_days(path)
    return train_and_register(records, params or ModelParams(), settings.model, tracking_uri=settings.tracking_uri,
                              artifact_root=artifact_root(settings), records_source=str(path.resolve()),
                              progress=progress)


def score_fleet(settings: Settings, day: str | pd.Timestamp | None = None) -> ScoringResult:
    return score_day(component_days_dir(settings), settings.predictions_dir, settings.model, settings.tracking_uri,
                     None if day is None else pd.Timestamp(day))
