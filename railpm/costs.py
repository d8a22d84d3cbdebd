"""The one cost model: what an inspection, a replacement and an in-service failure cost, per component and level.

Every place that prices an action reads it: the alert threshold (``models.policy``), the backtest
(``models.metrics``), the policy simulation (``models.simulation``), the inspection planner
(``planning.inspections``) and the review app. The amounts live in ``Settings.costs`` (``RAILPM_COSTS__...``).

- inspection of one component at maintenance level ``l``: ``inspection_eur_by_level[l]``;
- preventive replacement: part + preventive labour hours x labour rate;
- corrective replacement: part + collateral parts + corrective labour hours x labour rate;
- consequence of an in-service failure of grade ``g``: delay minutes x cost per minute + recovery
  + days out of service x cost of an unavailable vehicle;
- a failure = corrective replacement + its grade's consequence; where the grade is not known, the
  component's share of grade-A failures weighs A against B.

Acting on an alert means a targeted inspection; it finds a component that would fail within the horizon with
the level's detection probability ``d``, and a find becomes a preventive replacement. So alerting pays when

    p * d * (C_failure - C_preventive)  >  C_inspection   <=>   p  >  C_inspection / (d * (C_failure - C_preventive))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from railpm import contracts
from railpm.config import ComponentCost, CostSettings


@dataclass(frozen=True)
class CostModel:
    settings: CostSettings

    @classmethod
    def default(cls) -> CostModel:
        return cls(CostSettings())

    def component(self, component: str) -> ComponentCost:
        return self.settings.components.get(component, self.settings.default_component)

    def inspection(self, level: int) -> float:
        """EUR to examine one component at a visit of this maintenance level."""
        return float(self.settings.inspection_eur_by_level[int(level)])

    def inspection_level(self, component: str) -> int:
        """The lowest level whose visit examines the component: where a targeted inspection of it is booked."""
        for level in contracts.MAINTENANCE_LEVELS:
            if level.level >= 2 and component in level.inspects:
                return level.level
        return max(contracts.LEVELS)

    def component_inspection(self, component: str) -> float:
        return self.inspection(self.inspection_level(component))

    def detection(self, component: str) -> float:
        return float(self.settings.detection_probability_by_level[self.inspection_level(component)])

    def preventive(self, component: str) -> float:
        c = self.component(component)
        return c.part_eur + c.preventive_labour_hours * self.settings.labour_eur_per_hour

    def corrective(self, component: str) -> float:
        c = self.component(component)
        return c.part_eur + c.collateral_eur + c.corrective_labour_hours * self.settings.labour_eur_per_hour

    def consequence(self, grade: str) -> float:
        """EUR an in-service failure of this grade costs beyond its repair."""
        g = self.settings.consequences[grade]
        s = self.settings
        return g.delay_minutes * s.delay_eur_per_minute + g.recovery_eur + g.days_out_of_service * s.unavailable_vehicle_eur_per_day

    def days_out(self, grade: str) -> float:
        return float(self.settings.consequences[grade].days_out_of_service)

    def failure(self, component: str, grade: str | None = None) -> float:
        """EUR of one in-service failure: the corrective replacement and its consequence (expected over A/B if
        the grade is not known)."""
        if grade is None:
            a = self.component(component).grade_a_share
            return self.corrective(component) + a * self.consequence("A") + (1 - a) * self.consequence("B")
        return self.corrective(component) + self.consequence(grade)

    def expected_days_out(self, component: str) -> float:
        a = self.component(component).grade_a_share
        return a * self.days_out("A") + (1 - a) * self.days_out("B")

    def break_even_probability(self, component: str) -> float:
        """The failure probability above which a targeted inspection of the component pays for itself."""
        gain = self.detection(component) * (self.failure(component) - self.preventive(component))
        return float(min(1.0, self.component_inspection(component) / gain)) if gain > 0 else 1.0

    def thresholds(self, components: pd.Series) -> pd.Series:
        """Break-even probability per row's component."""
        table = {c: self.break_even_probability(c) for c in pd.unique(components)}
        return components.map(table).astype(float)

    def table(self, components=None) -> pd.DataFrame:
        """One row per component: what each action costs, for the README, the review app and planners."""
        rows = []
        for c in components or contracts.COMPONENTS:
            rows.append({
                "component": c, "inspection_level": self.inspection_level(c),
                "inspection_eur": self.component_inspection(c), "preventive_eur": self.preventive(c),
                "corrective_eur": self.corrective(c), "failure_a_eur": self.failure(c, "A"),
                "failure_b_eur": self.failure(c, "B"), "expected_failure_eur": self.failure(c),
                "detection_probability": self.detection(c), "break_even_probability": self.break_even_probability(c),
            })
        return pd.DataFrame(rows)


def failure_costs(costs: CostModel, components: pd.Series, grades: pd.Series | None = None) -> np.ndarray:
    """EUR of each failure in a frame (its grade where known)."""
    if grades is None:
        return np.array([costs.failure(c) for c in components], dtype=float)
    return np.array([costs.failure(c, g if isinstance(g, str) and g in costs.settings.consequences else None)
                     for c, g in zip(components, grades)], dtype=float)
