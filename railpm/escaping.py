"""Escape at the edge, for where the data goes: spreadsheets, terminals, HTML.

Landing data and file names are data: a description ``=HYPERLINK(...)`` must stay text in the planner's
Excel, a column named ``[/x]`` must print as itself, a ``<script>`` in a fault description must show as
text in Data Docs. Each edge calls the one function here for its medium.
"""

from __future__ import annotations

import html
import re

import pandas as pd
from rich.markup import escape as _rich_escape

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""Cell openings a spreadsheet may take for a formula (OWASP CSV injection)."""


def spreadsheet_cell(value):
    """A text cell made inert for spreadsheets: one leading apostrophe when it could start a formula.

    Numbers are left as numbers (a negative amount is no formula); only text is touched.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) are safe to open in Excel or LibreOffice."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype):
            out[name] = column.map(spreadsheet_cell, na_action="ignore").astype(column.dtype if column.dtype != object else object)
    out.columns = [spreadsheet_cell(str(c)) for c in out.columns]
    return out


def terminal(value) -> str:
    """Text for a Rich console: markup brackets escaped, control characters shown as ``\\xNN`` (a newline or
    an escape sequence in a file name must not move the cursor or forge a line of output)."""
    return _rich_escape(log_text(value))


def log_text(value) -> str:
    """Text for a log line: control characters (newlines included) shown as ``\\xNN``, so one value is one line."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", str(value))


def html_text(value: str) -> str:
    """Text for HTML where no template escapes it."""
    return html.escape(value, quote=True)
