"""The spine every layer leans on: configuration from the environment, consistent contracts, imports from the repo."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from railpm import contracts
from railpm.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_environment_overrides_nested_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("RAILPM_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("RAILPM_MODEL__HORIZON_DAYS", "14")
    monkeypatch.setenv("RAILPM_SPARK__MASTER", "spark://127.0.0.1:7077")
    monkeypatch.setenv("RAILPM_FLEET__DIRT__DROPOUT", "0.05")
    s = Settings()
    assert s.data_root == tmp_path
    assert s.lake_dir == tmp_path / "lake"
    assert s.model.horizon_days == 14
    assert s.spark.master == "spark://127.0.0.1:7077"
    assert s.fleet.dirt.dropout == 0.05
    assert s.tracking_uri == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"


def test_invalid_environment_value_is_refused(monkeypatch):
    monkeypatch.setenv("RAILPM_PLAN__SERVICE_LEVEL", "1.5")
    with pytest.raises(ValidationError, match="service_level"):
        Settings()


def test_packages_resolve_to_this_repository():
    """jobs/, models/ and expectations/ ship as railpm.*: an installed package named `models` cannot shadow them."""
    for name, folder in [("railpm", "railpm"), ("railpm.jobs", "jobs"), ("railpm.models", "models"),
                         ("railpm.expectations", "expectations")]:
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().parent == REPO_ROOT / folder, name


def test_reference_data_is_consistent():
    for vehicle_type, fitted in contracts.VEHICLE_TYPE_COMPONENTS.items():
        assert vehicle_type in contracts.VEHICLE_TYPES
        assert set(fitted) <= set(contracts.COMPONENTS)
    for signal in contracts.SIGNALS:
        assert signal.component in contracts.COMPONENTS
        assert signal.min < signal.max
    for fault in contracts.FAULT_CODES:
        assert fault.subsystem in contracts.SUBSYSTEMS
        assert fault.typical_grade in contracts.GRADES
        if fault.component is not None:
            assert contracts.COMPONENT_SUBSYSTEM[fault.component] == fault.subsystem, fault.code
    # every component has exactly one precursor warning (C) and one failure code (A/B)
    for component in contracts.COMPONENTS:
        grades = sorted(f.typical_grade for f in contracts.FAULT_CODES if f.component == component)
        assert len(grades) == 2 and grades[1] == "C" and grades[0] in contracts.MAJOR_GRADES, component
    levels = contracts.MAINTENANCE_LEVELS
    assert [m.level for m in levels] == [1, 2, 3, 4, 5]
    assert all(a.interval_days < b.interval_days and a.interval_km < b.interval_km for a, b in zip(levels, levels[1:]))


def test_every_feed_has_its_key_and_time_column_among_its_columns():
    for feed in [*contracts.FEEDS.values(), contracts.FAILURES, contracts.PREDICTIONS]:
        names = feed.column_names
        assert len(names) == len(set(names)), feed.name
        assert set(feed.key) <= set(names), feed.name
        assert feed.time_column is None or feed.time_column in names
        for column in feed.columns:
            assert column.name not in feed.key or not column.nullable, (feed.name, column.name)
