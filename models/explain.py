"""Reasons for a risk, computed from the model: how much each feature moves this row's probability.

For each of the model's most important features (permutation importance on the backtest's held-out rows), the
row's value is replaced by the fleet's typical value (the training median) and the row is scored again; the
drop in probability is that feature's contribution. This is occlusion (a one-feature-at-a-time Shapley
approximation against a median baseline): exact for the model, cheap (one batched prediction per feature) and
readable ("bearing temperature 7-day mean 71.2 raised the risk by 0.18"). Correlated window features share
credit, so a reason names one representative and its neighbours may follow it in the list.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd


def candidate_features(importance: pd.DataFrame, numeric_features: list[str], limit: int) -> list[str]:
    """The numeric features worth explaining with: positive held-out importance, most important first."""
    if importance.empty:
        return numeric_features[:limit]
    useful = importance[(importance["importance"] > 0) & importance["feature"].isin(numeric_features)]
    chosen = list(useful["feature"].head(limit))
    return chosen or numeric_features[:limit]


def contributions(predict, rows: pd.DataFrame, reference: dict[str, float], features: list[str]) -> np.ndarray:
    """Probability minus probability with the feature set to its reference, shape (rows, features)."""
    if not features or rows.empty:
        return np.zeros((len(rows), len(features)))
    base = predict(rows)
    stacked = pd.concat([rows] * len(features), ignore_index=True)
    for i, feature in enumerate(features):
        stacked.loc[i * len(rows):(i + 1) * len(rows) - 1, feature] = reference[feature]
    occluded = predict(stacked).reshape(len(features), len(rows)).T
    return base[:, None] - occluded


# --------------------------------------------------------------------------------------------------
# Reasons in words: the one place a feature name becomes a sentence (review app, static report, CLI)
# --------------------------------------------------------------------------------------------------

_WINDOW = re.compile(r"^(?P<base>.+)_(?P<days>\d+)d$")
_SIGNAL_STAT = re.compile(r"^(?P<signal>.+)_z_(?P<stat>mean|std|min|max|slope|share_beyond)$")


def _window_words(days: int) -> str:
    return "last day" if days == 1 else f"last {days} days"


def _component_signals(component: str | None) -> list:
    """A component's condition signals, primary first: what ``comp_signal`` / ``comp_signal2`` stand for."""
    from railpm import contracts

    return [s for s in contracts.SIGNALS if component is not None and s.component == component]


def _fault_code_words(code: str) -> str:
    from railpm import contracts

    meta = contracts.FAULT_CODE_BY_CODE.get(code)
    return f"fault {code} ({meta.description})" if meta else f"fault {code}"


def _count(value) -> str:
    return "no" if value is None else f"{int(round(value)):,}"


def reason_in_words(feature: str, value: float | None, component: str | None = None) -> tuple[str, str | None]:
    """A reason as a sentence, and the telemetry signal it is about (to link its trend chart), if any.

    ``"axle_bearing_temp_c_z_mean_1d", 5.63`` -> "axle bearing temperature (°C) 5.6 sd above this vehicle's
    normal, last day". Signals and fault codes are named from the catalogue (``railpm.contracts``); counts are
    integers; an unknown feature falls back to its name and value.
    """
    from railpm import contracts

    name, window = feature, None
    match = _WINDOW.match(feature)
    if match:
        name, window = match["base"], int(match["days"])
    when = f", {_window_words(window)}" if window else ""

    stat = _SIGNAL_STAT.match(name)
    if stat and window:
        column = stat["signal"]
        if column in ("comp_signal", "comp_signal2"):
            fitted = _component_signals(component)
            slot = 0 if column == "comp_signal" else 1
            column = fitted[slot].column if len(fitted) > slot else None
        signal = contracts.SIGNAL_BY_COLUMN.get(column) if column else None
        label = f"{signal.description} ({signal.unit})" if signal else stat["signal"].replace("_", " ")
        if value is None:
            return f"{label}: no reading{when}", column
        side = "above" if value >= 0 else "below"
        sentences = {
            "mean": f"{label} {abs(value):.1f} sd {side} this vehicle's normal{when}",
            "max": f"{label}: highest reading {abs(value):.1f} sd {side} this vehicle's normal{when}",
            "min": f"{label}: lowest reading {abs(value):.1f} sd {side} this vehicle's normal{when}",
            "std": f"{label} unsteady: spread of {value:.1f} sd around its mean (about 1 is normal){when}",
            "slope": f"{label} {'rising' if value >= 0 else 'falling'} by {abs(value):.2f} sd a day{when}",
            "share_beyond": f"{label} beyond its limit in {value * 100:.0f}% of readings{when}",
        }
        return sentences[stat["stat"]], column
    if name.startswith("faults_") and window:
        category = name.removeprefix("faults_")
        if category.startswith("code_"):
            code = next((f.code for f in contracts.FAULT_CODES if f.code.lower().replace("-", "_") == category[5:]), category[5:])
            what = _fault_code_words(code)
        elif category.startswith("grade_"):
            what = f"grade {category[6:].upper()} faults"
        elif category == "major":
            what = f"major (grade {'/'.join(contracts.MAJOR_GRADES)}) faults"
        else:
            what = f"{category.replace('_', ' ')} faults"
        return f"{_count(value)} × {what}{when}", None
    if name in ("comp_precursor_faults", "comp_failure_faults") and window:
        major = name == "comp_failure_faults"
        codes = [f.code for f in contracts.FAULT_CODES if f.component == component
                 and (f.typical_grade in contracts.MAJOR_GRADES) == major]
        what = _fault_code_words(codes[0]) if codes else ("failure faults" if major else "warning faults")
        return f"{_count(value)} × {what}{when}", None
    for prefix, unit in (("days_since_replacement", "days"), ("km_since_replacement", "km")):
        if feature == f"comp_{prefix}" or feature.startswith(f"{prefix}_"):
            part = component if feature.startswith("comp_") else feature.removeprefix(f"{prefix}_")
            return f"{_count(value)} {unit} since the {str(part).replace('_', ' ')} was last replaced", None
    if feature.endswith("_mean_7d") and feature.removesuffix("_mean_7d") in contracts.SIGNAL_BY_COLUMN:
        signal = contracts.SIGNAL_BY_COLUMN[feature.removesuffix("_mean_7d")]
        shown = "no reading" if value is None else f"{value:.1f} {signal.unit}"
        return f"{signal.description}: mean {shown}, last 7 days", signal.column
    if feature == "age_days":
        return f"vehicle in service {_count(value)} days", None
    if feature == "recurring_codes_30d":
        return f"{_count(value)} fault codes recurring in the last 30 days", None
    if feature == "open_corrective_work_orders":
        return f"{_count(value)} corrective work orders open", None
    shown = "no value" if value is None else f"{value:,.2f}"
    return f"{feature.replace('_', ' ')} = {shown}", None


def reasons_in_words(reasons_text: str | None, component: str | None = None) -> list[dict]:
    """The scoring's JSON reasons, each with ``text`` (in words) and ``signal`` (its telemetry column, if any)."""
    try:
        items = json.loads(reasons_text) if reasons_text else []
    except (TypeError, ValueError):
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and "feature" in item:
            text, signal = reason_in_words(str(item["feature"]), item.get("value"), component)
            out.append({**item, "text": text, "signal": signal})
    return out
