"""The ``railpm`` command line: one command per step of the pipeline, each calling library code."""

from __future__ import annotations

import functools
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console

from railpm.config import Settings, get_settings
from railpm.errors import RailpmError

app = typer.Typer(
    name="railpm",
    help="Predictive maintenance for railway fleets: generate, ingest, build vehicle records, predict, plan.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

DataRoot = Annotated[
    Optional[str],
    typer.Option("--data-root", help="Root of the data layers (default: $RAILPM_DATA_ROOT or ./data)."),
]


def settings_from(data_root: str | None, **overrides) -> Settings:
    if data_root:
        overrides["data_root"] = data_root
    return get_settings(**overrides)


def reports_errors(command):
    """Turn expected failures into a one-line message and exit code 1 instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RailpmError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code=1) from exc

    return wrapper


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
