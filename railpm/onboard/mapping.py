"""The mapping file: how an operator's exports become railpm's landing feeds, stated in YAML, not Python.

A mapping names, per source file pattern, the feed it feeds and how each contract column is made from the
source's columns, using a small declared set of operations (no expressions are evaluated):

- a source: ``from`` (rename), ``constant``, ``concat`` (columns and ``{constant: ...}`` parts joined by
  ``separator``), ``registry`` (a column of the onboarded vehicle registry, by the row's vehicle number),
  ``catalogue`` (a field of the row's fault code in the catalogue) or ``row_number`` (a format such as
  ``E-{n:05d}``, numbered in the source's ``sort_by`` order);
- then, in this order: ``strip``; ``vehicle`` / ``extract`` (a regular expression with named groups and a
  format of them); ``lookup`` (value -> value, with ``default`` or ``unmatched: keep``); ``decimal`` (the
  decimal separator of numbers); ``unit`` (``{from: miles, to: km}``, see :mod:`railpm.onboard.units`);
  ``offset`` (a number of steps after an origin, e.g. an operating cycle); ``timestamp`` / ``date``
  (``format`` and the source's ``timezone``); the mapping's ``time_axis`` for fleets whose record step
  is not a day.

Rows can be skipped by declared rules (``skip``), and the mapping brings the catalogue entries its codes,
components and signals need. Every error names the file, the line and the key path.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
import zoneinfo
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from railpm import contracts
from railpm.errors import BadInputError
from railpm.onboard import units

VERSION = 1


class MappingError(BadInputError):
    """A mapping file that cannot be used, located by file, line and key path."""

    def __init__(self, message: str, *, file: Path | str, line: int | None, key: str = ""):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message, file=file, row=line, rule="mapping")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Part(_Model):
    """One part of a ``concat``: a source column, or a constant."""

    column: str | None = None
    constant: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _column_shorthand(cls, value):
        return {"column": value} if isinstance(value, str) else value


class Pattern(_Model):
    """A regular expression with named groups, and the format the groups are written in (``{n:0>3}``)."""

    pattern: str
    format: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class UnitConversion(_Model):
    from_: str = Field(alias="from")
    to: str

    @model_validator(mode="after")
    def _known(self):
        if units.conversion(self.from_, self.to) is None:
            raise ValueError(f"no conversion from {self.from_!r} to {self.to!r}; known units: {', '.join(units.UNITS)}")
        return self


class Timestamp(_Model):
    """How a time is written (``strptime`` format; ISO 8601 when absent) and the zone it is in (IANA name);
    values that carry their own offset keep it."""

    format: str | None = None
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value):
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin or UTC)") from exc
        return value


class Offset(_Model):
    """A number of steps after an origin: ``origin + (value - first) * scale`` in ``unit``."""

    origin: datetime
    unit: Literal["days", "hours", "minutes", "seconds"] = "days"
    first: float = 0
    scale: float = 1


class ColumnMap(_Model):
    """How one contract column is made from a source row."""

    from_: str | None = Field(None, alias="from")
    constant: str | float | int | bool | date | None = None
    concat: list[Part] | None = None
    separator: str = ""
    registry: Literal["vehicle_type", "home_depot", "commissioning_date"] | None = None
    catalogue: Literal["subsystem", "component", "typical_grade", "description"] | None = None
    row_number: str | None = None
    strip: bool = True
    vehicle: Pattern | None = None
    extract: Pattern | None = None
    lookup: dict[str, str | None] | None = None
    default: str | None = None
    unmatched: Literal["hold", "keep"] = "hold"
    decimal: str = "."
    unit: UnitConversion | None = None
    offset: Offset | None = None
    timestamp: Timestamp | None = None
    date_: Timestamp | None = Field(None, alias="date")

    @model_validator(mode="before")
    @classmethod
    def _rename_shorthand(cls, value):
        return {"from": value} if isinstance(value, str) else value

    @field_validator("lookup", mode="before")
    @classmethod
    def _keys_as_text(cls, value):
        if isinstance(value, dict):
            return {_text(k): (None if v is None else _text(v)) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_source(self):
        sources = [n for n in ("from_", "constant", "concat", "registry", "catalogue", "row_number") if getattr(self, n) is not None]
        if len(sources) != 1:
            names = [n.rstrip("_") for n in sources]
            raise ValueError(f"say exactly one of from, constant, concat, registry, catalogue, row_number (found {names or 'none'})")
        if self.vehicle and self.extract:
            raise ValueError("say vehicle or extract, not both")
        if self.timestamp and self.date_:
            raise ValueError("say timestamp or date, not both")
        if self.row_number is not None:
            try:
                self.row_number.format(n=1)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"row_number must be a format of n, e.g. 'E-{{n:05d}}' ({exc})") from exc
        return self

    @property
    def source_columns(self) -> list[str]:
        if self.from_ is not None:
            return [self.from_]
        return [p.column for p in self.concat or () if p.column is not None]


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class SkipRule(_Model):
    """Rows to leave out, with the reason the profile and the held-rows file give."""

    column: str
    equals: str | None = None
    in_: list[str] | None = Field(None, alias="in")
    not_in: list[str] | None = None
    empty: bool | None = None
    matches: str | None = None
    reason: str

    @field_validator("equals", mode="before")
    @classmethod
    def _equals_text(cls, value):
        return None if value is None else _text(value)

    @field_validator("in_", "not_in", mode="before")
    @classmethod
    def _list_text(cls, value):
        return None if value is None else [_text(v) for v in value]

    @model_validator(mode="after")
    def _one_test(self):
        tests = [n for n in ("equals", "in_", "not_in", "empty", "matches") if getattr(self, n) is not None]
        if len(tests) != 1:
            raise ValueError("say exactly one of equals, in, not_in, empty, matches")
        return self


class ReadOptions(_Model):
    """How the source files are written."""

    delimiter: str = ","
    """A character, or ``whitespace`` for runs of blanks."""
    header: bool = True
    names: list[str] | None = None
    """Column names of a file without a header line."""
    encoding: str = "utf-8"
    skip_lines: int = Field(0, ge=0, description="lines before the header (titles of a spreadsheet export)")

    @model_validator(mode="after")
    def _names(self):
        if not self.header and not self.names:
            raise ValueError("a file without a header line needs names")
        return self


class Source(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    files: str
    """A glob pattern relative to the exports folder, e.g. ``sap_pm/IW69_*.csv``."""
    feed: str
    read: ReadOptions = ReadOptions()
    skip: list[SkipRule] = []
    sort_by: list[str] = []
    one_row_per: list[str] = Field([], description="keep the first row per these contract columns (a registry from an event file)")
    columns: dict[str, ColumnMap]

    @field_validator("feed")
    @classmethod
    def _known_feed(cls, value: str) -> str:
        if value not in contracts.FEEDS:
            raise ValueError(f"unknown feed {value!r}; feeds are {', '.join(contracts.FEEDS)}")
        return value


class SignalEntry(_Model):
    column: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    component: str | None = None
    unit: str
    min: int | float
    max: int | float
    description: str = ""


class FaultCodeEntry(_Model):
    code: str
    subsystem: str
    component: str | None = None
    grade: Literal["A", "B", "C"]
    description: str = ""

    @field_validator("code", mode="before")
    @classmethod
    def _code_text(cls, value):
        return _text(value)


class CatalogueEntries(_Model):
    """What the mapping adds to the fleet's catalogue; ``base: railway`` starts from the built-in one."""

    name: str | None = None
    base: Literal["railway", "none"] | None = None
    record_step: str | None = None
    operating_context: bool | None = None
    stuck_min_readings: int | None = Field(None, ge=2)
    vehicle_types: dict[str, list[str]] = Field({}, description="vehicle type -> its fitted components")
    depots: list[str] = []
    components: dict[str, str] = Field({}, description="component -> subsystem")
    signals: list[SignalEntry] = []
    fault_codes: list[FaultCodeEntry] = []


class TimeAxis(_Model):
    """Real time t lands at ``origin + (t - origin) * steps_per_day``: one record step per record day."""

    origin: datetime
    steps_per_day: int = Field(ge=1)


class Fleet(_Model):
    """The fleet period (default: from the first to the last event found) and the prediction horizon."""

    start: date | None = None
    days: int | None = Field(None, ge=1)
    horizon_days: int | None = Field(None, ge=1)
    time_axis: TimeAxis | None = None


class Mapping(_Model):
    mapping: Literal[1] = Field(description="version of the mapping format")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    catalogue: CatalogueEntries = CatalogueEntries()
    fleet: Fleet = Fleet()
    sources: list[Source] = []


# --------------------------------------------------------------------------------------------------
# Reading YAML with line numbers
# --------------------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


class Located:
    """A parsed mapping, the file it came from and the line of every key, so later checks can say where."""

    def __init__(self, mapping: Mapping, file: Path, lines: dict[Path_, int]):
        self.mapping, self.file, self.lines = mapping, file, lines

    def line(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path: Path_, message: str) -> MappingError:
        return MappingError(message, file=self.file, line=self.line(path), key=key_path(path))


def key_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nodes_to_data(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, lines: dict[Path_, int], file: Path):
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        explicit = [pair for pair in node.value if pair[0].tag != "tag:yaml.org,2002:merge"]
        loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor): the explicit keys given beside them win
        merged = len(node.value) - len(explicit)
        out = {}
        for position, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise MappingError("a key must be a plain value", file=file, line=key_node.start_mark.line + 1, key=key_path(path))
            key = key if isinstance(key, str) else _text(key) if path and path[-1] == "lookup" else key
            if key in out and position >= merged and list(out).index(key) < merged:
                del out[key]
            elif key in out and position < merged:
                continue
            if key in out:
                raise MappingError(f"key {key!r} given twice (first on line {lines[(*path, key)]})", file=file,
                                   line=key_node.start_mark.line + 1, key=key_path(path))
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _nodes_to_data(loader, value_node, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_nodes_to_data(loader, item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, file: Path) -> tuple[Any, dict[Path_, int]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise MappingError("the mapping file is empty", file=file, line=1)
        lines: dict[Path_, int] = {}
        return _nodes_to_data(loader, node, (), lines, file), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise MappingError(f"not valid YAML: {exc.problem}", file=file, line=mark.line + 1 if mark else None) from exc
    finally:
        loader.dispose()


def _suggest(loc: Path_, data) -> str:
    """'did you mean' for an unknown key, from the keys its model allows."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    parent = _model_at(loc[:-1])
    if parent is None:
        return ""
    allowed = [f.alias or name for name, f in parent.model_fields.items()]
    close = difflib.get_close_matches(loc[-1], allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"


def _model_at(loc: Path_):
    """The pydantic model that validates the object at ``loc`` of a mapping document (None if it is no model)."""
    state: Any = Mapping
    for step in loc:
        if isinstance(state, type) and issubclass(state, BaseModel):
            field = next((f for name, f in state.model_fields.items() if step in (name, f.alias)), None)
            if field is None:
                return None
            state = _unwrap(field.annotation)
        elif typing.get_origin(state) is list and isinstance(step, int):
            state = _unwrap(typing.get_args(state)[0])
        elif typing.get_origin(state) is dict:
            state = _unwrap(typing.get_args(state)[1])
        else:
            return None
    return state if isinstance(state, type) and issubclass(state, BaseModel) else None


def _unwrap(annotation):
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _error_path(loc: tuple) -> Path_:
    """Pydantic's location without the names of union members and validators it inserts."""
    return tuple(p for p in loc if isinstance(p, int) or not (p.startswith("function-") or p in ("str", "dict[str,any]")))


def load_mapping(file: Path | str) -> Located:
    """Read and validate a mapping file; a :class:`MappingError` names the file, line and key of the first problem."""
    file = Path(file)
    if not file.is_file():
        raise MappingError("mapping file does not exist", file=file, line=None)
    data, lines = parse_yaml(file.read_text(encoding="utf-8"), file)
    if not isinstance(data, dict):
        raise MappingError("a mapping file is a set of keys (mapping, name, catalogue, fleet, sources)", file=file, line=1)
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _error_path(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key" + _suggest(loc, data)
            elif error["type"] == "missing":
                message = f"missing key {loc[-1]!r}" if loc else "missing key"
                loc = loc[:-1]
            line = Located(None, file, lines).line(loc)  # type: ignore[arg-type]
            problems.append((line or 0, key_path(loc), message))
        problems.sort()
        line, key, message = problems[0]
        more = "".join(f"\n  line {ln}: {k}: {m}" for ln, k, m in problems[1:6])
        raise MappingError(message + more, file=file, line=line, key=key) from None
    located = Located(mapping, file, lines)
    check_columns(located)
    return located


def check_columns(located: Located) -> None:
    """Contract columns named in a source must exist in its feed (telemetry: the fleet's own signals too)."""
    signals = {s.column for s in located.mapping.catalogue.signals}
    for i, source in enumerate(located.mapping.sources):
        feed = contracts.FEEDS[source.feed]
        known = [c for c in feed.column_names if not (source.feed == "telemetry" and c in contracts.SIGNAL_BY_COLUMN)]
        if source.feed == "telemetry":
            known += sorted(signals | set(contracts.SIGNAL_BY_COLUMN))
        for name in source.columns:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" ({source.feed} columns: {', '.join(known)})"
                raise located.error(("sources", i, "columns", name), f"{name!r} is not a column of the {source.feed} feed" + hint)
        for j, column in enumerate(source.one_row_per + source.sort_by):
            if column not in source.columns and column not in known:
                field_name = "one_row_per" if j < len(source.one_row_per) else "sort_by"
                raise located.error(("sources", i, field_name), f"{column!r} is not a column of the {source.feed} feed")
        for name, spec in source.columns.items():
            if spec.registry and "vehicle_number" not in source.columns:
                raise located.error(("sources", i, "columns", name, "registry"), "registry needs vehicle_number mapped in the same source")
            if spec.catalogue and "fault_code" not in source.columns:
                raise located.error(("sources", i, "columns", name, "catalogue"), "catalogue needs fault_code mapped in the same source")
