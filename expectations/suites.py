"""Great Expectations suites as code: one function per feed, every rule derived from ``railpm.contracts``.

A suite never restates a column list, a unit, a range or an allowed set: it walks the feed's contract.
What the contract cannot know comes in as :class:`SuiteInputs` when the suite is built (the registry's
vehicle numbers, the catalogue's part numbers, the fleet period and the run's reference time), so that
the same suite validates the same file the same way on every run and never looks at the clock.

Every expectation names the rule it enforces in ``meta["rule"]``: quarantined rows and run records say
which rule a row broke by that name. The names below are a public interface (quarantine files, run records
and the dirt checks downstream use them): ``signal_present``, ``signal_not_stuck``, ``<column>_in_range``,
``vehicle_known``, ``malformed_line`` and the others defined here.

Some rules read derived columns (see :mod:`railpm.expectations.derived`) because the landing values are
strings: ``<column>__value`` is the typed value, ``<signal>__run_hours`` the length of the run of identical
readings a row belongs to, ``_vehicle_type`` the registry's type of the row's vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column as Where

from railpm import contracts
from railpm.contracts import Feed

# Derived column names (computed by railpm.expectations.derived before validation).
ROW_ID = "_source_row"
"""1-based record number within the landing file; identifies unexpected rows in GX results."""
VEHICLE_TYPE = "_vehicle_type"
LINE_WELL_FORMED = "_line_well_formed"

STUCK_MIN_HOURS = contracts.STUCK_MIN_READINGS
"""A signal frozen at one value for this many consecutive readings (hourly on a railway fleet) is a stuck sensor."""

# Rule names (meta["rule"] of each expectation). Per-column rules are built with the helpers below.
MALFORMED_LINE = "malformed_line"
VEHICLE_KNOWN = "vehicle_known"
PART_KNOWN = "part_known"
KEY_UNIQUE = "key_unique"
SIGNAL_PRESENT = "signal_present"
SIGNAL_NOT_STUCK = "signal_not_stuck"
COLUMNS_MATCH_CONTRACT = "columns_match_contract"
CLOSED_AFTER_OPENED = "closed_after_opened"
CONTROL_CHARACTERS = "[\\x00-\\x1f\\x7f]"
"""NUL and the other C0 controls (and DEL): never part of a key or code, often a delivery's corruption."""


def value_column(column: str) -> str:
    return f"{column}__value"


def run_column(signal: str) -> str:
    return f"{signal}__run_hours"


def naive_column(column: str) -> str:
    """Derived: the timestamp text carries no zone offset."""
    return f"{column}__naive"


def column_rule(column: str, check: str) -> str:
    """Per-column rule names: ``<column>_not_null``, ``_in_range``, ``_allowed``, ``_parseable``,
    ``_has_zone``, ``_in_period``, ``_not_future``, ``_no_control_chars``."""
    return f"{column}_{check}"


@dataclass(frozen=True)
class SuiteInputs:
    """What a suite needs beyond the contract; passed in so that validation never reads the clock."""

    period_start: datetime
    period_end: datetime | None
    """Exclusive end of the fleet period that event times must fall in (None: the reference time bounds them)."""
    reference_time: datetime
    """The run's notion of now: no timestamp may be later."""
    vehicle_types: dict[str, str] = field(default_factory=dict)
    """Registry: vehicle number -> vehicle type."""
    part_numbers: frozenset[str] = frozenset()
    """Catalogue: known part numbers."""
    naive_time_zone: str | None = None
    """The zone an offset-less timestamp is read in (the fleet's declared zone); None: it is refused
    (``<column>_has_zone``), never guessed."""

    @classmethod
    def for_fleet(cls, start: date, days: int, reference_time: datetime, **reference) -> SuiteInputs:
        begin = datetime.combine(start, time(0), tzinfo=timezone.utc)
        return cls(begin, begin + timedelta(days=days), _utc(reference_time), **reference)

    @classmethod
    def for_deployment(cls, history_start: date, reference_time: datetime, **reference) -> SuiteInputs:
        """A running fleet's gate: events from its history start up to the run's logical date, no fixed end."""
        return cls(datetime.combine(history_start, time(0), tzinfo=timezone.utc), None, _utc(reference_time), **reference)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _expect(expectation_class, rule: str, notes: str, **kwargs):
    return expectation_class(meta={"rule": rule, "notes": notes}, **kwargs)


def _column_expectations(feed: Feed, c: contracts.Column, inputs: SuiteInputs):
    """One column's rules: required, physical range with unit, allowed set, parseable, period, not future."""
    typed = c.name if c.dtype == "string" else value_column(c.name)
    if not c.nullable:
        yield _expect(gxe.ExpectColumnValuesToNotBeNull, column_rule(c.name, "not_null"), f"{c.name} is required", column=c.name)
    if c.min is not None or c.max is not None:
        notes = f"{c.name} within its physical range {c.min}..{c.max} {c.unit or ''}".rstrip()
        yield _expect(gxe.ExpectColumnValuesToBeBetween, column_rule(c.name, "in_range"), notes, column=typed, min_value=c.min, max_value=c.max)
    if c.allowed is not None:
        notes = f"{c.name} is one of the contract's values"
        yield _expect(gxe.ExpectColumnValuesToBeInSet, column_rule(c.name, "allowed"), notes, column=typed, value_set=list(c.allowed))
    if c.dtype not in ("timestamp", "date"):
        return
    notes = f"{c.name} parses as an ISO-8601 {'UTC timestamp' if c.dtype == 'timestamp' else 'date'}"
    where = Where(c.name).is_not_null()
    yield _expect(gxe.ExpectColumnValuesToNotBeNull, column_rule(c.name, "parseable"), notes, column=typed, row_condition=where)
    if c.dtype == "timestamp" and inputs.naive_time_zone is None:
        notes = f"{c.name} states its zone (Z or an offset): the feed declares no zone to read local times in"
        yield _expect(gxe.ExpectColumnValuesToBeInSet, column_rule(c.name, "has_zone"), notes, column=naive_column(c.name), value_set=[False])
    if c.name == feed.time_column:
        start, end = inputs.period_start, inputs.period_end
        if end is None:
            notes = f"{c.name} not before the fleet's history start {start.isoformat()}"
            bounds = {"min_value": start}
        else:
            notes = f"{c.name} within the fleet period [{start.isoformat()}, {end.isoformat()})"
            bounds = {"min_value": start, "max_value": end, "strict_max": True}
        yield _expect(gxe.ExpectColumnValuesToBeBetween, column_rule(c.name, "in_period"), notes, column=typed, **bounds)
    notes = f"{c.name} not later than the run's reference time {inputs.reference_time.isoformat()}"
    yield _expect(gxe.ExpectColumnValuesToBeBetween, column_rule(c.name, "not_future"), notes, column=typed, max_value=inputs.reference_time)


def _contract_expectations(feed: Feed, inputs: SuiteInputs) -> list:
    """The rules every feed gets from its contract: columns, nulls, types, ranges, allowed sets, times, key."""
    notes = f"the landing file carries exactly the {feed.name} contract's columns"
    out = [_expect(gxe.ExpectTableColumnsToMatchSet, COLUMNS_MATCH_CONTRACT, notes, column_set=feed.column_names, exact_match=True)]
    numeric = [c.name for c in feed.columns if c.dtype in ("float64", "int64")]
    if numeric:
        notes = f"every numeric field parses as a number (a whole number where the contract says int): {', '.join(numeric)}"
        out.append(_expect(gxe.ExpectColumnValuesToBeInSet, MALFORMED_LINE, notes, column=LINE_WELL_FORMED, value_set=[True]))
    for c in feed.columns:
        out.extend(_column_expectations(feed, c, inputs))
    for name in feed.code_columns:
        notes = f"{name} names or codes something: no NUL or other control character"
        rule = column_rule(name, "no_control_chars")
        out.append(_expect(gxe.ExpectColumnValuesToNotMatchRegex, rule, notes, column=name, regex=CONTROL_CHARACTERS))
    key = [c if feed.column(c).dtype == "string" else value_column(c) for c in feed.key]
    notes = f"one record per {' + '.join(feed.key)} (exact duplicates are removed before validation)"
    if len(key) == 1:
        out.append(_expect(gxe.ExpectColumnValuesToBeUnique, KEY_UNIQUE, notes, column=key[0]))
    else:
        out.append(_expect(gxe.ExpectCompoundColumnsToBeUnique, KEY_UNIQUE, notes, column_list=key))
    if feed.references_registry:
        notes = f"vehicle_number is in the vehicle registry ({len(inputs.vehicle_types)} vehicles)"
        out.append(_expect(gxe.ExpectColumnValuesToBeInSet, VEHICLE_KNOWN, notes, column="vehicle_number", value_set=sorted(inputs.vehicle_types)))
    return out


def _part_known(inputs: SuiteInputs):
    return _expect(
        gxe.ExpectColumnValuesToBeInSet,
        PART_KNOWN,
        f"part_number is in the spare-parts catalogue ({len(inputs.part_numbers)} parts)",
        column="part_number",
        value_set=sorted(inputs.part_numbers),
    )


def _suite(feed: Feed, expectations: list) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name=feed.name, expectations=expectations, meta={"notes": feed.description})


def vehicles_suite(inputs: SuiteInputs) -> gx.ExpectationSuite:
    return _suite(contracts.VEHICLES, _contract_expectations(contracts.VEHICLES, inputs))


def telemetry_suite(inputs: SuiteInputs) -> gx.ExpectationSuite:
    """Contract rules plus: applicable signals present per vehicle type, no sensor stuck for hours."""
    expectations = _contract_expectations(contracts.TELEMETRY, inputs)
    for signal in contracts.SIGNALS:
        fitted_on = [t for t in contracts.VEHICLE_TYPES if signal in contracts.signals_for_type(t)]
        expectations.append(
            _expect(
                gxe.ExpectColumnValuesToNotBeNull,
                SIGNAL_PRESENT,
                f"{signal.column} is reported by every {'/'.join(fitted_on)} vehicle (its {signal.component} is fitted)",
                column=signal.column,
                row_condition=Where(VEHICLE_TYPE).is_in(fitted_on),
            )
        )
        expectations.append(
            _expect(
                gxe.ExpectColumnValuesToBeBetween,
                SIGNAL_NOT_STUCK,
                f"{signal.column} never repeats one value for {STUCK_MIN_HOURS} or more consecutive readings "
                "of one vehicle (a stuck sensor)",
                column=run_column(signal.column),
                max_value=STUCK_MIN_HOURS - 1,
            )
        )
    return _suite(contracts.TELEMETRY, expectations)


def faults_suite(inputs: SuiteInputs) -> gx.ExpectationSuite:
    return _suite(contracts.FAULTS, _contract_expectations(contracts.FAULTS, inputs))


def work_orders_suite(inputs: SuiteInputs) -> gx.ExpectationSuite:
    """Contract rules plus: a work order closes after it opens, and uses a catalogued part."""
    expectations = _contract_expectations(contracts.WORK_ORDERS, inputs)
    expectations.append(
        _expect(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB,
            CLOSED_AFTER_OPENED,
            "closed_at is not before opened_at",
            column_A=value_column("closed_at"),
            column_B=value_column("opened_at"),
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        )
    )
    expectations.append(_part_known(inputs))
    return _suite(contracts.WORK_ORDERS, expectations)


def parts_suite(inputs: SuiteInputs) -> gx.ExpectationSuite:
    return _suite(contracts.PARTS, _contract_expectations(contracts.PARTS, inputs))


def stock_suite(inputs: SuiteInputs) -> gx.ExpectationSuite:
    """Contract rules plus: stock is held only of catalogued parts."""
    return _suite(contracts.STOCK, [*_contract_expectations(contracts.STOCK, inputs), _part_known(inputs)])


SUITES = {
    "vehicles": vehicles_suite,
    "telemetry": telemetry_suite,
    "faults": faults_suite,
    "work_orders": work_orders_suite,
    "parts": parts_suite,
    "stock": stock_suite,
}
assert set(SUITES) == set(contracts.FEEDS), "every feed of the contract needs a suite"


def suite_for(feed: str, inputs: SuiteInputs) -> gx.ExpectationSuite:
    return SUITES[feed](inputs)


def rule_of(expectation) -> str:
    return expectation.meta["rule"]
