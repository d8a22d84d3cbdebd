"""Inspection plan: which vehicle-components to call in, where and when, within depot capacity.

The value of inspecting a component on plan day ``k`` is what a find saves, priced by the one cost model
(``railpm.costs``): ``P(failure after day k and within the horizon)`` (see ``risk``) x the level's detection
probability x (in-service failure - preventive replacement), minus the inspection's cost at its level; a transfer to a depot other than the vehicle's home adds the transfer cost once per visit,
and is only considered for a visit where one component alone is worth the trip (both planners keep this rule).

The plan is built around the scheduled maintenance already due: every due visit must get a day within its
tolerance (up to ``scheduled_advance_days`` before its due day, never after; overdue ones as soon as possible)
at its home depot, and a component that visit examines anyway *rides along* at no slot and no inspection
cost. A vehicle takes at most one slot per day; the components inspected in one predictive visit share it,
at the level that covers all of them. A depot's slots per day and level are never exceeded.

Two planners solve the same problem and are scored by the same function: a greedy rule (scheduled visits
first, then predictions by value, each into its earliest free slot) and OR-Tools CP-SAT. CP-SAT first finds
how many due visits capacity can hold at all and keeps that many (a due visit is only left out when capacity
cannot hold it), then maximises the value starting from the greedy plan as a hint, so it never ranks below
greedy (due visits placed first, then value). CP-SAT runs single-threaded with a fixed seed and a
*deterministic* time limit, so the same input gives the same plan however loaded the machine is (a
wall-clock guard of ten times the limit only stops a runaway).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
from ortools.sat.python import cp_model

from railpm import contracts
from railpm.costs import CostModel
from railpm.errors import BadInputError
from railpm.planning.maintenance import LEVEL, DepotCapacity, covers, inspection_level
from railpm.planning.risk import avoidable_failure_probability, scored_day_of

PLAN_KINDS = ("scheduled_visit", "predictive_visit", "inspection", "ride_along")
"""Visit rows (component empty) take a slot; inspection and ride-along rows name the component examined."""

INSPECTION_PLAN_COLUMNS = [
    "scored_day", "method", "day", "vehicle_number", "vehicle_type", "home_depot", "depot", "maintenance_level",
    "kind", "component", "uses_slot", "status", "due_day", "merged_levels", "failure_probability",
    "remaining_life_days", "expected_avoided_cost_eur", "inspection_cost_eur", "transfer_cost_eur",
    "net_value_eur", "model_version",
]

PREDICTION_COLUMNS = [
    "scored_day", "vehicle_number", "vehicle_type", "home_depot", "component", "failure_probability",
    "remaining_life_days", "remaining_life_low_days", "remaining_life_high_days", "model_version",
]


@dataclass(frozen=True)
class InspectionRules:
    """Every value the inspection planner needs, taken from ``Settings`` by ``from_settings``."""

    capacity: DepotCapacity
    window_days: int = 14
    horizon_days: int = 30
    interval_coverage: float = 0.8
    costs: CostModel = field(default_factory=CostModel.default)
    transfer_cost: float = 1_500.0
    allow_transfers: bool = False
    planned_levels: tuple[int, ...] = (2, 3, 4, 5)
    scheduled_advance_days: int = 3
    time_limit_s: float = 20.0
    seed: int = 0
    depots: tuple[str, ...] = contracts.DEPOTS

    @classmethod
    def from_settings(cls, settings, **overrides) -> InspectionRules:
        plan, model = settings.plan, settings.model
        values = dict(
            capacity=DepotCapacity(plan.capacity_per_level, plan.depot_capacity, plan.default_depot_capacity_per_day),
            window_days=plan.window_days,
            horizon_days=model.horizon_days,
            interval_coverage=model.remaining_life_interval,
            costs=CostModel(settings.costs),
            transfer_cost=plan.transfer_cost,
            allow_transfers=plan.allow_transfers,
            planned_levels=tuple(plan.planned_levels),
            scheduled_advance_days=plan.scheduled_advance_days,
            time_limit_s=plan.solver_time_limit_s,
            seed=plan.solver_seed,
        )
        values.update(overrides)
        return cls(**values)


@dataclass
class InspectionPlan:
    plan: pd.DataFrame
    """The CP-SAT plan, ``INSPECTION_PLAN_COLUMNS``."""
    greedy: pd.DataFrame
    """The greedy rule's plan, same columns, for comparison."""
    summary: dict


# --------------------------------------------------------------------------------------------------
# The problem, in integer euro cents, indexed by plan day k = 0 .. window-1 (calendar day start + k)
# --------------------------------------------------------------------------------------------------


@dataclass
class _Problem:
    start: date
    window: int
    candidates: pd.DataFrame
    """One row per prediction worth an inspection: vehicle_number, component, level, home_depot, ..."""
    value: np.ndarray
    """Avoided failure cost in cents, candidates x days."""
    scheduled: pd.DataFrame
    """One merged due visit per vehicle: vehicle_number, depot, maintenance_level, due_day, merged_levels."""
    allowed: list[list[int]]
    """Days each scheduled visit may take, in order of preference (its due day first, then earlier)."""
    capacity: dict[tuple[str, int], int]
    inspection_cents: np.ndarray
    """Cost of inspecting each candidate at its level, in cents."""
    transfer_cents: int
    depots: dict[str, list[str]]
    """Depots each vehicle may visit, home first."""
    risk_eur: float = 0.0
    """Expected in-service failure cost over the horizon if nothing is done (every prediction's p x failure cost)."""

    def transfer(self, vehicle: str, depot: str) -> int:
        return 0 if depot == self.depots[vehicle][0] else self.transfer_cents


@dataclass
class _Solution:
    scheduled_day: dict[int, int | None] = field(default_factory=dict)
    visits: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    """Predictive visits: (vehicle, day) -> (depot, level)."""
    assigned: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    """Candidate -> (day, depot, 'inspection' | 'ride_along')."""


def _check_predictions(predictions: pd.DataFrame, vehicles: pd.DataFrame) -> date:
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise BadInputError(f"predictions lack columns {missing}", rule="predictions_contract")
    scored_day = scored_day_of(predictions)
    dupes = predictions.duplicated(["vehicle_number", "component"])
    if dupes.any():
        first = predictions.loc[dupes, ["vehicle_number", "component"]].iloc[0].tolist()
        raise BadInputError(f"{int(dupes.sum())} duplicate predictions, first {first}", rule="unique_key")
    p = predictions["failure_probability"]
    bad = p.isna() | (p < 0) | (p > 1)
    if bad.any():
        row = predictions.loc[bad].iloc[0]
        raise BadInputError(
            f"failure_probability {row['failure_probability']!r} of {row['vehicle_number']}/{row['component']}"
            " is not within [0, 1]", rule="failure_probability_in_range",
        )
    unknown = sorted(set(predictions["vehicle_number"]) - set(vehicles["vehicle_number"]))
    if unknown:
        raise BadInputError(f"predictions for vehicles not in the registry: {unknown[:5]}", rule="vehicle_known")
    return scored_day


def _merge_scheduled(due: pd.DataFrame, registry: pd.DataFrame, start: date, rules: InspectionRules) -> pd.DataFrame:
    """One visit per vehicle: the highest level due, by the earliest due day of the levels it merges."""
    due = due.loc[due["maintenance_level"].isin(rules.planned_levels)]
    if due.empty:
        return pd.DataFrame(columns=["vehicle_number", "depot", "maintenance_level", "due_day", "merged_levels"])
    due = due.assign(due_day=pd.to_datetime(due["due_day"]).dt.date)
    merged = (
        due.groupby("vehicle_number")
        .agg(
            maintenance_level=("maintenance_level", "max"),
            due_day=("due_day", "min"),
            merged_levels=("maintenance_level", lambda s: ",".join(str(v) for v in sorted(set(s)))),
        )
        .reset_index()
    )
    depot = registry.set_index("vehicle_number")["home_depot"]
    merged["depot"] = merged["vehicle_number"].map(depot)
    if "depot" in due.columns:
        merged["depot"] = merged["depot"].fillna(merged["vehicle_number"].map(due.groupby("vehicle_number")["depot"].first()))
    last_day = start + timedelta(days=rules.window_days - 1)
    return merged.loc[merged["due_day"] <= last_day].sort_values("vehicle_number").reset_index(drop=True)


def _allowed_days(due_day: date, start: date, window: int, advance: int) -> list[int]:
    due = (due_day - start).days
    if due < 0:  # overdue: as soon as possible
        return list(range(0, min(window, advance + 1)))
    return [k for k in range(due, due - advance - 1, -1) if 0 <= k < window]


def build_problem(
    predictions: pd.DataFrame, vehicles: pd.DataFrame, maintenance_due: pd.DataFrame, rules: InspectionRules
) -> _Problem:
    scored_day = _check_predictions(predictions, vehicles)
    start = scored_day + timedelta(days=1)
    window = rules.window_days
    days = np.arange(1, window + 1)
    preds = predictions.reset_index(drop=True)
    avoidable = avoidable_failure_probability(days, preds, horizon_days=rules.horizon_days, coverage=rules.interval_coverage)
    costs = rules.costs
    levels = np.array([inspection_level(c, rules.planned_levels) for c in preds["component"]], dtype=np.int64)
    saved = np.array([costs.settings.detection_probability_by_level[int(level)] * (costs.failure(c) - costs.preventive(c))
                      for c, level in zip(preds["component"], levels)], dtype=float)
    value = np.rint(avoidable * saved[:, None] * 100).astype(np.int64)
    risk_eur = float(sum(p * costs.failure(c) for p, c in zip(preds["failure_probability"], preds["component"])))
    inspection_cents = np.array([int(round(costs.inspection(level) * 100)) for level in levels], dtype=np.int64)
    worth = value.max(axis=1, initial=0) > inspection_cents
    candidates = preds.loc[worth].reset_index(drop=True)
    candidates["level"] = levels[worth]

    registry = vehicles[["vehicle_number", "vehicle_type", "home_depot"]].drop_duplicates("vehicle_number")
    scheduled = _merge_scheduled(maintenance_due, registry, start, rules)
    allowed = [_allowed_days(d, start, window, rules.scheduled_advance_days) for d in scheduled["due_day"]]

    homes = dict(zip(candidates["vehicle_number"], candidates["home_depot"]))
    homes.update(zip(scheduled["vehicle_number"], scheduled["depot"]))
    homes.update(registry.set_index("vehicle_number")["home_depot"].to_dict())  # the registry has the last word
    depot_names = sorted(set(rules.depots) | set(homes.values()))
    depots = {
        v: [home] + ([d for d in depot_names if d != home] if rules.allow_transfers else []) for v, home in homes.items()
    }
    capacity = {(d, level): rules.capacity.slots(d, level) for d in depot_names for level in LEVEL}
    return _Problem(
        start=start,
        window=window,
        candidates=candidates,
        value=value[worth],
        scheduled=scheduled,
        allowed=allowed,
        capacity=capacity,
        inspection_cents=inspection_cents[worth],
        transfer_cents=int(round(rules.transfer_cost * 100)),
        depots=depots,
        risk_eur=risk_eur,
    )


def _scheduled_by_vehicle(problem: _Problem) -> dict[str, int]:
    return {v: s for s, v in enumerate(problem.scheduled["vehicle_number"])}


def objective_cents(problem: _Problem, solution: _Solution) -> int:
    """Expected avoided failure cost minus inspection and transfer costs, the figure both planners are scored by."""
    total = 0
    for i, (k, _depot, kind) in solution.assigned.items():
        total += int(problem.value[i, k]) - (int(problem.inspection_cents[i]) if kind == "inspection" else 0)
    for (vehicle, _k), (depot, _level) in solution.visits.items():
        total -= problem.transfer(vehicle, depot)
    return total


# --------------------------------------------------------------------------------------------------
# Greedy rule
# --------------------------------------------------------------------------------------------------


class _Slots:
    """Slots taken per depot, level and day, against the depots' capacity."""

    def __init__(self, capacity: dict[tuple[str, int], int]):
        self.capacity = capacity
        self.used: Counter = Counter()

    def free(self, depot: str, level: int, k: int) -> bool:
        return self.used[(depot, level, k)] < self.capacity.get((depot, level), 0)

    def take(self, depot: str, level: int, k: int) -> None:
        self.used[(depot, level, k)] += 1


def solve_greedy(problem: _Problem, scheduled_days: dict[int, int | None] | None = None) -> _Solution:
    """Scheduled visits first (nearest their due day), then predictions by value, each into its earliest free slot.

    ``scheduled_days`` fixes the due visits' days instead (each a feasible slot), and the rule fills around them.
    """
    solution = _Solution()
    slots = _Slots(problem.capacity)
    busy: dict[tuple[str, int], tuple[str, int, bool]] = {}  # (vehicle, day) -> (depot, level, is scheduled)
    sched = problem.scheduled
    order = sorted(range(len(sched)), key=lambda s: (sched.at[s, "due_day"], -sched.at[s, "maintenance_level"], s))
    for s in order:
        vehicle, depot, level = sched.at[s, "vehicle_number"], sched.at[s, "depot"], int(sched.at[s, "maintenance_level"])
        solution.scheduled_day[s] = None
        days = problem.allowed[s] if scheduled_days is None else [k for k in [scheduled_days.get(s)] if k is not None]
        for k in days:
            if slots.free(depot, level, k):
                slots.take(depot, level, k)
                busy[(vehicle, k)] = (depot, level, True)
                solution.scheduled_day[s] = k
                break

    cands = problem.candidates
    first_day_net = problem.value[:, 0] - problem.inspection_cents
    order = sorted(range(len(cands)), key=lambda i: (-first_day_net[i], cands.at[i, "vehicle_number"], cands.at[i, "component"]))
    for i in order:
        vehicle, component, level = cands.at[i, "vehicle_number"], cands.at[i, "component"], int(cands.at[i, "level"])
        for k in range(problem.window):
            value = int(problem.value[i, k])
            if (vehicle, k) in busy:
                depot, visit_level, scheduled = busy[(vehicle, k)]
                gain = value if scheduled else value - int(problem.inspection_cents[i])
                if covers(visit_level, component) and gain > 0:
                    solution.assigned[i] = (k, depot, "ride_along" if scheduled else "inspection")
                    break
                continue
            depot = next(
                (
                    d
                    for d in problem.depots[vehicle]
                    if value - int(problem.inspection_cents[i]) - problem.transfer(vehicle, d) > 0 and slots.free(d, level, k)
                ),
                None,
            )
            if depot is not None:
                slots.take(depot, level, k)
                busy[(vehicle, k)] = (depot, level, False)
                solution.visits[(vehicle, k)] = (depot, level)
                solution.assigned[i] = (k, depot, "inspection")
                break
    return solution


# --------------------------------------------------------------------------------------------------
# CP-SAT
# --------------------------------------------------------------------------------------------------


def _rank(problem: _Problem, solution: _Solution) -> tuple[int, int]:
    """How plans compare: due visits placed first, then value."""
    return (sum(k is not None for k in solution.scheduled_day.values()), objective_cents(problem, solution))


def solve_cp_sat(problem: _Problem, rules: InspectionRules, hint: _Solution | None = None) -> tuple[_Solution, dict]:
    """The same problem as a 0-1 programme: maximise avoided cost net of inspections and transfers.

    With transfers the model is several times larger; it is solved after the home-depot-only one, whose
    plan (feasible with transfers too) becomes the hint when it ranks above the given one.
    """
    if any(len(depots) > 1 for depots in problem.depots.values()):
        home_only = replace(problem, depots={v: depots[:1] for v, depots in problem.depots.items()})
        at_home, first = solve_cp_sat(home_only, rules, hint)
        if first["found"] and (hint is None or _rank(problem, at_home) > _rank(problem, hint)):
            hint = at_home
        solution, info = _solve_cp_sat(problem, rules, hint)
        info["solve_time_s"] = round(info["solve_time_s"] + first["solve_time_s"], 3)
        info["solve_cpu_s"] = round(info["solve_cpu_s"] + first["solve_cpu_s"], 3)
        if hint is at_home and (not info["found"] or _rank(problem, solution) < _rank(problem, at_home)):
            solution, info["found"] = at_home, True
            info["status"] = f"{first['status']} (home depots; {info['status']} with transfers)"
        return solution, info
    return _solve_cp_sat(problem, rules, hint)


def _solve_cp_sat(problem: _Problem, rules: InspectionRules, hint: _Solution | None) -> tuple[_Solution, dict]:
    started, cpu_started = time.perf_counter(), time.process_time()
    model = cp_model.CpModel()
    cands, sched = problem.candidates, problem.scheduled
    net = problem.value - problem.inspection_cents[:, None]
    placement = _most_scheduled_visits(problem, rules)
    placeable = sum(k is not None for k in placement.values())
    if hint is None or sum(k is not None for k in hint.scheduled_day.values()) < placeable:
        # The greedy rule left due visits out that fit: start from its rule around the fullest schedule instead,
        # so the search begins at a feasible plan.
        hint = solve_greedy(problem, scheduled_days=placement)
    z = {(s, k): model.new_bool_var(f"sched_{s}_{k}") for s in range(len(sched)) for k in problem.allowed[s]}
    for s in range(len(sched)):
        model.add_at_most_one(z[s, k] for k in problem.allowed[s])
    model.add(sum(z.values()) >= placeable)  # as many due visits as capacity can hold come first
    sched_of = _scheduled_by_vehicle(problem)

    y: dict[tuple[str, int, str, int], cp_model.IntVar] = {}
    xp: dict[tuple[int, int, str], cp_model.IntVar] = {}
    xr: dict[tuple[int, int], cp_model.IntVar] = {}
    for vehicle, idx in cands.groupby("vehicle_number", sort=True).indices.items():
        components = {i: cands.at[i, "component"] for i in idx}
        levels = sorted({int(cands.at[i, "level"]) for i in idx})
        for k in range(problem.window):
            for depot in problem.depots[vehicle]:
                transfer = problem.transfer(vehicle, depot)
                visit_of_level = {}
                for level in levels:
                    covered = [i for i in idx if net[i, k] > 0 and covers(level, components[i])]
                    # Away from home only where one component alone pays for the trip: keeps the model small.
                    if covered and (int(net[covered, k].sum()) if transfer == 0 else int(net[covered, k].max())) > transfer:
                        visit_of_level[level] = (model.new_bool_var(f"visit_{vehicle}_{k}_{depot}_{level}"), covered)
                        y[(vehicle, k, depot, level)] = visit_of_level[level][0]
                for i in idx:
                    covering = [var for level, (var, covered) in visit_of_level.items() if i in covered]
                    if covering:
                        xp[(i, k, depot)] = model.new_bool_var(f"inspect_{i}_{k}_{depot}")
                        model.add(xp[(i, k, depot)] <= sum(covering))
                for level, (var, covered) in visit_of_level.items():
                    model.add(var <= sum(xp[(i, k, depot)] for i in covered))  # no empty visits
        s = sched_of.get(vehicle)
        if s is not None:
            level = int(sched.at[s, "maintenance_level"])
            for i in idx:
                if covers(level, components[i]):
                    for k in problem.allowed[s]:
                        if problem.value[i, k] > 0:
                            xr[(i, k)] = model.new_bool_var(f"ride_{i}_{k}")
                            model.add(xr[(i, k)] <= z[s, k])

    per_candidate: dict[int, list] = {}
    for (i, _k, _d), var in xp.items():
        per_candidate.setdefault(i, []).append(var)
    for (i, _k), var in xr.items():
        per_candidate.setdefault(i, []).append(var)
    for options in per_candidate.values():
        model.add_at_most_one(options)

    per_vehicle_day: dict[tuple[str, int], list] = {}
    per_slot: dict[tuple[str, int, int], list] = {}
    for (vehicle, k, depot, level), var in y.items():
        per_vehicle_day.setdefault((vehicle, k), []).append(var)
        per_slot.setdefault((depot, level, k), []).append(var)
    for (s, k), var in z.items():
        vehicle, depot, level = sched.at[s, "vehicle_number"], sched.at[s, "depot"], int(sched.at[s, "maintenance_level"])
        per_vehicle_day.setdefault((vehicle, k), []).append(var)
        per_slot.setdefault((depot, level, k), []).append(var)
    for visits in per_vehicle_day.values():
        if len(visits) > 1:
            model.add_at_most_one(visits)  # never double-book a vehicle on a day
    for (depot, level, _k), visits in per_slot.items():
        model.add(sum(visits) <= problem.capacity.get((depot, level), 0))

    model.maximize(
        sum(int(net[i, k]) * var for (i, k, _d), var in xp.items())
        + sum(int(problem.value[i, k]) * var for (i, k), var in xr.items())
        - sum(problem.transfer(v, d) * var for (v, _k, d, _l), var in y.items())
    )
    if hint is not None:
        _add_hint(model, hint, z, y, xp, xr)

    solver = _solver(rules)
    status = solver.solve(model)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    solution = _Solution()
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    if found:
        for s in range(len(sched)):
            solution.scheduled_day[s] = next((k for k in problem.allowed[s] if solver.value(z[s, k])), None)
        for (vehicle, k, depot, level), var in y.items():
            if solver.value(var):
                solution.visits[(vehicle, k)] = (depot, level)
        for (i, k, depot), var in xp.items():
            if solver.value(var):
                solution.assigned[i] = (k, depot, "inspection")
        for (i, k), var in xr.items():
            if solver.value(var):
                solution.assigned[i] = (k, sched.at[sched_of[cands.at[i, "vehicle_number"]], "depot"], "ride_along")
    info = {
        "status": solver.status_name(status),
        "found": found,
        "solve_time_s": round(elapsed, 3),
        "solve_cpu_s": round(cpu, 3),
        "variables": len(z) + len(y) + len(xp) + len(xr),
        "bound_cents": int(solver.best_objective_bound) if found else None,
    }
    return solution, info


def _solver(rules: InspectionRules) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = rules.seed
    solver.parameters.linearization_level = 2  # full LP relaxation: proves optimality ~10x sooner here
    solver.parameters.max_deterministic_time = rules.time_limit_s
    solver.parameters.max_time_in_seconds = rules.time_limit_s * 10  # wall-clock guard only
    return solver


def _most_scheduled_visits(problem: _Problem, rules: InspectionRules) -> dict[int, int | None]:
    """A day for as many due visits as the depots can hold at all (an assignment to depot-level-day slots)."""
    model = cp_model.CpModel()
    sched = problem.scheduled
    per_slot: dict[tuple[str, int, int], list] = {}
    options = {}
    for s in range(len(sched)):
        options[s] = {k: model.new_bool_var(f"sched_{s}_{k}") for k in problem.allowed[s]}
        model.add_at_most_one(options[s].values())
        key = (sched.at[s, "depot"], int(sched.at[s, "maintenance_level"]))
        for k, var in options[s].items():
            per_slot.setdefault((*key, k), []).append(var)
    for (depot, level, _k), chosen in per_slot.items():
        model.add(sum(chosen) <= problem.capacity.get((depot, level), 0))
    model.maximize(sum(var for days in options.values() for var in days.values()))
    solver = _solver(rules)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return {s: None for s in options}
    return {s: next((k for k, var in days.items() if solver.value(var)), None) for s, days in options.items()}


def _add_hint(model: cp_model.CpModel, hint: _Solution, z, y, xp, xr) -> None:
    """Start the search from a known plan (the greedy one): CP-SAT then only ever improves on it."""
    chosen = {("z", s, k) for s, k in hint.scheduled_day.items() if k is not None}
    chosen |= {("y", v, k, d, level) for (v, k), (d, level) in hint.visits.items()}
    for i, (k, depot, kind) in hint.assigned.items():
        chosen.add(("xp", i, k, depot) if kind == "inspection" else ("xr", i, k))
    for (s, k), var in z.items():
        model.add_hint(var, int(("z", s, k) in chosen))
    for key, var in y.items():
        model.add_hint(var, int(("y", *key) in chosen))
    for key, var in xp.items():
        model.add_hint(var, int(("xp", *key) in chosen))
    for key, var in xr.items():
        model.add_hint(var, int(("xr", *key) in chosen))


# --------------------------------------------------------------------------------------------------
# Plan frames and the entry point
# --------------------------------------------------------------------------------------------------


def plan_frame(problem: _Problem, solution: _Solution, vehicles: pd.DataFrame, scored_day: date, method: str) -> pd.DataFrame:
    """The plan as planners read it: visit rows taking slots, component rows saying what to examine."""
    types = vehicles.drop_duplicates("vehicle_number").set_index("vehicle_number")["vehicle_type"]
    homes = {v: depots[0] for v, depots in problem.depots.items()}
    cands, sched = problem.candidates, problem.scheduled
    rows = []

    def day(k):
        return None if k is None else problem.start + timedelta(days=int(k))

    for s, k in solution.scheduled_day.items():
        vehicle = sched.at[s, "vehicle_number"]
        rows.append(
            dict(
                day=day(k), vehicle_number=vehicle, depot=sched.at[s, "depot"],
                maintenance_level=int(sched.at[s, "maintenance_level"]), kind="scheduled_visit", component=None,
                uses_slot=k is not None, status="planned" if k is not None else "unplaced: no capacity",
                due_day=sched.at[s, "due_day"], merged_levels=sched.at[s, "merged_levels"],
                transfer_cost_eur=0.0,
            )
        )
    for (vehicle, k), (depot, level) in solution.visits.items():
        rows.append(
            dict(
                day=day(k), vehicle_number=vehicle, depot=depot, maintenance_level=level, kind="predictive_visit",
                component=None, uses_slot=True, status="planned", transfer_cost_eur=problem.transfer(vehicle, depot) / 100,
            )
        )
    visit_level = {(v, k): level for (v, k), (_d, level) in solution.visits.items()}
    for s, k in solution.scheduled_day.items():
        visit_level[(sched.at[s, "vehicle_number"], k)] = int(sched.at[s, "maintenance_level"])
    for i, (k, depot, kind) in solution.assigned.items():
        vehicle = cands.at[i, "vehicle_number"]
        avoided = int(problem.value[i, k])
        inspection = int(problem.inspection_cents[i]) if kind == "inspection" else 0
        rows.append(
            dict(
                day=day(k), vehicle_number=vehicle, depot=depot, maintenance_level=visit_level[(vehicle, k)], kind=kind,
                component=cands.at[i, "component"], uses_slot=False, status="planned",
                failure_probability=round(float(cands.at[i, "failure_probability"]), 4),
                remaining_life_days=round(float(cands.at[i, "remaining_life_days"]), 1),
                expected_avoided_cost_eur=avoided / 100, inspection_cost_eur=inspection / 100,
                net_value_eur=(avoided - inspection) / 100, transfer_cost_eur=0.0,
                model_version=cands.at[i, "model_version"],
            )
        )
    frame = pd.DataFrame(rows, columns=INSPECTION_PLAN_COLUMNS)
    frame["scored_day"] = scored_day
    frame["method"] = method
    frame["vehicle_type"] = frame["vehicle_number"].map(types)
    frame["home_depot"] = frame["vehicle_number"].map(homes)
    frame["uses_slot"] = frame["uses_slot"].astype(bool)
    frame["maintenance_level"] = frame["maintenance_level"].astype("int64")
    for column in ("expected_avoided_cost_eur", "inspection_cost_eur", "transfer_cost_eur", "net_value_eur"):
        frame[column] = frame[column].astype(float).fillna(0.0)
    order = {kind: n for n, kind in enumerate(PLAN_KINDS)}
    frame = frame.assign(_order=frame["kind"].map(order)).sort_values(
        ["day", "depot", "vehicle_number", "_order", "component"], na_position="last", kind="stable"
    )
    return frame.drop(columns="_order").reset_index(drop=True)


def plan_inspections(
    predictions: pd.DataFrame, vehicles: pd.DataFrame, maintenance_due: pd.DataFrame, rules: InspectionRules
) -> InspectionPlan:
    """The inspection plan for the window after the predictions' scored day, by CP-SAT, with the greedy rule beside it."""
    scored_day = _check_predictions(predictions, vehicles)
    problem = build_problem(predictions, vehicles, maintenance_due, rules)

    started = time.perf_counter()
    greedy = solve_greedy(problem)
    greedy_time = time.perf_counter() - started
    solved, info = solve_cp_sat(problem, rules, hint=greedy)

    method = "cp-sat"
    if not info["found"] or _rank(problem, solved) < _rank(problem, greedy):
        solved, method = greedy, "greedy (cp-sat found no better plan)"
    best, base = objective_cents(problem, solved), objective_cents(problem, greedy)
    bound = info["bound_cents"]
    summary = {
        "scored_day": scored_day.isoformat(),
        "first_day": problem.start.isoformat(),
        "window_days": problem.window,
        "predictions": int(len(predictions)),
        "candidates": int(len(problem.candidates)),
        "scheduled_visits_due": int(len(problem.scheduled)),
        "scheduled_visits_unplaced": int(sum(k is None for k in solved.scheduled_day.values())),
        "predictive_visits": len(solved.visits),
        "inspections": sum(kind == "inspection" for _k, _d, kind in solved.assigned.values()),
        "ride_alongs": sum(kind == "ride_along" for _k, _d, kind in solved.assigned.values()),
        "method": method,
        "solver_status": info["status"],
        "solver_variables": info["variables"],
        "solve_time_s": info["solve_time_s"],
        "solve_cpu_s": info["solve_cpu_s"],
        "greedy_time_s": round(greedy_time, 3),
        "objective_eur": best / 100,
        "greedy_objective_eur": base / 100,
        "risk_without_plan_eur": round(problem.risk_eur, 2),
        "expected_cost_eur": round(problem.risk_eur - best / 100, 2),
        "gain_over_greedy_eur": (best - base) / 100,
        "greedy_gap": (best - base) / best if best > 0 else 0.0,
        "solver_bound_eur": bound / 100 if bound is not None else None,
        "optimality_gap": None if bound is None else max(bound - best, 0) / bound if bound > 0 else 0.0,
    }
    return InspectionPlan(
        plan=plan_frame(problem, solved, vehicles, scored_day, "cp-sat" if method == "cp-sat" else "greedy"),
        greedy=plan_frame(problem, greedy, vehicles, scored_day, "greedy"),
        summary=summary,
    )
