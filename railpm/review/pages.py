"""What each review page shows, built once for the app and the static report alike.

A page is a template name plus a context built here from ``ReviewData``; each section of a page is read on
its own, so a layer that is not built yet empties only its section (with the command that builds it) and
never the page. ``Site`` makes links: server routes in the app, relative file paths in the static report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable
from urllib.parse import quote

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, Undefined
from markupsafe import Markup

from railpm import contracts, layers
from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.feedback import ALERT_STATUS, CLOSINGS
from railpm.review import data, plots

# --------------------------------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PageSpec:
    """One page of the review app and of the static report: the one entry to add for a new page.

    The template is ``templates/<name>.html`` and shows ``title`` as its heading; ``build`` makes the page from
    ``ReviewData`` (the vehicle page, one per vehicle, is built by ``vehicle_page`` instead).
    """

    name: str
    title: str
    route: str
    """app route"""
    file: str
    """static report file"""
    build: Callable[[ReviewData], Page] | None = None
    nav: bool = True

    @property
    def template(self) -> str:
        return f"{self.name}.html"


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
        route, file = PAGES[page].route, PAGES[page].file
        if self.static:
            target = "../" * self.depth + file.format(vehicle=file_slug(vehicle or ""))
        else:
            target = route.format(vehicle=quote(vehicle or "", safe=""))
        return f"{target}#{anchor}" if anchor else target

    def vehicle(self, vehicle_number: str) -> str:
        return self.url("vehicle", vehicle=vehicle_number)

    def model(self, version: str) -> str:
        """A version's model card (the app only: the static report has no card pages)."""
        return PAGES["model"].route.format(version=quote(str(version), safe=""))


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
    params: dict = field(default_factory=dict)
    """The request's query parameters (filters, search, sort, page of the page's main table); none in the report."""
    _cache: dict = field(default_factory=dict)

    def table(self, name: str, frame: pd.DataFrame, default_sort: tuple[str, bool] | None = None):
        """The page's table ``name`` as the request asks for it (every row in the static report: no server to page)."""
        from railpm.review import tables

        q = tables.Query.from_params(self.params)
        if not self.paged:
            q.per_page = max(len(frame), 1)
        return tables.view(name, frame, q, default_sort=default_sort)

    paged: bool = True
    """False for the static report: every row on the page, since no server answers a page link."""

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
        return self._cached("dossier", lambda: data.read_layer_table(layers.record_dir(self.settings, layers.VEHICLE_DOSSIER), layers.VEHICLE_DOSSIER))

    def fleet_rams(self) -> pd.DataFrame:
        return self._cached("rams", lambda: data.read_layer_table(layers.record_dir(self.settings, layers.FLEET_RAMS), layers.FLEET_RAMS))

    def all_feedback(self) -> pd.DataFrame:
        """Every feedback entry so far (possibly none), oldest first."""
        from railpm.feedback import read_feedback

        return self._cached("feedback", lambda: read_feedback(layers.feedback_dir_of(self.settings.lake_dir)))

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
        if value.tzinfo is not None:  # stored in UTC: say so, a depot reads it against its own clock
            return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        return ", ".join(fmt(item, digits) for item in items) if items else "–"
    return str(value)


COUNT_NAME = re.compile(r"(^|[_ (])(n|count|faults|failures|alerts|repairs|vehicles|vehicle_days|rows|positives|occurrences|"
                        r"predictions|entries|orders|inspections|on_hand|planned|capacity|km|rank)($|[_ )])")
"""Columns that count things (or whole km): shown as whole numbers, whatever dtype a mean or a join left them in."""
RATE_WORDS = ("per_", "per ", "/", "share", "rate", "mean", "ratio", "precision", "recall", "pct", "warned", "probability")


def cell(value, column: str = "", digits: int = 2) -> str:
    """A table cell in words a maintenance team reads: counts whole, days and hours to a sensible precision,
    percentages with their sign, probabilities to three places; everything else as ``fmt``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or _isna(value):
        return fmt(value, digits)
    name = str(column).lower()
    if name.endswith(("_pct", " %")) or name == "availability %":
        return f"{float(value):,.1f} %"
    if "probability" in name:
        return f"{float(value):.3f}"
    if COUNT_NAME.search(name) and not any(word in name for word in RATE_WORDS):
        return f"{int(round(float(value))):,}"
    if name.endswith(("_days", "(days)", " days")) or name.startswith("days_"):
        return f"{float(value):,.0f}" if abs(value) >= 10 else f"{float(value):,.1f}"
    if name.endswith(("_hours", "(hours)")):
        return f"{float(value):,.1f}"
    return fmt(float(value) if isinstance(value, np.floating) else value, digits)


def plural(count, noun: str, nouns: str | None = None) -> str:
    """``1 vehicle``, ``3,000 vehicles``: a count in words, never ``(1 vehicles)``."""
    n = int(count)
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


def nested_rows(value) -> bool:
    """A record field that holds a small table (a list of structs, e.g. a vehicle's open work orders)."""
    items = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    return bool(items) and all(isinstance(item, dict) for item in items)


def environment() -> Environment:
    """Jinja with autoescaping on for every template: data from the lake and feedback is never trusted as HTML."""
    env = Environment(loader=PackageLoader("railpm.review", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["cell"] = cell
    env.filters["plural"] = plural
    env.tests["nested_rows"] = nested_rows
    env.filters["words"] = lambda v: str(v).replace("_", " ")
    env.globals["PAGES"], env.globals["NAV"] = PAGES, [name for name, spec in PAGES.items() if spec.nav]
    env.globals["CLOSINGS"] = CLOSINGS
    # A page rendered outside the app (the static report, a test) has no account: no right, no form token.
    env.globals["may"], env.globals["csrf_token"] = (lambda right: False), ""
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
        context["model_versions"] = sorted(frame["model_version"].astype(str).unique())
        alerts = alerts_frame(review)
        context["alerts"] = review.table("alerts", alerts, ("failure_probability", True)) if len(alerts) else None
        context["status_counts"] = [(s, int((alerts["status"] == s).sum())) for s in ALERT_STATUS]
        context["alert_count"] = int(frame["alert"].astype(bool).sum())
        ranked = frame.head(25)
        context["ranked"] = records(ranked.assign(main_reason=[_main_reason(t, c) for t, c in zip(ranked["reasons"], ranked["component"])])) if alerts.empty else []
        context["heatmap"] = Markup(plots.risk_heatmap(frame))
        by_depot = frame.groupby("home_depot").agg(
            vehicles=("vehicle_number", "nunique"),
            alerts=("alert", "sum"),
            high=("risk_band", lambda s: int((s == "high").sum())),
            max_probability=("failure_probability", "max"),
        ).reset_index()
        context["by_depot"] = records(by_depot)
        context["vehicle_count"] = int(frame["vehicle_number"].nunique())
    return page_of("overview", context)


ALERT_COLUMNS = ["vehicle_number", "vehicle_type", "home_depot", "component", "failure_probability", "risk_band",
                 "remaining_life_days", "status", "status_by", "planned_day", "planned_depot", "closed_as", "main_reason"]


def alerts_frame(review: ReviewData) -> pd.DataFrame:
    """The latest day's alerts with their status and main reason, riskiest first."""
    frame = review.predictions().frame
    alerts = frame[frame["alert"].astype(bool)]
    alerts = alerts.assign(main_reason=[_main_reason(t, c) for t, c in zip(alerts["reasons"], alerts["component"])])
    return with_status(review, alerts)[ALERT_COLUMNS]


def with_status(review: ReviewData, predictions: pd.DataFrame) -> pd.DataFrame:
    """Predictions with their alert's place in its life (``railpm.feedback.alert_status``)."""
    from railpm.feedback import alert_status

    return alert_status(predictions, review.all_feedback(), horizon_days=review.settings.model.horizon_days)


def _main_reason(text: str | None, component: str | None) -> str:
    from railpm.models.explain import reasons_in_words

    reasons = reasons_in_words(text, component)
    return reasons[0]["text"] if reasons else ""


def vehicles_frame(review: ReviewData) -> pd.DataFrame:
    """The registry with each vehicle's highest risk, alerts and shortest remaining life on the latest day."""
    frame = review.vehicles()
    scored = section(review.predictions)
    if scored:
        risk = scored.value.frame.groupby("vehicle_number").agg(
            max_probability=("failure_probability", "max"), alerts=("alert", "sum"),
            shortest_life=("remaining_life_days", "min"),
        )
        frame = frame.join(risk, on="vehicle_number")
        frame["alerts"] = frame["alerts"].fillna(0).astype("int64")
    return frame


def vehicles_page(review: ReviewData) -> Page:
    registry = section(review.vehicles)
    rows = None
    if registry:
        frame = vehicles_frame(review)
        rows = review.table("vehicles", frame, ("max_probability", True) if "max_probability" in frame.columns else None)
    return page_of("vehicles", {"registry": registry, "rows": rows})


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
        rows = records(with_status(review, frame))
        from railpm.models.explain import reasons_in_words

        for row in rows:
            row["reason_list"] = reasons_in_words(row.get("reasons"), row.get("component"))
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
    if dossier:
        context["summary"] = _dossier_summary(
            dict(dossier.value), work_orders.value if work_orders else [],
            [r for r in context["predictions"].value["rows"] if r.get("alert")] if context["predictions"] else [])
    return page_of("vehicle", context, title=f"Vehicle {vehicle_number}")


def vehicle_rams(work_orders: list[dict], observed_days: float | None, as_of) -> dict:
    """The vehicle's MTTR and availability from its corrective work orders, defined as ``fleet_rams`` does
    for the fleet: MTTR over the closed ones; downtime = time any was open (overlaps once, an open one until
    ``as_of``) against the observed days x 24 h."""
    corrective = [w for w in work_orders if w.get("action") == "corrective_replacement" and w.get("opened_at") is not None]
    closed = [(w["closed_at"] - w["opened_at"]).total_seconds() / 3600 for w in corrective if w.get("closed_at") is not None]
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1) if as_of is not None else None
    spans = sorted((pd.Timestamp(w["opened_at"]), pd.Timestamp(w["closed_at"]) if w.get("closed_at") is not None else end)
                   for w in corrective)
    down, last_end = 0.0, None
    for start, stop in spans:
        if stop is None:
            continue
        start = max(start, last_end) if last_end is not None else start
        if stop > start:
            down += (stop - start).total_seconds() / 3600
        last_end = max(stop, last_end) if last_end is not None else stop
    availability = 1 - down / (observed_days * 24) if observed_days else None
    return {"mttr_hours": sum(closed) / len(closed) if closed else None, "repairs": len(closed),
            "availability_pct": None if availability is None else 100 * max(availability, 0.0), "downtime_hours": down}


def _dossier_summary(row: dict, work_orders: list[dict], alerts: list[dict]) -> dict:
    """What a reliability engineer reads first; the dossier's raw fields stay folded away below it."""
    rams = vehicle_rams(work_orders, row.get("observed_days"), row.get("as_of") or row.get("day"))
    return {
        "identity": [(label, row.get(key)) for label, key in (
            ("record as of", "as_of"), ("first record day", "first_record_day"), ("observed days", "observed_days"),
            ("observed km", "observed_km"), ("last seen", "last_seen"))
            if key in row],
        "rams": [("MTBF so far (days)", row.get("mtbf_days")), ("MKBF so far (km)", row.get("mkbf_km")),
                 ("failures so far", row.get("failures_total")), ("MTTR (hours)", rams["mttr_hours"]),
                 ("repairs closed", rams["repairs"]), ("availability %", rams["availability_pct"])],
        "recurring": row.get("recurring_fault_codes"),
        "recurring_history": row.get("recurring_fault_history"),
        "open_work_orders": row.get("open_work_orders"),
        "next_due": next_due(row),
        "alerts": alerts,
    }


def next_due(row: dict) -> list[dict]:
    """One row per maintenance level the vehicle has a due date or km for: when, at which km, which comes first
    (time or distance), how far off, and ``overdue`` when it has passed. The records job names the fields
    ``next_due_<level>_day|_km|_by``, ``days_to_due_<level>``, ``km_to_due_<level>``; a plain ``next_due_<level>``
    (a day) is read too."""
    levels = sorted({m.group(1) for k in row if (m := re.fullmatch(r"next_due_(.+)_day", k))})
    plain = not levels
    if plain:
        levels = sorted(k.removeprefix("next_due_") for k in row if k.startswith("next_due_") and not k.endswith(("_km", "_by")))
    out = []
    for level in levels:
        day = row.get(f"next_due_{level}" if plain else f"next_due_{level}_day")
        km = None if plain else row.get(f"next_due_{level}_km")
        if day is None and km is None:
            continue  # a level this vehicle has no cycle for
        days, km_left = row.get(f"days_to_due_{level}"), row.get(f"km_to_due_{level}")
        overdue = any(v is not None and v < 0 for v in (days, km_left))
        out.append({"level": level.replace("level_", "level ").upper() if level.startswith("l") and level[1:].isdigit() else level.replace("_", " "),
                    "next due day": day, "next due km": km, "first by": row.get(f"next_due_{level}_by"),
                    "days to due": days, "km to due": km_left, "status": "overdue" if overdue else "due"})
    return out


def _dossier_items(rows: pd.DataFrame) -> list[tuple[str, Any]]:
    """The dossier row as label/value pairs, in the column order the records job chose."""
    row = records(rows.tail(1))[0]
    return [(k, v) for k, v in row.items() if k != "vehicle_number"]


def _feedback_section(review: ReviewData, vehicle_number: str | None) -> Section:
    found = section(review.feedback, vehicle_number)
    if found:
        frame = found.value
        frame = frame.sort_values("recorded_at", ascending=False)
        return Section({"columns": FEEDBACK_COLUMNS, "rows": records(frame[FEEDBACK_COLUMNS].head(500))})
    return found


FEEDBACK_COLUMNS = ["recorded_at", "recorded_by", "kind", "vehicle_number", "component", "scored_day", "model_version",
                    "finding", "inspected_on", "planned_day", "planned_depot", "reason", "feedback_id"]


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
    return page_of("faults", context)


RAMS_FIGURES = (("mtbf", "MTBF"), ("mttr", "MTTR"), ("availability", "Availability"))
"""Figures charted from ``records/fleet_rams``: the first numeric column whose name starts with each prefix."""


RAMS_PERIODS = ("year", "quarter", "month")


def rams_page(review: ReviewData) -> Page:
    """The figures of one period type (``?period=year|quarter|month``), charted for its latest period.

    Charting never averages periods of different lengths together, and the ``all`` rows (every component,
    every vehicle type) stay in the table but off the component axis."""
    rams = section(review.fleet_rams)
    context: dict[str, Any] = {"rams": rams, "plots": [], "periods": [], "period": None}
    if rams:
        frame = rams.value
        if "period_type" in frame.columns:
            context["periods"] = [p for p in RAMS_PERIODS if (frame["period_type"] == p).any()]
            wanted = review.params.get("period")
            period = wanted if wanted in context["periods"] else (context["periods"] or [None])[0]
            if period is not None:
                frame = frame[frame["period_type"] == period]
            context["period"] = period
        if "availability" in frame.columns:
            frame = frame.assign(availability_pct=100 * frame["availability"]).drop(columns="availability")
        chart = frame
        if "period_start" in chart.columns and len(chart):
            latest = chart["period_start"].max()
            chart = chart[chart["period_start"] == latest]
            context["charted"] = latest
        if {"component", "vehicle_type"} <= set(chart.columns):
            chart = chart[(chart["component"] != "all") & (chart["vehicle_type"] != "all")]
            for prefix, label in RAMS_FIGURES:
                column = next((c for c in chart.columns if c.lower().startswith(prefix)
                               and pd.api.types.is_numeric_dtype(chart[c]) and chart[c].notna().any()), None)
                if column is not None:
                    when = f", {context['period']} from {fmt(context.get('charted'))}" if context["period"] else ""
                    title = f"{label} per component and vehicle type ({column.replace('_', ' ').replace('pct', '%')}{when})"
                    context["plots"].append(Markup(plots.rams_bars(chart, column, title)))
        context["columns"] = list(frame.columns)
        context["rows"] = records(frame.head(2000))
    clocks = section(data.read_layer_table, layers.record_dir(review.settings, layers.RESPONSE_CLOCKS), layers.RESPONSE_CLOCKS)
    context["clocks"] = Section({"columns": list(clocks.value.columns), "rows": records(clocks.value)}) if clocks else clocks
    return page_of("rams", context)


def models_page(review: ReviewData) -> Page:
    from railpm.review import quality

    found = section(quality.read_model_quality, review.settings.tracking_uri, review.settings.model.registered_model_name,
                    mlflow_ui=review.settings.review.mlflow_ui_url)
    context: dict[str, Any] = {"quality": found, "plots": []}
    if found:
        for metric in ("pr_auc", "recall_at_capacity", "cost_saving"):
            table = found.value.backtest
            if table is not None and metric in table.columns and table[metric].notna().any():
                context["plots"].append(Markup(plots.metric_comparison(table, metric)))
    return page_of("models", context)


class VersionNotFound(RailpmError):
    pass


def model_card_page(review: ReviewData, version: str) -> Page:
    """One registered version's card (``railpm.review.quality.read_model_card``)."""
    from railpm.review import quality

    settings = review.settings
    card = section(quality.read_model_card, settings.tracking_uri, settings.model.registered_model_name, version,
                   mlflow_ui=settings.review.mlflow_ui_url)
    if not card and "has no version" in (card.missing or ""):
        raise VersionNotFound(card.missing)
    context: dict[str, Any] = {"card": card, "plots": []}
    if card and card.value.backtest is not None and "pr_auc" in card.value.backtest.columns:
        context["plots"].append(Markup(plots.metric_comparison(card.value.backtest, "pr_auc", f"Version {version}'s")))
    return page_of("model", context, title=f"Model version {version}")


def monitoring_page(review: ReviewData) -> Page:
    """Drift (PSI per week), calibration over recent weeks and alert volume per depot (``railpm.review.monitoring``)."""
    from railpm.review.monitoring import monitoring

    found = section(monitoring, review.settings)
    context: dict[str, Any] = {"found": found, "plots": []}
    if found:
        m = found.value
        if len(m["drift"]):
            context["plots"].append(Markup(plots.weekly_lines(
                m["drift"], "psi", "what", "Drift: PSI per week against the first four weeks (0.1 and 0.25 dashed)", (0.1, 0.25))))
        if len(m["calibration"]):
            calibration = m["calibration"].melt(id_vars="week", value_vars=["predicted", "observed"], var_name="what")
            context["plots"].append(Markup(plots.weekly_lines(
                calibration, "value", "what", "Calibration: mean predicted probability and observed failure share per week")))
        if len(m["volume"]):
            context["plots"].append(Markup(plots.weekly_lines(m["volume"], "alerts_per_day", "depot", "Alerts per day, per depot and week")))
        context["drift"] = records(m["drift"].pivot_table(index="week", columns="what", values="psi").reset_index()) if len(m["drift"]) else []
        context["calibration"] = records(m["calibration"])
    return page_of("monitoring", context)


def inspections_page(review: ReviewData) -> Page:
    from railpm.review import plans

    from railpm.review.signoff import plan_approvals

    found = section(plans.read_inspection_plan, review.settings)
    context: dict[str, Any] = {"plan": found}
    if found:
        context["approvals"] = [a | {"approved_at": datetime.fromisoformat(a["approved_at"])} if isinstance(a.get("approved_at"), str) else a
                                for a in plan_approvals(review.settings.plans_dir / found.value.scored_day)]
        shown = found.value.rows.sort_values(["day", "depot", "vehicle_number"], kind="stable")[found.value.columns]
        context["table"] = review.table("inspection_plan", shown)
        context["load_plot"] = Markup(plots.depot_load(found.value.load)) if not found.value.load.empty else None
    return page_of("inspections", context)


def spares_page(review: ReviewData) -> Page:
    from railpm.review import plans

    found = section(plans.read_spares_plan, review.settings)
    context: dict[str, Any] = {"plan": found}
    if found:
        context["table"] = review.table("spares_plan", found.value.rows[found.value.columns])
    if found and not found.value.rows.empty and {"stock_level", "on_hand"} <= set(found.value.rows.columns):
        context["stock_plot"] = Markup(plots.stock_levels(found.value.rows))
    return page_of("spares", context)


def feedback_page(review: ReviewData, limit: int = 500) -> Page:
    entries = section(review.feedback)
    if entries:
        entries = Section(review.table("feedback", feedback_frame(review), ("recorded_at", True)))
    return page_of("feedback", {"feedback": entries, "trace": section(_trace, review, limit)})


def _trace(review: ReviewData, limit: int) -> dict:
    """Prediction -> planned inspection -> decision -> finding -> failure or not, for every alert and every
    prediction someone gave feedback on (``railpm.feedback.trace_predictions``)."""
    from railpm.feedback import TRACE_COLUMNS, observed_failures, trace_predictions
    from railpm.planning.run import read_inspection_plans

    entries = review.all_feedback()
    predictions = data.read_traced_predictions(review.settings.predictions_dir, entries)
    as_of = review.predictions().day
    try:
        failures = observed_failures(data.read_corrective_orders(review.settings.lake_dir), data.read_major_faults(review.settings.lake_dir))
    except data.LayerMissing:
        failures = pd.DataFrame(columns=["vehicle_number", "component", "failed_at"])
    trace = trace_predictions(
        predictions, read_inspection_plans(review.settings.plans_dir), entries, failures,
        horizon_days=review.settings.model.horizon_days, as_of=as_of,
    )
    trace = trace.sort_values(["scored_day", "failure_probability"], ascending=[False, False]).head(limit)
    return {"columns": TRACE_COLUMNS, "rows": records(trace), "as_of": as_of, "total": len(predictions)}


def page_of(name: str, context: dict, title: str | None = None) -> Page:
    """A page of ``PAGES``: its template and title come from its entry."""
    spec = PAGES[name]
    return Page(spec.template, title or spec.title, context)


def render(env: Environment, page: Page, site: Site, **extra) -> str:
    return env.get_template(page.template).render(site=site, title=page.title, **page.context, **extra)


def inspection_plan_frame(review: ReviewData) -> pd.DataFrame:
    from railpm.review import plans

    view = plans.read_inspection_plan(review.settings)
    return view.rows.sort_values(["day", "depot", "vehicle_number"], kind="stable")[view.columns]


def work_requests_frame(review: ReviewData) -> pd.DataFrame:
    from railpm.review import plans, tables

    view = plans.read_inspection_plan(review.settings)
    try:
        predictions = review.predictions().frame
    except data.LayerMissing:
        predictions = None
    return tables.work_requests(view.rows, predictions, view.scored_day)


def spares_plan_frame(review: ReviewData) -> pd.DataFrame:
    from railpm.review import plans

    view = plans.read_spares_plan(review.settings)
    return view.rows[view.columns]


def feedback_frame(review: ReviewData) -> pd.DataFrame:
    return review.all_feedback().sort_values("recorded_at", ascending=False)[FEEDBACK_COLUMNS]


TABLES: dict[str, Callable[[ReviewData], pd.DataFrame]] = {
    "alerts": alerts_frame, "vehicles": vehicles_frame, "inspection_plan": inspection_plan_frame,
    "work_requests": work_requests_frame, "spares_plan": spares_plan_frame, "feedback": feedback_frame,
}
"""Every exportable table by name: the page shows it, ``/export/<name>.csv|xlsx`` downloads the same rows."""


PAGES: dict[str, PageSpec] = {spec.name: spec for spec in (
    PageSpec("overview", "Fleet risk", "/", "index.html", overview_page),
    PageSpec("vehicles", "Vehicles", "/vehicles", "vehicles.html", vehicles_page),
    PageSpec("vehicle", "Vehicle", "/vehicles/{vehicle}", "vehicles/{vehicle}.html", nav=False),
    PageSpec("faults", "Faults", "/faults", "faults.html", faults_page),
    PageSpec("rams", "RAMS", "/rams", "rams.html", rams_page),
    PageSpec("models", "Model quality", "/models", "models.html", models_page),
    PageSpec("model", "Model version", "/models/{version}", "models/{version}.html", nav=False),
    PageSpec("monitoring", "Monitoring", "/monitoring", "monitoring.html", monitoring_page),
    PageSpec("inspections", "Inspection plan", "/plans/inspections", "inspections.html", inspections_page),
    PageSpec("spares", "Spares plan", "/plans/spares", "spares.html", spares_page),
    PageSpec("feedback", "Feedback trail", "/feedback", "feedback.html", feedback_page),
)}
"""Every page, in navigation order: adding a page is adding an entry here and its template."""
FLEET_PAGES = [spec for spec in PAGES.values() if spec.build is not None]
"""The fleet-wide pages (every one but the vehicle page), each built once."""
