"""fleet_score: score the latest component-day records with the champion model, daily after fleet_records.

Scheduled on the component-day records Asset that ``fleet_records`` publishes, and on the model Asset
``fleet_train`` publishes (a new champion rescores the latest day at once). Until a first version is champion
the task is skipped, not failed: a new deployment's first records arrive before its first model. One task,
one call into railpm:
``railpm.models.tasks.score_fleet`` loads ``models:/<registered model>@champion`` from MLflow, scores the
latest day in ``records/component_days`` (or the day given as the run's ``day`` param, for a backfill) and
writes ``predictions/predictions-<day>.parquet`` (overwriting that day on a rerun), which starts ``fleet_plan``.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from railpm.deploy.assets import COMPONENT_DAYS, MODEL, PREDICTIONS
from railpm.deploy.dag_defaults import dag_defaults


@dag(
    schedule=COMPONENT_DAYS | MODEL,
    params={"day": Param(None, type=["null", "string"], format="date",
                         description="Day of records to score (YYYY-MM-DD); empty for the latest")},
    doc_md=__doc__,
    **dag_defaults("models", "scoring"),
)
def fleet_score():
    @task(outlets=[PREDICTIONS])
    def score_latest_records(params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from railpm.config import get_settings
        from railpm.models.score import NoChampionError
        from railpm.models.tasks import score_fleet

        try:
            result = score_fleet(get_settings(), (params or {}).get("day"))
        except NoChampionError as exc:
            raise AirflowSkipException(str(exc)) from exc
        return {
            "scored_day": f"{result.day:%Y-%m-%d}",
            "path": str(result.path),
            "rows": result.rows,
            "alerts": result.alerts,
            "model_version": result.model_version,
        }

    score_latest_records()


fleet_score()
