"""One typed configuration for railpm, overridable by environment.

Every path, horizon, capacity and service level is read from here so that a deployment changes behaviour
by setting variables (``RAILPM_DATA_ROOT=/lake``, ``RAILPM_SPARK__MASTER=spark://host:7077``,
``RAILPM_MODEL__HORIZON_DAYS=14``) rather than by editing code. Nested sections use ``__`` in the variable
name. Functions below the entry points receive values from a ``Settings`` object, never read the
environment themselves.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DirtRates(BaseModel):
    """Share of records the synthetic generator spoils, per kind of dirt real feeds carry."""

    duplicate: float = Field(0.002, ge=0, le=0.2, description="exact re-sent records")
    late: float = Field(0.002, ge=0, le=0.2, description="records delivered in a later file")
    out_of_order: float = Field(0.01, ge=0, le=0.5, description="records shuffled within a file")
    dropout: float = Field(0.001, ge=0, le=0.2, description="a sensor reading missing (null)")
    stuck: float = Field(0.02, ge=0, le=0.5, description="share of vehicle-signals frozen for one spell")
    wrong_unit: float = Field(0.0005, ge=0, le=0.2, description="a reading sent in the wrong unit")
    unknown_vehicle: float = Field(0.0005, ge=0, le=0.2, description="a vehicle number not in the registry")
    malformed: float = Field(0.0005, ge=0, le=0.2, description="a line that does not parse")

    @classmethod
    def clean(cls) -> DirtRates:
        return cls(**{name: 0.0 for name in cls.model_fields})


class FleetSettings(BaseModel):
    """The built-in synthetic fleet: size, period and randomness."""

    vehicles: int = Field(40, ge=1, description="a small operator's fleet, so the main command runs in minutes; "
                          "benchmarks/ take 100 to 3,000")
    days: int = Field(365, ge=1)
    start: date = date(2025, 1, 1)
    seed: int = 7
    telemetry_format: str = Field("parquet", pattern="^(csv|jsonl|parquet)$")
    vehicles_per_file: int = Field(50, ge=1, description="telemetry is written in files of this many vehicles")
    dirt: DirtRates = DirtRates()


class SparkSettings(BaseModel):
    master: str = "local[*]"
    shuffle_partitions: int = 8
    driver_memory: str = "4g"


class ModelSettings(BaseModel):
    horizon_days: int = Field(30, ge=1, description="predict failure within this many days")
    warning_lead_days: list[int] = [3, 7]
    capacity_top_k_per_week: int = Field(20, ge=1, description="vehicle-components a planner can inspect a week")
    backtest_folds: int = Field(4, ge=2)
    champion_margin: float = Field(0.02, ge=0, description="PR-AUC gain a challenger needs to become champion")
    registered_model_name: str = "railpm-failure"
    cost_unplanned_failure: float = 25_000.0
    cost_inspection: float = 600.0
    cost_needless_replacement: float = 3_000.0
    alert_budget_per_depot_per_day: int = Field(
        3, ge=0, description="alerts a depot can act on per day; the riskiest above the cost threshold get them"
    )
    remaining_life_interval: float = Field(0.8, gt=0, lt=1, description="nominal coverage of the remaining-life interval")
    recipe: dict[str, Any] = Field(
        default_factory=dict,
        description='overrides of the training recipe (railpm.models.pipeline.ModelParams), e.g. {"max_iter": 100}',
    )


class PlanSettings(BaseModel):
    window_days: int = 14
    service_level: float = Field(0.95, gt=0, lt=1)
    default_depot_capacity_per_day: int = Field(4, ge=0, description="inspection slots per depot per day")
    allow_transfers: bool = False
    capacity_per_level: dict[int, int] = Field(
        {2: 4, 3: 2, 4: 1, 5: 1},
        description="inspection slots per depot, day and maintenance level; a level missing here gets"
        " default_depot_capacity_per_day",
    )
    depot_capacity: dict[str, dict[int, int]] = Field(
        {}, description='per-depot overrides of capacity_per_level, e.g. {"DEP-NORTH": {"2": 6}}'
    )
    planned_levels: list[int] = Field(
        [2, 3, 4, 5], description="levels booked into depot slots; lower ones (daily checks) happen at stabling"
    )
    scheduled_advance_days: int = Field(3, ge=0, description="a due scheduled visit may be brought forward this much")
    transfer_cost: float = Field(1_500.0, ge=0, description="EUR to send a vehicle to a depot other than its home")
    solver_time_limit_s: float = Field(20.0, gt=0, description="CP-SAT deterministic time limit (about seconds)")
    solver_seed: int = 0


class TopologySettings(BaseModel):
    """The production topology on one machine (``railpm up``): ports on one loopback address, secrets.

    Passwords and the JWT signing key come from ``RAILPM_TOPOLOGY__DB_PASSWORD``, ``..._AIRFLOW_PASSWORD`` and
    ``..._JWT_SECRET`` when set, else they are generated once and kept in ``<state_dir>/secrets.json`` (0600).
    """

    host: str = Field("127.0.0.1", description="every service binds here: loopback unless a deployment opens it")
    state_dir: Path | None = Field(None, description="databases, logs and PID files; default data_root/topology")
    postgres_port: int = 5433
    airflow_port: int = 8780
    mlflow_port: int = 5050
    spark_master_port: int = 7077
    spark_master_web_port: int = 8781
    spark_worker_web_port: int = 8782
    spark_worker_cores: int = Field(2, ge=1)
    spark_worker_memory: str = "4g"
    airflow_parallelism: int = Field(4, ge=1, description="task slots of the LocalExecutor")
    task_heartbeat_timeout_s: int = Field(
        60, ge=10, description="a task whose runner stopped heartbeating (its scheduler was killed) is failed after this"
    )
    start_timeout_s: float = Field(300, gt=0, description="how long one service may take to answer when started")
    db_password: SecretStr | None = None
    airflow_password: SecretStr | None = None
    jwt_secret: SecretStr | None = None


class ReviewSettings(BaseModel):
    """The review app's accounts and session cookie (``railpm review``, ``railpm users``)."""

    accounts_file: Path | None = Field(None, description="accounts and password hashes; default data_root/review/accounts.json")
    session_secret: SecretStr | None = Field(None, description="signs the session cookie; default generated once beside the accounts")
    session_hours: float = Field(10, gt=0, description="a sign-in lasts one shift")
    secure_cookies: bool | None = Field(
        None, description="send the session cookie over HTTPS only; default on unless the app listens on loopback"
    )


class Settings(BaseSettings):
    """railpm settings; every field can be set as ``RAILPM_<FIELD>`` (nested: ``RAILPM_<SECTION>__<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="RAILPM_", env_nested_delimiter="__", extra="ignore")

    data_root: Path = Path("data")
    catalogue: Path | None = Field(
        None,
        description="JSON domain catalogue (railpm.contracts.Catalogue) of a fleet that is not the built-in railway"
        " one: its vehicle types, components, signals, fault codes and record step",
    )
    mlflow_tracking_uri: str | None = Field(None, description="default: SQLite store under data_root")
    fleet: FleetSettings = FleetSettings()
    spark: SparkSettings = SparkSettings()
    model: ModelSettings = ModelSettings()
    plan: PlanSettings = PlanSettings()
    topology: TopologySettings = TopologySettings()
    review: ReviewSettings = ReviewSettings()

    # Data layers, in the order data moves through them.
    @cached_property
    def landing_dir(self) -> Path:
        return self.data_root / "landing"

    @cached_property
    def truth_dir(self) -> Path:
        """Ground truth of the synthetic fleet (failures, injected dirt): for scoring, never for training."""
        return self.data_root / "truth"

    @cached_property
    def lake_dir(self) -> Path:
        return self.data_root / "lake"

    @cached_property
    def quarantine_dir(self) -> Path:
        return self.data_root / "quarantine"

    @cached_property
    def rejected_files_dir(self) -> Path:
        """Landing files that could not be parsed at all, moved aside whole."""
        return self.data_root / "rejected_files"

    @cached_property
    def runs_dir(self) -> Path:
        """Run records (one JSON per ingest/job run) that reconcile counts."""
        return self.data_root / "runs"

    @cached_property
    def data_docs_dir(self) -> Path:
        return self.data_root / "data_docs"

    @cached_property
    def records_dir(self) -> Path:
        return self.data_root / "records"

    @cached_property
    def predictions_dir(self) -> Path:
        return self.data_root / "predictions"

    @cached_property
    def plans_dir(self) -> Path:
        return self.data_root / "plans"

    @cached_property
    def reports_dir(self) -> Path:
        return self.data_root / "reports"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_root / 'mlflow.db').resolve()}"


def get_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit overrides (e.g. from CLI options) on top."""
    return Settings(**overrides)
