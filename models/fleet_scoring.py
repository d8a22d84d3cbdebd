"""A day of the fleet scored at fleet speed: probability, remaining life and reasons from one pass over the trees.

A 3,000-vehicle fleet is 27,000 vehicle-components a day. The reasons re-score every row once per candidate
feature (occlusion, ``railpm.models.explain``) and the remaining life once per hazard bin, so the plain
pipelines walk every tree about twenty times over rows of several hundred float64 columns, which is bound by
memory, not arithmetic. Here each fitted ensemble's features are binned once with the ensemble's own bin edges
(one byte per value; a split on a bin decides exactly as the split on the value), each tree's output is kept
per row, and setting one feature to a constant (a reason's reference value, a hazard bin's start) re-walks only
the trees that split on that feature, for only the rows whose bin changes. The results are the served
pipelines' own (``tests/test_models.py`` compares them with ``predict_proba`` and the occlusion reference).

It reads scikit-learn's fitted ``HistGradientBoostingClassifier`` (bin mapper and tree predictors; scikit-learn
is pinned in ``constraints.txt``). A model of another shape is scored by the generic path.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from railpm.models.survival import DiscreteTimeHazard


class BinnedTrees:
    """One fitted binary boosted-trees classifier, evaluated tree by tree on binned features."""

    def __init__(self, model: HistGradientBoostingClassifier):
        mapper = model._bin_mapper
        self.missing_bin = mapper.missing_values_bin_idx_
        self.baseline = model._baseline_prediction.ravel()[0]
        self.n_threads = _openmp_effective_n_threads()
        trees = [iteration[0] for iteration in model._predictors]
        splits = [t.nodes["feature_idx"][t.nodes["is_leaf"] == 0] for t in trees]
        # Only the features some tree splits on are binned, packed side by side: a narrow row stays in cache.
        self.features = np.unique(np.concatenate(splits)) if splits else np.array([], dtype=int)
        self.column = {int(f): j for j, f in enumerate(self.features)}
        self.thresholds = [mapper.bin_thresholds_[f] for f in self.features]
        self.categorical = [bool(mapper.is_categorical_[f]) for f in self.features]
        self.trees = []
        for tree in trees:
            nodes = tree.nodes.copy()
            inner = nodes["is_leaf"] == 0
            nodes["feature_idx"][inner] = np.searchsorted(self.features, nodes["feature_idx"][inner])
            self.trees.append(TreePredictor(nodes, tree.binned_left_cat_bitsets, tree.raw_left_cat_bitsets))
        self.uses = np.zeros((len(self.features), len(trees)), dtype=bool)
        for k, split in enumerate(splits):  # which trees split on which feature
            self.uses[np.searchsorted(self.features, split), k] = True

    @staticmethod
    def fits(model) -> bool:
        return isinstance(model, HistGradientBoostingClassifier) and getattr(model, "n_trees_per_iteration_", 0) == 1

    def _bin_column(self, j: int, values: np.ndarray) -> np.ndarray:
        """The bin mapper's rule: bin i holds thresholds[i-1] < x <= thresholds[i]; NaN (and a negative
        category) is the missing-values bin."""
        binned = np.searchsorted(self.thresholds[j], values, side="left").astype(np.uint8)
        missing = np.isnan(values) | ((values < 0) if self.categorical[j] else False)
        binned[missing] = self.missing_bin
        return binned

    def bin(self, X: np.ndarray, constants: dict[int, float] | None = None) -> np.ndarray:
        """Bin indices of the features the trees use, row-major (a tree reads a row at a time).

        ``constants`` gives features beyond ``X``'s columns one value for every row (a hazard bin's start).
        """
        constants = constants or {}
        binned = np.empty((len(X), len(self.features)), dtype=np.uint8)
        for j, f in enumerate(self.features):  # a loop over features, each for every row at once
            if f in constants:
                binned[:, j] = self._bin_column(j, np.array([constants[f]], dtype=np.float64))[0]
            else:
                binned[:, j] = self._bin_column(j, X[:, f])
        return binned

    def leaves(self, binned: np.ndarray, trees=None) -> np.ndarray:
        """Each tree's output per row, shape (rows, trees)."""
        trees = range(len(self.trees)) if trees is None else trees
        out = np.empty((len(trees), len(binned)))
        for j, k in enumerate(trees):
            out[j] = self.trees[k].predict_binned(binned, self.missing_bin, self.n_threads)
        return out.T

    def raw(self, leaves: np.ndarray) -> np.ndarray:
        return self.baseline + leaves.sum(axis=1)

    def raw_with(self, binned: np.ndarray, leaves: np.ndarray, raw: np.ndarray, feature: int,
                 value: float | np.ndarray) -> np.ndarray:
        """The raw score with ``feature`` (a column of the model's input) set to ``value``: one value for every
        row (a reason's reference value), or one per row (a permuted column)."""
        if feature not in self.column:  # no tree splits on it: nothing changes
            return raw
        j = self.column[feature]
        value_bins = self._bin_column(j, np.atleast_1d(np.asarray(value, dtype=np.float64)))
        trees = np.flatnonzero(self.uses[j])
        rows = np.flatnonzero(binned[:, j] != value_bins)
        out = raw.copy()
        if len(rows):
            changed = binned[rows]
            changed[:, j] = value_bins if len(value_bins) == 1 else value_bins[rows]
            out[rows] += self.leaves(changed, trees).sum(axis=1) - leaves[np.ix_(rows, trees)].sum(axis=1)
        return out


class _Calibrated:
    """A calibrated classifier's folds as binned trees: probability = mean over folds of calibrator(raw)."""

    def __init__(self, calibrated: CalibratedClassifierCV):
        self.folds = [(BinnedTrees(c.estimator), c.calibrators[0]) for c in calibrated.calibrated_classifiers_]

    @staticmethod
    def fits(calibrated) -> bool:
        return (isinstance(calibrated, CalibratedClassifierCV) and calibrated.method in ("sigmoid", "isotonic")
                and all(BinnedTrees.fits(c.estimator) and len(c.calibrators) == 1
                        for c in calibrated.calibrated_classifiers_))

    def probability(self, X: np.ndarray, occlude: list[tuple[int, float | np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """The probability per row, and per (feature, value) in ``occlude`` the probability with it set so (a value
        for every row, or a column of values)."""
        base = np.zeros(len(X))
        occluded = np.zeros((len(X), len(occlude)))
        for trees, calibrator in self.folds:
            binned = trees.bin(X)
            leaves = trees.leaves(binned)
            raw = trees.raw(leaves)
            base += calibrator.predict(raw)
            for j, (feature, value) in enumerate(occlude):
                occluded[:, j] += calibrator.predict(trees.raw_with(binned, leaves, raw, feature, value))
        return base / len(self.folds), occluded / len(self.folds)


def _hazards(life, X: np.ndarray) -> np.ndarray:
    """Per-bin failure probabilities of the hazard model, shape (rows, bins): the bin start is the last feature."""
    hazard: DiscreteTimeHazard = life[-1]
    trees = BinnedTrees(hazard.estimator_)
    starts = hazard._edges()[:-1]
    feature = X.shape[1]
    binned = trees.bin(X, {feature: starts[0]})
    leaves = trees.leaves(binned)
    raw = trees.raw(leaves)
    columns = [raw] + [trees.raw_with(binned, leaves, raw, feature, start) for start in starts[1:]]
    shift = getattr(hazard, "log_odds_shift_", 0.0)
    return np.clip(expit(np.column_stack(columns) + shift), 1e-9, 1 - 1e-9)


def calibrated_fits(calibrated) -> bool:
    """Whether a calibrated classifier (the pipeline's last step) can be evaluated on binned trees."""
    return _Calibrated.fits(calibrated)


def calibrated_probability(calibrated, X: np.ndarray,
                           replace: list[tuple[int, float | np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated classifier's probabilities on prepared rows ``X``, and per (column, values) in ``replace``
    with that column replaced, shape (rows, len(replace))."""
    return _Calibrated(calibrated).probability(X, replace)


def fast_path_fits(classifier, life) -> bool:
    return calibrated_fits(classifier[-1]) and (
        life is None or (isinstance(life[-1], DiscreteTimeHazard) and BinnedTrees.fits(life[-1].estimator_)))


def _prepared(pipeline, features: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    prepared = pipeline[:-1].transform(features)
    return np.asfortranarray(prepared.to_numpy(dtype=np.float64)), list(prepared.columns)


def predict_and_explain(served, features: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Predictions (``serving.OUTPUT_COLUMNS``) and reason contributions (rows, ``served.reason_features``).

    ``features`` is the model input (``served.features(rows)``); a contribution is the probability minus the
    probability with the feature at its reference value, as ``explain.contributions`` defines it.
    """
    X, columns = _prepared(served.classifier, features)
    occlude = [(columns.index(f), float(served.reference[f])) for f in served.reason_features]
    probability, occluded = _Calibrated(served.classifier[-1]).probability(X, occlude)
    life_X, _ = _prepared(served.life, features)
    low, median, high = served.life[-1].predict_quantiles(None, served.life[-1].quantiles,
                                                          hazards=_hazards(served.life, life_X)).T
    predictions = pd.DataFrame({"failure_probability": probability, "remaining_life_days": median,
                                "remaining_life_low_days": low, "remaining_life_high_days": high},
                               index=features.index)
    return predictions, probability[:, None] - occluded


def _json_numbers(values: np.ndarray) -> np.ndarray:
    """Floats as JSON numbers the way ``json.dumps`` writes them (shortest repr), NaN as null."""
    text = values.astype(str).astype(object)
    text[np.isnan(values)] = "null"
    return text


def reasons_json(values: np.ndarray, contrib: np.ndarray, features: list[str], top_n: int) -> np.ndarray:
    """Per row, a JSON list of the ``top_n`` features that raised its risk most: feature, value, contribution.

    Built column-wise for all rows at once (no Python loop over rows); the text is what ``json.dumps`` of the
    list writes. A contribution that rounds to zero or below is no reason to call a vehicle in.
    """
    n = len(contrib)
    out = np.full(n, "[", dtype=object)
    if not features or n == 0:
        return out + "]"
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top_n]
    rows = np.arange(n)[:, None]
    rounded = np.round(contrib[rows, order], 4)
    value = np.round(values[rows, order], 4)
    names = np.array([json.dumps(f) for f in features], dtype=object)
    for slot in range(order.shape[1]):  # a loop over the top_n slots, each slot for every row at once
        item = ('{"feature": ' + names[order[:, slot]] + ', "value": ' + _json_numbers(value[:, slot])
                + ', "contribution": ' + _json_numbers(rounded[:, slot]) + "}")
        keep = rounded[:, slot] > 0  # sorted, so a slot is kept only when every slot before it is
        out = np.where(keep, out + (", " if slot else "") + item, out)
    return out + "]"
