"""Adapters: public predictive-maintenance data sets mapped onto railpm's landing feeds.

An adapter writes a data set as the landing files a fleet would deliver (registry, telemetry, fault log, work
orders) plus the fleet's domain catalogue, and the settings that go with it (``railpm.env``: catalogue, data
period, horizon). Nothing downstream knows which data set it is: ``railpm ingest``, ``railpm records``,
``railpm train`` and ``railpm score`` run unchanged once those settings are exported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from railpm import contracts
from railpm.config import Settings
from railpm.synth.landing import write_feed_file

CATALOGUE_FILE = "catalogue.json"
ENV_FILE = "railpm.env"


@dataclass
class Landing:
    """A data set as railpm's feeds, in its own catalogue, with the settings the pipeline needs for it."""

    catalogue: contracts.Catalogue
    start: date
    """First day (record step) of any event: the fleet period the ingest checks times against."""
    days: int
    horizon_days: int
    feeds: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Feed name -> rows with the feed's columns (a feed the data set lacks is simply absent)."""

    def environment(self, settings: Settings) -> dict[str, str]:
        root = settings.data_root.resolve()
        return {
            "RAILPM_DATA_ROOT": str(root),
            "RAILPM_CATALOGUE": str(root / CATALOGUE_FILE),
            "RAILPM_HISTORY_START": self.start.isoformat(),
            "RAILPM_FLEET__START": self.start.isoformat(),
            "RAILPM_FLEET__DAYS": str(self.days),
            "RAILPM_MODEL__HORIZON_DAYS": str(self.horizon_days),
        }


def feed_in(catalogue: contracts.Catalogue, feed: contracts.Feed) -> contracts.Feed:
    """The feed's columns under ``catalogue`` (telemetry carries that catalogue's signals), whatever catalogue
    this process was started with: only the writer's column list depends on it."""
    columns = list(feed.columns)
    if feed.name == contracts.TELEMETRY.name:
        columns = [c for c in columns if c.name not in contracts.SIGNAL_BY_COLUMN] + [
            contracts.Column(s.column, "float64", unit=s.unit, min=s.min, max=s.max, description=s.description)
            for s in catalogue.signals
        ]
    # The file may hold nulls where this process's contract forbids them: the ingest judges, not the writer.
    return dataclasses.replace(feed, columns=tuple(dataclasses.replace(c, nullable=True) for c in columns))


def write_landing(landing: Landing, settings: Settings, name: str) -> dict[str, Path]:
    """Write the feeds as Parquet landing files ``landing/<feed>/<name>.parquet``, the catalogue and
    ``railpm.env`` under the data root; returns what was written."""
    settings.data_root.mkdir(parents=True, exist_ok=True)
    written = {}
    for feed_name, rows in landing.feeds.items():
        feed = feed_in(landing.catalogue, contracts.FEEDS[feed_name])
        path = settings.landing_dir / feed_name / f"{name}.parquet"
        write_feed_file(rows.reindex(columns=feed.column_names), feed, path, "parquet")
        written[feed_name] = path
    catalogue = settings.data_root / CATALOGUE_FILE
    catalogue.write_text(landing.catalogue.to_json(), encoding="utf-8")
    env = settings.data_root / ENV_FILE
    env.write_text("".join(f"{k}={v}\n" for k, v in landing.environment(settings).items()), encoding="utf-8")
    written["catalogue"], written["settings"] = catalogue, env
    return written


def utc(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True)
