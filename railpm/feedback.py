"""Engineers' feedback on predictions, and the audit trail from a prediction to what became of it.

An engineer confirms or dismisses a prediction (with a reason when dismissing) and, after an inspection,
records the finding. Each entry is one Parquet file under ``lake/feedback/`` (contract
``contracts.FEEDBACK``), created exclusively and made read-only: entries are never rewritten or deleted, a
correction is a newer entry, and the trail shows who said what when. An entity in charge of maintenance has
to be able to show, for any prediction, the decision taken on it and the outcome: ``trace_predictions``
joins prediction -> planned inspection -> decision -> finding -> failure or not.

``training_labels`` is how the next training uses the feedback (the rule is stated there).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from railpm import contracts
from railpm.arrow import arrow_schema
from railpm.errors import BadInputError, RailpmError
from railpm.layers import feedback_dir_of, lake_table, read_predictions, read_table

MAX_REASON_CHARS = 500
MIN_DISMISS_REASON_CHARS = 5
MAX_USER_CHARS = 80
WORN_FINDINGS = ("component_worn", "replaced")
"""Findings that say the component was on its way to failing."""

TRACE_COLUMNS = [
    "scored_day", "vehicle_number", "component", "model_version", "failure_probability", "risk_band", "alert",
    "planned_day", "planned_depot", "planned_kind", "planned_level", "decision", "decided_by", "decided_at",
    "decision_reason", "decisions_recorded", "finding", "inspected_on", "finding_by", "failed_at", "outcome",
]

FEEDBACK_SCHEMA = arrow_schema(contracts.FEEDBACK)


@dataclass(frozen=True)
class Feedback:
    """One entry as an engineer gives it; ``record_feedback`` adds the id and the time."""

    kind: str
    vehicle_number: str
    component: str
    recorded_by: str
    scored_day: date | None = None
    model_version: str | None = None
    finding: str | None = None
    inspected_on: date | None = None
    reason: str | None = None
    planned_day: date | None = None
    planned_depot: str | None = None


def _bad(field: str, value, problem: str) -> BadInputError:
    """The error names field, value and rule for logs and the CLI; ``field`` and ``problem`` let a form say it in words."""
    error = BadInputError(f"feedback field {field!r} = {value!r}: {problem}", rule=f"feedback_{field}")
    error.field, error.problem = field, problem
    return error


def validate_feedback(
    entry: Feedback, vehicles: pd.DataFrame, *, recorded_at: datetime, predictions: pd.DataFrame | None = None
) -> None:
    """Refuse an entry that breaks a rule, naming the field, its value and the rule."""
    if entry.kind not in contracts.FEEDBACK_KINDS:
        raise _bad("kind", entry.kind, f"must be one of {', '.join(contracts.FEEDBACK_KINDS)}")
    user = (entry.recorded_by or "").strip()
    if not user:
        raise _bad("recorded_by", entry.recorded_by, "who records the entry must be named")
    if len(user) > MAX_USER_CHARS:
        raise _bad("recorded_by", entry.recorded_by, f"longer than {MAX_USER_CHARS} characters")
    registry = vehicles.drop_duplicates("vehicle_number").set_index("vehicle_number")["vehicle_type"]
    if entry.vehicle_number not in registry.index:
        raise _bad("vehicle_number", entry.vehicle_number, "not in the vehicle registry")
    fitted = contracts.VEHICLE_TYPE_COMPONENTS[registry[entry.vehicle_number]]
    if entry.component not in fitted:
        raise _bad(
            "component", entry.component,
            f"not a component of {registry[entry.vehicle_number]} vehicles (allowed: {', '.join(fitted)})",
        )
    reason = (entry.reason or "").strip()
    if len(reason) > MAX_REASON_CHARS:
        raise _bad("reason", f"{reason[:40]}...", f"longer than {MAX_REASON_CHARS} characters ({len(reason)})")
    today = recorded_at.astimezone(timezone.utc).date()

    if entry.kind in (*contracts.FEEDBACK_DECISIONS, *contracts.ALERT_STEPS):
        if entry.kind == "plan" and entry.planned_day is None:
            raise _bad("planned_day", None, "planning an alert needs the inspection's day")
        if entry.kind != "plan" and (entry.planned_day is not None or entry.planned_depot is not None):
            raise _bad("planned_day", entry.planned_day, f"a {entry.kind} carries no planned inspection")
        if entry.scored_day is None:
            raise _bad("scored_day", None, f"a {entry.kind} refers to a prediction: give its scored day")
        if entry.scored_day > today:
            raise _bad("scored_day", entry.scored_day.isoformat(), "lies in the future")
        if not (entry.model_version or "").strip():
            raise _bad("model_version", entry.model_version, f"a {entry.kind} refers to a prediction: give its model version")
        if entry.planned_day is not None and entry.planned_day < entry.scored_day:
            raise _bad("planned_day", entry.planned_day.isoformat(), f"is before the prediction's day {entry.scored_day}")
        if entry.finding is not None or entry.inspected_on is not None:
            raise _bad("finding", entry.finding, f"a {entry.kind} carries no finding; record the finding separately")
        if entry.kind == "dismiss" and len(reason) < MIN_DISMISS_REASON_CHARS:
            raise _bad("reason", entry.reason, f"dismissing needs a reason of at least {MIN_DISMISS_REASON_CHARS} characters")
        if predictions is not None:
            match = predictions.loc[
                (pd.to_datetime(predictions["scored_day"]).dt.date == entry.scored_day)
                & (predictions["vehicle_number"] == entry.vehicle_number)
                & (predictions["component"] == entry.component)
            ]
            if match.empty:
                raise _bad(
                    "scored_day", entry.scored_day.isoformat(),
                    f"no prediction for {entry.vehicle_number}/{entry.component} on that day",
                )
            if entry.model_version not in set(match["model_version"]):
                raise _bad(
                    "model_version", entry.model_version,
                    f"the prediction on {entry.scored_day} was made by {', '.join(sorted(set(match['model_version'])))}",
                )
    else:
        if entry.planned_day is not None or entry.planned_depot is not None:
            raise _bad("planned_day", entry.planned_day, "a finding carries no planned inspection")
        if entry.finding not in contracts.INSPECTION_FINDINGS:
            raise _bad("finding", entry.finding, f"must be one of {', '.join(contracts.INSPECTION_FINDINGS)}")
        if entry.inspected_on is None:
            raise _bad("inspected_on", None, "a finding needs the day of the inspection")
        if entry.inspected_on > today:
            raise _bad("inspected_on", entry.inspected_on.isoformat(), "lies in the future")
        if entry.scored_day is not None and entry.inspected_on < entry.scored_day:
            raise _bad("inspected_on", entry.inspected_on.isoformat(), f"is before the prediction's day {entry.scored_day}")


def record_feedback(
    entry: Feedback,
    feedback_dir: Path,
    vehicles: pd.DataFrame,
    *,
    predictions: pd.DataFrame | None = None,
    recorded_at: datetime | None = None,
) -> Path:
    """Validate and append one entry as its own read-only Parquet file; returns the file."""
    recorded_at = (recorded_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    validate_feedback(entry, vehicles, recorded_at=recorded_at, predictions=predictions)
    feedback_id = uuid.uuid4().hex
    row = asdict(entry) | {
        "feedback_id": feedback_id,
        "recorded_at": recorded_at,
        "recorded_by": entry.recorded_by.strip(),
        "reason": (entry.reason or "").strip() or None,
    }
    table = pa.Table.from_pylist([{name: row[name] for name in FEEDBACK_SCHEMA.names}], schema=FEEDBACK_SCHEMA)
    feedback_dir.mkdir(parents=True, exist_ok=True)
    path = feedback_dir / f"feedback-{recorded_at:%Y%m%dT%H%M%S%fZ}-{feedback_id[:12]}.parquet"
    with open(path, "xb") as sink:  # exclusive: an existing entry is never overwritten
        pq.write_table(table, sink)
    os.chmod(path, 0o444)
    return path


def read_feedback(feedback_dir: Path) -> pd.DataFrame:
    """Every entry so far, oldest first."""
    files = sorted(str(f) for f in feedback_dir.glob("*.parquet")) if feedback_dir.is_dir() else []
    if not files:
        return FEEDBACK_SCHEMA.empty_table().to_pandas()
    frame = pads.dataset(files, schema=FEEDBACK_SCHEMA, format="parquet").to_table().to_pandas()
    return frame.sort_values(["recorded_at", "feedback_id"]).reset_index(drop=True)


def observed_failures(work_orders: pd.DataFrame, faults: pd.DataFrame) -> pd.DataFrame:
    """Component failures by the one definition the labels and RAMS figures use (``railpm.failures``)."""
    from railpm.failures import failures

    return failures(work_orders, faults)[["vehicle_number", "component", "failed_at"]]


def _day(values) -> pd.Series:
    """Any day-like column as naive midnight timestamps, so dates, timestamps and strings compare."""
    return pd.to_datetime(pd.Series(values), utc=True).dt.tz_localize(None).dt.normalize()


def trace_predictions(
    predictions: pd.DataFrame,
    plans: pd.DataFrame,
    feedback: pd.DataFrame,
    failures: pd.DataFrame,
    *,
    horizon_days: int,
    as_of: date,
) -> pd.DataFrame:
    """Per prediction: its planned inspection, the latest decision on it, the finding, and failure or not.

    The finding is the first inspection of the component from the scored day to the end of the horizon (the
    latest entry for that inspection, so a corrected finding wins); the outcome is ``failed`` if the
    component failed within the horizon after the scored day, ``no failure`` once the horizon has passed
    without one, ``open`` before that.
    """
    key = ["scored_day", "vehicle_number", "component"]
    trace = predictions[[*key, "model_version", "failure_probability", "risk_band", "alert"]].copy()
    trace["scored_day"] = _day(trace["scored_day"])
    trace["_row"] = range(len(trace))
    horizon = pd.Timedelta(days=horizon_days)

    planned = plans.loc[plans["kind"].isin(["inspection", "ride_along"])] if len(plans) else plans
    planned = pd.DataFrame(
        {
            "scored_day": _day(planned["scored_day"]) if len(planned) else pd.Series(dtype="datetime64[ns]"),
            "vehicle_number": planned.get("vehicle_number"), "component": planned.get("component"),
            "planned_day": _day(planned["day"]) if len(planned) else pd.Series(dtype="datetime64[ns]"),
            "planned_depot": planned.get("depot"), "planned_kind": planned.get("kind"),
            "planned_level": planned.get("maintenance_level"),
        }
    ).drop_duplicates(key)
    trace = trace.merge(planned, on=key, how="left")

    decisions = feedback.loc[feedback["kind"].isin(contracts.FEEDBACK_DECISIONS)].copy()
    decisions["scored_day"] = _day(decisions["scored_day"])
    counts = decisions.groupby([*key, "model_version"]).size().rename("decisions_recorded")
    latest = (
        decisions.sort_values("recorded_at")
        .groupby([*key, "model_version"])
        .last()[["kind", "recorded_by", "recorded_at", "reason"]]
        .rename(columns={"kind": "decision", "recorded_by": "decided_by", "recorded_at": "decided_at", "reason": "decision_reason"})
        .join(counts)
        .reset_index()
    )
    trace = trace.merge(latest, on=[*key, "model_version"], how="left")
    trace["decisions_recorded"] = trace["decisions_recorded"].fillna(0).astype("int64")

    findings = feedback.loc[feedback["kind"] == "finding"].copy()
    findings = pd.DataFrame(
        {
            "vehicle_number": findings["vehicle_number"], "component": findings["component"],
            "finding_for": _day(findings["scored_day"]), "inspected_on": _day(findings["inspected_on"]),
            "finding": findings["finding"], "finding_by": findings["recorded_by"], "_recorded": findings["recorded_at"],
        }
    )
    matched = trace[["_row", "scored_day", "vehicle_number", "component"]].merge(findings, on=["vehicle_number", "component"])
    matched = matched.loc[
        (matched["inspected_on"] >= matched["scored_day"])
        & (matched["inspected_on"] <= matched["scored_day"] + horizon)
        & (matched["finding_for"].isna() | (matched["finding_for"] == matched["scored_day"]))
    ]
    first = matched.sort_values(["_row", "inspected_on", "_recorded"], ascending=[True, True, False]).drop_duplicates("_row")
    trace = trace.merge(first[["_row", "finding", "inspected_on", "finding_by"]], on="_row", how="left")

    fails = pd.DataFrame(
        {"vehicle_number": failures["vehicle_number"], "component": failures["component"], "failed_at": pd.to_datetime(failures["failed_at"], utc=True)}
    )
    hit = trace[["_row", "scored_day", "vehicle_number", "component"]].merge(fails, on=["vehicle_number", "component"])
    failed_day = hit["failed_at"].dt.tz_localize(None).dt.normalize()
    hit = hit.loc[(failed_day > hit["scored_day"]) & (failed_day <= hit["scored_day"] + horizon)]
    hit = hit.sort_values(["_row", "failed_at"]).drop_duplicates("_row")
    trace = trace.merge(hit[["_row", "failed_at"]], on="_row", how="left")

    horizon_over = trace["scored_day"] + horizon <= pd.Timestamp(as_of)
    trace["outcome"] = "open"
    trace.loc[horizon_over, "outcome"] = "no failure"
    trace.loc[trace["failed_at"].notna(), "outcome"] = "failed"
    for column in ("scored_day", "planned_day", "inspected_on"):
        trace[column] = trace[column].dt.date
    return trace.sort_values("_row")[TRACE_COLUMNS].reset_index(drop=True)


ALERT_STATUS = ("new", "acknowledged", "planned", "closed")
STEP_STATUS = {"acknowledge": "acknowledged", "confirm": "acknowledged", "plan": "planned", "finding": "closed",
               "dismiss": "closed"}
"""What each kind of entry makes of an alert: a confirmation acknowledges it; a finding or a dismissal closes it."""
CLOSINGS = {"replaced": "confirmed and replaced", "component_worn": "confirmed, component worn",
            "no_fault_found": "found nothing", "deferred": "deferred", "dismiss": "dismissed"}
STATUS_COLUMNS = ["status", "status_at", "status_by", "planned_day", "planned_depot", "closed_as", "closing_reason"]


def alert_status(alerts: pd.DataFrame, feedback: pd.DataFrame, *, horizon_days: int) -> pd.DataFrame:
    """Each alert's place in its life (new -> acknowledged -> planned -> closed), from the feedback trail.

    The rule: an alert of a vehicle-component scored on day d is the same case as any entry on that
    vehicle-component about a prediction of ``[d - horizon, d]`` (a finding without a prediction counts by its
    inspection day), because an alert raised again the next day is still the one being worked on; the latest
    such entry sets the status. So a closed case stays closed over the horizon, and a new alert after it is new.
    ``alerts`` needs vehicle_number, component, scored_day; the result is ``alerts`` with ``STATUS_COLUMNS``.
    """
    out = alerts.reset_index(drop=True).copy()
    out["_row"] = range(len(out))
    steps = feedback.loc[feedback["kind"].isin(list(STEP_STATUS))].copy()
    for column in ("planned_day", "planned_depot"):
        if column not in steps.columns:
            steps[column] = None
    steps["_about"] = _day(steps["scored_day"]).fillna(_day(steps["inspected_on"])) if len(steps) else pd.Series(dtype="datetime64[ns]")
    cases = out[["_row", "vehicle_number", "component", "scored_day"]].assign(_alert_day=_day(out["scored_day"]).to_numpy())
    matched = cases.drop(columns="scored_day").merge(steps, on=["vehicle_number", "component"])
    horizon = pd.Timedelta(days=horizon_days)
    matched = matched.loc[(matched["_about"] <= matched["_alert_day"]) & (matched["_about"] >= matched["_alert_day"] - horizon)]
    latest = matched.sort_values(["_row", "recorded_at"]).drop_duplicates("_row", keep="last").set_index("_row")
    planned = matched.loc[matched["kind"] == "plan"].sort_values(["_row", "recorded_at"]).drop_duplicates("_row", keep="last").set_index("_row")
    out["status"] = latest["kind"].map(STEP_STATUS).reindex(out["_row"]).fillna("new").to_numpy()
    out["status_at"] = latest["recorded_at"].reindex(out["_row"]).to_numpy()
    out["status_by"] = latest["recorded_by"].reindex(out["_row"]).to_numpy()
    out["planned_day"] = _day(planned["planned_day"]).dt.date.reindex(out["_row"]).to_numpy() if len(planned) else None
    out["planned_depot"] = planned["planned_depot"].reindex(out["_row"]).to_numpy() if len(planned) else None
    closing = latest["finding"].where(latest["kind"] == "finding", latest["kind"]).map(CLOSINGS)
    out["closed_as"] = closing.where(latest["kind"].map(STEP_STATUS) == "closed").reindex(out["_row"]).to_numpy()
    out["closing_reason"] = latest["reason"].where(latest["kind"].map(STEP_STATUS) == "closed").reindex(out["_row"]).to_numpy()
    return out.drop(columns="_row")


def training_labels(
    records: pd.DataFrame, feedback: pd.DataFrame, *, horizon_days: int, judged_weight: float = 2.0
) -> pd.DataFrame:
    """Component-day records with labels completed from findings and sample weights from decisions.

    The rule (facts first, judgements only where they agree with facts):

    1. A finding of ``component_worn`` or ``replaced`` on day ``i`` completes the *censored* labels (null:
       the preventive replacement hid whether the component would have failed) of that vehicle-component's
       days in ``[i - horizon, i)`` as ``True``: a worn component removed before failing is the failure the
       model should have seen coming. Observed labels are never changed. ``no_fault_found`` and ``deferred``
       change no label (no failure was hidden by them).
    2. A decision that the observed label bears out gets ``judged_weight``: a dismissed prediction whose
       component did not fail (a confirmed false alarm, so the next model raises fewer) and a confirmed one
       whose component failed. A decision the facts contradict changes nothing. Every other row weighs 1.

    ``records`` needs vehicle_number, day, component and ``contracts.LABEL_FAILS_WITHIN_HORIZON``; the result
    adds ``sample_weight`` and ``label_source`` (``observed``, ``finding`` or ``censored``).
    """
    label = contracts.LABEL_FAILS_WITHIN_HORIZON
    missing = [c for c in ("vehicle_number", "day", "component", label) if c not in records.columns]
    if missing:
        raise BadInputError(f"records lack columns {missing}", rule="record_contract")
    out = records.copy()
    out[label] = out[label].astype("boolean")
    day = _day(out["day"]).to_numpy()
    row = pd.DataFrame({"_row": range(len(out)), "vehicle_number": out["vehicle_number"].to_numpy(), "component": out["component"].to_numpy(), "_day": day})
    out["label_source"] = pd.Series(["observed"] * len(out), dtype="object").where(out[label].notna().to_numpy(), "censored").to_numpy()
    out["sample_weight"] = 1.0

    worn = feedback.loc[(feedback["kind"] == "finding") & feedback["finding"].isin(WORN_FINDINGS)]
    if len(worn):
        found = pd.DataFrame({"vehicle_number": worn["vehicle_number"], "component": worn["component"], "_found": _day(worn["inspected_on"])})
        censored = row.loc[out[label].isna().to_numpy()]
        hits = censored.merge(found, on=["vehicle_number", "component"])
        hits = hits.loc[(hits["_day"] >= hits["_found"] - pd.Timedelta(days=horizon_days)) & (hits["_day"] < hits["_found"])]
        positions = hits["_row"].unique()
        out.iloc[positions, out.columns.get_loc(label)] = True
        out.iloc[positions, out.columns.get_loc("label_source")] = "finding"

    decisions = feedback.loc[feedback["kind"].isin(contracts.FEEDBACK_DECISIONS)].sort_values("recorded_at")
    if len(decisions):
        latest = pd.DataFrame(
            {"vehicle_number": decisions["vehicle_number"], "component": decisions["component"], "_day": _day(decisions["scored_day"]), "decision": decisions["kind"]}
        ).drop_duplicates(["vehicle_number", "component", "_day"], keep="last")
        judged = row.merge(latest, on=["vehicle_number", "component", "_day"])
        failed = out[label].fillna(False).to_numpy(bool)[judged["_row"]]
        survived = (~out[label]).fillna(False).to_numpy(bool)[judged["_row"]]
        agrees = ((judged["decision"] == "confirm").to_numpy() & failed) | ((judged["decision"] == "dismiss").to_numpy() & survived)
        out.iloc[judged.loc[agrees, "_row"].to_numpy(), out.columns.get_loc("sample_weight")] = judged_weight
    return out


__all__ = [
    "ALERT_STATUS", "alert_status", "Feedback", "FEEDBACK_SCHEMA", "TRACE_COLUMNS", "feedback_dir_of", "observed_failures", "read_feedback",
    "record_feedback", "trace_predictions", "training_labels", "validate_feedback",
]


# --------------------------------------------------------------------------------------------------
# The step's I/O: the same functions on the data layers named by Settings (used by `railpm feedback`)
# --------------------------------------------------------------------------------------------------


def run_record_feedback(settings, entry: Feedback, *, recorded_at: datetime | None = None) -> Path:
    """Record an entry against the lake's registry and, for a decision, that day's predictions.

    A decision without a model version takes the version of the prediction it refers to.
    """
    vehicles = read_table(lake_table(settings, contracts.VEHICLES), ["vehicle_number", "vehicle_type"])
    predictions = None
    if entry.kind in (*contracts.FEEDBACK_DECISIONS, *contracts.ALERT_STEPS) and entry.scored_day is not None \
            and settings.predictions_dir.is_dir():
        try:
            predictions = read_predictions(settings.predictions_dir, entry.scored_day)
        except BadInputError:
            raise
        except RailpmError as exc:  # no predictions for that day: the decision refers to nothing
            raise _bad("scored_day", entry.scored_day.isoformat(), str(exc)) from exc
        if not entry.model_version:
            versions = predictions.loc[
                (predictions["vehicle_number"] == entry.vehicle_number) & (predictions["component"] == entry.component),
                "model_version",
            ].unique()
            if len(versions) == 1:
                entry = Feedback(**(asdict(entry) | {"model_version": str(versions[0])}))
    return record_feedback(entry, feedback_dir_of(settings.lake_dir), vehicles, predictions=predictions, recorded_at=recorded_at)


def run_trace(settings, *, scored_day: date, vehicle_number: str | None = None, component: str | None = None) -> pd.DataFrame:
    """The trail of one day's predictions (optionally one vehicle / component) as the lake knows it now.

    "Now" is the last day the fault log reaches, so a replayed or synthetic fleet is judged by its own clock;
    with ``settings.as_of`` it is that time, and faults ingested or feedback recorded later are left out.
    """
    import pyarrow.compute as pc

    from railpm.arrow import INGESTED_AT
    from railpm.planning.run import read_inspection_plans

    predictions = read_predictions(settings.predictions_dir, scored_day)
    if vehicle_number is not None:
        predictions = predictions.loc[predictions["vehicle_number"] == vehicle_number]
    if component is not None:
        predictions = predictions.loc[predictions["component"] == component]
    if predictions.empty:
        raise RailpmError(f"no prediction on {scored_day} for {vehicle_number or 'any vehicle'}/{component or 'any component'}")
    faults_dir = lake_table(settings, contracts.FAULTS)
    since = pd.Timestamp(scored_day, tz="UTC")
    known = pc.field(INGESTED_AT) <= pd.Timestamp(settings.as_of) if settings.as_of else None

    def read_since(folder, columns, time_column, wanted=None):
        wanted = pc.field(time_column) >= since if wanted is None else wanted & (pc.field(time_column) >= since)
        return read_table(folder, columns, filter=wanted if known is None else wanted & known)

    try:
        as_of = pd.to_datetime(read_table(faults_dir, ["ts"], filter=known)["ts"], utc=True).max().date()
        faults = read_since(faults_dir, ["vehicle_number", "ts", "fault_code", "grade"], "ts", pc.field("grade").isin(list(contracts.MAJOR_GRADES)))
    except RailpmError:
        as_of, faults = scored_day, pd.DataFrame(columns=["vehicle_number", "ts", "fault_code", "grade"])
    order_columns = ["work_order_id", "vehicle_number", "component", "action", "opened_at", "closed_at"]
    try:
        orders = read_since(settings.lake_dir / contracts.WORK_ORDERS.name, order_columns, "opened_at")
    except RailpmError:
        orders = pd.DataFrame(columns=order_columns)
    feedback = read_feedback(feedback_dir_of(settings.lake_dir))
    if settings.as_of:
        as_of = settings.as_of.date()
        feedback = feedback.loc[pd.to_datetime(feedback["recorded_at"], utc=True) <= pd.Timestamp(settings.as_of)]
    return trace_predictions(
        predictions,
        read_inspection_plans(settings.plans_dir),
        feedback,
        observed_failures(orders, faults),
        horizon_days=settings.model.horizon_days,
        as_of=as_of,
    )
