"""Planning benchmark: CP-SAT against the greedy rule, solve times, and the spares' simulated service level.

    .venv/bin/python benchmarks/planning.py                      # 100 and 1,000 vehicles
    .venv/bin/python benchmarks/planning.py --vehicles 100 --transfers

Synthetic predictions come from ``railpm.planning.examples`` (mostly healthy components, some degrading
ones with a consistent remaining life, every vehicle's routine visit due around the window). Depot
capacity is the configured default scaled with the fleet (the defaults suit about 100 vehicles). The
spares' fill rate is checked by simulating every component's demand over 20,000 lead times.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from railpm.config import Settings
from railpm.planning.examples import example_inputs
from railpm.planning.inspections import InspectionRules, plan_inspections
from railpm.planning.maintenance import DepotCapacity
from railpm.planning.spares import SparesRules, plan_spares, simulate_service


def bench(vehicles: int, transfers: bool, time_limit: float, seed: int, cycles: int) -> dict:
    settings = Settings()
    scale = max(1, round(vehicles / 100))
    capacity = DepotCapacity({level: slots * scale for level, slots in settings.plan.capacity_per_level.items()})
    rules = InspectionRules.from_settings(settings, capacity=capacity, allow_transfers=transfers, time_limit_s=time_limit)
    inputs = example_inputs(vehicles, seed=seed)

    started = time.perf_counter()
    inspection = plan_inspections(inputs.predictions, inputs.vehicles, inputs.maintenance_due, rules)
    plan_seconds = time.perf_counter() - started

    started = time.perf_counter()
    spares = plan_spares(inputs.predictions, inspection.plan, inputs.parts, inputs.stock, SparesRules.from_settings(settings))
    spares_seconds = time.perf_counter() - started
    probabilities = {key: g["probability"].to_numpy() for key, g in spares.demand.groupby(["depot", "part_number"])}
    stock = spares.stock.set_index(["depot", "part_number"])["stock_level"].to_dict()
    simulated = simulate_service(probabilities, stock, cycles=cycles, seed=seed)
    pooled = simulate_service(
        {part: g["probability"].to_numpy() for part, g in spares.demand.groupby("part_number")},
        spares.pooling.set_index("part_number")["pooled_stock"].to_dict(), cycles=cycles, seed=seed + 1,
    )
    demand = simulated["mean_demand"].to_numpy()
    s = inspection.summary
    return {
        "vehicles": vehicles, "transfers": transfers, "predictions": s["predictions"], "candidates": s["candidates"],
        "variables": s["solver_variables"], "scheduled": s["scheduled_visits_due"], "unplaced": s["scheduled_visits_unplaced"],
        "visits": s["predictive_visits"], "inspections": s["inspections"], "ride_alongs": s["ride_alongs"],
        "cp_sat_eur": s["objective_eur"], "greedy_eur": s["greedy_objective_eur"], "gap": s["greedy_gap"],
        "status": s["solver_status"], "optimality_gap": s["optimality_gap"], "solve_s": s["solve_time_s"], "solve_cpu_s": s["solve_cpu_s"],
        "greedy_s": s["greedy_time_s"], "plan_s": plan_seconds, "spares_s": spares_seconds,
        "depot_parts": len(spares.stock), "target": spares.summary["service_level"],
        "fill_min": simulated["simulated_fill_rate"].min(),
        "fill_weighted": float(np.average(simulated["simulated_fill_rate"], weights=demand)),
        "fill_worst_z": float(((simulated["simulated_fill_rate"] - spares.summary["service_level"]) / simulated["standard_error"]).min()),
        "no_stockout_mean": simulated["simulated_no_stockout"].mean(),
        "pooled_fill_min": pooled["simulated_fill_rate"].min(),
        "stock_units": spares.summary["stock_units"], "pool_units": spares.summary["pooling_saving_units"],
        "pool_eur": spares.summary["pooling_saving_eur"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--transfers", action="store_true", help="also allow transfers between depots")
    parser.add_argument("--time-limit", type=float, default=Settings().plan.solver_time_limit_s, help="CP-SAT deterministic time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cycles", type=int, default=20_000, help="simulated lead times per depot and part")
    args = parser.parse_args()

    print("inspection plan: CP-SAT vs greedy (expected avoided failure cost net of inspection and transfer costs)")
    print(f"{'vehicles':>8} {'transfers':>9} {'cands':>6} {'vars':>7} {'sched':>6} {'visits':>6} {'insp':>5} {'ride':>5} "
          f"{'CP-SAT EUR':>12} {'greedy EUR':>12} {'gain':>6} {'status':>9} {'opt.gap':>7} {'solve s':>8} {'cpu s':>7} {'greedy s':>8}")
    rows = []
    for vehicles in args.vehicles:
        for transfers in (False, True) if args.transfers else (False,):
            r = bench(vehicles, transfers, args.time_limit, args.seed, args.cycles)
            rows.append(r)
            print(f"{r['vehicles']:>8} {str(r['transfers']):>9} {r['candidates']:>6} {r['variables']:>7} "
                  f"{r['scheduled'] - r['unplaced']:>3}/{r['scheduled']:<3}{r['visits']:>6} {r['inspections']:>5} {r['ride_alongs']:>5} "
                  f"{r['cp_sat_eur']:>12,.0f} {r['greedy_eur']:>12,.0f} {r['gap']:>6.2%} {r['status']:>9} "
                  f"{'n/a' if r['optimality_gap'] is None else format(r['optimality_gap'], '.2%'):>7} {r['solve_s']:>8.2f} {r['solve_cpu_s']:>7.2f} {r['greedy_s']:>8.3f}", flush=True)
    print()
    print(f"spares plan: fill-rate target, checked over {args.cycles:,} simulated lead times per depot and part")
    print(f"{'vehicles':>8} {'rows':>5} {'time s':>7} {'target':>6} {'min fill':>8} {'worst z':>7} {'weighted':>8} "
          f"{'no-stockout':>11} {'pooled min':>10} {'stock':>6} {'pool saves':>17}")
    for r in rows:
        if r["transfers"]:
            continue
        print(f"{r['vehicles']:>8} {r['depot_parts']:>5} {r['spares_s']:>7.2f} {r['target']:>6.0%} {r['fill_min']:>8.2%} "
              f"{r['fill_worst_z']:>7.2f} {r['fill_weighted']:>8.2%} {r['no_stockout_mean']:>11.2%} {r['pooled_fill_min']:>10.2%} "
              f"{r['stock_units']:>6} {r['pool_units']:>5} / EUR {r['pool_eur']:>9,.0f}")
    print("\nsolve s: wall clock, model building and both CP-SAT phases; cpu s: this process's CPU time for the same"
          " (the two differ on a shared machine).")
    print("worst z: the lowest (simulated - target) / standard error over all depot-parts; above -4 is within noise.")


if __name__ == "__main__":
    main()
