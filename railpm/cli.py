"""The ``railpm`` command line: one command per step of the pipeline, each calling library code."""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from typer.core import TyperGroup
from rich.markup import escape

from railpm.config import Settings, get_settings
from railpm.errors import RailpmError
from railpm.escaping import terminal

COMMAND_ORDER = (
    "demo",
    "generate", "replay", "onboard", "import", "ingest", "held", "records", "backtest", "train", "score", "plan", "feedback",
    "report", "review", "users", "vehicle",
    "up", "down",
)
"""``--help`` lists the main job, then the steps in the order data moves through them, then what reads their
output, then the production topology; a command not named here comes last."""


class _PipelineOrder(TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))


app = typer.Typer(
    cls=_PipelineOrder,
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
            err_console.print(f"[bold red]error:[/] {terminal(exc)}")
            raise typer.Exit(code=1) from exc

    return wrapper


@app.callback()
def _commands() -> None:
    """Keep `railpm <command>` a command group even while only one command is registered.

    Each invocation sizes the consoles again from ``COLUMNS``: Rich reads it once, when a console is made, and
    one process (a test run, a notebook) may invoke many commands with different widths.
    """
    columns = os.environ.get("COLUMNS", "")
    for each in (console, err_console):
        each.width = int(columns) if columns.isdigit() else None


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
    deliveries: Annotated[
        Optional[str], typer.Option("--deliveries", help="'daily': the fleet's life as daily drops in deliveries/ for `railpm replay`.")
    ] = None,
    go_live_day: Annotated[
        Optional[int], typer.Option("--go-live-day", min=1, help="With --deliveries: the deployment's first day (day number; "
                                    "the history before it arrives that day). Default: 30 days before the end.")
    ] = None,
    drills: Annotated[bool, typer.Option("--drills/--no-drills", help="With --deliveries: include the bad deliveries.")] = True,
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
    if deliveries is not None:
        generate_deliveries(settings.model_copy(update={"fleet": fleet}), deliveries, go_live_day, drills)
        return
    generate_with_progress(settings.model_copy(update={"fleet": fleet}))


def generate_deliveries(settings: Settings, kind: str, go_live_day: int | None, drills: bool) -> None:
    """The fleet's life as daily drops (``railpm.synth.deliveries``), then what they hold."""
    from railpm.synth.deliveries import generate_deliveries as generate

    if kind != "daily":
        raise RailpmError(f"--deliveries {kind!r}: only 'daily' is known")
    go_live = go_live_day if go_live_day is not None else max(1, settings.fleet.days - 30)
    try:
        summary = generate(settings.fleet, settings.deliveries_dir, settings.truth_dir, go_live, drills)
    except ValueError as exc:
        raise RailpmError(str(exc)) from exc
    console.print(f"{summary.drops} daily drops from {summary.first_day} to {summary.last_day} in {summary.deliveries_dir} "
                  f"(go-live {summary.go_live}: the history arrives in its drop)")
    for change in summary.registry_changes:
        console.print(f"  registry: {escape(json.dumps(change))}", highlight=False)
    for drill in summary.drills:
        console.print(f"  drill: {escape(json.dumps(drill))}", highlight=False)
    console.print(f"what was delivered when: {summary.truth_dir}/deliveries.parquet, drops.json")


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
    host: Annotated[str, typer.Option("--host", help="Address to listen on; loopback by default, any other only with accounts (railpm users add).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8050,
    data_root: DataRoot = None,
) -> None:
    """Serve the review app: fleet risk, vehicles, faults, RAMS, model quality, plans, and feedback forms."""
    import uvicorn

    from railpm.review.app import create_app

    settings = settings_from(data_root)
    review_app = create_app(settings, host=host, warm=True)  # refuses a non-loopback address without accounts
    console.print(f"review app for {settings.data_root.resolve()} at [bold]http://{host}:{port}/[/] (Ctrl+C stops it)")
    uvicorn.run(review_app, host=host, port=port, log_level="warning")


users_app = typer.Typer(help="Accounts of the review app: who signs in, in which role.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
@reports_errors
def users_add(
    username: Annotated[str, typer.Argument(help="User name, e.g. r.weber (lower case).")],
    role: Annotated[str, typer.Option("--role", help="engineer, planner, data_team or admin.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Full name shown in the app.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")] = False,
    data_root: DataRoot = None,
) -> None:
    """Add an account (or reset its password, name and role); the password is asked for, never an argument."""
    import sys

    from railpm.review.accounts import accounts_file, add_account

    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt(
        "password", hide_input=True, confirmation_prompt=True)
    path = accounts_file(settings_from(data_root))
    account = add_account(path, username, name=name or username, role=role, password=password)
    console.print(f"account [bold]{account.username}[/] ({account.role}) saved in {path}")


@users_app.command("disable")
@reports_errors
def users_disable(username: Annotated[str, typer.Argument(help="User name.")], data_root: DataRoot = None) -> None:
    """Disable an account: it is signed out at its next request and cannot sign in; the trail keeps its name."""
    from railpm.review.accounts import accounts_file, disable_account

    path = accounts_file(settings_from(data_root))
    disable_account(path, username)
    console.print(f"account [bold]{username}[/] disabled in {path}")


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
def replay(
    first: Annotated[Optional[str], typer.Option("--from", help="First day (YYYY-MM-DD; default: the first drop).")] = None,
    last: Annotated[Optional[str], typer.Option("--to", help="Last day (YYYY-MM-DD; default: the last drop).")] = None,
    rerun: Annotated[bool, typer.Option("--rerun", help="Run days already done again (delivers nothing twice).")] = False,
    until: Annotated[str, typer.Option("--until", help="Last DAG of each day (default fleet_plan; fleet_ingest: the gate alone).")] = "fleet_plan",
    data_root: DataRoot = None,
) -> None:
    """Day after day: deliver each day's drop into landing/ and run that day's DAGs (stoppable, resumable)."""
    from datetime import date

    from railpm.deploy.replay import drop_days, replay_days

    settings = settings_from(data_root)
    days = drop_days(settings)
    try:
        start = date.fromisoformat(first) if first else (days[0] if days else None)
        end = date.fromisoformat(last) if last else (days[-1] if days else None)
    except ValueError as exc:
        raise RailpmError(f"--from/--to: {exc}") from exc
    if start is None or end is None:
        raise RailpmError(f"no drops in {settings.deliveries_dir}: run `railpm generate --deliveries daily` first, or give --from and --to")
    results = replay_days(settings, start, end, rerun, until=until, on_day=print_replay_day, on_step=lambda day, step: console.print(
        f"  {day} › {step.step} {step.status} in {step.wall_s:.1f} s ({step.cpu_s:.1f} CPU s)", highlight=False))
    print_replay_table(results)


def print_replay_day(result) -> None:
    for line in [*result.notes, *result.messages]:
        console.print(f"  {result.day}: {terminal(line)}", highlight=False, soft_wrap=True)
    status = "done" if result.done else "[bold red]not done[/] (a step failed: the next replay runs it again)"
    console.print(f"[bold]{result.day}[/] {status}: {len(result.delivered)} files delivered, champion {result.champion or '-'}",
                  highlight=False)


def print_replay_table(results) -> None:
    """Per day and step: wall and CPU seconds; per day the ingest counts and the champion version."""
    from rich.table import Table

    from railpm.deploy.replay import COUNTS

    table = Table(title="railpm replay: per day and step")
    for column in ("day", "step", "status", "wall s", "CPU s", *COUNTS, "champion"):
        table.add_column(column, justify="left" if column in ("day", "step", "status") else "right")
    for result in results:
        for i, step in enumerate(result.steps):
            counts = [str(result.counts.get(c, "")) if i == 0 else "" for c in COUNTS]
            table.add_row(result.day if i == 0 else "", step.step, step.status, f"{step.wall_s:.1f}", f"{step.cpu_s:.1f}",
                          *counts, (result.champion or "-") if i == 0 else "")
    console.print(table)


@app.command()
@reports_errors
def demo(
    data_root: DataRoot = None,
    regenerate: Annotated[bool, typer.Option("--regenerate", help="Generate the fleet even if one is already there.")] = False,
    until: Annotated[
        Optional[str], typer.Option("--until", help="Stop after this DAG (default: every DAG the main job chains).")
    ] = None,
) -> None:
    """The main job: generate the synthetic fleet and run it through every Airflow DAG of the pipeline."""
    import time

    from rich.table import Table

    from railpm.deploy.demo import PIPELINE_DAGS, StepTiming, run_pipeline_dags, where_things_are

    settings = settings_from(data_root)
    if until is not None and until not in PIPELINE_DAGS:
        raise RailpmError(f"--until must name one of the pipeline DAGs: {', '.join(PIPELINE_DAGS)}")
    dags = PIPELINE_DAGS[: PIPELINE_DAGS.index(until) + 1] if until else PIPELINE_DAGS
    timings = []
    if regenerate or not (settings.truth_dir / "fleet_summary.json").exists():
        started = time.perf_counter()
        generate_with_progress(settings)
        timings.append(StepTiming("generate fleet", time.perf_counter() - started))
    progress = DemoProgress()
    timings += run_pipeline_dags(settings, dags, on_step=progress.step, on_task=progress.task,
                                 on_progress=progress.progress)
    table = Table(title="railpm demo: steps")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for timing in timings:
        table.add_row(timing.step, f"{timing.seconds:.1f}")
    table.add_row("[bold]total", f"[bold]{sum(t.seconds for t in timings):.1f}")
    console.print(table)
    for what, place in where_things_are(settings, dags).items():
        console.print(f"{what}: [bold]{place}[/]")



class DemoProgress:
    """The main job's live log: a line as each step starts and ends, and one per task of the running DAG as it
    ends (Airflow's own record of progress), so a run of minutes is never silent."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def step(self, name: str, timing=None) -> None:
        import time

        if timing is None:
            self.started[name] = time.perf_counter()
            console.print(f"[bold]▶ {name}[/] started", highlight=False)
        else:
            console.print(f"[bold green]✓ {name}[/] done in {timing.seconds:.1f} s", highlight=False)

    def task(self, dag_id: str, event) -> None:
        if event.ended:
            console.print(f"    {dag_id} › {escape(event.name)} finished at {self.elapsed(dag_id):.0f} s", highlight=False)
        elif event.map_index < 0:  # a mapped task's many copies would drown the log: their ends are enough
            console.print(f"    {dag_id} › {escape(event.name)} started at {self.elapsed(dag_id):.0f} s", highlight=False)

    def progress(self, dag_id: str, message: str) -> None:
        console.print(f"    {dag_id} › {escape(message)} at {self.elapsed(dag_id):.0f} s", highlight=False)

    def elapsed(self, dag_id: str) -> float:
        import time

        return time.perf_counter() - self.started.get(dag_id, time.perf_counter())


@app.command()
@reports_errors
def plan(
    scored_day: Annotated[
        Optional[datetime], typer.Option("--scored-day", formats=["%Y-%m-%d"], help="Plan from this day's predictions (default: the latest).")
    ] = None,
    window_days: Annotated[Optional[int], typer.Option("--window-days", min=1, help="Days to plan (default: settings, 14).")] = None,
    allow_transfers: Annotated[
        Optional[bool],
        typer.Option("--allow-transfers/--home-depot-only", help="May vehicles be sent to another depot at a transfer cost?"),
    ] = None,
    time_limit: Annotated[
        Optional[float], typer.Option("--time-limit", min=0.1, help="CP-SAT deterministic time limit, about seconds (default: 20).")
    ] = None,
    capacity: Annotated[
        Optional[list[str]],
        typer.Option("--capacity", help="What-if capacity DEPOT:LEVEL=SLOTS per day (repeatable), e.g. DEP-NORTH:2=1;"
                     " the baseline plan is written beside it."),
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Plan inspections within depot capacity and spare stock per depot; write both to plans/<scored day>/."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from railpm.planning.run import run_plan

    settings = settings_from(data_root)
    overrides = {"window_days": window_days, "allow_transfers": allow_transfers, "time_limit_s": time_limit}
    with Progress(SpinnerColumn(), TextColumn("[bold]planning inspections and spares"), TimeElapsedColumn(), console=console) as bar:
        bar.add_task("plan", total=None)
        result = run_plan(
            settings, scored_day.date() if scored_day else None, capacity_overrides=_capacity_overrides(capacity or []),
            **{k: v for k, v in overrides.items() if v is not None},
        )
    inspections, spares = result.summary["inspections"], result.summary["spares"]
    table = Table(title=f"plans for predictions of {result.summary['scored_day']}", show_header=False)
    rows = [
        ("window", f"{inspections['first_day']} + {inspections['window_days']} days"),
        ("scheduled visits due", f"{inspections['scheduled_visits_due']} ({inspections['scheduled_visits_unplaced']} without capacity)"),
        ("predictive visits / inspections / ride-alongs",
         f"{inspections['predictive_visits']} / {inspections['inspections']} / {inspections['ride_alongs']}"),
        ("expected avoided cost, net (CP-SAT)", f"EUR {inspections['objective_eur']:,.0f} ({inspections['solver_status']}, "
         f"{inspections['solve_time_s']:.1f} s, optimality gap "
         f"{'unknown' if inspections['optimality_gap'] is None else format(inspections['optimality_gap'], '.2%')})"),
        ("greedy rule", f"EUR {inspections['greedy_objective_eur']:,.0f} (CP-SAT gains {inspections['greedy_gap']:.2%})"),
        ("spares stock for fill rate", f"{spares['service_level']:.0%}: {spares['stock_units']} units, EUR {spares['stock_value_eur']:,.0f}"),
        ("reorders", f"{spares['reorder_lines']} lines, {spares['reorder_units']} units, EUR {spares['reorder_value_eur']:,.0f}"),
        ("pooling the depots would save", f"{spares['pooling_saving_units']} units, EUR {spares['pooling_saving_eur']:,.0f}"),
        ("transfers before ordering", f"{spares['transfer_units']} units in {spares['transfer_lines']} moves, EUR "
         f"{spares['transfer_cost_eur']:,.0f}; {spares['reorder_after_transfers_units']} units still to order (spares_transfers.csv)"),
        ("work the rules raised (open)", f"{result.summary['work_requests']['replace_component']} component replacements, "
         f"{result.summary['work_requests']['vehicle_escalation']} vehicle escalations (work_requests.csv)"),
        ("expected cost over the horizon", f"EUR {inspections['expected_cost_eur']:,.0f} (without a plan EUR "
         f"{inspections['risk_without_plan_eur']:,.0f})"),
    ]
    what_if = result.summary.get("what_if")
    if what_if:
        base = what_if["baseline"]
        rows.append(("baseline capacity", f"EUR {base['expected_cost_eur']:,.0f} expected, {base['predictive_visits']} predictive"
                     f" visits; the what-if costs EUR {what_if['extra_cost_eur']:,.0f} more (inspection_plan_baseline.csv)"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(f"written to [bold]{result.folder}[/] (inspection_plan.csv, spares_plan.csv, spares_pooling.csv for planners)")


def _capacity_overrides(values: list[str]) -> dict[str, dict[int, int]]:
    """``DEPOT:LEVEL=SLOTS`` options as depot -> level -> slots; a malformed one is refused naming it."""
    from railpm import contracts

    out: dict[str, dict[int, int]] = {}
    for value in values:
        try:
            depot, rest = value.split(":", 1)
            level, slots = rest.split("=", 1)
            level_n, slots_n = int(level), int(slots)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not DEPOT:LEVEL=SLOTS (e.g. DEP-NORTH:2=1)", param_hint="--capacity") from None
        if slots_n < 0 or level_n not in contracts.LEVELS:
            raise typer.BadParameter(f"{value!r}: level must be one of {contracts.LEVELS} and slots >= 0", param_hint="--capacity")
        out.setdefault(depot, {})[level_n] = slots_n
    return out


feedback_app = typer.Typer(
    help="Record engineers' decisions on predictions and inspection findings (append-only), and trace a prediction.",
    no_args_is_help=True,
)
app.add_typer(feedback_app, name="feedback")

Vehicle = Annotated[str, typer.Option("--vehicle", help="Vehicle number, e.g. EMU-0001.")]
Component = Annotated[str, typer.Option("--component", help="Component, e.g. wheelset, brake_unit.")]
User = Annotated[str, typer.Option("--user", help="Who records the entry (kept in the audit trail).")]
Day = Annotated[datetime, typer.Option("--scored-day", formats=["%Y-%m-%d"], help="Day of the prediction (YYYY-MM-DD).")]
ModelVersion = Annotated[
    Optional[str], typer.Option("--model-version", help="Model version of the prediction (default: the one that made it).")
]


def _record_feedback(data_root: str | None, **fields) -> None:
    from railpm.feedback import Feedback, run_record_feedback

    path = run_record_feedback(settings_from(data_root), Feedback(**fields))
    console.print(f"recorded {fields['kind']} on {fields['vehicle_number']}/{fields['component']}: {path}")


@feedback_app.command("confirm")
@reports_errors
def feedback_confirm(
    vehicle: Vehicle, component: Component, scored_day: Day, user: User, model_version: ModelVersion = None,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why (optional, up to 500 characters).")] = None,
    data_root: DataRoot = None,
) -> None:
    """Confirm a prediction: the engineer agrees the component is at risk."""
    _record_feedback(data_root, kind="confirm", vehicle_number=vehicle, component=component, recorded_by=user,
                     scored_day=scored_day.date(), model_version=model_version, reason=reason)


@feedback_app.command("dismiss")
@reports_errors
def feedback_dismiss(
    vehicle: Vehicle, component: Component, scored_day: Day, user: User,
    reason: Annotated[str, typer.Option("--reason", help="Why the prediction is wrong (required, 5-500 characters).")],
    model_version: ModelVersion = None, data_root: DataRoot = None,
) -> None:
    """Dismiss a prediction as a false alarm, with the reason."""
    _record_feedback(data_root, kind="dismiss", vehicle_number=vehicle, component=component, recorded_by=user,
                     scored_day=scored_day.date(), model_version=model_version, reason=reason)


@feedback_app.command("finding")
@reports_errors
def feedback_finding(
    vehicle: Vehicle, component: Component, user: User,
    finding: Annotated[str, typer.Option("--finding", help="component_worn, no_fault_found, replaced or deferred.")],
    inspected_on: Annotated[datetime, typer.Option("--inspected-on", formats=["%Y-%m-%d"], help="Day of the inspection.")],
    scored_day: Annotated[
        Optional[datetime], typer.Option("--scored-day", formats=["%Y-%m-%d"], help="The prediction that led to it (optional).")
    ] = None,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Notes (optional, up to 500 characters).")] = None,
    data_root: DataRoot = None,
) -> None:
    """Record what an inspection found on a component."""
    _record_feedback(data_root, kind="finding", vehicle_number=vehicle, component=component, recorded_by=user,
                     finding=finding, inspected_on=inspected_on.date(), scored_day=scored_day.date() if scored_day else None,
                     reason=reason)


@feedback_app.command("trace")
@reports_errors
def feedback_trace(
    scored_day: Day,
    vehicle: Annotated[Optional[str], typer.Option("--vehicle", help="Only this vehicle.")] = None,
    component: Annotated[Optional[str], typer.Option("--component", help="Only this component.")] = None,
    data_root: DataRoot = None,
) -> None:
    """Show prediction -> planned inspection -> decision -> finding -> failure or not, for a day's predictions."""
    from rich.table import Table

    from railpm.feedback import run_trace

    trace = run_trace(settings_from(data_root), scored_day=scored_day.date(), vehicle_number=vehicle, component=component)
    shown = ["vehicle_number", "component", "failure_probability", "planned_day", "planned_kind", "decision", "decided_by",
             "finding", "inspected_on", "failed_at", "outcome"]
    table = Table(title=f"trace of the predictions of {scored_day.date()}")
    for column in shown:
        table.add_column(column)
    for row in trace[shown].itertuples(index=False):
        table.add_row(*("" if _is_blank(v) else f"{v:.3f}" if isinstance(v, float) else terminal(v) for v in row))
    console.print(table)


def _is_blank(value) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


# --------------------------------------------------------------------------------------------------
# Failure models: backtest, train (MLflow), score
# --------------------------------------------------------------------------------------------------

MaxIter = Annotated[Optional[int], typer.Option("--max-iter", min=10, help="Boosting iterations of the classifier (default: 120).")]


def _model_params(settings: Settings, max_iter: int | None, shuffle_labels: bool = False):
    from railpm.models.tasks import recipe

    return recipe(settings, max_iter=max_iter, shuffle_training_labels=shuffle_labels or None)


def _print_backtest(backtest, title: str) -> None:
    import math

    from rich.table import Table

    from railpm.models.backtest import METHODS, comparison_table

    shown = ("pr_auc", "precision_at_capacity", "recall_at_capacity", "expected_cost", "warned_7d",
             "false_alarms_per_1000_vehicle_days")
    wide = comparison_table(backtest, shown)
    table = Table(title=title)
    table.add_column("component")
    for metric in shown:
        table.add_column(f"{metric}\n" + " / ".join(METHODS), justify="right")
    for component, row in wide.iterrows():
        cells = []
        for metric in shown:
            values = [row[(metric, m)] for m in METHODS]
            fmt = "{:,.0f}" if metric == "expected_cost" else "{:.3f}"
            cells.append(" / ".join("-" if math.isnan(v) else fmt.format(v) for v in values))
        table.add_row(str(component), *cells)
    console.print(table)
    life = backtest.life
    console.print(f"remaining-life interval coverage (censoring-aware, per fold): "
                  f"{', '.join(f'{v:.2f}' for v in life['censored_aware'])}")


def _fold_progress(bar, task):
    def advance(fold) -> None:
        bar.update(task, advance=1, description=f"backtest fold {fold.number} (test {fold.test_start:%Y-%m-%d}..)")

    return advance


@app.command()
@reports_errors
def backtest(data_root: DataRoot = None, max_iter: MaxIter = None) -> None:
    """Backtest the failure model against the schedule and an age/usage model on rolling-origin folds (no MLflow)."""
    from rich.progress import Progress

    from railpm.models.tasks import backtest_fleet

    settings = settings_from(data_root)
    with Progress(console=console) as bar:
        task = bar.add_task("backtest", total=settings.model.backtest_folds)
        result = backtest_fleet(settings, _model_params(settings, max_iter), progress=_fold_progress(bar, task))
    _print_backtest(result, "backtest: mean over folds (model / age-usage / schedule)")


@app.command()
@reports_errors
def train(
    data_root: DataRoot = None,
    max_iter: MaxIter = None,
    shuffle_labels: Annotated[bool, typer.Option(
        "--shuffle-labels", help="Y-randomisation control: train on permuted labels (evaluation labels untouched);"
        " such a model must not pass the champion gate.")] = False,
) -> None:
    """Backtest, train and register the failure model in MLflow; alias champion only if it passes the gate."""
    from rich.progress import Progress

    from railpm.models.tasks import train_fleet

    settings = settings_from(data_root)
    with Progress(console=console) as bar:
        task = bar.add_task("backtest", total=settings.model.backtest_folds)
        result = train_fleet(settings, _model_params(settings, max_iter, shuffle_labels), progress=_fold_progress(bar, task))
    _print_backtest(result.backtest, "backtest: mean over folds (model / age-usage / schedule)")
    console.print(f"registered [bold]{settings.model.registered_model_name}[/] version {result.model_version} "
                  f"as [bold]{result.decision.alias}[/]: {result.decision.reason}")
    console.print(f"MLflow run {result.run_id} in {settings.tracking_uri} ({result.seconds:.0f} s, backtest "
                  f"{result.backtest_seconds:.0f} s); browse with: mlflow ui --backend-store-uri {settings.tracking_uri}")


@app.command()
@reports_errors
def score(
    day: Annotated[Optional[datetime], typer.Option("--day", formats=["%Y-%m-%d"], help="Day of records to score (default: the latest).")] = None,
    data_root: DataRoot = None,
) -> None:
    """Score one day's component records with the champion model; write predictions/predictions-<day>.parquet."""
    from railpm.layers import read_predictions
    from railpm.models.tasks import score_fleet

    settings = settings_from(data_root)
    with console.status("scoring with the champion"):
        result = score_fleet(settings, day)
    console.print(f"scored {result.rows} vehicle-components of {result.day:%Y-%m-%d} with version {result.model_version}"
                  f" in {result.seconds:.1f} s: {result.alerts} alerts -> {result.path}")
    console.print(risk_table(read_predictions(settings.predictions_dir, result.day.date()).nlargest(10, "failure_probability")))


def risk_table(top) -> "Table":
    """The highest risks with their reasons as whole sentences (folded, never cut), as ``railpm score`` prints them."""
    from rich.table import Table

    from railpm.models.explain import reasons_in_words

    table = Table(title="highest risks")
    for column in ("vehicle", "component", "probability", "risk", "alert", "remaining life (days)", "why"):
        table.add_column(column, overflow="fold")
    for row in top.itertuples(index=False):
        life = f"{row.remaining_life_days:.0f} ({row.remaining_life_low_days:.0f}-{row.remaining_life_high_days:.0f})"
        why = "; ".join(r["text"] for r in reasons_in_words(row.reasons, row.component)) or "none above the fleet's typical values"
        table.add_row(terminal(row.vehicle_number), row.component.replace("_", " "), f"{row.failure_probability:.3f}",
                      row.risk_band, "yes" if row.alert else "", life, terminal(why))
    return table


@app.command()
@reports_errors
def held(data_root: DataRoot = None) -> None:
    """List the records held for vehicles the registry does not know yet, per feed, vehicle and file."""
    from rich.table import Table

    from railpm.ingest.held import read_held

    frame = read_held(settings_from(data_root))
    table = Table(title=f"{len(frame):,} records held (rule vehicle_known): released once the registry knows the vehicle")
    for column in ("feed", "vehicle", "file", "records"):
        table.add_column(column, justify="right" if column == "records" else "left")
    counts = frame.groupby(["feed", "vehicle_number", "_source_file"]).size() if len(frame) else {}
    for (feed, vehicle, source), n in (counts.items() if len(frame) else []):
        table.add_row(feed, vehicle, source, f"{n:,}")
    console.print(table)


@app.command()
@reports_errors
def ingest(data_root: DataRoot = None) -> None:
    """Validate new landing files with Great Expectations and load them into the lake (what fleet_ingest does, without Airflow).

    Accepted records go to lake/, rejected ones to quarantine/ with the rules they broke, unreadable files to
    rejected_files/, one run record per file to runs/ and the validation report to data_docs/.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from railpm import contracts
    from railpm.ingest import build_data_docs, ingest_landing, new_landing_files, summarise
    from railpm.ingest.runs import read_ignored, read_run_records

    settings = settings_from(data_root)
    reference_time = datetime.now(timezone.utc)
    files = new_landing_files(settings)
    with Progress(
        TextColumn("[bold]ingesting"), BarColumn(), MofNCompleteColumn(), TextColumn("files {task.description}"),
        TimeElapsedColumn(), console=console,
    ) as bar:
        task = bar.add_task("", total=len(files))

        def on_file(landing, record) -> None:
            if record is None:
                bar.update(task, description=terminal(landing.shown))
            else:
                bar.advance(task)

        ran = ingest_landing(settings, reference_time, on_file=on_file)
    done = {(r["feed"], r["part"]) for r in ran}
    with console.status("building Data Docs"):
        docs = build_data_docs(settings) if done else None
    records = [r for r in read_run_records(settings.runs_dir) if (r["feed"], r["part"]) in done]  # as revised by later files
    summary = summarise(records)
    feeds = Table(title=f"ingested {sum(r.get('status') != 'released' for r in ran)} new landing files")
    for column in ("feed", "files", "rejected", "records in", "accepted", "quarantined", "duplicates"):
        feeds.add_column(column, justify="left" if column == "feed" else "right")
    for feed, t in sorted(summary["feeds"].items(), key=lambda item: list(contracts.FEEDS).index(item[0])):
        feeds.add_row(feed, *(f"{t[k]:,}" for k in ("files", "rejected_files", "rows_in", "accepted", "quarantined", "duplicates_removed")))
    console.print(feeds)
    if summary["rules"]:
        rules = Table(title="quarantined records per rule")
        rules.add_column("rule")
        rules.add_column("records", justify="right")
        for rule, count in summary["rules"].items():
            rules.add_row(rule, f"{count:,}")
        console.print(rules)
    for record in records:
        if record["status"] == "rejected":
            err_console.print(f"[bold yellow]rejected file:[/] {terminal(record['error'])} -> {terminal(record['moved_to'])}", soft_wrap=True)
        elif record["status"] == "waiting":
            err_console.print(f"[bold yellow]waiting:[/] {terminal(record['file'])}: {terminal(record['error'])}", soft_wrap=True)
        elif record.get("redelivery"):
            r = record["redelivery"]
            err_console.print(f"[bold yellow]re-delivered:[/] {terminal(record['file'])} replaces its earlier delivery: {r['dropped']} "
                              f"records dropped, {r['changed']} changed, kept in {terminal(r['kept_in'])}", soft_wrap=True)
        elif record["status"] == "ingested" and record["rows_in"] == 0:
            err_console.print(f"[bold yellow]no records:[/] {terminal(record['file'])} holds a header but no record", soft_wrap=True)
    for item in read_ignored(settings.runs_dir):
        err_console.print(f"[bold yellow]ignored:[/] {terminal(item['file'])}: {terminal(item['reason'])}", soft_wrap=True)
    held, released = (sum(t[k] for t in summary["feeds"].values()) for k in ("held", "released"))
    if held:
        console.print(f"held {held:,} records of vehicles not in the registry yet (vehicle_known): released once it knows them")
    if released:
        console.print(f"released {released:,} held records: the registry knows their vehicles now")
    console.print(
        f"lake: {settings.lake_dir}\nquarantine: {settings.quarantine_dir}\nheld: {settings.held_dir}\nrun records: {settings.runs_dir}",
        soft_wrap=True,
    )
    if docs:
        console.print(f"Data Docs: {docs}", soft_wrap=True)


# --------------------------------------------------------------------------------------------------
# The production topology on this machine
# --------------------------------------------------------------------------------------------------

@app.command()
@reports_errors
def up(data_root: DataRoot = None) -> None:
    """Start PostgreSQL, a Spark master and worker, an MLflow server and Airflow (API server, scheduler, DAG
    processor, triggerer; LocalExecutor) on 127.0.0.1, each by PID; `railpm down` stops them."""
    import time

    from rich.table import Table

    from railpm.deploy.topology import AIRFLOW_USER, Topology

    topology = Topology(settings_from(data_root))
    started = time.perf_counter()
    with console.status("starting") as status:
        timings = topology.up(on_step=lambda name: status.update(f"starting {name}"))
    table = Table(title=f"railpm topology up in {time.perf_counter() - started:.1f} s")
    for column in ("service", "pid", "seconds"):
        table.add_column(column)
    pids = topology.status()
    for step, seconds in timings.items():
        table.add_row(step, str(pids.get(step) or ""), f"{seconds:.1f}")
    console.print(table)
    console.print(f"Airflow: {topology.airflow_url} (user {AIRFLOW_USER}, password in {topology.state / 'secrets.json'})",
                  soft_wrap=True)
    console.print(f"MLflow: {topology.mlflow_url}   Spark master: {topology.spark_master_url}", soft_wrap=True)
    console.print(f"state, logs and PIDs: {topology.state}", soft_wrap=True)


@app.command()
@reports_errors
def down(data_root: DataRoot = None) -> None:
    """Stop the services `railpm up` started, by their recorded PIDs, last started first."""
    from railpm.deploy.topology import Topology

    stopped = Topology(settings_from(data_root)).down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


# --------------------------------------------------------------------------------------------------
# Public data sets as landing files
# --------------------------------------------------------------------------------------------------

import_app = typer.Typer(
    help="Write a public predictive-maintenance data set as landing files, with its catalogue and settings.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")
DataSetPath = Annotated[str, typer.Argument(help="Folder holding the data set's files.")]


def _landed(settings: Settings, landing, name: str) -> None:
    from railpm.adapters import write_landing

    written = write_landing(landing, settings, name)
    for what, path in written.items():
        console.print(f"{what}: {path}", soft_wrap=True)
    console.print(f"one record step = {landing.catalogue.record_step}; export these settings, then run "
                  "railpm ingest, railpm records, railpm train, railpm score:", soft_wrap=True)
    console.print(f"set -a; . {written['settings']}; set +a", soft_wrap=True)


@import_app.command("cmapss")
@reports_errors
def import_cmapss(
    path: DataSetPath,
    engines: Annotated[Optional[int], typer.Option("--engines", min=1, help="Only the first n engines of each file.")] = None,
    data_root: DataRoot = None,
) -> None:
    """NASA C-MAPSS FD001: engines as vehicles, one operating cycle per record step."""
    from railpm.adapters.cmapss import cmapss_landing

    _landed(settings_from(data_root), cmapss_landing(Path(path), engines), "cmapss-fd001")


@import_app.command("azure-pdm")
@reports_errors
def import_azure_pdm(
    path: DataSetPath,
    machines: Annotated[Optional[int], typer.Option("--machines", min=1, help="Only machines 1..n.")] = None,
    data_root: DataRoot = None,
) -> None:
    """Microsoft Azure PdM (errors, maintenance, failures, machines; telemetry if absent stays absent): 3 hours
    per record step."""
    from railpm.adapters.azure_pdm import azure_pdm_landing

    _landed(settings_from(data_root), azure_pdm_landing(Path(path), machines), "azure-pdm")


# --------------------------------------------------------------------------------------------------
# Your own fleet: exports + mapping files -> landing files
# --------------------------------------------------------------------------------------------------

@app.command()
@reports_errors
def onboard(
    path: Annotated[str, typer.Argument(help="Folder holding the exports (maintenance system, TCMS, register, ...).")],
    mapping: Annotated[Optional[list[str]], typer.Option(
        "--mapping", help="Mapping file (YAML) or a folder of them; repeat for one per export. With --init: where to write the draft.")] = None,
    init: Annotated[bool, typer.Option("--init", help="Draft a mapping from the files' headers and a sample of values.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what was found and what the gate will quarantine; write nothing.")] = False,
    data_root: DataRoot = None,
) -> None:
    """Turn a folder of an operator's exports into landing files and the fleet's catalogue, by mapping files;
    print what was found and what the gate will quarantine."""
    from railpm.onboard.report import print_onboarded, write_draft

    if init:
        write_draft(Path(path), Path(mapping[0]) if mapping else None, console)
        return
    if not mapping:
        raise RailpmError("name at least one --mapping file (draft one with: railpm onboard --init PATH --mapping FILE)")
    from railpm.onboard import onboard as run_onboard
    from railpm.onboard import write_onboarded
    from railpm.onboard.run import mapping_files

    from railpm import contracts
    from railpm.ingest.lake import read_lake_table

    settings = settings_from(data_root)
    registry = read_lake_table(settings.lake_dir, contracts.VEHICLES, ["vehicle_number", "vehicle_type", "home_depot", "commissioning_date"])
    result = run_onboard(Path(path), mapping_files([Path(m) for m in mapping]), registry)
    print_onboarded(result, {} if dry_run else write_onboarded(result, settings), console)


# --------------------------------------------------------------------------------------------------
# Vehicle records (Spark) and a vehicle's dossier
# --------------------------------------------------------------------------------------------------

@app.command()
@reports_errors
def records(
    data_root: DataRoot = None,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="Rebuild as known then: lake records ingested later are left out.")
    ] = None,
) -> None:
    """Build the vehicle records from the lake with Spark (what fleet_records does, in one local session).

    Writes records/vehicle_days, component_days, vehicle_dossier, fleet_rams and fault_summary; the master is
    $RAILPM_SPARK__MASTER (local[*] by default). With --as-of (UTC) they go to records_as_of/<time>/ instead.
    """
    import pyarrow.dataset as ds
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from railpm.jobs.records import RECORD_JOBS, build_records

    settings = settings_from(data_root, **({"as_of": as_of.replace(tzinfo=as_of.tzinfo or timezone.utc)} if as_of else {}))
    with Progress(TextColumn("[bold]building records[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("jobs"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"(Spark {settings.spark.master})", total=len(RECORD_JOBS))

        def on_job(job: str, timing=None) -> None:
            if timing is None:
                bar.update(task, description=job)
            else:
                bar.advance(task)
                console.print(f"{job}: {timing.seconds:.1f} s")

        timings = build_records(settings, on_job=on_job)
    table = Table(title=f"records in {settings.records_dir}")
    for column in ("job", "seconds", "table", "rows", "files"):
        table.add_column(column, justify="right" if column in ("seconds", "rows", "files") else "left")
    for timing in timings:
        for i, path in enumerate(timing.tables):
            dataset = ds.dataset(path, format="parquet", partitioning="hive")
            table.add_row(timing.job if i == 0 else "", f"{timing.seconds:.1f}" if i == 0 else "", path.name,
                          f"{dataset.count_rows():,}", f"{len(dataset.files):,}")
    table.add_row("[bold]total", f"[bold]{sum(t.seconds for t in timings):.1f}", "", "", "")
    console.print(table)


@app.command()
@reports_errors
def vehicle(
    number: Annotated[str, typer.Argument(help="Vehicle number, e.g. EMU-0001.")],
    data_root: DataRoot = None,
) -> None:
    """Print a vehicle's dossier: identity, open work orders, faults, recurring faults, failures and MTBF,
    next due inspections per level, condition signals."""
    from railpm.dossier import print_dossier, read_dossier

    print_dossier(read_dossier(settings_from(data_root), number), console)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
