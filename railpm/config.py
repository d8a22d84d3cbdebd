"""One typed configuration for railpm, overridable by environment.

Every path, horizon, capacity and service level is read from here so that a deployment changes behaviour
by setting variables (``RAILPM_DATA_ROOT=/lake``, ``RAILPM_SPARK__MASTER=spark://host:7077``,
``RAILPM_MODEL__HORIZON_DAYS=14``) rather than by editing code. Nested sections use ``__`` in the variable
name. Functions below the entry points receive values from a ``Settings`` object, never read the
environment themselves.
"""

from __future__ import annotations

from datetime import date, datetime
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


class IngestSettings(BaseModel):
    """Bounds on what one landing file may be, and how offset-less times are read.

    A file over a bound is set aside whole in ``rejected_files/`` with the bound it broke: a reader that
    must hold an unbounded field or line in memory is how one poison file stops ingest for good.
    """

    max_file_bytes: int = Field(4 * 1024**3, ge=1, description="largest landing file")
    max_line_bytes: int = Field(1024**2, ge=16, description="longest line of a CSV or JSON-lines file")
    max_field_bytes: int = Field(64 * 1024, ge=1, description="longest single value of any format")
    max_rows: int = Field(20_000_000, ge=1, description="most records in one landing file")
    files_per_task: int = Field(
        12, ge=1,
        description="landing files of one feed that one ingest task takes in turn: a task start costs seconds on a"
        " scheduler, and a retried task skips the files it already ingested (content hash)",
    )
    naive_timestamps: dict[str, str] = Field(
        {},
        description='per feed, how a timestamp without a zone offset is read: "reject" (rule <column>_has_zone)'
        ' or "fleet" (in fleet_time_zone); feeds not named follow naive_timestamps_default',
    )
    naive_timestamps_default: str = Field("reject", pattern="^(reject|fleet)$")
    fleet_time_zone: str = Field("UTC", description="IANA zone the fleet declares its local times in, e.g. Europe/Berlin")

    def naive_time_zone(self, feed: str) -> str | None:
        """The zone offset-less times of ``feed`` are read in, or None when they are refused."""
        rule = self.naive_timestamps.get(feed, self.naive_timestamps_default)
        if rule not in ("reject", "fleet"):
            raise ValueError(f"naive_timestamps[{feed}] must be 'reject' or 'fleet', not {rule!r}")
        return self.fleet_time_zone if rule == "fleet" else None


class ComponentCost(BaseModel):
    """What replacing one component costs, preventively (planned) or after it failed (corrective)."""

    part_eur: float = Field(5_000.0, ge=0, description="the replacement part, EUR")
    preventive_labour_hours: float = Field(6.0, ge=0, description="fitter hours of a planned replacement")
    corrective_labour_hours: float = Field(12.0, ge=0, description="fitter hours after a failure (diagnosis, access)")
    collateral_eur: float = Field(0.0, ge=0, description="other parts a failure damages, EUR (corrective only)")
    grade_a_share: float = Field(0.4, ge=0, le=1, description="share of its in-service failures that are grade A"
                                 " (the rest grade B); used where the failure's grade is not known")


class GradeConsequence(BaseModel):
    """What an in-service failure of one grade costs beyond the repair."""

    delay_minutes: float = Field(0.0, ge=0, description="train delay minutes it causes")
    recovery_eur: float = Field(0.0, ge=0, description="rescue, towing, passenger handling, EUR")
    days_out_of_service: float = Field(0.0, ge=0, description="days the vehicle is unavailable")


def _default_component_costs() -> dict[str, ComponentCost]:
    def c(part, prev_h, corr_h, collateral, a_share):
        return ComponentCost(part_eur=part, preventive_labour_hours=prev_h, corrective_labour_hours=corr_h,
                             collateral_eur=collateral, grade_a_share=a_share)
    return {
        "wheelset": c(14_000, 10, 16, 4_000, 0.8), "bogie": c(85_000, 24, 40, 10_000, 0.8),
        "brake_unit": c(3_200, 4, 8, 500, 0.8), "traction_motor": c(48_000, 16, 24, 5_000, 0.8),
        "pantograph": c(9_500, 4, 8, 6_000, 0.8), "hvac": c(16_000, 8, 12, 0, 0.15),
        "doors": c(2_600, 3, 6, 0, 0.15), "air_compressor": c(11_000, 6, 10, 1_000, 0.8),
        "battery": c(4_200, 2, 4, 0, 0.15),
    }


class CostSettings(BaseModel):
    """The one cost model (``railpm.costs``): thresholds, the backtest, the policy simulation, planning and the
    review app all price actions from here. Amounts in EUR; a component missing from ``components`` gets
    ``default_component``."""

    labour_eur_per_hour: float = Field(85.0, ge=0, description="fitter labour rate, EUR/h")
    delay_eur_per_minute: float = Field(100.0, ge=0, description="penalty and compensation per train delay minute, EUR")
    unavailable_vehicle_eur_per_day: float = Field(
        2_500.0, ge=0, description="cost of a vehicle out of service (spare vehicle, lost service), EUR/day")
    inspection_eur_by_level: dict[int, float] = Field(
        {1: 60.0, 2: 300.0, 3: 600.0, 4: 1_500.0, 5: 3_000.0},
        description="cost of examining one component at a visit of this maintenance level (labour and slot), EUR")
    visit_eur_by_level: dict[int, float] = Field(
        {1: 120.0, 2: 900.0, 3: 4_000.0, 4: 30_000.0, 5: 120_000.0},
        description="cost of one scheduled maintenance visit of this level (the fixed schedule's work), EUR")
    visit_days_out_by_level: dict[int, float] = Field(
        {1: 0.0, 2: 0.25, 3: 1.0, 4: 7.0, 5: 21.0}, description="days a scheduled visit of this level takes the vehicle out")
    spare_transfer_eur_per_unit: float = Field(250.0, ge=0, description="moving one spare part between depots, EUR")
    inspection_days_out: float = Field(0.25, ge=0, description="days a predictive inspection takes the vehicle out")
    preventive_days_out: float = Field(0.5, ge=0, description="days a planned replacement takes the vehicle out")
    detection_probability_by_level: dict[int, float] = Field(
        {1: 0.3, 2: 0.7, 3: 0.85, 4: 0.95, 5: 0.98},
        description="chance a targeted inspection at this level finds a component that would fail within the horizon"
        " (a stated parameter: the synthetic fleet's routine inspections, which look for nothing in particular,"
        " find less)")
    components: dict[str, ComponentCost] = Field(default_factory=_default_component_costs)
    default_component: ComponentCost = ComponentCost()
    consequences: dict[str, GradeConsequence] = Field(
        {"A": GradeConsequence(delay_minutes=120, recovery_eur=5_000, days_out_of_service=3.0),
         "B": GradeConsequence(delay_minutes=20, recovery_eur=1_000, days_out_of_service=1.0),
         "C": GradeConsequence(delay_minutes=0, recovery_eur=0, days_out_of_service=0.0)},
        description="consequence of an in-service failure by fault grade")


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
    task_retry_delay_s: int = Field(
        120, ge=1, description="a failed task's wait before its next try, where its DAG sets none (Airflow's"
        " [core] default_task_retry_delay)"
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
    warm_every_s: float = Field(
        300, ge=0, description="`railpm review` builds every fleet page in the background at start and then this often, so"
        " the first reader after new data does not wait for the reads and figures (0: never)"
    )
    mlflow_ui_url: str | None = Field(
        None, description="where people open the MLflow UI (e.g. http://127.0.0.1:5000 for `mlflow ui`); the model pages"
        " link each run there; default: the tracking URI when it is a server"
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
    history_start: date = Field(
        date(2025, 1, 1),
        description="the deployment's first day of fleet history: the ingest gate quarantines events before it"
        " (`*_in_period`); events after the run's logical date are `*_not_future`",
    )
    as_of: datetime | None = Field(
        None, description="rebuild records as known at this time: lake records ingested later are left out"
    )
    fleet: FleetSettings = FleetSettings()
    spark: SparkSettings = SparkSettings()
    model: ModelSettings = ModelSettings()
    plan: PlanSettings = PlanSettings()
    ingest: IngestSettings = IngestSettings()
    costs: CostSettings = CostSettings()
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
    def deliveries_dir(self) -> Path:
        """A simulated fleet's life as daily drops (``railpm generate --deliveries daily``), replayed into landing/."""
        return self.data_root / "deliveries"

    @cached_property
    def replay_dir(self) -> Path:
        """``railpm replay``'s state: the files delivered and the days done."""
        return self.data_root / "replay"

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
    def held_dir(self) -> Path:
        """Records of vehicles the registry does not know yet, released once it does."""
        return self.data_root / "held"

    @cached_property
    def revisions_dir(self) -> Path:
        """What a re-delivered file (same name, changed content) replaced: the part as it was, and what changed."""
        return self.data_root / "revisions"

    @cached_property
    def runs_dir(self) -> Path:
        """Run records (one JSON per ingest/job run) that reconcile counts."""
        return self.data_root / "runs"

    @cached_property
    def data_docs_dir(self) -> Path:
        return self.data_root / "data_docs"

    @cached_property
    def records_dir(self) -> Path:
        """Records built as known at ``as_of`` go beside the serving ones, never over them."""
        if self.as_of is not None:
            return self.data_root / "records_as_of" / self.as_of.strftime("%Y-%m-%dT%H%M%S")
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
