"""Time-ordered backtest: rolling-origin folds, the model against the schedule and an age/usage model.

Each fold trains on the past and tests on the next block of days, never on a random split: component-days of
one vehicle are near copies of each other, and a random split would let the model remember the future. The
last training day sits a full horizon before the test block, and every training label is re-censored at the
test block's start (``frames.censor_at``), so no training row knows of a failure inside the test block.

Only days whose horizon lies inside the data are tested: near the end of the data a failure is already known
while "no failure" is not yet, and testing those days would flatter every method.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from railpm.config import ModelSettings
from railpm.costs import CostModel
from railpm.models import fleet_scoring
from railpm.models.baselines import schedule_risk
from railpm.models.fit import FittedModels, classifier_rows, fit_models, predict_probability, stride_rows
from railpm.models.frames import EVENT, LABEL, TIME, censor_at, failure_events, model_input
from railpm.models.metrics import policy_scores, ranking_scores, warnings_for_events, weekly_capacity_alerts
from railpm.models.pipeline import ModelParams, interval_quantiles
from railpm.models.policy import break_even_probability, select_alerts
from railpm.models.survival import interval_coverage

METHODS = ("model", "age_usage", "schedule")
"""The candidate and its two baselines: the same learner on age/usage only, and the fixed schedule's ranking."""
ALL = "all"


@dataclass(frozen=True)
class Fold:
    number: int
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def describe(self) -> dict[str, str]:
        return {k: (v.date().isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in self.__dict__.items()}


def rolling_origin_folds(first_day: pd.Timestamp, last_day: pd.Timestamp, n_folds: int, horizon_days: int,
                         min_train_days: int) -> list[Fold]:
    """``n_folds`` consecutive test blocks at the end of the labelled period, each after a gap of one horizon.

    The labelled period ends ``horizon_days`` before the last day; the first fold keeps at least
    ``min_train_days`` of training days.
    """
    last_labelled = last_day - pd.Timedelta(days=horizon_days)
    span = (last_labelled - first_day).days + 1
    block = (span - min_train_days - horizon_days) // n_folds
    if block < 7:
        raise ValueError(
            f"{span} labelled days cannot hold {n_folds} test blocks of at least a week after {min_train_days} training"
            f" days and a {horizon_days}-day gap: use a longer history, fewer folds or a shorter horizon"
        )
    folds = []
    for i in range(n_folds):
        test_end = last_labelled - pd.Timedelta(days=(n_folds - 1 - i) * block)
        test_start = test_end - pd.Timedelta(days=block - 1)
        train_end = test_start - pd.Timedelta(days=horizon_days + 1)
        folds.append(Fold(i + 1, train_end, test_start, test_end))
    return folds


def default_min_train_days(first_day: pd.Timestamp, last_day: pd.Timestamp, horizon_days: int) -> int:
    """A third of the labelled period, so that the first fold trains on a meaningful history."""
    return max(28, ((last_day - first_day).days + 1 - horizon_days) // 3)


@dataclass
class Backtest:
    folds: list[Fold]
    table: pd.DataFrame
    """One row per method, fold and component (plus ``all``): row scores and policy scores."""
    scored: pd.DataFrame
    """Test rows with each method's score, for curves and plots."""
    life: pd.DataFrame
    """Remaining-life interval coverage per fold."""
    events: pd.DataFrame
    """Every failure in every test period with its warning time (days, NaN if missed) per method."""
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Permutation importance (PR-AUC drop) of each feature on the last fold's test rows."""

    def summary(self) -> pd.DataFrame:
        """Mean over folds per method and component (the backtest table)."""
        numeric = self.table.drop(columns=["fold"]).groupby(["component", "method"], sort=True)
        return numeric.mean(numeric_only=True).reset_index()

    def primary_metric(self, method: str = "model") -> float:
        return primary_metric(self.table, method)


def primary_metric(table: pd.DataFrame, method: str = "model") -> float:
    """Mean PR-AUC over folds of the mean over components with at least one failure in the fold.

    PR-AUC because failures are rare and a planner acts on the top of the ranking, where PR-AUC looks and
    ROC-AUC hardly does; averaged over components so that a frequent component cannot hide a neglected one.
    """
    rows = table[(table["method"] == method) & (table["component"] != ALL)]
    per_fold = rows.groupby("fold")["pr_auc"].mean()
    return float(per_fold.mean())


def score_fold(train: pd.DataFrame, test: pd.DataFrame, params: ModelParams, settings: ModelSettings, *,
               life: bool = True) -> tuple[dict[str, np.ndarray], FittedModels]:
    """Each method's score on the test rows; ``life=False`` skips the remaining-life model (the policy simulation
    needs the probabilities only)."""
    model = fit_models(train, params, interval_quantiles(settings.remaining_life_interval) if life else None)
    baseline = fit_models(train, params.model_copy(update={"feature_set": "age_usage"}), None)
    scores = {
        "model": predict_probability(model, test),
        "age_usage": predict_probability(baseline, test),
        "schedule": schedule_risk(test),
    }
    return scores, model


def _fold_rows(fold: Fold, test: pd.DataFrame, events: pd.DataFrame, settings: ModelSettings, costs: CostModel) -> tuple[
        list[dict], list[pd.DataFrame]]:
    """Scores per method and component for one fold, and each failure's warning time per method."""
    labelled = test[test[LABEL].notna()].copy()
    labelled[LABEL] = labelled[LABEL].astype(bool)
    threshold = break_even_probability(costs, labelled["component"])
    vehicle_days = test[["vehicle_number", "day"]].drop_duplicates().shape[0]
    rows, warned = [], []
    for method in METHODS:
        score = f"score_{method}"
        capacity = weekly_capacity_alerts(labelled, score, settings.capacity_top_k_per_week, fold.test_start)
        # The schedule has no probability: its own alert is "due" (a score of 1 = the interval elapsed).
        alert_threshold = 1.0 if method == "schedule" else threshold
        alerts = select_alerts(labelled, score, alert_threshold, settings.alert_budget_per_depot_per_day)
        lead = warnings_for_events(events, labelled[alerts], settings.horizon_days)
        warned.append(events.assign(method=method, fold=fold.number, warning_days=lead))
        for component in [ALL, *sorted(test["component"].unique())]:
            pick = (pd.Series(True, index=labelled.index) if component == ALL
                    else labelled["component"] == component)
            part = labelled[pick]
            part_events = events if component == ALL else events[events["component"] == component]
            exposure = vehicle_days if component == ALL else int((test["component"] == component).sum())
            at_capacity = policy_scores(part, capacity[pick], part_events, LABEL, settings, exposure, costs)
            at_alerts = policy_scores(part, alerts[pick], part_events, LABEL, settings, exposure, costs)
            rows.append({
                "method": method, "fold": fold.number, "component": component,
                **ranking_scores(part[LABEL], part[score], is_probability=method != "schedule"),
                "precision_at_capacity": at_capacity["precision"],
                "recall_at_capacity": at_capacity["recall"],
                "expected_cost": at_capacity["expected_cost"],
                "cost_saving": at_capacity["cost_saving"],
                "failures": at_capacity["failures"],
                "alerts": at_alerts["alerts"],
                "alert_precision": at_alerts["precision"],
                **{f"warned_{n}d": at_alerts[f"warned_{n}d"] for n in settings.warning_lead_days},
                "median_warning_days": at_alerts["median_warning_days"],
                "false_alarms_per_1000_vehicle_days": at_alerts["false_alarms_per_1000_vehicle_days"],
            })
    return rows, warned


def _life_coverage(fold: Fold, model: FittedModels, test: pd.DataFrame, params: ModelParams) -> dict:
    sample = stride_rows(test, params.life_row_stride_days)
    low, _, high = model.life.predict(model_input(sample, model.numeric_features)).T
    coverage = interval_coverage(low, high, sample[TIME], sample[EVENT].fillna(False).astype(bool))
    return {"fold": fold.number, **coverage}


SCORED_COLUMNS = ["day", "vehicle_number", "component", "home_depot", LABEL, TIME, EVENT] + [f"score_{m}" for m in METHODS]
"""What ``Backtest.scored`` keeps of each test row."""


def backtest_folds(records: pd.DataFrame, settings: ModelSettings, min_train_days: int | None = None) -> list[Fold]:
    """The rolling-origin folds of these records (``default_min_train_days`` unless given)."""
    first_day, last_day = records["day"].min(), records["day"].max()
    if min_train_days is None:
        min_train_days = default_min_train_days(first_day, last_day, settings.horizon_days)
    return rolling_origin_folds(first_day, last_day, settings.backtest_folds, settings.horizon_days, min_train_days)


def split_fold(records: pd.DataFrame, fold: Fold, horizon_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fold's training rows, labelled as known the day before its test block, and its test rows."""
    cutoff = fold.test_start - pd.Timedelta(days=1)
    train = censor_at(records[records["day"] <= fold.train_end], cutoff, horizon_days)
    test = records[(records["day"] >= fold.test_start) & (records["day"] <= fold.test_end)].copy()
    return train, test


def run_backtest(records: pd.DataFrame, params: ModelParams, settings: ModelSettings, *,
                 min_train_days: int | None = None, progress=None, costs: CostModel | None = None) -> Backtest:
    """Backtest the recipe ``params`` and both baselines on ``settings.backtest_folds`` rolling-origin folds.

    ``records`` are normalised component-day records (``frames.normalise``) with their labels; ``costs`` prices
    the alerts (the default cost model when not given).
    """
    costs = costs or CostModel.default()
    folds = backtest_folds(records, settings, min_train_days)
    all_events = failure_events(records)
    table_rows, scored_parts, life_rows, event_parts = [], [], [], []
    importance = pd.DataFrame()
    for fold in folds:
        train, test = split_fold(records, fold, settings.horizon_days)
        scores, model = score_fold(train, test, params, settings)
        for method, values in scores.items():
            test[f"score_{method}"] = values
        horizon_end = fold.test_end + pd.Timedelta(days=settings.horizon_days)
        events = all_events[(all_events["failure_day"] > fold.test_start) & (all_events["failure_day"] <= horizon_end)]
        fold_rows, fold_events = _fold_rows(fold, test, events, settings, costs)
        table_rows += fold_rows
        event_parts += fold_events
        life_rows.append(_life_coverage(fold, model, test, params))
        scored_parts.append(test[SCORED_COLUMNS].assign(fold=fold.number))
        if fold is folds[-1]:
            importance = feature_importance(model, test, params.importance_rows, params.random_state)
        if progress is not None:
            progress(fold)
    return Backtest(folds, pd.DataFrame(table_rows), pd.concat(scored_parts, ignore_index=True),
                    pd.DataFrame(life_rows), pd.concat(event_parts, ignore_index=True), importance)


def feature_importance(model: FittedModels, test: pd.DataFrame, max_rows: int, random_state: int,
                       max_features: int = 40) -> pd.DataFrame:
    """Permutation importance on held-out rows: how much PR-AUC drops when one feature's values are shuffled."""
    labelled = classifier_rows(test)
    if len(labelled) > max_rows:
        labelled = labelled.sample(max_rows, random_state=random_state)
    y = labelled[LABEL].astype(bool).to_numpy()
    if y.sum() == 0 or y.all():
        return pd.DataFrame({"feature": [], "importance": [], "importance_std": []})
    X = model_input(labelled, model.numeric_features)
    # Permute the prepared matrix and score the calibrated trees directly (the preparation is a fixed column
    # mapping), and only the features the trees split on most: shuffling a feature no tree reads cannot change a
    # prediction (importance exactly 0), and measuring the several hundred rarely used ones was most of a
    # training run. Features outside the measured set are reported as not measured (NaN), not as 0.
    prepare, classify = model.classifier[:-1], model.classifier[-1]
    prepared = prepare.transform(X)
    splits = _split_counts(classify, prepared.shape[1])
    measured = [prepared.columns[i] for i, _ in splits.most_common(max_features)]
    rng = np.random.default_rng(random_state)
    repeats = 2
    permuted = [(name, rng.permutation(prepared[name].to_numpy())) for name in measured for _ in range(repeats)]
    base_probability, probabilities = _permuted_probabilities(classify, prepared, permuted)
    base = average_precision_score(y, base_probability)
    drops = {name: [] for name in measured}
    for (name, _), probability in zip(permuted, probabilities.T):
        drops[name].append(base - average_precision_score(y, probability))
    unused = {c for i, c in enumerate(prepared.columns) if i not in splits}
    def value(column, stat):
        return float(stat(drops[column])) if column in drops else (0.0 if column in unused else np.nan)
    return (pd.DataFrame({"feature": prepared.columns,
                          "importance": [value(c, np.mean) for c in prepared.columns],
                          "importance_std": [value(c, np.std) for c in prepared.columns]})
            .sort_values("importance", ascending=False, kind="stable", na_position="last").reset_index(drop=True))


def _permuted_probabilities(classify, prepared: pd.DataFrame,
                            permuted: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities of the prepared rows, and per (column, values) with that column replaced: (rows, columns).

    The calibrated boosted trees of the recipe are re-walked only where a permuted column changes a split
    (``fleet_scoring``); another classifier is asked again for every replacement.
    """
    if fleet_scoring.calibrated_fits(classify):
        X = np.asfortranarray(prepared.to_numpy(dtype=np.float64))
        columns = list(prepared.columns)
        return fleet_scoring.calibrated_probability(classify, X, [(columns.index(n), v) for n, v in permuted])
    positive = list(classify.classes_).index(True)
    out = np.empty((len(prepared), len(permuted)))
    for k, (name, values) in enumerate(permuted):
        out[:, k] = classify.predict_proba(prepared.assign(**{name: values}))[:, positive]
    return classify.predict_proba(prepared)[:, positive], out


def _split_counts(classify, n_columns: int) -> Counter:
    """How many splits of the calibrated ensemble's trees use each column (every column once if the trees can't tell)."""
    counts: Counter = Counter()
    for calibrated in getattr(classify, "calibrated_classifiers_", []):
        for iteration in getattr(calibrated.estimator, "_predictors", None) or []:
            for predictor in iteration:
                nodes = predictor.nodes
                counts.update(int(i) for i in nodes["feature_idx"][nodes["is_leaf"] == 0])
    return counts or Counter(range(n_columns))


HEADLINE_METRICS = ("pr_auc", "roc_auc", "brier", "precision_at_capacity", "recall_at_capacity", "expected_cost",
                    "warned_7d", "median_warning_days", "false_alarms_per_1000_vehicle_days")


def comparison_table(backtest: Backtest, metrics=HEADLINE_METRICS) -> pd.DataFrame:
    """Per component (and ``all``): each metric's mean over folds for the model and both baselines, side by side."""
    summary = backtest.summary()
    wide = summary.pivot(index="component", columns="method", values=[m for m in metrics if m in summary.columns])
    wide = wide.reindex(columns=[(m, method) for m in metrics if m in summary.columns for method in METHODS])
    order = [ALL] + sorted(c for c in wide.index if c != ALL)
    return wide.loc[order]
