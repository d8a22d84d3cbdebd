"""Errors railpm reports to people: each names what was wrong and where, so nothing has to be guessed."""

from __future__ import annotations

import os
from pathlib import Path


class RailpmError(Exception):
    """An expected failure with a message meant for the user; the CLI prints it and exits non-zero."""


class BadInputError(RailpmError):
    """Input that breaks a rule, located by file, row (1-based line) and rule."""

    def __init__(self, message: str, *, file: Path | str | None = None, row: int | None = None, rule: str | None = None):
        self.file, self.row, self.rule = file, row, rule
        where = ", ".join(
            part
            for part in (
                f"file {os.fsencode(str(file)).decode('utf-8', errors='backslashreplace')}" if file is not None else "",
                f"line {row}" if row is not None else "",
                f"rule {rule}" if rule else "",
            )
            if part
        )
        super().__init__(f"{message} ({where})" if where else message)
