"""Figures logged with every training run: where people would rather look than read a table.

Built on ``matplotlib.figure.Figure`` without pyplot: no backend to choose (Airflow workers and CI are
headless), no global figure registry to leak from, and a notebook still shows a returned figure inline.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve

from railpm.models.frames import LABEL

METHOD_STYLE = {"model": ("model", "C0"), "age_usage": ("age/usage baseline", "C1"), "schedule": ("schedule baseline", "C2")}


def _labelled(scored: pd.DataFrame) -> pd.DataFrame:
    out = scored[scored[LABEL].notna()].copy()
    out[LABEL] = out[LABEL].astype(bool)
    return out


def pr_curves(scored: pd.DataFrame) -> Figure:
    """Precision-recall per component, pooled over the backtest's test folds, the model against both baselines."""
    data = _labelled(scored)
    groups = [("all components", data)] + [(c, g) for c, g in data.groupby("component")]
    cols = 3
    rows = math.ceil(len(groups) / cols)
    fig = Figure(figsize=(12, 3.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (title, part) in zip(axes.flat, groups):
        for method, (name, colour) in METHOD_STYLE.items():
            if part[LABEL].any():
                precision, recall, _ = precision_recall_curve(part[LABEL], part[f"score_{method}"])
                ax.plot(recall, precision, color=colour, label=name, lw=1.3)
        ax.axhline(part[LABEL].mean(), color="grey", lw=0.8, ls=":")
        ax.set_title(f"{title} ({int(part[LABEL].sum())} positive days)", fontsize=9)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def calibration(scored: pd.DataFrame, bins: int = 10) -> Figure:
    """Reliability diagram: predicted probability against the observed failure share, by quantile bin."""
    data = _labelled(scored)
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    top = 0.0
    for method in ("model", "age_usage"):
        observed, predicted = calibration_curve(data[LABEL], data[f"score_{method}"], n_bins=bins, strategy="quantile")
        name, colour = METHOD_STYLE[method]
        ax.plot(predicted, observed, marker="o", color=colour, label=name)
        top = max(top, predicted.max(), observed.max())
    ax.set_xlim(0, min(1, top * 1.1 + 0.01))
    ax.set_ylim(0, min(1, top * 1.1 + 0.01))
    ax.set_xlabel("predicted probability of failing within the horizon")
    ax.set_ylabel("observed share")
    ax.legend()
    fig.tight_layout()
    return fig


def lead_times(events: pd.DataFrame, horizon_days: int) -> Figure:
    """How many days ahead each failure was first warned (at the alert threshold); missed failures at 0."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    bins = np.arange(0, horizon_days + 2) - 0.5
    for method, (name, colour) in METHOD_STYLE.items():
        part = events[events["method"] == method]
        if part.empty:
            continue
        ax.hist(part["warning_days"].fillna(0), bins=bins, histtype="step", lw=1.5, color=colour,
                label=f"{name}: {int(part['warning_days'].notna().sum())}/{len(part)} warned")
    ax.set_xlabel("days of warning before the failure (0 = not warned)")
    ax.set_ylabel("failures")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def feature_importance(importance: pd.DataFrame, top: int = 20) -> Figure:
    """Permutation importance on held-out rows: PR-AUC lost when a feature is shuffled."""
    head = importance.head(top).iloc[::-1]
    fig = Figure(figsize=(8, 0.3 * max(len(head), 4) + 1))
    ax = fig.subplots()
    ax.barh(head["feature"], head["importance"], xerr=head["importance_std"], color="C0")
    ax.set_xlabel("PR-AUC drop when shuffled (last backtest fold)")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig
