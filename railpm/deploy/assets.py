"""Airflow Assets: the data layers one DAG publishes and the next DAG is scheduled on.

An Asset names a layer, not a path: the data root differs per deployment (``RAILPM_DATA_ROOT``), while a
DAG's schedule must be fixed when the DAG file is parsed. A producer's task lists the asset in its
``outlets``; a consumer's ``schedule=[asset]`` starts it when that task succeeds.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

from railpm.contracts import FEEDS

LAKE: dict[str, Asset] = {feed: Asset(name=f"railpm.lake.{feed}", uri=f"railpm://lake/{feed}", group="railpm") for feed in FEEDS}
"""Written by ``fleet_ingest``: one Asset per lake table (``lake/<feed>/``), updated when new records of that
feed passed the GX gate; ``fleet_records`` runs on them."""
LAKE_UPDATES = AssetAlias(name="railpm.lake.updates", group="railpm")
"""How ``fleet_ingest`` publishes the lake Assets: one task adds an event for each table with new files, all at
once, so that one ingest run starts one ``fleet_records`` run (a task per table would start one per table that
finished in a different scheduler loop)."""

VEHICLE_DAYS = Asset(name="railpm.records.vehicle_days", uri="railpm://records/vehicle_days", group="railpm")
"""Written by ``fleet_records``: one record per vehicle and day, every feature as known that day."""
COMPONENT_DAYS = Asset(name="railpm.records.component_days", uri="railpm://records/component_days", group="railpm")
"""Written by ``fleet_records``: one record per vehicle, day and component with its labels; ``fleet_score`` runs on it."""
VEHICLE_DOSSIER = Asset(name="railpm.records.vehicle_dossier", uri="railpm://records/vehicle_dossier", group="railpm")
"""Written by ``fleet_records``: one row per vehicle, its technical file (``railpm vehicle``, the review app)."""
FLEET_RAMS = Asset(name="railpm.records.fleet_rams", uri="railpm://records/fleet_rams", group="railpm")
"""Written by ``fleet_records``: MTBF, MTTR and availability per period, vehicle type and component, and the fault
summary (``records/fleet_rams``, ``records/fault_summary``)."""
MODEL = Asset(name="railpm.model", uri="railpm://models/failure", group="railpm")
"""Written by ``fleet_train``: a new registered version of the failure model (champion only if it passed the gate)."""
PREDICTIONS = Asset(name="railpm.predictions", uri="railpm://predictions", group="railpm")
"""Written by ``fleet_score``: one scored day of failure risk per vehicle and component."""
PLANS = Asset(name="railpm.plans", uri="railpm://plans", group="railpm")
"""Written by ``fleet_plan``: the inspection plan and the spares plan of the latest scored day."""
REPORT = Asset(name="railpm.report", uri="railpm://reports", group="railpm")
"""Written by ``fleet_plan``: the static HTML report (the review app's pages without forms)."""
