"""Work the service rules create (``railpm.rules``), as it stands on a plan's day.

A recurring fault raises one request to replace its component per vehicle and window, a vehicle with 4+ A/B
faults in a year one overhaul review. On the plan's day a request is *open* while its window lasts and no work
order has answered it since it was raised: a replacement of that component (preventive or corrective) for a
recurring fault, a level 4 or 5 visit for an escalation. Each open request carries what acting on it costs
(``railpm.costs``): a preventive replacement, or a level-4 visit.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from railpm import rules
from railpm.costs import CostModel

OPEN_WORK_COLUMNS = [
    "plan_day", "kind", "vehicle_number", "home_depot", "component", "fault_code", "raised_day", "window_end",
    "faults", "rule", "estimated_cost_eur",
]
ESCALATION_LEVELS = (4, 5)
"""A visit of these maintenance levels is an overhaul review."""


def open_work_requests(faults: pd.DataFrame, work_orders: pd.DataFrame, vehicles: pd.DataFrame, day: date,
                       costs: CostModel) -> pd.DataFrame:
    """The rules' requests whose window includes ``day`` and that no work order since has answered."""
    day = pd.Timestamp(day).date()
    known = faults.loc[pd.to_datetime(faults["ts"], utc=True).dt.date <= day]
    requests = rules.work_requests(known)
    requests = requests.loc[(requests["raised_day"] <= day) & (requests["window_end"] >= day)]
    orders = work_orders.assign(day=pd.to_datetime(work_orders["opened_at"], utc=True).dt.date)
    orders = orders.loc[orders["day"] <= day]

    def answered(request) -> bool:
        mine = orders.loc[(orders["vehicle_number"] == request.vehicle_number) & (orders["day"] >= request.raised_day)]
        if request.kind == "replace_component":
            return bool(((mine["component"] == request.component) & mine["action"].str.endswith("_replacement")).any())
        return bool(((mine["action"] == "inspection") & mine["maintenance_level"].isin(ESCALATION_LEVELS)).any())

    keep = [not answered(r) for r in requests.itertuples(index=False)]
    out = requests.loc[keep].copy() if len(requests) else requests.copy()
    out["plan_day"] = day
    out["home_depot"] = out["vehicle_number"].map(vehicles.drop_duplicates("vehicle_number").set_index("vehicle_number")["home_depot"])
    out["estimated_cost_eur"] = [
        costs.preventive(r.component) if r.kind == "replace_component" else float(costs.settings.visit_eur_by_level[4])
        for r in out.itertuples(index=False)
    ]
    return out[OPEN_WORK_COLUMNS].reset_index(drop=True)
