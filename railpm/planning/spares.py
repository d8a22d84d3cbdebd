"""Spare-parts plan: how many of each part every depot should hold to meet its demand over the lead time.

Demand for a part at a depot over the part's replenishment lead time ``L`` is a sum of independent
Bernoulli trials, one per fitted component (a component needs at most one part in that time): a
Poisson-binomial. Each component's probability comes from its prediction (``risk.failure_cdf``):

- not inspected within ``L``: it may fail, ``P(T <= L)``, fault-driven demand at its home depot;
- inspected on plan day ``k <= L``: it may fail before the inspection, ``P(T <= k)`` (fault-driven, home depot),
  or be found worn and replaced at the inspection, ``P(k < T <= H)`` (planned, at the inspecting depot), or
  fail after the horizon but within ``L`` (fault-driven again).

**Service level** is the *fill rate*: the expected share of the demand over the lead time served from
stock, ``E[min(D, S)] / E[D]``. The stock level is the smallest ``S`` that reaches it. The fill rate is what
a depot lives with (how many failed components wait for a part), and unlike the no-stock-out probability it
makes pooling provably never worse: stock ``sum(S_d)`` held in one pool serves
``E[min(sum D_d, sum S_d)] >= sum E[min(D_d, S_d)]``, so the pooled level never exceeds the separate ones.
The probability of no stock-out in the lead time is reported beside it.

The stock level is split by what it covers: ``planned`` (expected planned replacements, rounded),
``fault-driven`` (expected failures, rounded) and ``emergency`` (the rest: the buffer that carries the depot
to the service level). Alternative part numbers of the same component and vehicle type are interchangeable,
so their stock on hand counts; orders go to the primary part number (the first in catalogue order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from railpm.errors import BadInputError
from railpm.planning.risk import failure_cdf, scored_day_of

SPARES_PLAN_COLUMNS = [
    "scored_day", "depot", "part_number", "vehicle_type", "component", "description", "stock_category",
    "lead_time_days", "unit_cost_eur", "fitted_components", "expected_fault_demand", "expected_planned_demand",
    "expected_demand", "stock_level", "planned_stock", "fault_driven_stock", "emergency_stock", "fill_rate",
    "cycle_service_level", "on_hand", "on_order", "in_transit", "reorder_quantity", "excess_quantity", "reorder_value_eur",
    "transfer_in", "transfer_out", "reorder_after_transfers",
]
TRANSFER_COLUMNS = [
    "scored_day", "part_number", "vehicle_type", "component", "from_depot", "to_depot", "quantity", "unit_cost_eur",
    "transfer_cost_eur", "reorder_value_avoided_eur",
]
INBOUND = ("on_order", "in_transit")
"""Optional stock columns: parts ordered from the supplier and parts on their way; both count towards a depot's
position (on hand + on order + in transit), so what is already coming is not ordered again."""
POOLING_COLUMNS = [
    "scored_day", "part_number", "vehicle_type", "component", "unit_cost_eur", "depots", "separate_stock",
    "pooled_stock", "saving_units", "saving_eur", "pooled_fill_rate",
]
DEMAND_COLUMNS = [
    "depot", "part_number", "vehicle_number", "component", "at_home", "fault_probability", "planned_probability",
    "probability",
]
FILL_TOLERANCE = 1e-12
"""Floating-point slack when comparing an exact fill rate with the target."""


@dataclass(frozen=True)
class SparesRules:
    service_level: float = 0.95
    horizon_days: int = 30
    interval_coverage: float = 0.8
    transfer_cost_per_unit: float = 250.0

    @classmethod
    def from_settings(cls, settings, **overrides) -> SparesRules:
        values = dict(
            service_level=settings.plan.service_level,
            horizon_days=settings.model.horizon_days,
            interval_coverage=settings.model.remaining_life_interval,
            transfer_cost_per_unit=settings.costs.spare_transfer_eur_per_unit,
        )
        values.update(overrides)
        return cls(**values)


@dataclass
class SparesPlan:
    stock: pd.DataFrame
    """One row per depot and part number, ``SPARES_PLAN_COLUMNS``."""
    pooling: pd.DataFrame
    """One row per part number: separate vs pooled stock at the same fill rate, ``POOLING_COLUMNS``."""
    transfers: pd.DataFrame
    """What to move between depots before ordering: ``TRANSFER_COLUMNS``."""
    demand: pd.DataFrame
    """The Bernoulli trials behind every stock level, ``DEMAND_COLUMNS`` (for audit and simulation)."""
    summary: dict


@dataclass(frozen=True)
class StockLevel:
    stock: int
    fill_rate: float
    cycle_service_level: float
    mean_demand: float


def stock_for_fill_rate(probabilities, service_level: float) -> StockLevel:
    """The smallest stock whose expected fill rate over the lead time reaches the service level."""
    p = np.asarray(probabilities, dtype=float)
    p = p[p > 0]
    mean = float(p.sum())
    if mean <= 0:
        return StockLevel(0, 1.0, 1.0, 0.0)
    demand = stats.poisson_binom(p)
    # E[min(D, S)] = sum_{j < S} P(D > j), for S = 1 .. n.
    fill = np.cumsum(demand.sf(np.arange(len(p)))) / mean
    stock = int(np.argmax(fill >= service_level - FILL_TOLERANCE)) + 1
    return StockLevel(stock, float(min(fill[stock - 1], 1.0)), float(demand.cdf(stock)), mean)


def primary_parts(parts: pd.DataFrame) -> pd.DataFrame:
    """The part number each (vehicle type, component) is ordered by: the first in catalogue order."""
    missing = [c for c in ("part_number", "component", "vehicle_type", "unit_cost_eur", "lead_time_days") if c not in parts.columns]
    if missing:
        raise BadInputError(f"parts catalogue lacks columns {missing}", rule="columns_present")
    return parts.sort_values("part_number").drop_duplicates(["vehicle_type", "component"]).reset_index(drop=True)


def lead_time_demand(
    predictions: pd.DataFrame, inspection_plan: pd.DataFrame, parts: pd.DataFrame, rules: SparesRules
) -> tuple[pd.DataFrame, list[str]]:
    """Each fitted component's chance of needing a part within its part's lead time, by depot and source."""
    catalogue = primary_parts(parts)
    preds = predictions.merge(
        catalogue[["vehicle_type", "component", "part_number", "lead_time_days"]], on=["vehicle_type", "component"], how="left"
    )
    unmapped = sorted(
        {f"{t}/{c}" for t, c in preds.loc[preds["part_number"].isna(), ["vehicle_type", "component"]].itertuples(index=False)}
    )
    preds = preds.loc[preds["part_number"].notna()].reset_index(drop=True)
    scored = pd.to_datetime(preds["scored_day"]).dt.date
    inspected = inspection_plan.loc[inspection_plan["kind"].isin(["inspection", "ride_along"])] if len(inspection_plan) else inspection_plan
    if len(inspected):
        inspected = inspected[["vehicle_number", "component", "day", "depot"]].rename(columns={"depot": "plan_depot"})
        preds = preds.merge(inspected, on=["vehicle_number", "component"], how="left")
        plan_day = np.array(
            [(pd.Timestamp(d).date() - s).days if pd.notna(d) else np.nan for d, s in zip(preds["day"], scored)], dtype=float
        )
    else:
        preds["plan_depot"] = None
        plan_day = np.full(len(preds), np.nan)

    lead = preds["lead_time_days"].to_numpy(float)
    horizon = float(rules.horizon_days)
    grid = np.unique(np.concatenate([lead, [horizon], plan_day[np.isfinite(plan_day)]]))
    cdf = failure_cdf(grid, preds, horizon_days=horizon, coverage=rules.interval_coverage)
    rows = np.arange(len(preds))

    def at(days):
        return cdf[rows, np.searchsorted(grid, days)]

    by_lead = at(lead)
    planned_in_time = np.isfinite(plan_day) & (plan_day <= lead)
    safe_day = np.where(planned_in_time, plan_day, horizon)
    by_plan, by_horizon = at(safe_day), at(np.full(len(preds), horizon))
    planned = np.where(planned_in_time, np.maximum(by_horizon - by_plan, 0.0), 0.0)
    fault = np.where(planned_in_time, by_plan + np.maximum(by_lead - by_horizon, 0.0), by_lead)

    home = preds["home_depot"].to_numpy(object)
    plan_depot = np.where(planned_in_time, preds["plan_depot"].to_numpy(object), home)
    same = plan_depot == home
    base = {"part_number": preds["part_number"], "vehicle_number": preds["vehicle_number"], "component": preds["component"]}
    home_rows = pd.DataFrame({**base, "depot": home, "at_home": True, "fault_probability": fault, "planned_probability": np.where(same, planned, 0.0)})
    away = pd.DataFrame({**base, "depot": plan_depot, "at_home": False, "fault_probability": 0.0, "planned_probability": planned}).loc[~same]
    demand = pd.concat([home_rows, away], ignore_index=True)
    demand["probability"] = np.clip(demand["fault_probability"] + demand["planned_probability"], 0.0, 1.0)
    return demand[DEMAND_COLUMNS], unmapped


def _half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def plan_spares(
    predictions: pd.DataFrame,
    inspection_plan: pd.DataFrame,
    parts: pd.DataFrame,
    stock: pd.DataFrame,
    rules: SparesRules,
) -> SparesPlan:
    """Stock level, its split, reorder quantity per depot and part, and what pooling the depots would save."""
    scored_day = scored_day_of(predictions)
    demand, unmapped = lead_time_demand(predictions, inspection_plan, parts, rules)
    catalogue = primary_parts(parts).set_index("part_number")
    fitted_to = parts.set_index("part_number")[["vehicle_type", "component"]]

    # Stock on hand per depot and (vehicle type, component): alternative part numbers count too.
    stock = stock.assign(**{c: stock[c].fillna(0) if c in stock.columns else 0 for c in INBOUND})
    held_all = stock.merge(fitted_to, left_on="part_number", right_index=True, how="inner")
    held_all = held_all.groupby(["depot", "vehicle_type", "component"])[["on_hand", *INBOUND]].sum()
    on_hand = held_all["on_hand"]

    groups = {key: frame["probability"].to_numpy() for key, frame in demand.groupby(["depot", "part_number"], sort=True)}
    expected = demand.groupby(["depot", "part_number"])[["fault_probability", "planned_probability"]].sum()
    fitted = demand.loc[demand["at_home"]].groupby(["depot", "part_number"]).size()
    keys = set(groups)
    for depot, vehicle_type, component in on_hand.index:
        match = catalogue.loc[(catalogue["vehicle_type"] == vehicle_type) & (catalogue["component"] == component)]
        keys |= {(depot, part) for part in match.index}

    rows = []
    for depot, part in sorted(keys):
        spec = catalogue.loc[part]
        level = stock_for_fill_rate(groups.get((depot, part), []), rules.service_level)
        fault_mean, planned_mean = (
            expected.loc[(depot, part)].tolist() if (depot, part) in expected.index else (0.0, 0.0)
        )
        planned_stock = min(level.stock, _half_up(planned_mean))
        fault_stock = min(level.stock - planned_stock, _half_up(fault_mean))
        key = (depot, spec["vehicle_type"], spec["component"])
        held = int(on_hand.get(key, 0))
        inbound = {c: int(held_all[c].get(key, 0)) for c in INBOUND}
        reorder = max(level.stock - held - sum(inbound.values()), 0)
        rows.append(
            {
                "depot": depot, "part_number": part, "vehicle_type": spec["vehicle_type"], "component": spec["component"],
                "description": spec.get("description"), "stock_category": spec.get("stock_category"),
                "lead_time_days": int(spec["lead_time_days"]), "unit_cost_eur": float(spec["unit_cost_eur"]),
                "fitted_components": int(fitted.get((depot, part), 0)),
                "expected_fault_demand": fault_mean, "expected_planned_demand": planned_mean,
                "expected_demand": level.mean_demand, "stock_level": level.stock, "planned_stock": planned_stock,
                "fault_driven_stock": fault_stock, "emergency_stock": level.stock - planned_stock - fault_stock,
                "fill_rate": level.fill_rate, "cycle_service_level": level.cycle_service_level, "on_hand": held,
                **inbound, "reorder_quantity": reorder, "excess_quantity": max(held - level.stock, 0),
                "reorder_value_eur": reorder * float(spec["unit_cost_eur"]),
            }
        )
    plan = pd.DataFrame(rows, columns=SPARES_PLAN_COLUMNS[1:])
    plan.insert(0, "scored_day", scored_day)
    plan, transfers = balance_by_transfers(plan, rules.transfer_cost_per_unit)

    pool_rows = []
    for part, frame in demand.groupby("part_number", sort=True):
        pooled = stock_for_fill_rate(frame["probability"].to_numpy(), rules.service_level)
        separate = plan.loc[plan["part_number"] == part]
        separate_stock = int(separate["stock_level"].sum())
        spec = catalogue.loc[part]
        saving = separate_stock - pooled.stock
        pool_rows.append(
            {
                "part_number": part, "vehicle_type": spec["vehicle_type"], "component": spec["component"],
                "unit_cost_eur": float(spec["unit_cost_eur"]), "depots": int((separate["expected_demand"] > 0).sum()),
                "separate_stock": separate_stock, "pooled_stock": pooled.stock, "saving_units": saving,
                "saving_eur": saving * float(spec["unit_cost_eur"]), "pooled_fill_rate": pooled.fill_rate,
            }
        )
    pooling = pd.DataFrame(pool_rows, columns=POOLING_COLUMNS[1:])
    pooling.insert(0, "scored_day", scored_day)
    summary = {
        "service_level": rules.service_level,
        "depot_parts": int(len(plan)),
        "stock_units": int(plan["stock_level"].sum()),
        "stock_value_eur": float((plan["stock_level"] * plan["unit_cost_eur"]).sum()),
        "reorder_lines": int((plan["reorder_quantity"] > 0).sum()),
        "reorder_units": int(plan["reorder_quantity"].sum()),
        "reorder_value_eur": float(plan["reorder_value_eur"].sum()),
        "pooling_saving_units": int(pooling["saving_units"].sum()),
        "pooling_saving_eur": float(pooling["saving_eur"].sum()),
        "transfer_lines": int(len(transfers)),
        "transfer_units": int(transfers["quantity"].sum()),
        "transfer_cost_eur": float(transfers["transfer_cost_eur"].sum()),
        "reorder_after_transfers_units": int(plan["reorder_after_transfers"].sum()),
        "unmapped_components": unmapped,
    }
    return SparesPlan(stock=plan, pooling=pooling, transfers=transfers, demand=demand, summary=summary)


def balance_by_transfers(plan: pd.DataFrame, cost_per_unit: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move spare stock from depots holding more than their level to depots short of theirs, per part number,
    where a move costs less than the part: the largest shortfall is served first from the largest surplus.
    A sender never drops below its own stock level, so every depot keeps its service level; what transfers
    cannot cover is still ordered (``reorder_after_transfers``)."""
    plan = plan.copy()
    plan["transfer_in"] = 0
    plan["transfer_out"] = 0
    rows = []
    for part, group in plan.groupby("part_number", sort=True):
        unit = float(group["unit_cost_eur"].iloc[0])
        if unit <= cost_per_unit:
            continue
        surplus = {i: int(n) for i, n in group["excess_quantity"].items() if n > 0}
        short = {i: int(n) for i, n in group["reorder_quantity"].items() if n > 0}
        for to in sorted(short, key=lambda i: (-short[i], plan.at[i, "depot"])):
            for frm in sorted(surplus, key=lambda i: (-surplus[i], plan.at[i, "depot"])):
                moved = min(short[to], surplus[frm])
                if moved <= 0:
                    continue
                short[to] -= moved
                surplus[frm] -= moved
                plan.at[to, "transfer_in"] += moved
                plan.at[frm, "transfer_out"] += moved
                rows.append({"scored_day": plan.at[to, "scored_day"], "part_number": part,
                             "vehicle_type": plan.at[to, "vehicle_type"], "component": plan.at[to, "component"],
                             "from_depot": plan.at[frm, "depot"], "to_depot": plan.at[to, "depot"], "quantity": moved,
                             "unit_cost_eur": unit, "transfer_cost_eur": moved * cost_per_unit,
                             "reorder_value_avoided_eur": moved * unit})
    plan["reorder_after_transfers"] = plan["reorder_quantity"] - plan["transfer_in"]
    return plan[SPARES_PLAN_COLUMNS], pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def simulate_service(
    probabilities: Mapping[object, np.ndarray], stock: Mapping[object, int], *, cycles: int, seed: int
) -> pd.DataFrame:
    """Monte-Carlo check of stock levels: draw every component's demand over ``cycles`` lead times.

    Returns per key the simulated fill rate with its standard error (delta method for the ratio
    ``sum served / sum demand``) and the share of lead times without a stock-out.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for key in sorted(probabilities, key=str):
        p = np.asarray(probabilities[key], dtype=float)
        level = int(stock[key])
        demand = np.zeros(cycles, dtype=np.int64)
        for chunk in np.array_split(np.arange(len(p)), max(1, len(p) // 256)):
            demand += (rng.random((cycles, len(chunk))) < p[chunk]).sum(axis=1)
        served = np.minimum(demand, level)
        total = demand.sum()
        fill = served.sum() / total if total else 1.0
        residual = served - fill * demand
        se = float(residual.std(ddof=1) / np.sqrt(cycles) / demand.mean()) if total else 0.0
        rows.append(
            {"key": key, "stock_level": level, "simulated_fill_rate": float(fill), "standard_error": se,
             "simulated_no_stockout": float((demand <= level).mean()), "mean_demand": float(demand.mean())}
        )
    return pd.DataFrame(rows)
