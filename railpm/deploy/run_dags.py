"""``python -m railpm.deploy.run_dags [--logical-date D] DAG [DAG ...]``: ``airflow dags test`` for each DAG in
turn, in one process (:func:`railpm.deploy.orchestration.run_dags`); what ``railpm demo`` and ``railpm replay`` start."""

from __future__ import annotations

import argparse
import sys

from railpm.deploy.orchestration import run_dags


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli.add_argument("--logical-date", help="the runs' logical date (ISO), else now")
    cli.add_argument("dag_ids", nargs="+", metavar="DAG")
    options = cli.parse_args()
    return run_dags(options.dag_ids, options.logical_date)


if __name__ == "__main__":
    sys.exit(main())
