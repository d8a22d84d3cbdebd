"""The ``@dag`` arguments every railpm DAG shares: one place to change start date, catch-up, concurrency
and retries for all of them.

Each DAG file keeps only what is its own (schedule, tags, params, a different retry policy)::

    @dag(schedule=[PREDICTIONS], doc_md=__doc__, **dag_defaults("planning", "review"))

Cheap to import (the DAG processor parses every DAG file often).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")
"""Fixed and in UTC: with ``catchup=False`` it only bounds the first run's data interval."""


def dag_defaults(*tags: str, retries: int = 2, retry_delay: timedelta | None = None, **own: Any) -> dict[str, Any]:
    """The shared ``@dag`` keyword arguments, tagged ``railpm`` plus ``tags``; ``own`` adds or overrides.

    Without ``retry_delay`` a task waits Airflow's ``[core] default_task_retry_delay`` before its next try: the
    deployment's to set (``railpm up`` sets it from ``RAILPM_TOPOLOGY__TASK_RETRY_DELAY_S``, 2 minutes).
    """
    default_args: dict[str, Any] = {"retries": retries}
    if retry_delay is not None:
        default_args["retry_delay"] = retry_delay
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["railpm", *tags],
        "default_args": default_args,
        **own,
    }
