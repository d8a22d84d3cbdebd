"""The served model: one MLflow pyfunc holding the fitted classifier, remaining-life model and explainer.

``predict`` takes component-day feature rows (the signature logged with the model) and returns the failure
probability within the horizon and the remaining life with its interval; ``explain`` gives the reasons. What
is logged is exactly what scoring runs: the fitted scikit-learn pipelines including their feature preparation.
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from railpm.models import fleet_scoring
from railpm.models.explain import contributions
from railpm.models.fit import FittedModels
from railpm.models.frames import model_input

OUTPUT_COLUMNS = ("failure_probability", "remaining_life_days", "remaining_life_low_days", "remaining_life_high_days")


class FailureModel(mlflow.pyfunc.PythonModel):
    """Failure probability within the horizon, remaining life (median) and its interval, and reasons."""

    def __init__(self, fitted: FittedModels, reference: dict[str, float], reason_features: list[str],
                 horizon_days: int, interval_coverage: float):
        self.classifier = fitted.classifier
        self.life = fitted.life
        self.numeric_features = list(fitted.numeric_features)
        self.base_rate = fitted.base_rate
        self.reference = dict(reference)
        self.reason_features = list(reason_features)
        self.horizon_days = horizon_days
        self.interval_coverage = interval_coverage

    def features(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns from component-day rows (extra columns dropped, missing ones null)."""
        return model_input(rows, self.numeric_features)

    def probability(self, features: pd.DataFrame) -> np.ndarray:
        return self.classifier.predict_proba(features)[:, 1]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        features = self.features(model_input)
        low, median, high = self.life.predict(features).T
        return pd.DataFrame({
            "failure_probability": self.probability(features),
            "remaining_life_days": median,
            "remaining_life_low_days": low,
            "remaining_life_high_days": high,
        }, index=model_input.index)

    def predict_with_reasons(self, rows: pd.DataFrame, top_n: int = 3) -> pd.DataFrame:
        """``predict``'s columns plus ``reasons`` (JSON per row), for a whole day of the fleet at once.

        Boosted trees take the binned fast path (``railpm.models.fleet_scoring``); any other model is
        scored by ``predict`` and explained by occlusion through ``probability``.
        """
        features = self.features(rows).reset_index(drop=True)
        if self.life is not None and fleet_scoring.fast_path_fits(self.classifier, self.life):
            predicted, contrib = fleet_scoring.predict_and_explain(self, features)
        else:
            predicted = self.predict(None, features)
            contrib = contributions(self.probability, features, self.reference, self.reason_features)
        values = features[self.reason_features].to_numpy(dtype=float)
        predicted["reasons"] = fleet_scoring.reasons_json(values, contrib, self.reason_features, top_n)
        return predicted.set_axis(rows.index)

    def explain(self, rows: pd.DataFrame, top_n: int = 3) -> list[str]:
        """JSON reasons per row: the features that raised its probability most, with their values."""
        return list(self.predict_with_reasons(rows, top_n)["reasons"])
