"""A fleet's life day after day through the real DAGs: deliver a day's drop, then run that day's DAGs.

For each day D, ``replay_days`` copies ``deliveries/D/`` into ``landing/`` and runs, through the demo's
orchestration (``airflow dags test`` with a logical date), ``fleet_ingest``, ``fleet_records``, ``fleet_train``
when its weekly schedule falls on the night after D (Saturday's drop: the run of Sunday 00:00, as ``@weekly``
does; and on the first day while no champion exists), ``fleet_score`` (its latest day of records: D, or the
latest that came when D's drop did not) and ``fleet_plan``. The logical
date is the end of D (D+1 00:00 UTC): everything measured on D is in the past, nothing later.

The state file (``replay/state.json``) lists the files delivered and the days done, written after each step, so
a stopped replay resumes where it stopped; a done day is skipped unless rerun, and a rerun delivers nothing
again (a delivery happens once) and reruns DAGs that change nothing: ingest recognises ingested files by their
content, the records, predictions and plans are overwritten with the same values.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time as clock, timedelta, timezone

from railpm.config import Settings
from railpm.errors import RailpmError
from railpm.expectations.suites import VEHICLE_KNOWN
from railpm.ingest import runs
from railpm.ingest.landing import shown_name
from railpm.ingest.step import SUPERSEDED

INGEST, RECORDS, TRAIN, SCORE, PLAN = "fleet_ingest", "fleet_records", "fleet_train", "fleet_score", "fleet_plan"
DAILY_DAGS = (INGEST, RECORDS, TRAIN, SCORE, PLAN)
TRAIN_WEEKDAY = 6
"""``@weekly`` runs at Sunday 00:00: the night after Saturday's drop."""
COUNTS = ("in", "accepted", "quarantined", "duplicates", "held", "released", "rejected_files")


@dataclass
class StepResult:
    step: str
    status: str
    """``ok``, ``failed`` or ``skipped`` (not due today)."""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    """CPU seconds of the step's processes (Airflow, its tasks, Spark's JVM), user + system."""


@dataclass
class DayResult:
    day: str
    logical_date: str
    steps: list[StepResult] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the delivery itself brought (no drop, a file again, a changed file), said once, when delivered."""
    messages: list[str] = field(default_factory=list)
    """What the DAGs made of it: files that lost records or were set aside (file, rows, rules), releases, failures."""
    counts: dict[str, int] = field(default_factory=dict)
    champion: str | None = None
    done: bool = False


def logical_date(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), clock(0), tzinfo=timezone.utc)


def read_state(settings: Settings) -> dict:
    path = settings.replay_dir / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"delivered": {}, "days": {}}


def _write_state(settings: Settings, state: dict) -> None:
    path = settings.replay_dir / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def drop_days(settings: Settings) -> list[date]:
    """The days that have a drop in ``deliveries/``."""
    folder = settings.deliveries_dir
    if not folder.is_dir():
        return []
    days = []
    for entry in folder.iterdir():
        try:
            days.append(date.fromisoformat(entry.name))
        except ValueError:
            continue
    return sorted(days)


def deliver(settings: Settings, day: date, state: dict) -> tuple[list[str], list[str]]:
    """Copy the day's drop into ``landing/`` (each file written under a hidden name, then renamed, so ingest
    never reads half a file); returns the files delivered and what an operator should know about them."""
    folder = settings.deliveries_dir / day.isoformat()
    if not folder.is_dir():
        return [], ["no drop delivered for this day; its records may come in a later drop"]
    delivered, messages = [], []
    for source in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = source.relative_to(folder).as_posix()
        sha = runs.file_sha256(source)
        key = f"{day}/{relative}"
        if key in state["delivered"]:
            continue  # a rerun of the day: this delivery happened already
        earlier = [d for d, s in state["delivered"].items() if d.split("/", 1)[1] == relative]
        if any(state["delivered"][d] == sha for d in earlier):
            messages.append(f"{shown_name(relative)}: delivered again byte for byte (first on {earlier[0].split('/')[0]}); "
                            "ingest recognises the content and adds nothing")
        elif earlier:
            messages.append(f"{shown_name(relative)}: re-delivered with changes (first on {earlier[0].split('/')[0]}); "
                            "ingest keeps the earlier delivery under revisions/ and applies the changes")
        target = settings.landing_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.delivering")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
        state["delivered"][key] = sha
        delivered.append(relative)
    return delivered, messages


def ingest_outcome(settings: Settings, at: datetime) -> tuple[dict[str, int], list[str]]:
    """The counts of the ingest run of logical date ``at`` from its run records (each delivery's as first
    written), and a message per file that lost records or was set aside, naming the file, rows and rules."""
    counts = dict.fromkeys(COUNTS, 0)
    messages = []
    folder = settings.runs_dir / "deliveries"
    records = [json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))] if folder.is_dir() else []
    for record in records:
        if datetime.fromisoformat(record["reference_time"]) != at:
            continue
        status, name = record["status"], shown_name(record["file"])
        if status == "released":
            counts["released"] += record["accepted"]
            messages.append(f"{name}: {record['accepted']} held records released (registry knows their vehicle now)")
        elif status == "rejected":
            counts["rejected_files"] += 1
            messages.append(f"{name}: set aside whole in {record['moved_to']}: {record['error']}")
        elif status == "waiting":
            messages.append(f"{name}: waiting: {record['error']}")
        elif status == "ingested":
            counts["in"] += record["rows_in"]
            counts["accepted"] += record["accepted"]
            counts["quarantined"] += record["quarantined"]
            counts["duplicates"] += record["duplicates_removed"]
            counts["held"] += record.get("held", 0)
            if set(record["rules"]) == {SUPERSEDED}:
                messages.append(f"{name}: {record['quarantined']} earlier versions replaced by a later file's (rule "
                                f"{SUPERSEDED}; kept in {record['quarantine_file']})")
            elif record["quarantined"]:
                rules = ", ".join(f"{rule} {n}" for rule, n in record["rules"].items())
                messages.append(f"{name}: {record['quarantined']} records quarantined (rules: {rules}; each row with its "
                                f"source row and rules in {record['quarantine_file']})")
            if record.get("held"):
                messages.append(f"{name}: {record['held']} records held: their vehicle is not in the registry yet (rule "
                                f"{VEHICLE_KNOWN}; rows in {record['held_file']}, released when the registry knows it)")
            if record.get("redelivery"):
                messages.append(f"{name}: a changed re-delivery: {_redelivery_text(record['redelivery'])}")
    return counts, messages


def _redelivery_text(redelivery: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in redelivery.items() if not isinstance(v, (dict, list)))


def champion_version(settings: Settings) -> str | None:
    from mlflow import MlflowClient

    from railpm.models.tracking import CHAMPION, version_by_alias

    version = version_by_alias(MlflowClient(settings.tracking_uri), settings.model.registered_model_name, CHAMPION)
    return None if version is None else str(version.version)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def replay_days(
    settings: Settings,
    first: date,
    last: date,
    rerun: bool = False,
    on_day: Callable[[DayResult], None] | None = None,
    on_step: Callable[[str, StepResult], None] | None = None,
    until: str = PLAN,
) -> list[DayResult]:
    """Replay the days ``first``..``last`` in order (see the module docstring); returns each day's result.

    ``until`` is the last DAG of each day (``fleet_ingest``: a catch-up of the gate alone); the later ones are skipped.

    A DAG that fails is reported in the day's messages with the end of Airflow's output, and the day's later
    steps still run where they can; a day with a failed step is not marked done, so the next replay runs it again.
    """
    from railpm.deploy.demo import run_pipeline_dags

    if last < first:
        raise RailpmError(f"--to {last} is before --from {first}")
    if until not in DAILY_DAGS:
        raise RailpmError(f"--until must name one of the daily DAGs: {', '.join(DAILY_DAGS)}")
    wanted = DAILY_DAGS[: DAILY_DAGS.index(until) + 1]
    state = read_state(settings)
    results = []
    day = first
    while day <= last:
        at = logical_date(day)
        done = state["days"].get(day.isoformat(), {}).get("done")
        if done and not rerun:
            results.append(DayResult(**{**state["days"][day.isoformat()], "steps": [
                StepResult(**s) for s in state["days"][day.isoformat()]["steps"]]}))
            day += timedelta(days=1)
            continue
        result = DayResult(day.isoformat(), at.isoformat())
        result.delivered, result.notes = deliver(settings, day, state)
        if day.isoformat() in state["days"]:  # a rerun: the day's delivery happened the first time
            earlier = state["days"][day.isoformat()]
            result.delivered, result.notes = earlier["delivered"] + result.delivered, earlier["notes"] + result.notes
        _write_state(settings, state)

        def step(dag_id: str) -> None:
            if dag_id not in wanted:
                result.steps.append(StepResult(dag_id, "skipped"))
                return
            started, cpu = time.perf_counter(), _children_cpu()
            try:
                run_pipeline_dags(settings, (dag_id,), logical_date=at.isoformat())
                status = "ok"
            except RailpmError as exc:
                status = "failed"
                result.messages.append(f"{dag_id} failed: {exc}")
            outcome = StepResult(dag_id, status, round(time.perf_counter() - started, 1), round(_children_cpu() - cpu, 1))
            result.steps.append(outcome)
            if on_step:
                on_step(day.isoformat(), outcome)

        step(INGEST)
        result.counts, ingest_messages = ingest_outcome(settings, at)
        result.messages += ingest_messages
        step(RECORDS)
        champion = champion_version(settings) if TRAIN in wanted else None
        if TRAIN in wanted and (at.weekday() == TRAIN_WEEKDAY or champion is None):
            step(TRAIN)
            champion = champion_version(settings)
        else:
            result.steps.append(StepResult(TRAIN, "skipped"))
        if champion is None:
            if TRAIN in wanted:
                result.messages.append("no champion model yet: nothing scored, nothing planned")
            result.steps += [StepResult(SCORE, "skipped"), StepResult(PLAN, "skipped")]
        else:
            step(SCORE)
            step(PLAN)
            if PLAN in wanted and not (settings.predictions_dir / f"predictions-{day.isoformat()}.parquet").exists():
                scored = sorted(settings.predictions_dir.glob("predictions-*.parquet"))
                result.messages.append(f"no records of {day} yet (nothing measured that day has arrived): the latest day "
                                       f"with records was scored and planned ({scored[-1].stem.removeprefix('predictions-') if scored else '-'})")
        result.champion = champion
        result.done = all(s.status != "failed" for s in result.steps)
        state["days"][day.isoformat()] = asdict(result)
        _write_state(settings, state)
        results.append(result)
        if on_day:
            on_day(result)
        day += timedelta(days=1)
    return results
