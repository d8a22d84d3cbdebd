"""fleet_train: backtest, train and register the failure model in MLflow, weekly and on demand.

One task, one call into railpm: ``railpm.models.tasks.train_fleet`` reads ``records/component_days`` (with the
engineers' feedback applied), backtests the recipe on rolling-origin folds against the fixed schedule and an
age/usage model, fits it on all records, logs the run to the MLflow store of ``Settings.tracking_uri`` and
registers a new version of ``Settings.model.registered_model_name``. The alias ``champion`` moves to it only if
it passes the gate (see ``railpm.models.tracking``); otherwise it becomes ``challenger``. Trigger it by hand
after changing the recipe or the records (``airflow dags trigger fleet_train``). Until ``fleet_records`` has
written records the task is skipped: a new deployment's first weekly run comes before its first records.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from railpm.deploy.assets import MODEL
from railpm.deploy.dag_defaults import dag_defaults


@dag(schedule="@weekly", doc_md=__doc__, **dag_defaults("models", "mlflow", retries=1, retry_delay=timedelta(minutes=5)))
def fleet_train():
    @task(outlets=[MODEL])
    def train_and_register() -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from railpm.config import get_settings
        from railpm.layers import COMPONENT_DAYS, record_dir
        from railpm.models.tasks import train_fleet
        from railpm.deploy.orchestration import PROGRESS_MARKER

        settings = get_settings()
        if not any(record_dir(settings, COMPONENT_DAYS).rglob("*.parquet")):
            raise AirflowSkipException("no component-day records yet (fleet_records has not run): nothing to train on")
        folds = settings.model.backtest_folds
        result = train_fleet(settings, progress=lambda fold: print(
            f"{PROGRESS_MARKER}backtest fold {fold.number} of {folds} done", flush=True))
        return {
            "run_id": result.run_id,
            "model_version": result.model_version,
            "alias": result.decision.alias,
            "gate": result.decision.reason,
            "primary_pr_auc": result.decision.candidate,
            "seconds": round(result.seconds, 1),
        }

    train_and_register()


fleet_train()
