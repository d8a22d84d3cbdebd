"""Tables people work with: filtered, searched, sorted and paged on the server, exported as CSV or XLSX.

One list, ``TABLES``, names every table a page shows as a frame builder; the page and its exports share the
builder and ``query``, so an export has exactly the rows the page has (without paging). Paging on the server
keeps a 3,000-vehicle fleet's pages small: only one page of rows is ever rendered.

Exports are escaped for where they go: a text cell starting with ``= + - @``, a tab or a carriage return is
a formula to a spreadsheet, so it is prefixed with an apostrophe (OWASP's CSV-injection advice); numbers stay
numbers.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Callable
from urllib.parse import urlencode

import pandas as pd

FILTERS = ("depot", "home_depot", "vehicle_type", "component", "risk_band", "status", "kind", "maintenance_level")
"""Columns offered as drop-down filters wherever a table has them."""
PER_PAGE = 50
MAX_PER_PAGE = 500
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Query:
    """What a person asked of a table, from the URL: filters, a search, a sort and a page."""

    filters: dict[str, str] = field(default_factory=dict)
    search: str = ""
    sort: str | None = None
    descending: bool = False
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def from_params(cls, params) -> "Query":
        def number(name: str, default: int, top: int) -> int:
            try:
                return min(max(int(params.get(name, default)), 1), top)
            except (TypeError, ValueError):
                return default

        return cls(
            filters={k: str(params[k])[:80] for k in FILTERS if params.get(k)},
            search=str(params.get("q", ""))[:80].strip(),
            sort=str(params["sort"])[:80] if params.get("sort") else None,
            descending=params.get("dir") == "desc",
            page=number("page", 1, 1_000_000),
            per_page=number("per_page", PER_PAGE, MAX_PER_PAGE),
        )

    def params(self, **change) -> str:
        """This query as URL parameters, with ``change`` applied (for sort links and page links)."""
        values = {**self.filters, "q": self.search, "sort": self.sort, "dir": "desc" if self.descending else None,
                  "page": self.page if self.page != 1 else None,
                  "per_page": self.per_page if self.per_page != PER_PAGE else None} | change
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


@dataclass
class TableView:
    name: str
    columns: list[str]
    rows: list[dict]
    total: int
    """Rows after filters and search, before paging."""
    query: Query
    options: dict[str, list[str]]
    """Filter column -> its values in the whole table."""

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.query.per_page))


def query(frame: pd.DataFrame, q: Query, *, default_sort: tuple[str, bool] | None = None) -> tuple[pd.DataFrame, int]:
    """Filtered, searched and sorted rows, and how many there are; paging is the caller's slice."""
    out = frame
    for column, value in q.filters.items():
        if column in out.columns:
            out = out[out[column].astype(str) == value]
    if q.search:
        text = out.astype(str).apply(lambda col: col.str.contains(q.search, case=False, regex=False, na=False))
        out = out[text.any(axis=1)] if len(out) else out
    sort, descending = (q.sort, q.descending) if q.sort in out.columns else (default_sort or (None, False))
    if sort in out.columns:
        out = out.sort_values(sort, ascending=not descending, kind="stable", na_position="last")
    return out, len(out)


def view(name: str, frame: pd.DataFrame, q: Query, *, default_sort: tuple[str, bool] | None = None) -> TableView:
    from railpm.review.pages import records

    rows, total = query(frame, q, default_sort=default_sort)
    pages = max(1, math.ceil(total / q.per_page))
    q.page = min(q.page, pages)
    start = (q.page - 1) * q.per_page
    options = {c: sorted(frame[c].dropna().astype(str).unique().tolist()) for c in FILTERS if c in frame.columns}
    return TableView(name, list(frame.columns), records(rows.iloc[start:start + q.per_page]), total, q, options)


# --------------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------------

def inert(value):
    """A cell a spreadsheet shows as text, never evaluates: formula-like text gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _cell(value):
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        # Excel has no time zones: write UTC, naive, and say so in the header
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, (date, bool, int, float)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return inert(str(value))


def to_csv(frame: pd.DataFrame) -> bytes:
    safe = frame.apply(lambda col: col.map(_cell)) if len(frame) else frame
    return safe.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S").encode("utf-8")


def to_xlsx(frame: pd.DataFrame, sheet: str) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    page = book.create_sheet(sheet[:31])
    page.append([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        page.append([_cell(v) for v in row])
    sink = io.BytesIO()
    book.save(sink)
    return sink.getvalue()


# --------------------------------------------------------------------------------------------------
# The CMMS work requests of a plan (what a planner loads into SAP PM / Maximo)
# --------------------------------------------------------------------------------------------------

WORK_REQUEST_COLUMNS = [
    "notification_type", "equipment", "functional_location", "priority", "required_start", "required_end",
    "maintenance_level", "short_text", "description", "vehicle_number", "component", "plan_day",
]


def work_requests(plan: pd.DataFrame, predictions: pd.DataFrame | None, plan_day: str) -> pd.DataFrame:
    """One maintenance notification per planned inspection or visit of the plan.

    Notification type M2 (malfunction report) for a predictive inspection, M3 (activity report) for a
    scheduled visit; equipment = vehicle/component; functional location = the depot; priority 1 (very high)
    to 4 (low) from the risk band and the days left; required start = the planned day, end = start + 1 day
    (a depot slot), or the remaining-life bound when that is earlier; description with the reasons in words.
    """
    from railpm.models.explain import reasons_in_words

    if plan.empty:
        return pd.DataFrame(columns=WORK_REQUEST_COLUMNS)
    rows = plan.copy()
    if predictions is not None and len(predictions) and "reasons" in predictions.columns:
        rows = rows.merge(predictions[["vehicle_number", "component", "reasons"]].drop_duplicates(["vehicle_number", "component"]),
                          on=["vehicle_number", "component"], how="left")
    out = []
    for r in rows.to_dict("records"):
        component = r.get("component") if isinstance(r.get("component"), str) else None
        predictive = r.get("kind") in ("inspection", "ride_along")
        band = r.get("risk_band") or ("high" if (r.get("failure_probability") or 0) >= 0.5 else "medium"
                                      if (r.get("failure_probability") or 0) >= 0.2 else "low")
        life = r.get("remaining_life_days")
        life = None if life is None or pd.isna(life) else float(life)
        priority = 1 if band == "high" and life is not None and life <= 7 else 2 if band == "high" else 3 if band == "medium" else 4
        if not predictive:
            priority = 3
        start = pd.Timestamp(r["day"]).date()
        end = start + pd.Timedelta(days=1)
        reasons = "; ".join(x["text"] for x in reasons_in_words(r.get("reasons"), component))
        what = component.replace("_", " ") if component else "whole vehicle"
        short = (f"Inspect {what}: predicted failure risk {r.get('failure_probability', 0):.0%}" if predictive
                 else f"Scheduled L{r.get('maintenance_level')} visit")
        out.append({
            "notification_type": "M2" if predictive else "M3",
            "equipment": f"{r['vehicle_number']}/{component}" if component else r["vehicle_number"],
            "functional_location": r.get("depot"),
            "priority": priority,
            "required_start": start,
            "required_end": end,
            "maintenance_level": r.get("maintenance_level"),
            "short_text": short[:40],
            "description": f"{short}. {('Why: ' + reasons + '.') if reasons else ''}".strip(),
            "vehicle_number": r["vehicle_number"],
            "component": component,
            "plan_day": plan_day,
        })
    return pd.DataFrame(out, columns=WORK_REQUEST_COLUMNS)


TableBuilder = Callable[["object"], pd.DataFrame]
