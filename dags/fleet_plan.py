"""fleet_plan: the inspection plan and the spares plan for the latest predictions, then the static report.

Runs after ``fleet_score`` (scheduled on the predictions Asset it publishes). Each task is one call into
railpm: ``railpm.planning.run.run_plan`` writes both plans for the latest scored day under
``plans/<scored_day>/`` (overwriting that day's plans on a rerun), and ``railpm.review.report.build_report``
rewrites ``reports/`` (``index.html`` plus a page per vehicle) from the layers as they now are.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from railpm.deploy.assets import PLANS, PREDICTIONS, REPORT
from railpm.deploy.dag_defaults import dag_defaults


@dag(schedule=[PREDICTIONS], doc_md=__doc__, **dag_defaults("planning", "review"))
def fleet_plan():
    @task(outlets=[PLANS])
    def plan_inspections_and_spares() -> dict:
        from railpm.config import get_settings
        from railpm.planning.run import run_plan

        run = run_plan(get_settings())
        inspections, spares = run.summary["inspections"], run.summary["spares"]
        return {
            "scored_day": run.summary["scored_day"],
            "folder": str(run.folder),
            "inspections": inspections.get("inspections"),
            "solver_status": inspections.get("solver_status"),
            "gain_over_greedy_eur": inspections.get("gain_over_greedy_eur"),
            "reorder_lines": spares.get("reorder_lines"),
        }

    @task(outlets=[REPORT])
    def build_static_report(plans: dict) -> dict:
        from railpm.config import get_settings
        from railpm.review.report import build_report

        # One process: under the LocalExecutor this task is itself a forked child talking to its supervisor,
        # and a fork pool beneath it deadlocked (a pool worker died holding the queue's lock).
        result = build_report(get_settings(), workers=1)
        return {"index": str(result.index), "pages": result.pages, "scored_day": plans["scored_day"]}

    build_static_report(plan_inspections_and_spares())


fleet_plan()
