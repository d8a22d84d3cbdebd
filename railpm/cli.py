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


@app.callback()
def _commands() -> None:
    """Keep `railpm <command>` a command group even while only one command is registered."""


@app.command()
@reports_errors
def generate(
    vehicles: Annotated[Optional[int], typer.Option("--vehicles", min=1, help="Fleet size (default: settings, 100).")] = None,
    days: Annotated[Optional[int], typer.Option("--days", min=1, help="Days of hourly telemetry (default: settings, 365).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed; the same seed writes the same files.")] = None,
    fmt: Annotated[
        Optional[str], typer.Option("--format", help="Telemetry file format: csv, jsonl or parquet (default: parquet).")
    ] = None,
    clean: Annotated[bool, typer.Option("--clean", help="Inject no dirt (no duplicates, dropouts, malformed lines...).")] = False,
    data_root: DataRoot = None,
) -> None:
    """Generate the synthetic railway fleet into landing/ (feeds) and truth/ (failures, dirt manifest)."""
    from railpm.config import DirtRates

    settings = settings_from(data_root)
    changes = {"vehicles": vehicles, "days": days, "seed": seed, "telemetry_format": fmt}
    fleet_values = settings.fleet.model_dump() | {k: v for k, v in changes.items() if v is not None}
    if clean:
        fleet_values["dirt"] = DirtRates.clean().model_dump()
    try:
        fleet = type(settings.fleet).model_validate(fleet_values)
    except ValueError as exc:
        raise RailpmError(f"invalid fleet option: {exc}") from exc
    generate_with_progress(settings.model_copy(update={"fleet": fleet}))


def generate_with_progress(settings: Settings) -> None:
    """Generate ``settings.fleet`` into the landing and truth folders with a progress bar, then summarise it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from railpm.synth import generate_fleet, print_fleet_summary

    fleet = settings.fleet
    with Progress(
        TextColumn("[bold]generating fleet"), BarColumn(), MofNCompleteColumn(), TextColumn("vehicles"),
        TimeElapsedColumn(), console=console,
    ) as bar:
        task = bar.add_task("vehicles", total=fleet.vehicles)
        summary = generate_fleet(fleet, settings.landing_dir, settings.truth_dir, progress=lambda n: bar.advance(task, n))
    print_fleet_summary(summary, console)


@app.command()
@reports_errors
def review(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; loopback by default (the app has no accounts).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8050,
    data_root: DataRoot = None,
) -> None:
    """Serve the review app: fleet risk, vehicles, faults, RAMS, model quality, plans, and feedback forms."""
    import uvicorn

    from railpm.review.app import create_app

    settings = settings_from(data_root)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/] listening on {host}: anyone who reaches it can record feedback")
    console.print(f"review app for {settings.data_root.resolve()} at [bold]http://{host}:{port}/[/] (Ctrl+C stops it)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@app.command()
@reports_errors
def report(data_root: DataRoot = None) -> None:
    """Write the static HTML report (the review app's pages, without forms) to <data root>/reports/."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from railpm.review.report import build_report, page_count

    settings = settings_from(data_root)
    with Progress(TextColumn("[bold]writing report"), BarColumn(), MofNCompleteColumn(), TextColumn("pages"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("pages", total=page_count(settings))
        result = build_report(settings, progress=lambda n: bar.advance(task, n))
    console.print(f"report: {result.pages} pages ({result.vehicle_pages} vehicles) in {result.seconds:.1f} s; "
                  f"open [bold]{result.index.resolve()}[/]")


@app.command()
@reports_errors
def demo(
    data_root: DataRoot = None,
    regenerate: Annotated[bool, typer.Option("--regenerate", help="Generate the fleet even if one is already there.")] = False,
) -> None:
    """The main job: generate the synthetic fleet and run it through every Airflow DAG of the pipeline."""
    import time

    from rich.table import Table

    from railpm.demo import PIPELINE_DAGS, StepTiming, run_pipeline_dags

    settings = settings_from(data_root)
    timings = []
    if regenerate or not (settings.truth_dir / "fleet_summary.json").exists():
        started = time.perf_counter()
        generate_with_progress(settings)
        timings.append(StepTiming("generate fleet", time.perf_counter() - started))
    with console.status("starting") as status:
        timings += run_pipeline_dags(settings, PIPELINE_DAGS, on_step=lambda d: status.update(f"airflow dags test {d}"))
    table = Table(title="railpm demo: steps")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for timing in timings:
        table.add_row(timing.step, f"{timing.seconds:.1f}")
    table.add_row("[bold]total", f"[bold]{sum(t.seconds for t in timings):.1f}")
    console.print(table)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
