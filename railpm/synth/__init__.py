"""A synthetic railway fleet: landing files as real feeds deliver them, and the ground truth behind them."""

from railpm.synth.fleet import FleetSummary, generate_fleet
from railpm.synth.summary import fleet_summary_table, print_fleet_summary

__all__ = ["FleetSummary", "fleet_summary_table", "generate_fleet", "print_fleet_summary"]
