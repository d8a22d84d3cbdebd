"""Fitting the failure classifier and the remaining-life model on the rows known at a cutoff.

Used identically by every backtest fold and by the final training, so the backtest measures the recipe that
is registered. Rows whose horizon label is unknown (censored: a preventive replacement or the end of the data
before the horizon, without a failure) are left out of the classifier. That leaves out, above all, the worn
components that were replaced in time, so the classifier answers "will it fail if left in service" on a
sample slightly lighter in worn components than the fleet; the remaining-life model uses those rows as
censored observations instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from railpm.models.frames import EVENT, LABEL, TIME, WEIGHT, model_input, numeric_feature_columns
from railpm.models.pipeline import ModelParams, age_usage_features, build_life_pipeline, build_pipeline


@dataclass
class FittedModels:
    classifier: Pipeline
    life: Pipeline | None
    numeric_features: list[str]
    base_rate: float
    training_rows: int


def input_features(rows: pd.DataFrame, params: ModelParams) -> list[str]:
    numeric = numeric_feature_columns(rows.columns)
    return age_usage_features(numeric) if params.feature_set == "age_usage" else numeric


def classifier_rows(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows[LABEL].notna()]


def weighted_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Integer sample weights (engineers' feedback) applied as repeated rows.

    Equivalent for the trees and the calibrator, and it keeps scikit-learn's histogram binning on its fast
    unweighted path.
    """
    if WEIGHT not in rows.columns or rows[WEIGHT].fillna(1.0).eq(1.0).all():
        return rows
    repeats = np.maximum(np.rint(rows[WEIGHT].fillna(1.0).to_numpy()).astype(int), 0)
    return rows.loc[rows.index.repeat(repeats)]


def stride_rows(rows: pd.DataFrame, stride_days: int) -> pd.DataFrame:
    """Every n-th day per vehicle-component: consecutive days are near copies, so fewer rows lose little."""
    keep = (rows["day"].astype("int64") // 86_400_000_000_000) % stride_days == 0
    return rows[keep]


def sample_healthy(rows: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """Every failing row and a seeded ``share`` of the healthy ones, unweighted.

    Weighting the kept healthy rows 1/share would restore the class mix too, but sample weights send
    scikit-learn's histogram binning and gradient path several times slower (measured: backtest 72 s -> 261 s at
    share 0.25 on the default fleet), losing more than the rows save. The sample's probabilities are corrected
    back to the fleet's rate instead (``correct_for_sampling``).
    """
    if share >= 1:
        return rows
    healthy = ~rows[LABEL].astype(bool).to_numpy()
    keep = ~healthy | (np.random.default_rng(seed).random(len(rows)) < share)
    return rows[keep]


def correct_for_sampling(classifier: Pipeline, share: float) -> None:
    """Prior correction (King & Zeng 2001): healthy rows drawn at random with probability ``share`` multiply the
    odds of failure by 1/share and change nothing else, so the fleet's log-odds are the sample's plus log(share).

    The sigmoid calibrators, fitted on held-out folds of the sample, map a tree score to the sample's log-odds
    ``-(a*score + b)``; adding log(share) is exactly raising ``b`` by -log(share). Applied in place, so the
    served pipeline and the fleet-speed scorer (which reads the calibrators) both give the fleet's probabilities.
    """
    if share >= 1:
        return
    for fold in classifier[-1].calibrated_classifiers_:
        for calibrator in fold.calibrators:
            calibrator.b_ = calibrator.b_ - np.log(share)


def fleet_rate(y: np.ndarray, share: float) -> float:
    """The failure rate of the rows the sample was drawn from: the healthy ones counted 1/share times."""
    failures = float(y.sum())
    return failures / (failures + float((~y).sum()) / share)


def fit_models(rows: pd.DataFrame, params: ModelParams, life_quantiles: tuple[float, float, float] | None) -> FittedModels:
    """Fit on rows whose labels were already censored at the training cutoff (``frames.censor_at``)."""
    numeric = input_features(rows, params)
    if not numeric:
        raise ValueError(f"no numeric feature for feature set {params.feature_set!r}")
    rng = np.random.default_rng(params.random_state)
    labelled = weighted_rows(classifier_rows(stride_rows(rows, params.train_row_stride_days)))
    labelled = sample_healthy(labelled, params.healthy_sample_share, params.random_state)
    y = labelled[LABEL].astype(bool).to_numpy()
    if params.shuffle_training_labels:
        y = rng.permutation(y)
    if y.sum() < params.calibration_folds or (~y).sum() < params.calibration_folds:
        raise ValueError(f"too few failures ({int(y.sum())}) in the training rows to fit and calibrate a classifier")
    classifier = build_pipeline(params).fit(model_input(labelled, numeric), y)
    correct_for_sampling(classifier, params.healthy_sample_share)
    life = None
    if life_quantiles is not None:
        at_risk = stride_rows(rows, params.life_row_stride_days)
        at_risk = at_risk[at_risk[TIME] > 0]
        target = np.column_stack([at_risk[TIME].to_numpy(float), at_risk[EVENT].fillna(False).astype(bool).to_numpy()])
        if params.shuffle_training_labels:
            target = target[rng.permutation(len(target))]
        life = build_life_pipeline(params, life_quantiles).fit(model_input(at_risk, numeric), target)
    base_rate = fleet_rate(y, params.healthy_sample_share)  # the fleet's rate, not the sample's
    return FittedModels(classifier, life, numeric, base_rate, int(len(labelled)))


def predict_probability(models: FittedModels, rows: pd.DataFrame) -> np.ndarray:
    return models.classifier.predict_proba(model_input(rows, models.numeric_features))[:, 1]
