"""Shared fixtures: a private data root per test, and one small synthetic fleet per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from railpm.config import DirtRates, FleetSettings, Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose every data layer lives under a fresh temporary folder."""
    return Settings(data_root=tmp_path / "data")


def small_fleet_settings(**dirt) -> FleetSettings:
    """A fleet small enough for unit tests yet with several failures of most components."""
    rates = DirtRates(**dirt) if dirt else DirtRates()
    return FleetSettings(vehicles=12, days=120, seed=11, vehicles_per_file=6, dirt=rates)
