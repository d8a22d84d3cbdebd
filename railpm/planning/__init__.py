"""Planning: from one day's predictions to decisions a depot can act on.

- ``inspections``: the inspection plan within depot capacity, merged with the scheduled maintenance due
  (``maintenance``), solved by OR-Tools CP-SAT and compared with a greedy rule.
- ``spares``: stock level per depot and part number for a fill-rate service level, its split into planned,
  fault-driven and emergency stock, reorder quantities, and what pooling the depots would save.
- ``risk``: when a predicted failure happens, which is what makes a late slot worth less.
- ``run``: the step's I/O (``railpm plan``); every other module works on small pandas DataFrames.
"""

from railpm.planning.inspections import INSPECTION_PLAN_COLUMNS, InspectionPlan, InspectionRules, plan_inspections
from railpm.planning.maintenance import DepotCapacity, maintenance_due
from railpm.planning.spares import SparesPlan, SparesRules, plan_spares, stock_for_fill_rate

__all__ = [
    "INSPECTION_PLAN_COLUMNS", "DepotCapacity", "InspectionPlan", "InspectionRules", "SparesPlan", "SparesRules",
    "maintenance_due", "plan_inspections", "plan_spares", "stock_for_fill_rate",
]
