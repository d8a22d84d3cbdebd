"""Run a suite with Great Expectations and say, per rule, which rows broke it.

GX is the validator of record: every verdict comes from a GX validation, and each failed expectation is
validated with result format COMPLETE and ``unexpected_index_column_names=[ROW_ID]``, so it lists the
record numbers of its unexpected rows. Two things keep this fast on half-million-row files:

- the pandas engine copies the whole batch frame for each metric it computes, so the suite is validated as
  narrow batches, one per group of expectations that read the same columns (a column, its typed twin, its
  run length, the row condition's column);
- most expectations pass, and COMPLETE costs several extra metrics per expectation, so each batch is first
  validated with BOOLEAN_ONLY and only the expectations that failed are validated again with COMPLETE.

The per-batch results are merged back into one suite result, which is what Data Docs render.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from railpm.errors import RailpmError
from railpm.expectations.suites import ROW_ID, rule_of

RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_ID],
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 20,
}


@dataclass
class SuiteVerdict:
    """The merged GX result and, per rule, the record numbers (``ROW_ID``) that broke it."""

    result: object
    """great_expectations ExpectationSuiteValidationResult for the whole suite."""
    failed_rows: dict[str, np.ndarray] = field(default_factory=dict)
    table_failures: list[str] = field(default_factory=list)
    """Rules on the table itself (e.g. its columns) that failed: the whole file is bad."""


@functools.lru_cache(maxsize=1)
def gx_context():
    """One ephemeral GX context per process: no project folder, no analytics, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints each pandas batch smaller than HASH_THRESHOLD bytes by hashing every value (a
    # lineage marker railpm does not use); on string columns that costs more than the validation itself.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.config.analytics_enabled = False
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("landing")
    return context


def _batch_definition(asset_name: str, batch_name: str):
    source = gx_context().data_sources.get("landing")
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition(batch_name)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(batch_name)


def _base(column: str) -> str:
    """A derived column's landing column: ``odometer_km__value`` -> ``odometer_km``."""
    return column.split("__", 1)[0]


def _domain_columns(expectation) -> list[str]:
    kwargs = expectation.configuration.kwargs
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
    columns += list(kwargs.get("column_list") or [])
    condition = getattr(expectation, "row_condition", None)
    if condition is not None and hasattr(condition, "column"):
        columns.append(condition.column.name)
    return columns


def _is_table_level(expectation) -> bool:
    return type(expectation).__name__.startswith("ExpectTable")


_TABLE = ("<table>",)
_partitions: dict[int, tuple] = {}


def _part_suite(name: str, expectations: list):
    """A suite of fresh copies (built from configurations), with ids to match results back to them."""
    import great_expectations as gx

    part = gx.ExpectationSuite(name=name, expectations=[e.configuration for e in expectations])
    for expectation in part.expectations:  # GX returns results in its own order
        expectation.id = str(uuid.uuid4())
    return part


def _partition(suite) -> list[tuple[tuple[str, ...], list, object]]:
    """The suite split into part suites, one per set of landing columns read; built once per suite."""
    cached = _partitions.get(id(suite))
    if cached is not None and cached[0] is suite:
        return cached[1]
    groups: dict[tuple[str, ...], list] = {}
    for expectation in suite.expectations:
        key = _TABLE if _is_table_level(expectation) else tuple(sorted({_base(c) for c in _domain_columns(expectation)}))
        groups.setdefault(key, []).append(expectation)
    parts = [(key, expectations, _part_suite(suite.name, expectations)) for key, expectations in groups.items()]
    if len(_partitions) >= 8:
        _partitions.clear()
    _partitions[id(suite)] = (suite, parts)
    return parts


def _unexpected_rows(result: dict) -> np.ndarray:
    """Record numbers from ``unexpected_index_list`` in either of the shapes GX returns it."""
    rows: list = []
    for entry in result.get("unexpected_index_list") or []:
        value = entry[ROW_ID] if isinstance(entry, dict) else entry
        rows.extend(value if isinstance(value, list) else [value])
    return np.asarray(rows, dtype="int64")


def validate_frame(suite, frame: pd.DataFrame, *, asset_name: str, batch_name: str) -> SuiteVerdict:
    """Validate ``frame`` (landing columns + derived columns + ``ROW_ID``) against ``suite`` with GX."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    landing_columns = [c for c in frame.columns if not c.startswith("_") and "__" not in c]
    definition = _batch_definition(asset_name, batch_name)
    by_id = {}
    meta = None
    for key, expectations, part in _partition(suite):
        if key == _TABLE:
            columns = landing_columns
        else:
            columns = [ROW_ID] + [c for c in frame.columns if c != ROW_ID and _base(c) in key]
        batch = definition.get_batch(batch_parameters={"dataframe": frame[columns]})
        quick = batch.validate(part, result_format={"result_format": "BOOLEAN_ONLY"})
        meta = meta or quick.meta
        outcomes = _in_suite_order(part, quick)
        failed = [i for i, outcome in enumerate(outcomes) if not outcome.success]
        if failed:
            detail = _part_suite(suite.name, [expectations[i] for i in failed])
            for i, outcome in zip(failed, _in_suite_order(detail, batch.validate(detail, result_format=RESULT_FORMAT))):
                outcomes[i] = outcome
        for expectation, outcome in zip(expectations, outcomes):
            by_id[id(expectation)] = outcome

    verdict = SuiteVerdict(result=None)
    ordered = []
    for expectation in suite.expectations:
        outcome = by_id[id(expectation)]
        ordered.append(outcome)
        rule = rule_of(expectation)
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            raise RailpmError(
                f"Great Expectations could not evaluate rule {rule} ({expectation.expectation_type}) on "
                f"{batch_name}: {outcome.exception_info.get('exception_message')}"
            )
        if outcome.success:
            continue
        if _is_table_level(expectation):
            verdict.table_failures.append(rule)
            continue
        rows = _unexpected_rows(outcome.result)
        if rows.size == 0 and outcome.result.get("unexpected_count"):
            raise RailpmError(f"rule {rule} failed on {batch_name} but GX returned no unexpected row numbers")
        previous = verdict.failed_rows.get(rule)
        verdict.failed_rows[rule] = rows if previous is None else np.union1d(previous, rows)

    successful = sum(bool(r.success) for r in ordered)
    verdict.result = ExpectationSuiteValidationResult(
        success=successful == len(ordered),
        results=ordered,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": len(ordered),
            "successful_expectations": successful,
            "unsuccessful_expectations": len(ordered) - successful,
            "success_percent": 100.0 * successful / len(ordered) if ordered else None,
        },
        meta=meta or {},
    )
    return verdict


def _in_suite_order(part, result) -> list:
    """GX results may come back in any order: match them to the part suite's expectations by id."""
    by_config_id = {r.expectation_config.id: r for r in result.results}
    out = []
    for expectation in part.expectations:
        outcome = by_config_id.get(expectation.id)
        if outcome is None:
            raise RailpmError(f"GX returned no result for {expectation.expectation_type} ({rule_of(expectation)})")
        out.append(outcome)
    return out
