"""One function per figure, each returning inline SVG: the app and the static report draw the same plots.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot global state), so that concurrent
requests in the app never share a figure. SVG text stays text (``svg.fonttype = none``): pages stay small
and searchable, and a per-figure hash salt keeps element ids unique within one page and stable across runs.
"""

from __future__ import annotations

import functools
import html
import io
import threading
from collections import OrderedDict

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from railpm import contracts

GRADE_COLOURS = {"A": "#b2182b", "B": "#ef8a62", "C": "#67a9cf"}
RISK_MAP = LinearSegmentedColormap.from_list("risk", ["#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"])
INK, MUTED, LIMIT, BAND = "#222222", "#888888", "#b2182b", "#d9f0d3"


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element ready to inline (no XML prolog, no timestamp)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    label = html.escape(name, quote=True)
    return text.replace("<svg ", f'<svg class="figure" role="img" aria-label="{label}" ', 1)


def _figure(width: float, height: float, constrained: bool = True) -> Figure:
    """A figure sized in inches; constrained layout fits labels, fixed margins are faster for many panels."""
    return Figure(figsize=(width, height), dpi=72, layout="constrained" if constrained else None)


def risk_heatmap(predictions: pd.DataFrame, top: int = 30) -> str:
    """Failure probability per vehicle (rows, riskiest first) and component (columns) on the scored day."""
    grid = predictions.pivot_table(index="vehicle_number", columns="component", values="failure_probability", aggfunc="max")
    grid = grid.reindex(columns=[c for c in contracts.COMPONENTS if c in grid.columns])
    grid = grid.loc[grid.max(axis=1).sort_values(ascending=False).index[:top]]
    return _heatmap(grid.reset_index())


def _draw_heatmap(table: pd.DataFrame) -> str:
    grid = table.set_index("vehicle_number")
    fig = _figure(9, 1.2 + 0.24 * len(grid))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(grid.to_numpy(dtype=float)), cmap=RISK_MAP, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [c.replace("_", " ") for c in grid.columns], rotation=30, ha="right")
    ax.set_yticks(range(len(grid.index)), grid.index)
    ax.tick_params(length=0, labelsize=9)
    for (row, col), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(value) and value >= 0.05:
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value > 0.6 else INK)
    ax.set_title(f"Failure probability, {len(grid)} riskiest vehicles (blank: component not fitted)", fontsize=10, loc="left")
    fig.colorbar(image, ax=ax, shrink=0.6, label="probability")
    return to_svg(fig, "risk heat map")


def normal_band(daily: pd.DataFrame, column: str, baseline_days: int = 60) -> tuple[float, float] | None:
    """The signal's normal band for this vehicle: median +- 3 robust sigma of its first ``baseline_days`` days.

    Wear shows as a drift away from how the same vehicle behaved when the history starts, so a robust band
    (median and MAD are not pulled by the drift itself) of its early daily means is what a drift is read against.
    """
    values = daily[f"{column}__mean"].dropna()
    if len(values) < 7:
        return None
    early = values.iloc[:baseline_days]
    median = float(early.median())
    sigma = 1.4826 * float((early - median).abs().median())
    sigma = max(sigma, 1e-3 * max(abs(median), 1.0))
    return median - 3 * sigma, median + 3 * sigma


_SVG_CACHE: "OrderedDict[tuple, str]" = OrderedDict()
SVG_CACHE_SIZE = 1024
_SVG_LOCK = threading.Lock()


def cached_by_content(draw):
    """Reuse a figure drawn from the very same data: a vehicle page's figures change only when its data does,
    and drawing them is most of the page's time. Keyed by a hash of the frame's content, so never stale."""

    @functools.wraps(draw)
    def wrapper(frame: pd.DataFrame, *args):
        try:
            key = (draw.__name__, tuple(frame.columns), int(pd.util.hash_pandas_object(frame, index=False).sum()),
                   len(frame), args)
        except TypeError:  # a cell pandas cannot hash: draw it every time
            return draw(frame, *args)
        with _SVG_LOCK:
            if key in _SVG_CACHE:
                _SVG_CACHE.move_to_end(key)
                return _SVG_CACHE[key]
        svg = draw(frame, *args)
        with _SVG_LOCK:
            _SVG_CACHE[key] = svg
            while len(_SVG_CACHE) > SVG_CACHE_SIZE:
                _SVG_CACHE.popitem(last=False)
        return svg

    return wrapper


@cached_by_content
def signal_trends(daily: pd.DataFrame, vehicle_type: str) -> str:
    """Daily mean (line) and min-max (shade) of each signal the vehicle reports, its normal band and limits."""
    signals = [s for s in contracts.signals_for_type(vehicle_type) if daily[f"{s.column}__mean"].notna().any()]
    if not signals:
        signals = list(contracts.signals_for_type(vehicle_type))
    columns = 2
    rows = int(np.ceil(len(signals) / columns))
    height = 2.0 * rows + 0.4
    fig = _figure(10, height, constrained=False)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.5 / height, top=1 - 0.3 / height, hspace=0.45, wspace=0.14)
    axes = fig.subplots(rows, columns, sharex=True, squeeze=False).ravel()
    for ax in axes[len(signals):]:
        ax.set_visible(False)
    days = pd.to_datetime(daily["day"])
    for i, signal in enumerate(signals):
        ax = axes[i]
        mean = daily[f"{signal.column}__mean"]
        band = normal_band(daily, signal.column)
        if band is not None:
            ax.axhspan(*band, color=BAND, zorder=0, label="normal band")
        ax.fill_between(days, daily[f"{signal.column}__min"], daily[f"{signal.column}__max"], color="#c6dbef", alpha=0.7, lw=0, label="daily min-max")
        ax.plot(days, mean, color="#08519c", lw=1.2, label="daily mean")
        low, high = ax.get_ylim()
        span = high - low
        for limit in (signal.min, signal.max):
            if low - 0.25 * span <= limit <= high + 0.25 * span:
                ax.axhline(limit, color=LIMIT, ls="--", lw=1, label="contract limit")
        # a fixed title position: matplotlib's automatic one measures every tick label again (a fifth of the page)
        ax.set_title(f"{signal.description} [{signal.unit}]  limits {signal.min:g}..{signal.max:g}", fontsize=8.5, loc="left", y=1.0)
        ax.tick_params(labelsize=7.5, labelbottom=i >= len(signals) - columns)
        ax.xaxis.set_major_locator(matplotlib.dates.AutoDateLocator(maxticks=6))
        ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
        if i == 0:
            ax.legend(fontsize=7, loc="upper left", frameon=False, ncols=2)
    return to_svg(fig, "signal trends")


@cached_by_content
def fault_timeline(faults: pd.DataFrame) -> str:
    """Each fault as a dot on its subsystem's line, coloured by grade: clusters and escalations stand out."""
    subsystems = sorted(faults["subsystem"].unique()) if not faults.empty else []
    height = 1.0 + 0.32 * max(len(subsystems), 1)
    fig = _figure(10, height, constrained=False)
    fig.subplots_adjust(left=0.13, right=0.88, bottom=0.45 / height, top=1 - 0.35 / height)
    ax = fig.add_subplot()
    for grade, colour in GRADE_COLOURS.items():
        rows = faults[faults["grade"] == grade]
        ax.scatter(pd.to_datetime(rows["ts"]).dt.tz_localize(None), rows["subsystem"].map(subsystems.index) if len(rows) else [],
                   s=22 if grade != "C" else 12, color=colour, label=f"grade {grade}", zorder=3 if grade != "C" else 2)
    ax.set_yticks(range(len(subsystems)), [s.replace("_", " ") for s in subsystems])
    ax.set_ylim(-0.7, max(len(subsystems), 1) - 0.3)
    ax.grid(axis="y", color="#eeeeee")
    ax.tick_params(labelsize=8)
    ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
    ax.set_title("Fault timeline by subsystem", fontsize=10, loc="left", y=1.0)
    return to_svg(fig, "fault timeline")


@cached_by_content
def remaining_life(predictions: pd.DataFrame) -> str:
    """Expected remaining life per component with its interval, on one axis so the shortest stands out."""
    rows = predictions.sort_values("remaining_life_days", ascending=False)
    height = 0.8 + 0.3 * len(rows)
    fig = _figure(7, height, constrained=False)
    fig.subplots_adjust(left=0.2, right=0.97, bottom=0.5 / height, top=1 - 0.3 / height)
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    colours = rows["risk_band"].map({"high": "#b2182b", "medium": "#ef8a62", "low": "#67a9cf"}).fillna(MUTED)
    ax.hlines(y, rows["remaining_life_low_days"], rows["remaining_life_high_days"], color=colours, lw=4, alpha=0.5)
    ax.scatter(rows["remaining_life_days"], y, color=colours, zorder=3, s=25)
    ax.set_yticks(y, [c.replace("_", " ") for c in rows["component"]])
    ax.set_xlabel("days", fontsize=8)
    ax.set_xlim(left=0)
    ax.tick_params(labelsize=8)
    ax.set_title("Remaining life: estimate and interval", fontsize=10, loc="left", y=1.0)
    return to_svg(fig, "remaining life")


@cached_by_content
def fault_summary(counts: pd.DataFrame, period: str) -> str:
    """Faults per month or quarter: major (A/B) ones on their own scale, and all of them by subsystem.

    Grade C warnings outnumber failures a hundredfold; on one axis the failures would not show.
    """
    labels_of = (lambda p: p.strftime("%Y-%m")) if period == "month" else (lambda p: f"{p.year} Q{p.quarter}")
    periods = sorted(counts["period"].unique())
    labels = [labels_of(pd.Timestamp(p)) for p in periods]
    fig = _figure(11, 3.2)
    major_ax, all_ax = fig.subplots(1, 2, width_ratios=[1, 1.4])
    by_grade = counts.pivot_table(index="period", columns="grade", values="faults", aggfunc="sum", fill_value=0).reindex(periods, fill_value=0)
    bottom = np.zeros(len(periods))
    for grade in contracts.MAJOR_GRADES:
        if grade in by_grade.columns:
            major_ax.bar(labels, by_grade[grade], bottom=bottom, color=GRADE_COLOURS[grade], label=f"grade {grade}")
            bottom += by_grade[grade].to_numpy()
    major_ax.set_title(f"Major (A/B) faults per {period}", fontsize=10, loc="left")
    by_subsystem = counts.pivot_table(index="period", columns="subsystem", values="faults", aggfunc="sum", fill_value=0).reindex(periods, fill_value=0)
    order = list(by_subsystem.sum().sort_values(ascending=False).index)
    colours = matplotlib.colormaps["tab10"]
    bottom = np.zeros(len(periods))
    for i, subsystem in enumerate(order):
        all_ax.bar(labels, by_subsystem[subsystem], bottom=bottom, color=colours(i % 10), label=subsystem.replace("_", " "))
        bottom += by_subsystem[subsystem].to_numpy()
    all_ax.set_title(f"All faults per {period} by subsystem", fontsize=10, loc="left")
    for ax in (major_ax, all_ax):
        ax.tick_params(labelsize=8)
        ax.tick_params(axis="x", rotation=45)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return to_svg(fig, f"faults per {period}")


def _grouped_bars(pivot: pd.DataFrame, title: str) -> str:
    """Bars per component (rows of ``pivot``), one bar per series (its columns)."""
    fig = _figure(10, 3.2)
    ax = fig.add_subplot()
    width = 0.8 / max(len(pivot.columns), 1)
    x = np.arange(len(pivot.index))
    for i, series in enumerate(pivot.columns):
        ax.bar(x + i * width, pivot[series], width, label=series)
    ax.set_xticks(x + width * (len(pivot.columns) - 1) / 2, [c.replace("_", " ") for c in pivot.index], rotation=20, ha="right")
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10, loc="left")
    return to_svg(fig, title)


@cached_by_content
def rams_bars(rams: pd.DataFrame, value: str, label: str) -> str:
    """One RAMS figure (e.g. MTBF) per component, a bar per vehicle type."""
    return _grouped_bars(rams.pivot_table(index="component", columns="vehicle_type", values=value, aggfunc="mean"), label)


@cached_by_content
def metric_comparison(table: pd.DataFrame, metric: str, whose: str = "Champion's") -> str:
    """A backtest metric per component for the model and its baselines."""
    pivot = table.pivot_table(index="component", columns="method", values=metric, aggfunc="mean")
    return _grouped_bars(pivot, f"{whose} backtest {metric.replace('_', ' ')}: model vs baselines")


@cached_by_content
def depot_load(load: pd.DataFrame) -> str:
    """Slots used per depot and day of the plan window (bars) against the depot's slots per day (dashes)."""
    depots = list(dict.fromkeys(load["depot"]))
    days = sorted(load["day"].unique())
    labels = [pd.Timestamp(d).strftime("%a %d %b") for d in days]
    height = 0.6 + 1.15 * len(depots)
    fig = _figure(10, height, constrained=False)
    fig.subplots_adjust(left=0.1, right=0.99, bottom=0.75 / height, top=1 - 0.35 / height, hspace=0.25)
    axes = fig.subplots(len(depots), 1, sharex=True, squeeze=False).ravel()
    top = max(float(load["capacity"].max()), float(load["planned"].max()), 1.0) * 1.15
    for ax, depot in zip(axes, depots):
        rows = load[load["depot"] == depot].set_index("day").reindex(days)
        x = np.arange(len(days))
        ax.bar(x, rows["planned"].fillna(0), color="#4393c3", label="slots used")
        ax.step(np.r_[x - 0.5, x[-1] + 0.5], np.r_[rows["capacity"].to_numpy(), rows["capacity"].to_numpy()[-1:]],
                where="post", color=LIMIT, ls="--", lw=1, label="slots per day")
        ax.set_ylim(0, top)
        ax.set_ylabel(depot.replace("DEP-", ""), fontsize=8)
        ax.tick_params(labelsize=7.5)
    axes[0].legend(fontsize=7.5, frameon=False, loc="upper right", ncols=2)
    axes[0].set_title("Depot slots used per day of the plan window, against capacity", fontsize=10, loc="left")
    axes[-1].set_xticks(np.arange(len(days)), labels, rotation=45, ha="right")
    return to_svg(fig, "depot load")


@cached_by_content
def stock_levels(spares: pd.DataFrame, top: int = 25) -> str:
    """Stock on hand against the target level for the depot-parts furthest below target."""
    rows = spares.assign(gap=spares["stock_level"] - spares["on_hand"]).sort_values("gap", ascending=False).head(top)
    labels = rows["depot"].str.replace("DEP-", "") + "  " + rows["part_number"]
    fig = _figure(9, 0.9 + 0.26 * len(rows))
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    ax.barh(y, rows["stock_level"], color="#fddbc7", label="target stock (service level)")
    ax.barh(y, rows["on_hand"], height=0.4, color="#2166ac", label="on hand")
    ax.set_yticks(y, labels)
    ax.tick_params(labelsize=7.5)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_title(f"Stock on hand vs target, {len(rows)} depot-parts furthest below target", fontsize=10, loc="left")
    return to_svg(fig, "stock levels")


@cached_by_content
def weekly_lines(frame: pd.DataFrame, value: str, series: str, title: str, guides: tuple[float, ...] = ()) -> str:
    """A value per week, a line per series (e.g. PSI per feature, alerts per depot); dashed guide lines."""
    fig = _figure(10, 3.0)
    ax = fig.add_subplot()
    for name, rows in frame.sort_values("week").groupby(series):
        ax.plot(pd.to_datetime(rows["week"]), rows[value], marker="o", ms=3, lw=1.2, label=str(name).replace("_", " "))
    for guide in guides:
        ax.axhline(guide, color=LIMIT, ls="--", lw=0.8)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7.5, frameon=False, ncols=3)
    ax.set_title(title, fontsize=10, loc="left")
    return to_svg(fig, title)


_heatmap = cached_by_content(_draw_heatmap)
"""The overview's heat map is drawn once per distinct top-vehicles grid (its inputs are ~300 numbers)."""
