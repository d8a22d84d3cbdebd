"""fleet_records: the vehicle records, rebuilt by Spark whenever the lake gets new telemetry, faults, work
orders or vehicles.

Scheduled on the lake Assets ``fleet_ingest`` publishes (any of the four). Its one task is one ``spark-submit``
of ``railpm.jobs.records`` through the Spark provider's ``SparkSubmitOperator`` (``railpm.jobs.spark_submit``):
one Spark application runs the four jobs in turn (a JVM and a driver start once, not four times), and the same
file runs on ``local[*]`` or a cluster: the master is the Airflow connection ``railpm_spark`` if the
deployment defines one, else ``RAILPM_SPARK__MASTER`` (``local[*]`` by default). The jobs, in order, each
reported as a progress line as it starts and ends:

1. ``vehicle_days``: one record per vehicle and day (``records/vehicle_days``);
2. ``component_days``: one per vehicle, day and component with its labels (``records/component_days``),
   which starts ``fleet_score``;
3. ``vehicle_dossier`` and ``fleet_rams``: one dossier row per vehicle, and the fleet's MTBF, MTTR and
   availability with the fault summary (``records/vehicle_dossier``, ``records/fleet_rams``,
   ``records/fault_summary``).

Every job overwrites what it recomputes, so a rerun or a retry leaves the same records; a retry reruns all four. The data root comes
from ``RAILPM_DATA_ROOT`` on the worker.
"""

from __future__ import annotations

from airflow.sdk import dag

from railpm.deploy.assets import COMPONENT_DAYS, FLEET_RAMS, LAKE, VEHICLE_DAYS, VEHICLE_DOSSIER
from railpm.deploy.dag_defaults import dag_defaults
from railpm.jobs.spark_submit import RecordsJobOperator


@dag(
    schedule=LAKE["telemetry"] | LAKE["faults"] | LAKE["work_orders"] | LAKE["vehicles"],
    doc_md=__doc__,
    **dag_defaults("records", "spark"),
)
def fleet_records():
    RecordsJobOperator(task_id="build_records", outlets=[VEHICLE_DAYS, COMPONENT_DAYS, VEHICLE_DOSSIER, FLEET_RAMS])


fleet_records()
