"""Run railpm's Airflow DAGs for real on one machine, without a scheduler: ``airflow dags test``.

The demo and the test suite share this so that what the README shows is what the tests prove. Airflow 3
runs every task of a ``dags test`` in-process against its metadata DB, so a private AIRFLOW_HOME with a
migrated SQLite DB is all it needs; the production topology (scheduler, API server) is configured elsewhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from railpm.errors import RailpmError

REPO_DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")


def airflow_environment(home: Path, dags_folder: Path = REPO_DAGS_FOLDER, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Airflow subprocesses: a private AIRFLOW_HOME and SQLite DB, railpm's dags/ folder."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **(os.environ if base is None else base),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Two shared cores: parsing a DAG folder can be slow, do not let the 30 s default kill it.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable),
    }
    return env


def migrate_metadata_db(env: dict[str, str]) -> None:
    done = subprocess.run([str(AIRFLOW_BIN), "db", "migrate"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RailpmError(f"airflow db migrate failed:\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}")


@dataclass
class DagRunResult:
    dag_id: str
    succeeded: bool
    exit_code: int
    output: str

    @property
    def stdout(self) -> str:
        """Airflow's combined output (the name subprocess results use, for callers that read it)."""
        return self.output

    def tail(self, lines: int = 200) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


TASK_STARTED = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
TASK_ENDED = re.compile(r"\[DAG TEST\] end task task_id=(\S+) map_index=(-?\d+)")


@dataclass(frozen=True)
class TaskEvent:
    """A task of a ``dags test`` run starting or ending, read from Airflow's output as it is written."""

    task_id: str
    map_index: int
    ended: bool

    @property
    def name(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


PROGRESS_MARKER = "railpm progress: "
"""A task prints this before a line of its own progress (a backtest fold done), for whoever runs the DAG to see."""


def task_event(line: str) -> TaskEvent | None:
    for pattern, ended in ((TASK_STARTED, False), (TASK_ENDED, True)):
        if match := pattern.search(line):
            return TaskEvent(match.group(1), int(match.group(2)), ended)
    return None


LOGGER_SUFFIX = re.compile(r"\s+\[[\w.]+\](\s+\w+=\S+)*\s*$")
"""What Airflow's log appends to a line a hook relays (``[airflow.task.hooks...SparkSubmitHook] loc=...``)."""


def task_progress(line: str) -> str | None:
    """The message of a task's progress line (see ``PROGRESS_MARKER``), None for any other line."""
    _, marker, message = line.partition(PROGRESS_MARKER)
    return LOGGER_SUFFIX.sub("", message).strip() or None if marker else None


DAG_MARKER = "railpm dag: "
"""``run_dags`` prints this before ``started <dag_id>`` and ``finished <dag_id> <state>``, each on a line of its own."""


def dags_test_argv(dag_id: str, logical_date: str | None, dags_folder: Path) -> list[str]:
    """``airflow dags test``'s arguments for one railpm DAG (each DAG file is named after its DAG: parse that file only)."""
    argv = ["dags", "test", dag_id, *([logical_date] if logical_date else [])]
    dag_file = dags_folder / f"{dag_id}.py"
    return argv + (["--dagfile-path", str(dag_file)] if dag_file.is_file() else [])


def run_dags(dag_ids: list[str], logical_date: str | None = None) -> int:
    """``airflow dags test`` for each DAG in turn, in this one process (Airflow's own CLI command, parsed by its
    own parser), stopping at the first that fails; returns the exit code.

    Why one process: each ``airflow dags test`` paid Airflow's start (import, CLI, providers) and its tasks paid
    the imports of railpm's stages (Great Expectations, scikit-learn, MLflow) once more per DAG.
    """
    from airflow import configuration  # first, as airflow's own __main__ does (its import order avoids cycles)
    from airflow.cli.cli_parser import get_parser

    configuration.write_default_airflow_configuration_if_needed()
    parser = get_parser()
    folder = Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", REPO_DAGS_FOLDER))
    for dag_id in dag_ids:
        print(f"{DAG_MARKER}started {dag_id}", flush=True)
        args = parser.parse_args(dags_test_argv(dag_id, logical_date, folder))
        try:
            args.func(args)
            state = "success"
        except SystemExit as exc:  # dags test says "DagRun failed" this way
            state = f"failed ({exc.code})"
        print(f"{DAG_MARKER}finished {dag_id} {state}", flush=True)
        if state != "success":
            return 1
    return 0


def dag_marker(line: str) -> tuple[str, str, str] | None:
    """(``started``|``finished``, dag_id, state) of a ``run_dags`` marker line, None for any other line."""
    _, marker, message = line.partition(DAG_MARKER)
    if not marker:
        return None
    event, _, rest = message.strip().partition(" ")
    dag_id, _, state = rest.partition(" ")
    return event, dag_id, state


def run_dags_process(env: dict[str, str], dag_ids: list[str], logical_date: str | None = None,
                     on_line: Callable[[str], None] | None = None) -> DagRunResult:
    """``run_dags`` in a child process with ``env`` (Airflow's home and settings); success: every DAG succeeded."""
    cmd = [sys.executable, "-m", "railpm.deploy.run_dags", *(["--logical-date", logical_date] if logical_date else []), *dag_ids]
    return _stream(cmd, env, None, on_line, ",".join(dag_ids), lambda code, _output: code == 0)


def run_dag(
    env: dict[str, str],
    dag_id: str,
    logical_date: str | None = None,
    cwd: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> DagRunResult:
    """Run ``airflow dags test <dag_id> [logical_date]``; success means Airflow reports the run finished in success.

    ``on_line`` sees each line of Airflow's output (stdout and stderr) as it is written, for live progress.
    """
    cmd = [str(AIRFLOW_BIN), *dags_test_argv(dag_id, logical_date, Path(env.get("AIRFLOW__CORE__DAGS_FOLDER", REPO_DAGS_FOLDER)))]

    def finished_in_success(code: int, output: str) -> bool:
        finished = [line for line in output.splitlines() if "DagRun Finished" in line]
        return code == 0 and bool(finished) and "state=success" in finished[-1]

    return _stream(cmd, env, cwd, on_line, dag_id, finished_in_success)


def _stream(cmd: list[str], env: dict[str, str], cwd: Path | None, on_line: Callable[[str], None] | None,
            name: str, succeeded: Callable[[int, str], bool]) -> DagRunResult:
    lines = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=str(cwd) if cwd else None) as process:
        for line in process.stdout:
            lines.append(line)
            if on_line:
                on_line(line.rstrip("\n"))
    output = "".join(lines)
    return DagRunResult(name, succeeded(process.returncode, output), process.returncode, output)
