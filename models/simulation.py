"""Policy simulation on the rolling-origin folds: what acting on the predictions saves, with interventions that
change what happens next.

The backtest's test rows (``Backtest.scored``) say, for every vehicle-component and day of each fold's test
block, each method's score; the failures in the block are known (``frames.failure_events``, graded by the
synthetic fleet's truth where there is one). Each policy acts on them day by day:

- an alert sends the component to a targeted inspection at its level (``railpm.costs``); if the component
  fails within the horizon after it (and within the block), the inspection finds it with the level's detection
  probability (a seeded draw), and the find is a preventive replacement instead of the failure: that failure
  is avoided, and the renewed component is not inspected again in the block. An inspection that finds nothing
  is not repeated for ``reinspect_after_days`` (the horizon), and the day's budget or capacity goes to the
  riskiest components not inspected lately;
- a failure nobody avoided costs the in-service failure of its grade (corrective replacement + consequence).

Policies, side by side:
- ``run_to_failure``: no scheduled visits and no alerts; what the schedule's visits found worn (the observed
  preventive replacements) fails in service instead, with the component's expected grade;
- ``fixed_schedule``: the fleet as it ran, levels 1-5 as its work orders show: visits at their cost, the
  preventive replacements they made, the failures that happened;
- ``age_usage``, ``model_threshold``: the schedule plus alerts above the cost model's break-even probability
  within the depot alert budget, from the age/usage baseline and from the model;
- ``model_capacity``: the schedule plus the fleet's ``capacity_top_k_per_week`` riskiest each week;
- ``perfect_foresight``: the schedule plus one targeted inspection of each failing component the day before it
  fails (found with the level's detection probability): what no model can beat while the schedule stays as it is.

Each policy's cost per 1,000 vehicle-days comes with a bootstrap interval over vehicles (vehicles resampled
with their whole history, the same draw for every policy, so differences are paired).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from railpm.costs import CostModel
from railpm.models.frames import LABEL
from railpm.models.policy import break_even_probability

POLICIES = ("run_to_failure", "fixed_schedule", "age_usage", "model_threshold", "model_capacity", "perfect_foresight")
ALERTING = {"age_usage": ("score_age_usage", "threshold"), "model_threshold": ("score_model", "threshold"),
            "model_capacity": ("score_model", "capacity")}


@dataclass(frozen=True)
class SimulationSettings:
    horizon_days: int = 30
    alert_budget_per_depot_per_day: int = 3
    capacity_top_k_per_week: int = 20
    reinspect_after_days: int | None = None
    """A component an inspection found healthy is not inspected again for this long (None: the horizon the
    inspection looked over); a find renews it for the rest of the test period."""
    bootstrap: int = 1000
    seed: int = 0
    steps_per_day: float = 1.0
    """Record steps per calendar day (Azure PdM: 8 steps of 3 h): horizon, re-inspection, the alert budget and the
    weekly capacity count in steps; exposure and availability in days."""


@dataclass
class PolicyOutcome:
    """Per vehicle (rows) and policy: what was spent and what happened."""

    per_vehicle: pd.DataFrame
    failures: pd.DataFrame
    """Every failure in the test blocks with, per policy, whether it was avoided."""


def _act(rows: pd.DataFrame, policy: str, failures: pd.DataFrame, costs: CostModel, settings: SimulationSettings,
         rng: np.random.Generator) -> tuple[pd.DataFrame, set[int]]:
    """The test period day by day (the folds' blocks follow each other, each day scored by its own fold's models):
    pick today's alerts among the components not inspected lately (so the depots' budget or the planners'
    capacity goes to components still worth a look), inspect them, draw the finds; returns the inspections done
    and the failures avoided. What an inspection found or renewed carries over into the next block: an alert on a
    block's last days can find a failure early in the next one, as it would in the fleet."""
    score, kind = ALERTING[policy]
    if kind == "threshold":
        rows = rows.assign(_threshold=break_even_probability(costs, rows["component"]))
    pending = {key: group.sort_values("failure_day") for key, group in failures.groupby(["vehicle_number", "component"])}
    renewed: set[tuple[str, str]] = set()
    last_look: dict[tuple[str, str], pd.Timestamp] = {}
    avoided: set[int] = set()
    done = []
    horizon = pd.Timedelta(days=settings.horizon_days)
    reinspect = settings.reinspect_after_days if settings.reinspect_after_days is not None else settings.horizon_days
    first = rows["day"].min()
    for day, today in rows.groupby("day", sort=True):
        if kind == "capacity" and (day - first).days % 7:
            continue
        keys = list(zip(today["vehicle_number"], today["component"]))
        free = np.array([k not in renewed and (k not in last_look or (day - last_look[k]).days >= reinspect)
                         for k in keys], dtype=bool)
        candidates = today.loc[free]
        if kind == "threshold":
            candidates = candidates.loc[candidates[score] >= candidates["_threshold"]]
            picked = candidates.sort_values([score, "vehicle_number", "component"], ascending=[False, True, True], kind="stable") \
                .groupby("home_depot", sort=False).head(settings.alert_budget_per_depot_per_day)
        else:
            picked = candidates.sort_values([score, "vehicle_number", "component"], ascending=[False, True, True], kind="stable") \
                .head(settings.capacity_top_k_per_week)
        for vehicle, component in sorted(zip(picked["vehicle_number"], picked["component"])):
            key = (vehicle, component)
            last_look[key] = day
            found = False
            upcoming = pending.get(key)
            if upcoming is not None:
                due = upcoming.loc[(upcoming["failure_day"] > day) & (upcoming["failure_day"] <= day + horizon)
                                   & ~upcoming.index.isin(list(avoided))]
                if len(due) and rng.random() < costs.detection(component):
                    avoided.add(int(due.index[0]))
                    renewed.add(key)
                    found = True
            done.append((vehicle, component, day, found))
    return pd.DataFrame(done, columns=["vehicle_number", "component", "day", "found"]), avoided


def _foresee(failures: pd.DataFrame, costs: CostModel, rng: np.random.Generator) -> tuple[pd.DataFrame, set[int]]:
    """The ceiling of any alerting model: one targeted inspection of each failing component the day before it
    fails, finding it with the level's detection probability, and not one inspection more."""
    found = rng.random(len(failures)) < np.array([costs.detection(c) for c in failures["component"]])
    done = pd.DataFrame({"vehicle_number": failures["vehicle_number"], "component": failures["component"],
                         "day": failures["failure_day"] - pd.Timedelta(days=1), "found": found})
    return done, {int(i) for i in failures.index[found]}


def simulate_policies(scored: pd.DataFrame, failures: pd.DataFrame, schedule: pd.DataFrame, costs: CostModel,
                      settings: SimulationSettings) -> PolicyOutcome:
    """Run every policy over every fold of the backtest's test rows.

    ``failures``: vehicle_number, component, failure_day, fold, grade (A/B, or null for the expected mix), one
    row per failure inside a fold's test block. ``schedule``: the scheduled visits and what they found, one row
    per work order in a test block: vehicle_number, fold, action (``inspection`` / ``preventive_replacement``),
    maintenance_level, component.
    """
    failures = failures.reset_index(drop=True)
    vehicles = sorted(scored["vehicle_number"].unique())
    exposure = scored[["vehicle_number", "day"]].drop_duplicates().groupby("vehicle_number").size().reindex(vehicles, fill_value=0)
    failure_cost = np.array([costs.failure(c, g if isinstance(g, str) else None) for c, g in zip(failures["component"], failures["grade"])])
    failure_days_out = np.array([costs.days_out(g) if isinstance(g, str) else costs.expected_days_out(c)
                                 for c, g in zip(failures["component"], failures["grade"])])
    grade = failures["grade"].where(failures["grade"].notna(), "unknown")

    visits = schedule.loc[schedule["action"] == "inspection"]
    finds = schedule.loc[schedule["action"] == "preventive_replacement"]
    s = costs.settings
    visit_eur = visits.assign(eur=visits["maintenance_level"].map(s.visit_eur_by_level).fillna(0.0),
                              out=visits["maintenance_level"].map(s.visit_days_out_by_level).fillna(0.0))
    find_eur = finds.assign(eur=[costs.preventive(c) for c in finds["component"]],
                            as_failure=[costs.failure(c) for c in finds["component"]],
                            days_out=[costs.expected_days_out(c) for c in finds["component"]])

    def by_vehicle(frame: pd.DataFrame, column: str) -> pd.Series:
        return frame.groupby("vehicle_number")[column].sum().reindex(vehicles, fill_value=0.0) if len(frame) else pd.Series(0.0, index=vehicles)

    base = pd.DataFrame(index=pd.Index(vehicles, name="vehicle_number"))
    base["vehicle_days"] = exposure / settings.steps_per_day
    schedule_eur = by_vehicle(visit_eur, "eur") + by_vehicle(find_eur, "eur")
    schedule_days_out = by_vehicle(visit_eur, "out") + finds.groupby("vehicle_number").size().reindex(vehicles, fill_value=0) * s.preventive_days_out

    rows, avoided_by = [], {}
    for policy in POLICIES:
        rng = np.random.default_rng(settings.seed)
        avoided: set[int] = set()
        inspections = pd.DataFrame(columns=["vehicle_number", "component", "day", "found"])
        if policy in ALERTING:
            inspections, avoided = _act(scored, policy, failures, costs, settings, rng)
        elif policy == "perfect_foresight":
            inspections, avoided = _foresee(failures, costs, rng)
        avoided_by[policy] = avoided
        kept = ~failures.index.isin(list(avoided))
        happened = failures.assign(eur=np.where(kept, failure_cost, 0.0), out=np.where(kept, failure_days_out, 0.0),
                                   n=kept.astype(int), a=(kept & (grade == "A")).astype(int), b=(kept & (grade == "B")).astype(int))
        found = inspections.loc[inspections["found"].astype(bool)] if len(inspections) else inspections
        targeted = inspections.assign(eur=[costs.component_inspection(c) for c in inspections["component"]]) if len(inspections) else inspections.assign(eur=[])
        replaced = found.assign(eur=[costs.preventive(c) for c in found["component"]]) if len(found) else found.assign(eur=[])
        out = base.copy()
        out["policy"] = policy
        out["failures"] = by_vehicle(happened, "n")
        out["failures_a"] = by_vehicle(happened, "a")
        out["failures_b"] = by_vehicle(happened, "b")
        out["failure_eur"] = by_vehicle(happened, "eur")
        out["inspections"] = targeted.groupby("vehicle_number").size().reindex(vehicles, fill_value=0) if len(targeted) else 0
        out["replacements"] = replaced.groupby("vehicle_number").size().reindex(vehicles, fill_value=0) if len(replaced) else 0
        out["action_eur"] = by_vehicle(targeted, "eur") + by_vehicle(replaced, "eur")
        days_out = by_vehicle(happened, "out") + out["inspections"] * s.inspection_days_out + out["replacements"] * s.preventive_days_out
        if policy == "run_to_failure":
            as_failures = finds.groupby("vehicle_number").size().reindex(vehicles, fill_value=0)
            out["failures"] += as_failures
            out["failure_eur"] += by_vehicle(find_eur, "as_failure")
            days_out += by_vehicle(find_eur, "days_out")
            out["schedule_eur"] = 0.0
        else:
            out["schedule_eur"] = schedule_eur
            out["replacements"] += finds.groupby("vehicle_number").size().reindex(vehicles, fill_value=0)
            days_out += schedule_days_out
        out["days_out"] = days_out
        out["cost_eur"] = out["failure_eur"] + out["action_eur"] + out["schedule_eur"]
        rows.append(out.reset_index())
    per_vehicle = pd.concat(rows, ignore_index=True)
    marked = failures.assign(**{f"avoided_{p}": failures.index.isin(list(avoided_by[p])) for p in POLICIES})
    return PolicyOutcome(per_vehicle, marked)


def policy_table(outcome: PolicyOutcome, settings: SimulationSettings, reference: str = "fixed_schedule") -> pd.DataFrame:
    """One row per policy: EUR per 1,000 vehicle-days with a bootstrap interval over vehicles, its saving against
    ``reference`` (paired), failures by grade, failures avoided, inspections, replacements, availability, and where
    the money goes (scheduled visits and their replacements, in-service failures, targeted inspections and the
    replacements they led to)."""
    pv = outcome.per_vehicle
    wide = pv.pivot(index="vehicle_number", columns="policy", values="cost_eur")
    days = pv.loc[pv["policy"] == POLICIES[0]].set_index("vehicle_number")["vehicle_days"].reindex(wide.index)
    rng = np.random.default_rng(settings.seed)
    draws = rng.integers(0, len(wide), size=(settings.bootstrap, len(wide)))
    cost = wide.to_numpy()[draws].sum(axis=1)  # bootstrap x policy
    exposure = days.to_numpy()[draws].sum(axis=1)[:, None]
    per_1000 = 1000 * cost / exposure
    ref = list(wide.columns).index(reference)
    with np.errstate(divide="ignore", invalid="ignore"):  # a resample where nothing cost anything saves nothing
        saving = np.where(cost[:, [ref]] > 0, 1 - cost / cost[:, [ref]], 0.0)
    rows = []
    for j, policy in enumerate(wide.columns):
        part = pv.loc[pv["policy"] == policy]
        total_days = part["vehicle_days"].sum()
        rows.append({
            "policy": policy,
            "eur_per_1000_vehicle_days": 1000 * part["cost_eur"].sum() / total_days,
            "ci_low": float(np.percentile(per_1000[:, j], 2.5)), "ci_high": float(np.percentile(per_1000[:, j], 97.5)),
            f"saving_vs_{reference}": 1 - part["cost_eur"].sum() / pv.loc[pv["policy"] == reference, "cost_eur"].sum(),
            "saving_ci_low": float(np.percentile(saving[:, j], 2.5)), "saving_ci_high": float(np.percentile(saving[:, j], 97.5)),
            "failures": int(part["failures"].sum()), "failures_a": int(part["failures_a"].sum()),
            "failures_b": int(part["failures_b"].sum()),
            "failures_avoided": int(outcome.failures.get(f"avoided_{policy}", pd.Series(dtype=bool)).sum()),
            "inspections": int(part["inspections"].sum()), "replacements": int(part["replacements"].sum()),
            "availability": 1 - part["days_out"].sum() / total_days,
            **{f"{what}_eur_per_1000_vehicle_days": 1000 * part[f"{what}_eur"].sum() / total_days
               for what in ("schedule", "failure", "action")},
        })
    order = {p: i for i, p in enumerate(POLICIES)}
    return pd.DataFrame(rows).sort_values("policy", key=lambda s: s.map(order)).reset_index(drop=True)


def sensitivity(scored: pd.DataFrame, failures: pd.DataFrame, schedule: pd.DataFrame, costs: CostModel,
                settings: SimulationSettings, factors=(0.25, 0.5, 1.0, 2.0, 4.0)) -> pd.DataFrame:
    """The model policy against the schedule as the ratio of failure to inspection cost changes: targeted
    inspections cost 1/factor of the settings' (thresholds follow), everything else as set."""
    rows = []
    for factor in factors:
        scaled = CostModel(costs.settings.model_copy(update={
            "inspection_eur_by_level": {k: v / factor for k, v in costs.settings.inspection_eur_by_level.items()}}))
        outcome = simulate_policies(scored, failures, schedule, scaled, replace(settings, bootstrap=200))
        table = policy_table(outcome, replace(settings, bootstrap=200)).set_index("policy")
        brake = scaled.failure("brake_unit") / scaled.component_inspection("brake_unit")
        rows.append({"factor": factor, "failure_to_inspection_brake_unit": brake,
                     **{f"{p}_saving": table.loc[p, "saving_vs_fixed_schedule"] for p in ("model_threshold", "model_capacity", "age_usage", "perfect_foresight")},
                     "model_threshold_saving_ci_low": table.loc["model_threshold", "saving_ci_low"],
                     "model_threshold_saving_ci_high": table.loc["model_threshold", "saving_ci_high"]})
    return pd.DataFrame(rows)


def test_block_failures(events: pd.DataFrame, folds, truth: pd.DataFrame | None) -> pd.DataFrame:
    """Failures inside each fold's test block, graded by the synthetic fleet's truth where it has the failure."""
    parts = []
    for fold in folds:
        inside = events.loc[(events["failure_day"] >= fold.test_start) & (events["failure_day"] <= fold.test_end)]
        parts.append(inside.assign(fold=fold.number))
    out = pd.concat(parts, ignore_index=True) if parts else events.assign(fold=[])
    out["grade"] = None
    if truth is not None and len(truth):
        t = truth.assign(failure_day=pd.to_datetime(truth["failed_at"], utc=True).dt.tz_localize(None).dt.normalize())
        # The work order opens on the failure's day or the next: match either.
        graded = {}
        for row in t.itertuples(index=False):
            for shift in (0, 1):
                graded.setdefault((row.vehicle_number, row.component, row.failure_day + pd.Timedelta(days=shift)), row.grade)
        out["grade"] = [graded.get((v, c, d)) for v, c, d in zip(out["vehicle_number"], out["component"], out["failure_day"])]
    return out


def schedule_in_blocks(work_orders: pd.DataFrame, folds) -> pd.DataFrame:
    """The scheduled visits and the preventive replacements they made, per fold's test block."""
    orders = work_orders.loc[work_orders["action"].isin(["inspection", "preventive_replacement"])].copy()
    orders["day"] = pd.to_datetime(orders["opened_at"], utc=True).dt.tz_localize(None).dt.normalize()
    parts = [orders.loc[orders["day"].between(f.test_start, f.test_end)].assign(fold=f.number) for f in folds]
    columns = ["vehicle_number", "fold", "action", "maintenance_level", "component"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def labelled_rows(scored: pd.DataFrame) -> pd.DataFrame:
    """The test rows a policy decides on: the backtest scores rows whose horizon outcome is known."""
    return scored.loc[scored[LABEL].notna()].copy()
