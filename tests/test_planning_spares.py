"""Spares plan: stock levels reach the service level in simulated demand, pooling never needs more stock."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from railpm import contracts
from railpm.planning.examples import example_inputs
from railpm.planning.spares import SparesRules, lead_time_demand, plan_spares, simulate_service, stock_for_fill_rate

SCORED = date(2025, 6, 1)
Z = 4.0
"""Simulated fill rates are checked to within Z standard errors of the estimate (from the simulation itself):
one-sided, a correct stock level fails such a check with probability 3e-5, and the seeds are fixed."""


def own_simulation(p: np.ndarray, stock: int, cycles: int, rng) -> tuple[float, float]:
    """Fill rate over simulated lead times and its standard error (delta method for a ratio of sums)."""
    demand = (rng.random((cycles, len(p))) < p).sum(axis=1)
    served = np.minimum(demand, stock)
    fill = served.sum() / demand.sum()
    se = (served - fill * demand).std(ddof=1) / np.sqrt(cycles) / demand.mean()
    return fill, se


@pytest.mark.parametrize("seed, size, service_level", [(0, 6, 0.95), (1, 40, 0.95), (2, 150, 0.9), (3, 25, 0.99)])
def test_stock_level_reaches_the_fill_rate_in_simulation_and_is_the_smallest_that_does(seed, size, service_level):
    rng = np.random.default_rng(seed)
    p = np.where(rng.random(size) < 0.2, rng.beta(2, 3, size), rng.beta(1, 40, size))
    level = stock_for_fill_rate(p, service_level)
    fill, se = own_simulation(p, level.stock, 40_000, rng)
    assert fill >= service_level - Z * se
    assert abs(fill - level.fill_rate) <= Z * se
    if level.stock > 0:
        fewer, se_fewer = own_simulation(p, level.stock - 1, 40_000, rng)
        assert fewer <= service_level + Z * se_fewer


def test_fill_rate_matches_enumerating_every_outcome():
    p = np.array([0.05, 0.4, 0.1, 0.7, 0.02, 0.3, 0.15, 0.5])
    outcomes = np.array(list(itertools.product([0, 1], repeat=len(p))))
    weight = np.prod(np.where(outcomes == 1, p, 1 - p), axis=1)
    demand = outcomes.sum(axis=1)
    for target in (0.5, 0.8, 0.95, 0.999):
        level = stock_for_fill_rate(p, target)
        fill_at = lambda s: (weight * np.minimum(demand, s)).sum() / (weight * demand).sum()  # noqa: E731
        assert level.fill_rate == pytest.approx(fill_at(level.stock))
        assert fill_at(level.stock) >= target and (level.stock == 0 or fill_at(level.stock - 1) < target)
        assert level.cycle_service_level == pytest.approx(weight[demand <= level.stock].sum())
    assert stock_for_fill_rate([], 0.95).stock == 0
    assert stock_for_fill_rate([0.0, 0.0], 0.95).stock == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_pooling_never_needs_more_stock_than_separate_depots(seed):
    rng = np.random.default_rng(seed)
    depots = [rng.beta(1, rng.uniform(5, 80), rng.integers(1, 30)) for _ in range(rng.integers(2, 6))]
    for service_level in (0.8, 0.95, 0.99):
        separate = sum(stock_for_fill_rate(p, service_level).stock for p in depots)
        pooled = stock_for_fill_rate(np.concatenate(depots), service_level)
        assert pooled.stock <= separate
        assert pooled.fill_rate >= service_level - 1e-12


@pytest.fixture(scope="module")
def fleet():
    inputs = example_inputs(60, seed=3, scored_day=SCORED, degrading_share=0.15)
    # Planned inspections of the riskiest components, the first at another depot than its home.
    risky = inputs.predictions.nlargest(12, "failure_probability").reset_index(drop=True)
    plan = pd.DataFrame(
        {
            "vehicle_number": risky["vehicle_number"], "component": risky["component"],
            "day": [SCORED + timedelta(days=1 + i % 10) for i in range(len(risky))],
            "depot": [("DEP-SOUTH" if h != "DEP-SOUTH" else "DEP-NORTH") if i == 0 else h for i, h in enumerate(risky["home_depot"])],
            "kind": ["inspection" if i % 2 else "ride_along" for i in range(len(risky))],
        }
    )
    spares = plan_spares(inputs.predictions, plan, inputs.parts, inputs.stock, SparesRules(service_level=0.95))
    return inputs, plan, spares


def test_simulated_demand_is_served_at_the_service_level(fleet):
    _inputs, _plan, spares = fleet
    probabilities = {key: g["probability"].to_numpy() for key, g in spares.demand.groupby(["depot", "part_number"])}
    stock = spares.stock.set_index(["depot", "part_number"])["stock_level"].to_dict()
    simulated = simulate_service(probabilities, stock, cycles=20_000, seed=11)
    assert len(simulated) == len(probabilities) > 40
    assert (simulated["simulated_fill_rate"] >= 0.95 - Z * simulated["standard_error"]).all()
    pooled = simulate_service(
        {part: g["probability"].to_numpy() for part, g in spares.demand.groupby("part_number")},
        spares.pooling.set_index("part_number")["pooled_stock"].to_dict(), cycles=20_000, seed=12,
    )
    assert (pooled["simulated_fill_rate"] >= 0.95 - Z * pooled["standard_error"]).all()


def test_plan_rows_add_up(fleet):
    inputs, _plan, spares = fleet
    stock = spares.stock
    assert (stock[["planned_stock", "fault_driven_stock", "emergency_stock"]] >= 0).all().all()
    assert (stock["planned_stock"] + stock["fault_driven_stock"] + stock["emergency_stock"] == stock["stock_level"]).all()
    assert (stock["reorder_quantity"] == (stock["stock_level"] - stock["on_hand"]).clip(lower=0)).all()
    assert (stock["excess_quantity"] == (stock["on_hand"] - stock["stock_level"]).clip(lower=0)).all()
    assert (stock["fill_rate"] >= 0.95 - 1e-12).all()
    expected = spares.demand.groupby(["depot", "part_number"])["probability"].sum()
    assert stock.set_index(["depot", "part_number"])["expected_demand"].loc[expected.index].to_numpy() == pytest.approx(expected.to_numpy())

    pooling = spares.pooling
    assert (pooling["saving_units"] == pooling["separate_stock"] - pooling["pooled_stock"]).all()
    assert (pooling["saving_units"] >= 0).all()
    assert (pooling["saving_eur"] == pooling["saving_units"] * pooling["unit_cost_eur"]).all()
    separate = stock.groupby("part_number")["stock_level"].sum()
    assert (pooling.set_index("part_number")["separate_stock"] == separate.loc[pooling["part_number"]].to_numpy()).all()
    assert spares.summary["pooling_saving_eur"] == pytest.approx(pooling["saving_eur"].sum())
    assert set(stock.columns) >= {"depot", "part_number", "stock_level", "reorder_quantity"}
    assert set(stock["stock_category"]) <= set(contracts.STOCK_CATEGORIES)
    assert len(stock) == len(inputs.stock)  # every depot and part held or needed has its row


def test_planned_replacements_move_demand_to_the_inspection(fleet):
    inputs, plan, spares = fleet
    inspected = spares.demand.merge(plan[["vehicle_number", "component", "depot"]], on=["vehicle_number", "component"], suffixes=("", "_plan"))
    assert (inspected.groupby(["vehicle_number", "component"])["planned_probability"].sum() > 0).any()
    others = spares.demand.merge(plan[["vehicle_number", "component"]], on=["vehicle_number", "component"], how="left", indicator=True)
    assert (others.loc[others["_merge"] == "left_only", "planned_probability"] == 0).all()

    moved = plan.iloc[0]
    rows = spares.demand.loc[(spares.demand["vehicle_number"] == moved["vehicle_number"]) & (spares.demand["component"] == moved["component"])]
    away = rows.loc[~rows["at_home"]]
    assert list(away["depot"]) == [moved["depot"]] and away["planned_probability"].iloc[0] > 0
    assert rows.loc[rows["at_home"], "planned_probability"].sum() == 0

    # Without the plan every component's demand is fault-driven, at home, and the same total for lead >= horizon.
    alone, _ = lead_time_demand(inputs.predictions, plan.iloc[0:0], inputs.parts, SparesRules())
    assert (alone["planned_probability"] == 0).all() and alone["at_home"].all()
    with_plan = spares.demand.groupby(["vehicle_number", "component"])["probability"].sum()
    without = alone.set_index(["vehicle_number", "component"])["probability"]
    long_lead = alone.merge(inputs.parts, on="part_number")["lead_time_days"].to_numpy() >= 30
    assert with_plan.loc[without.index[long_lead]].to_numpy() == pytest.approx(without[long_lead].to_numpy())


def test_alternative_part_numbers_count_as_stock():
    inputs = example_inputs(8, seed=1, scored_day=SCORED)
    primary = inputs.parts.iloc[0]
    alternative = primary.copy()
    alternative["part_number"] = primary["part_number"][:-3] + "102"
    parts = pd.concat([inputs.parts, alternative.to_frame().T], ignore_index=True).astype(inputs.parts.dtypes.to_dict())
    stock = inputs.stock.copy()
    stock["on_hand"] = 0
    stock = pd.concat([stock, pd.DataFrame([{"depot": "DEP-NORTH", "part_number": alternative["part_number"], "on_hand": 5, "as_of": SCORED}])])
    no_plan = pd.DataFrame(columns=["vehicle_number", "component", "day", "depot", "kind"])
    spares = plan_spares(inputs.predictions, no_plan, parts, stock, SparesRules())
    row = spares.stock.set_index(["depot", "part_number"]).loc[("DEP-NORTH", primary["part_number"])]
    assert row["on_hand"] == 5
    assert alternative["part_number"] not in set(spares.stock["part_number"])


def test_stock_on_order_and_in_transit_is_not_ordered_again_and_transfers_balance_stock_to_the_service_level():
    inputs = example_inputs(40, seed=2, scored_day=SCORED, degrading_share=0.2)
    no_plan = pd.DataFrame(columns=["vehicle_number", "component", "day", "depot", "kind"])
    bare = inputs.stock.assign(on_hand=0)
    needed = plan_spares(inputs.predictions, no_plan, inputs.parts, bare, SparesRules()).stock
    # Each part number's whole need held at one depot (the alphabetically first), nothing anywhere else.
    total = needed.groupby("part_number")["stock_level"].sum()
    first = needed.groupby("part_number")["depot"].min()
    stock = bare.copy()
    stock["on_hand"] = [int(total.get(p, 0)) if d == first.get(p) else 0 for d, p in zip(stock["depot"], stock["part_number"])]
    spares = plan_spares(inputs.predictions, no_plan, inputs.parts, stock, SparesRules(transfer_cost_per_unit=100.0))
    plan = spares.stock.set_index(["depot", "part_number"])
    moves = spares.transfers
    assert len(moves) > 0 and (moves["quantity"] > 0).all() and (moves["from_depot"] != moves["to_depot"]).all()
    assert (moves["transfer_cost_eur"] == moves["quantity"] * 100.0).all()
    after = plan["on_hand"] - plan["transfer_out"] + plan["transfer_in"]
    # Balanced: stock moved exactly covers every depot's level, nothing needs ordering, no sender drops below its level.
    worth_moving = plan["unit_cost_eur"] > 100.0
    assert (after[worth_moving] == plan.loc[worth_moving, "stock_level"]).all()
    assert (plan.loc[worth_moving, "reorder_after_transfers"] == 0).all()
    assert (plan["transfer_in"] <= plan["reorder_quantity"]).all()
    assert spares.summary["transfer_units"] == int(moves["quantity"].sum())

    # What is already ordered or on its way counts: a depot short of 3 with 2 in transit and 1 on order orders none.
    short = needed.loc[needed["stock_level"] >= 3].iloc[0]
    inbound = bare.assign(on_order=0, in_transit=0)
    pick = (inbound["depot"] == short["depot"]) & (inbound["part_number"] == short["part_number"])
    inbound.loc[pick, ["on_order", "in_transit"]] = [1, short["stock_level"] - 1]
    row = plan_spares(inputs.predictions, no_plan, inputs.parts, inbound, SparesRules()).stock.set_index(
        ["depot", "part_number"]).loc[(short["depot"], short["part_number"])]
    assert (row["on_order"], row["in_transit"], row["reorder_quantity"]) == (1, short["stock_level"] - 1, 0)
