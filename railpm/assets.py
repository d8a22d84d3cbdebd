"""Airflow Assets: the data layers one DAG publishes and the next DAG is scheduled on.

An Asset names a layer, not a path: the data root differs per deployment (``RAILPM_DATA_ROOT``), while a
DAG's schedule must be fixed when the DAG file is parsed. A producer's task lists the asset in its
``outlets``; a consumer's ``schedule=[asset]`` starts it when that task succeeds.
"""

from __future__ import annotations

from airflow.sdk import Asset

PREDICTIONS = Asset(name="railpm.predictions", uri="railpm://predictions", group="railpm")
"""Written by ``fleet_score``: one scored day of failure risk per vehicle and component."""
PLANS = Asset(name="railpm.plans", uri="railpm://plans", group="railpm")
"""Written by ``fleet_plan``: the inspection plan and the spares plan of the latest scored day."""
REPORT = Asset(name="railpm.report", uri="railpm://reports", group="railpm")
"""Written by ``fleet_plan``: the static HTML report (the review app's pages without forms)."""
