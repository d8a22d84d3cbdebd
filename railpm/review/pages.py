"""What each review page shows, built once for the app and the static report alike.

A page is a template name plus a context built here from ``ReviewData``; each section of a page is read on
its own, so a layer that is not built yet empties only its section (with the command that builds it) and
never the page. ``Site`` makes links: server routes in the app, relative file paths in the static report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable
from urllib.parse import quote

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, Undefined
from markupsafe import Markup

from railpm import contracts
from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.review import data, plots

# --------------------------------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------------------------------

PAGES: dict[str, tuple[str, str, str]] = {
    # name: (title, app route, static file)
    "overview": ("Fleet risk", "/", "index.html"),
    "vehicles": ("Vehicles", "/vehicles", "vehicles.html"),
    "vehicle": ("Vehicle", "/vehicles/{vehicle}", "vehicles/{vehicle}.html"),
    "faults": ("Faults", "/faults", "faults.html"),
    "rams": ("RAMS", "/rams", "rams.html"),
    "models": ("Model quality", "/models", "models.html"),
    "inspections": ("Inspection plan", "/plans/inspections", "inspections.html"),
    "spares": ("Spares plan", "/plans/spares", "spares.html"),
    "feedback": ("Feedback trail", "/feedback", "feedback.html"),
}
NAV = ("overview", "vehicles", "faults", "rams", "models", "inspections", "spares", "feedback")


def file_slug(vehicle_number: str) -> str:
    """A file name for a vehicle page: fleet numbers are kept as they are, anything unsafe becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", vehicle_number)


@dataclass(frozen=True)
class Site:
    """Link maker: app routes, or paths relative to the current page of the static report."""

    static: bool = False
    depth: int = 0
    """Folders between the current static page and the report's root (vehicle pages are one down)."""

    @property
    def forms(self) -> bool:
        """Feedback forms only where a server can receive them."""
        return not self.static

    def url(self, page: str, vehicle: str | None = None, anchor: str | None = None) -> str:
        _, route, file = PAGES[page]
        if self.static:
            target = "../" * self.depth + file.format(vehicle=file_slug(vehicle or ""))
        else:
            target = route.format(vehicle=quote(vehicle or "", safe=""))
        return f"{target}#{anchor}" if anchor else target

    def vehicle(self, vehicle_number: str) -> str:
        return self.url("vehicle", vehicle=vehicle_number)


# --------------------------------------------------------------------------------------------------
# Sections: a value, or the reason it is missing
# --------------------------------------------------------------------------------------------------

@dataclass
class Section:
    value: Any = None
    missing: str | None = None

    def __bool__(self) -> bool:
        return self.missing is None


def section(build: Callable, *args, **kwargs) -> Section:
    try:
        return Section(build(*args, **kwargs))
    except data.LayerMissing as exc:
        return Section(missing=str(exc))


class VehicleNotFound(RailpmError):
    pass


# --------------------------------------------------------------------------------------------------
# Data access shared by one request or one report build
# --------------------------------------------------------------------------------------------------

@dataclass
class ReviewData:
    """The readers bound to one ``Settings``, caching what several pages of one build share."""

    settings: Settings
    _cache: dict = field(default_factory=dict)

    def _cached(self, key, build: Callable):
        if key not in self._cache:
            try:
                self._cache[key] = build()
            except data.LayerMissing as exc:
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, data.LayerMissing):
            raise value
        return value

    def vehicles(self) -> pd.DataFrame:
        return self._cached("vehicles", lambda: data.read_vehicles(self.settings.lake_dir))

    def predictions(self) -> data.ScoredDay:
        return self._cached("predictions", lambda: data.read_latest_predictions(self.settings.predictions_dir))

    def vehicle_predictions(self, vehicle_number: str) -> data.ScoredDay:
        if "predictions" in self._cache:
            scored = self.predictions()
            rows = scored.frame[scored.frame["vehicle_number"] == vehicle_number].reset_index(drop=True)
            return data.ScoredDay(scored.day, rows)
        return data.read_latest_predictions(self.settings.predictions_dir, vehicle_number)

    def telemetry_daily(self, vehicle_number: str) -> pd.DataFrame:
        if "telemetry_daily" in self._cache:
            by_vehicle = self._cached("telemetry_daily", dict)
            return by_vehicle.get(vehicle_number, self._cache["telemetry_daily_columns"]).reset_index(drop=True)
        return data.read_telemetry_daily(self.settings.lake_dir, [vehicle_number])

    def vehicle_events(self, feed: contracts.Feed, vehicle_number: str) -> pd.DataFrame:
        """One vehicle's faults or work orders, oldest first."""
        if feed.name in self._cache:
            by_vehicle = self._cached(feed.name, dict)
            return by_vehicle.get(vehicle_number, self._cache[f"{feed.name}_columns"]).reset_index(drop=True)
        return data.read_vehicle_events(self.settings.lake_dir, feed, vehicle_number)

    def prefetch_fleet(self) -> None:
        """For the static report: what every vehicle page needs, one read each (telemetry aggregated by day)."""
        readers = {
            "telemetry_daily": lambda: data.read_telemetry_daily(self.settings.lake_dir),
            contracts.FAULTS.name: lambda: data.read_vehicle_events(self.settings.lake_dir, contracts.FAULTS),
            contracts.WORK_ORDERS.name: lambda: data.read_vehicle_events(self.settings.lake_dir, contracts.WORK_ORDERS),
        }
        for key, read in readers.items():
            try:
                fleet = read()
            except data.LayerMissing as exc:
                self._cache[key] = exc
                continue
            self._cache[f"{key}_columns"] = fleet.iloc[0:0]
            self._cache[key] = {vn: rows for vn, rows in fleet.groupby("vehicle_number", sort=False)}
        for shared in (self.predictions, self.dossier, self.all_feedback):
            try:
                shared()
            except data.LayerMissing:
                pass

    def dossier(self) -> pd.DataFrame:
        return self._cached("dossier", lambda: data.read_table(self.settings.records_dir / "vehicle_dossier", "vehicle_dossier"))

    def fleet_rams(self) -> pd.DataFrame:
        return self._cached("rams", lambda: data.read_table(self.settings.records_dir / "fleet_rams", "fleet_rams"))

    def all_feedback(self) -> pd.DataFrame:
        """Every feedback entry so far (possibly none), oldest first."""
        from railpm.feedback import feedback_dir_of, read_feedback

        return self._cached("feedback", lambda: read_feedback(feedback_dir_of(self.settings.lake_dir)))

    def feedback(self, vehicle_number: str | None = None) -> pd.DataFrame:
        frame = self.all_feedback()
        if vehicle_number is not None:
            frame = frame[frame["vehicle_number"] == vehicle_number]
        if frame.empty:
            raise data.LayerMissing(data.HINTS["feedback"])
        return frame


# --------------------------------------------------------------------------------------------------
# Formatting helpers used by the templates
# --------------------------------------------------------------------------------------------------

def parse_reasons(text: str | None) -> list[dict]:
    """The scoring's JSON reasons as a list; an unreadable entry shows as no reasons rather than an error."""
    if not text:
        return []
    try:
        items = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [i for i in items if isinstance(i, dict) and "feature" in i] if isinstance(items, list) else []


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows for a template, with missing values as None (Jinja prints nothing for them)."""
    return [{k: (None if _isna(v) else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _isna(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt(value, digits: int = 2) -> str:
    """A table cell: numbers rounded, dates ISO, missing as an en dash."""
    if value is None or isinstance(value, Undefined) or _isna(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        return ", ".join(fmt(item, digits) for item in items) if items else "–"
    return str(value)


def nested_rows(value) -> bool:
    """A record field that holds a small table (a list of structs, e.g. a vehicle's open work orders)."""
    items = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    return bool(items) and all(isinstance(item, dict) for item in items)


def environment() -> Environment:
    """Jinja with autoescaping on for every template: data from the lake and feedback is never trusted as HTML."""
    env = Environment(loader=PackageLoader("railpm.review", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.tests["nested_rows"] = nested_rows
    env.filters["words"] = lambda v: str(v).replace("_", " ")
    env.globals["PAGES"], env.globals["NAV"] = PAGES, NAV
    return env


# --------------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------------

@dataclass
class Page:
    template: str
    title: str
    context: dict


def overview_page(review: ReviewData, top_alerts: int = 100) -> Page:
    scored = section(review.predictions)
    context: dict[str, Any] = {"scored": scored}
    if scored:
        frame = scored.value.frame
        frame = frame.assign(main_reason=[_main_reason(text) for text in frame["reasons"]])
        context["model_versions"] = sorted(frame["model_version"].astype(str).unique())
        alerts = frame[frame["alert"].astype(bool)].head(top_alerts)
        context["alerts"] = records(alerts)
        context["alert_count"] = int(frame["alert"].astype(bool).sum())
        context["ranked"] = records(frame.head(25)) if alerts.empty else []
        context["heatmap"] = Markup(plots.risk_heatmap(frame))
        by_depot = frame.groupby("home_depot").agg(
            vehicles=("vehicle_number", "nunique"),
            alerts=("alert", "sum"),
            high=("risk_band", lambda s: int((s == "high").sum())),
            max_probability=("failure_probability", "max"),
        ).reset_index()
        context["by_depot"] = records(by_depot)
        context["vehicle_count"] = int(frame["vehicle_number"].nunique())
    return Page("overview.html", "Fleet risk", context)


def _main_reason(text: str | None) -> str:
    reasons = parse_reasons(text)
    if not reasons:
        return ""
    first = reasons[0]
    return f"{str(first['feature']).replace('_', ' ')} = {fmt(first.get('value'))}"


def vehicles_page(review: ReviewData) -> Page:
    registry = section(review.vehicles)
    rows = []
    if registry:
        frame = registry.value
        scored = section(review.predictions)
        if scored:
            risk = scored.value.frame.groupby("vehicle_number").agg(
                max_probability=("failure_probability", "max"), alerts=("alert", "sum"),
                shortest_life=("remaining_life_days", "min"),
            )
            frame = frame.join(risk, on="vehicle_number")
        rows = records(frame)
    return Page("vehicles.html", "Vehicles", {"registry": registry, "rows": rows})


def vehicle_page(review: ReviewData, vehicle_number: str) -> Page:
    registry = section(review.vehicles)
    info = None
    if registry:
        match = registry.value[registry.value["vehicle_number"] == vehicle_number]
        if match.empty:
            raise VehicleNotFound(f"vehicle {vehicle_number} is not in the vehicle registry")
        info = records(match)[0]
    predictions = section(review.vehicle_predictions, vehicle_number)
    if not registry and not (predictions and not predictions.value.frame.empty):
        raise VehicleNotFound(f"vehicle {vehicle_number} is unknown: no vehicle registry and no prediction for it")
    context: dict[str, Any] = {"vehicle_number": vehicle_number, "info": info, "registry": registry}

    dossier = section(review.dossier)
    if dossier:
        rows = dossier.value[dossier.value["vehicle_number"] == vehicle_number]
        dossier = Section(_dossier_items(rows)) if not rows.empty else Section(missing=f"no dossier for {vehicle_number} in the records")
    context["dossier"] = dossier

    if predictions:
        frame = predictions.value.frame
        rows = records(frame)
        for row in rows:
            row["reason_list"] = parse_reasons(row.get("reasons"))
        context["predictions"] = Section({"day": predictions.value.day, "rows": rows})
        context["life_plot"] = Markup(plots.remaining_life(frame)) if not frame.empty else None
    else:
        context["predictions"] = predictions

    faults = section(review.vehicle_events, contracts.FAULTS, vehicle_number)
    if faults:
        context["fault_plot"] = Markup(plots.fault_timeline(faults.value)) if not faults.value.empty else None
        faults = Section(records(faults.value.sort_values("ts", ascending=False).head(200)))
    context["faults"] = faults

    telemetry = section(review.telemetry_daily, vehicle_number)
    if telemetry and not telemetry.value.empty and info is not None:
        context["trends"] = Section(Markup(plots.signal_trends(telemetry.value, info["vehicle_type"])))
    elif telemetry:
        context["trends"] = Section(missing=f"no telemetry for {vehicle_number} in the lake")
    else:
        context["trends"] = telemetry

    work_orders = section(review.vehicle_events, contracts.WORK_ORDERS, vehicle_number)
    if work_orders:
        work_orders = Section(records(work_orders.value.sort_values("opened_at", ascending=False)))
    context["work_orders"] = work_orders

    context["feedback"] = _feedback_section(review, vehicle_number)
    return Page("vehicle.html", f"Vehicle {vehicle_number}", context)


def _dossier_items(rows: pd.DataFrame) -> list[tuple[str, Any]]:
    """The dossier row as label/value pairs, in the column order the records job chose."""
    row = records(rows.tail(1))[0]
    return [(k, v) for k, v in row.items() if k != "vehicle_number"]


def _feedback_section(review: ReviewData, vehicle_number: str | None) -> Section:
    found = section(review.feedback, vehicle_number)
    if found:
        frame = found.value
        frame = frame.sort_values("recorded_at", ascending=False)
        columns = ["recorded_at", "recorded_by", "kind", "vehicle_number", "component", "scored_day", "model_version",
                   "finding", "inspected_on", "reason", "feedback_id"]
        return Section({"columns": columns, "rows": records(frame[columns].head(500))})
    return found


def faults_page(review: ReviewData) -> Page:
    lake = review.settings.lake_dir
    recurring = section(data.recurring_faults, lake)
    context: dict[str, Any] = {"recurring": Section(records(recurring.value)) if recurring else recurring, "periods": []}
    for period in ("month", "quarter"):
        counts = section(data.fault_counts, lake, period)
        if counts and not counts.value.empty:
            table = counts.value.pivot_table(index="period", columns="grade", values="faults", aggfunc="sum", fill_value=0)
            by_type = counts.value.pivot_table(index="period", columns="vehicle_type", values="faults", aggfunc="sum", fill_value=0)
            table = table.join(by_type, rsuffix="_type").reset_index()
            table["period"] = [p.strftime("%Y-%m") if period == "month" else f"{p.year} Q{p.quarter}" for p in table["period"]]
            found = Section({"plot": Markup(plots.fault_summary(counts.value, period)), "columns": list(table.columns), "rows": records(table)})
        else:
            found = counts if not counts else Section(missing="no faults in the lake")
        context["periods"].append((period, found))
    return Page("faults.html", "Faults", context)


RAMS_FIGURES = (("mtbf", "MTBF"), ("mttr", "MTTR"), ("availability", "Availability"))
"""Figures charted from ``records/fleet_rams``: the first numeric column whose name starts with each prefix."""


def rams_page(review: ReviewData) -> Page:
    rams = section(review.fleet_rams)
    context: dict[str, Any] = {"rams": rams, "plots": []}
    if rams:
        frame = rams.value
        if {"component", "vehicle_type"} <= set(frame.columns):
            for prefix, label in RAMS_FIGURES:
                column = next((c for c in frame.columns if c.lower().startswith(prefix)
                               and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().any()), None)
                if column is not None:
                    title = f"{label} per component and vehicle type ({column.replace('_', ' ')}, mean over the table's rows)"
                    context["plots"].append(Markup(plots.rams_bars(frame, column, title)))
        context["columns"] = list(frame.columns)
        context["rows"] = records(frame.head(2000))
    return Page("rams.html", "RAMS", context)


def models_page(review: ReviewData) -> Page:
    from railpm.review import quality

    found = section(quality.read_model_quality, review.settings.tracking_uri, review.settings.model.registered_model_name)
    context: dict[str, Any] = {"quality": found, "plots": []}
    if found:
        for metric in ("pr_auc", "recall_at_capacity", "cost_saving"):
            table = found.value.backtest
            if table is not None and metric in table.columns and table[metric].notna().any():
                context["plots"].append(Markup(plots.metric_comparison(table, metric)))
    return Page("models.html", "Model quality", context)


def inspections_page(review: ReviewData) -> Page:
    from railpm.review import plans

    from railpm.review.signoff import plan_approvals

    found = section(plans.read_inspection_plan, review.settings)
    context: dict[str, Any] = {"plan": found}
    if found:
        context["approvals"] = plan_approvals(review.settings.plans_dir / found.value.scored_day)
        context["load_plot"] = Markup(plots.depot_load(found.value.load)) if not found.value.load.empty else None
    return Page("inspections.html", "Inspection plan", context)


def spares_page(review: ReviewData) -> Page:
    from railpm.review import plans

    found = section(plans.read_spares_plan, review.settings)
    context: dict[str, Any] = {"plan": found}
    if found and not found.value.rows.empty and {"stock_level", "on_hand"} <= set(found.value.rows.columns):
        context["stock_plot"] = Markup(plots.stock_levels(found.value.rows))
    return Page("spares.html", "Spares plan", context)


def feedback_page(review: ReviewData, limit: int = 500) -> Page:
    return Page("feedback.html", "Feedback trail",
                {"feedback": _feedback_section(review, None), "trace": section(_trace, review, limit)})


def _trace(review: ReviewData, limit: int) -> dict:
    """Prediction -> planned inspection -> decision -> finding -> failure or not, for every alert and every
    prediction someone gave feedback on (``railpm.feedback.trace_predictions``)."""
    from railpm.feedback import TRACE_COLUMNS, observed_failures, trace_predictions
    from railpm.planning.run import read_inspection_plans

    entries = review.all_feedback()
    predictions = data.read_traced_predictions(review.settings.predictions_dir, entries)
    as_of = review.predictions().day
    try:
        failures = observed_failures(data.read_major_faults(review.settings.lake_dir))
    except data.LayerMissing:
        failures = pd.DataFrame(columns=["vehicle_number", "component", "failed_at"])
    trace = trace_predictions(
        predictions, read_inspection_plans(review.settings.plans_dir), entries, failures,
        horizon_days=review.settings.model.horizon_days, as_of=as_of,
    )
    trace = trace.sort_values(["scored_day", "failure_probability"], ascending=[False, False]).head(limit)
    return {"columns": TRACE_COLUMNS, "rows": records(trace), "as_of": as_of, "total": len(predictions)}


def render(env: Environment, page: Page, site: Site, **extra) -> str:
    return env.get_template(page.template).render(site=site, title=page.title, **page.context, **extra)


PAGE_BUILDERS: dict[str, Callable[[ReviewData], Page]] = {
    "overview": overview_page, "vehicles": vehicles_page, "faults": faults_page, "rams": rams_page,
    "models": models_page, "inspections": inspections_page, "spares": spares_page, "feedback": feedback_page,
}
"""The fleet-wide pages (every one but the vehicle page), by name, in navigation order."""
