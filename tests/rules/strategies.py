"""Hypothesis strategies derived from document models: client writes, valid and broken.

Nothing here is written per model. :func:`shape_of` reads a field's annotation and pydantic
constraints; :func:`valid` draws values the model accepts and :func:`broken` values aimed
just outside (wrong types, out-of-range numbers, strings one code point too long or short,
pattern and enum near-misses). :func:`create_cases` and :func:`update_cases` start from a
valid write and break it in zero to three ways chosen from the model's markers.

These strategies only *propose* writes. Whether a write is valid is always decided by the
Python twin (``check_create`` / ``check_update``), never by which branch drew it, so a
"valid" draw that is not (or a "broken" one that is) costs nothing but an example.

Ids that must be unique per example (the caller, the document) or that name arranged
documents are :class:`Slot` placeholders, replaced by :func:`fill` just before the write.
That keeps the drawn data, and so Hypothesis's replay of a failure, deterministic.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
import types
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types as at
from hypothesis import reject
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from firekit.docmodel import (
    DELETE,
    REQUEST_TIME,
    CallerUid,
    Client,
    DocId,
    Document,
    FieldSpec,
    Marker,
    OwnEntry,
    RequestTime,
    specs,
)

T = TypeVar("T")
Draw = Callable[[st.SearchStrategy[T]], T]
INT64 = (-(2**63), 2**63 - 1)
MAX_LIST_DRAWN = 20


# ---- placeholders ---------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """An id decided per example or per test (see :func:`fill`)."""

    name: str

    def __repr__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True)
class Join:
    """A string made of literal parts and slots, e.g. ``listingId + '__' + uid``."""

    parts: tuple[str | Slot, ...]


OWNER = Slot("owner")
"""The caller in the usual case: a fresh uid per example."""
THIS_DOC = Slot("doc")
"""The id of the document written: fresh per example."""


def fill(value: Any, ids: Mapping[Slot, str]) -> Any:
    """``value`` with every :class:`Slot` and :class:`Join` replaced by its id."""
    if isinstance(value, Slot):
        return ids[value]
    if isinstance(value, Join):
        return "".join(ids[p] if isinstance(p, Slot) else p for p in value.parts)
    if isinstance(value, dict):  # keys too: a uid-keyed map, a field path with a uid
        return {fill(k, ids): fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


# ---- shapes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A field's type and constraints, read from the model as pydantic reads them."""

    kind: str
    """str, int, float, bool, choice, model, list, map, datetime or any."""
    nullable: bool = False
    choices: tuple[Any, ...] = ()
    model: type[BaseModel] | None = None
    item: Shape | None = None
    limits: Mapping[str, Any] = field(default_factory=dict)
    """min_length, max_length, ge, gt, le, lt, pattern."""


def shape_of(annotation: Any, constraints: tuple[Any, ...] = ()) -> Shape:
    """The :class:`Shape` of ``Annotated[annotation, *constraints]``."""
    limits: dict[str, Any] = {}
    while get_origin(annotation) is Annotated:
        constraints = (*constraints, *annotation.__metadata__)
        annotation = annotation.__origin__
    for item in constraints:
        _collect(item, limits)
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) != 1:
            raise NotImplementedError(f"union {annotation!r}")
        inner = shape_of(options[0], constraints)
        return replace(inner, nullable=len(options) < len(get_args(annotation)))
    if origin is Literal:
        return Shape("choice", choices=get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        return Shape("list", item=shape_of(item), limits=limits)
    if origin is dict or annotation is dict:
        _, value = get_args(annotation) or (str, Any)
        return Shape("map", item=shape_of(value))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return Shape("choice", choices=tuple(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Shape("model", model=annotation)
    kinds = {str: "str", int: "int", float: "float", bool: "bool", dt.datetime: "datetime"}
    if annotation in kinds:
        return Shape(kinds[annotation], limits=limits)
    if annotation is Any:
        return Shape("any")
    raise NotImplementedError(f"no strategy for {annotation!r}")


_LIMITS = {
    at.MinLen: "min_length",
    at.MaxLen: "max_length",
    at.Ge: "ge",
    at.Gt: "gt",
    at.Le: "le",
    at.Lt: "lt",
    at.MultipleOf: "multiple_of",
}


def _collect(item: Any, limits: dict[str, Any]) -> None:
    if isinstance(item, Marker):
        return
    if isinstance(item, FieldInfo):
        for inner in item.metadata:
            _collect(inner, limits)
        return
    for kind, key in _LIMITS.items():
        if isinstance(item, kind):
            limits[key] = getattr(item, key)
            return
    pattern = getattr(item, "pattern", None)
    if isinstance(pattern, str):
        limits["pattern"] = pattern


def field_shape(spec: FieldSpec) -> Shape:
    """The shape of one document field."""
    return shape_of(spec.annotation, spec.constraints)


def _shape_key(shape: Shape) -> Hashable:
    """``shape`` as a hashable key; values carry their type, so ``1``, ``1.0`` and ``True``
    never share a key."""
    return (
        shape.kind,
        shape.nullable,
        tuple((type(c), c) for c in shape.choices),
        shape.model,
        None if shape.item is None else _shape_key(shape.item),
        tuple((k, type(v), v) for k, v in sorted(shape.limits.items())),
    )


StrategyOf = Callable[[Shape], st.SearchStrategy[Any]]


def _built_once(build: StrategyOf) -> StrategyOf:
    """``build`` run once per distinct shape, its strategy reused after.

    A strategy draws the same values from the same choices whether it is new or reused, so
    this changes no example. What it saves is the cost of a new strategy object: Hypothesis
    validates each one and works out whether it can be empty on its first draw, and the
    document strategies (:func:`stored_documents`, :func:`update_cases`) ask for their
    field strategies on every draw.
    """
    built: dict[Hashable, st.SearchStrategy[Any]] = {}

    @functools.wraps(build)
    def cached(shape: Shape) -> st.SearchStrategy[Any]:
        key = _shape_key(shape)
        if key not in built:
            built[key] = build(shape)
        return built[key]

    return cached


# ---- values ---------------------------------------------------------------------------

# Characters that make length and pattern checks interesting: astral-plane (2 UTF-16 units),
# a combining mark, non-ASCII letters, Unicode white space that RE2's \s does not know.
TRICKY_CHARS = ("a", "Z", "é", "\u0301", "😀", "𝔸", "\u00a0", "\u2003", "\u0085", "\x0b", "\n")
_chars = st.one_of(st.sampled_from(TRICKY_CHARS), st.characters(codec="utf-8"))
_names = st.from_regex(r"[a-z][A-Za-z0-9]{0,11}", fullmatch=True)
_simple = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(-1e6, 1e6), st.text(max_size=8)
)


def _text_of_length(n: int) -> st.SearchStrategy[str]:
    """Exactly ``n`` code points, often repeating an astral or combining character."""

    def build(head: str, filler: str) -> str:
        return (head + filler * n)[:n]

    return st.builds(build, st.text(_chars, max_size=4), _chars)


def _bounded_repeats(pattern: str) -> str:
    """``pattern`` with ``*`` and ``+`` capped at 3 repeats: short matches to draw from."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "*+":
            char = "{0,3}" if char == "*" else "{1,3}"
        out.append(char)
        i += 1
    return "".join(out)


def _matching(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(_bounded_repeats(pattern), fullmatch=True)


def _padded(text: str, n: int) -> str:
    """``text`` grown to ``n`` code points by repeating its last one (often still a match)."""
    return text + text[-1:] * (n - len(text)) if text else text


def _strings(limits: Mapping[str, Any]) -> st.SearchStrategy[str]:
    low, high = limits.get("min_length", 0), limits.get("max_length")
    if "pattern" in limits:
        fits = _matching(limits["pattern"])
        if high is None:
            return fits
        # Longest allowed, often astral: the case for exact lengths and the rules' budget.
        return st.one_of(
            fits.filter(lambda s: low <= len(s) <= high), st.builds(_padded, fits, st.just(high))
        )
    options = [
        st.text(_chars, min_size=low, max_size=low + 20 if high is None else min(high, low + 20)),
        _text_of_length(low),
    ]
    if high is not None:
        options.append(_text_of_length(high))
    return st.one_of(options)


def _int_range(limits: Mapping[str, Any]) -> tuple[int, int]:
    low = limits["ge"] if "ge" in limits else limits["gt"] + 1 if "gt" in limits else INT64[0]
    high = limits["le"] if "le" in limits else limits["lt"] - 1 if "lt" in limits else INT64[1]
    return math.ceil(low), math.floor(high)


def _numbers(shape: Shape) -> st.SearchStrategy[Any]:
    low, high = _int_range(shape.limits)
    ints = st.one_of(st.integers(low, high), st.sampled_from([low, high]))
    step = shape.limits.get("multiple_of")
    if shape.kind == "int" and step:  # only the multiples in range (15, 30, 45, 60)
        return st.integers(math.ceil(low / step), math.floor(high / step)).map(lambda k: k * step)
    if shape.kind == "int":
        return ints
    floats = st.floats(
        shape.limits.get("ge", shape.limits.get("gt")),
        shape.limits.get("le", shape.limits.get("lt")),
        exclude_min="gt" in shape.limits,
        exclude_max="lt" in shape.limits,
        allow_nan=False,  # NaN and infinities cannot travel in the REST API's JSON
        allow_infinity=False,
    )
    return st.one_of(floats, ints)  # strict float accepts ints


@_built_once
def valid(shape: Shape) -> st.SearchStrategy[Any]:
    """Values the model accepts for ``shape`` (nearly always; the twin has the last word)."""
    base = _valid_base(shape)
    return st.one_of(st.none(), base) if shape.nullable else base


def _valid_base(shape: Shape) -> st.SearchStrategy[Any]:
    kind = shape.kind
    if kind == "str":
        return _strings(shape.limits)
    if kind in ("int", "float"):
        return _numbers(shape)
    if kind == "bool":
        return st.booleans()
    if kind == "choice":
        return st.sampled_from(shape.choices)
    if kind == "datetime":
        return st.datetimes(
            dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
        )
    if kind == "model":
        assert shape.model is not None
        return model_values(shape.model)
    if kind == "list":
        assert shape.item is not None
        low, high = shape.limits.get("min_length", 0), shape.limits.get("max_length")
        top = min(high if high is not None else low + 5, MAX_LIST_DRAWN)
        return st.lists(valid(shape.item), min_size=low, max_size=top)
    if kind == "map":
        values = _simple if shape.item is None else valid(shape.item)
        return st.dictionaries(_names, values, max_size=3)
    return _simple


@functools.cache
def model_values(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid nested value (a dict) of ``model``."""
    fields = model.model_fields
    required = {
        n: valid(shape_of(f.annotation, tuple(f.metadata)))
        for n, f in fields.items()
        if f.is_required()
    }
    optional = {
        n: valid(shape_of(f.annotation, tuple(f.metadata)))
        for n, f in fields.items()
        if not f.is_required()
    }
    return st.fixed_dictionaries(required, optional=optional)


_WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "str": (7, 0, True, None, ["x"], {"v": "x"}, 2.5),
    "int": ("3", 3.0, 2.5, True, False, None, [1], {"v": 1}),
    "float": ("1.5", True, None, [1.5], {"v": 1.5}),
    "bool": ("true", 1, 0, None, [True]),
    "choice": (7, True, None, ["x"], {"v": 1}),
    "datetime": ("2024-01-01T00:00:00Z", 1_700_000_000, None),
    "model": ("x", 7, None, [], [{"v": 1}], True),
    "list": ("x", 7, None, {"v": 1}, {"0": "x"}, True),
    "map": ("x", 7, None, ["x"], True),
    "any": (),
}


@_built_once
def broken(shape: Shape) -> st.SearchStrategy[Any]:
    """Values aimed just outside ``shape``: wrong types, bounds, lengths, patterns, keys."""
    options: list[st.SearchStrategy[Any]] = []
    wrong = [v for v in _WRONG_TYPES[shape.kind] if not (v is None and shape.nullable)]
    if wrong:
        options.append(st.sampled_from(wrong))
    options += _near_misses(shape)
    return st.one_of(options) if options else st.nothing()


def _near_misses(shape: Shape) -> list[st.SearchStrategy[Any]]:
    kind, limits = shape.kind, shape.limits
    if kind == "str":
        return _string_misses(limits)
    if kind == "int":
        low, high = _int_range(limits)
        edges = [e for e in (low - 1, high + 1) if INT64[0] <= e <= INT64[1]]
        return [st.sampled_from(edges)] if edges else []
    if kind == "float":
        return [st.sampled_from(_float_edges(limits))] if limits else []
    if kind == "choice":
        texts = [str(c) for c in shape.choices]
        near = [t.upper() for t in texts] + [t + " " for t in texts] + [t.title() for t in texts]
        return [st.sampled_from([n for n in near if n not in texts] or ["?"]), st.text(max_size=6)]
    if kind == "model":
        assert shape.model is not None
        return [_broken_model(shape.model)]
    if kind == "list":
        return [_broken_list(shape)]
    return []


def _float_edges(limits: Mapping[str, Any]) -> list[float]:
    edges: list[float] = []
    for key, outward in (("ge", -math.inf), ("gt", -math.inf), ("le", math.inf), ("lt", math.inf)):
        if key in limits:
            bound = float(limits[key])
            step = math.copysign(0.001, outward)
            # Just past an inclusive bound, or exactly on an exclusive one.
            edges += (
                [bound + step, math.nextafter(bound, outward)] if key in ("ge", "le") else [bound]
            )
    return edges


def _string_misses(limits: Mapping[str, Any]) -> list[st.SearchStrategy[Any]]:
    misses: list[st.SearchStrategy[Any]] = []
    low, high = limits.get("min_length", 0), limits.get("max_length")
    if low > 0:
        misses.append(_text_of_length(low - 1))
    if high is not None:
        misses.append(_text_of_length(high + 1))
    if "pattern" in limits:
        fits = _matching(limits["pattern"])
        if high is not None:
            misses.append(st.builds(_padded, fits, st.just(high + 1)))
        edit = st.sampled_from((*TRICKY_CHARS, " ", "x", "0", "-", "/"))
        misses += [
            st.builds(lambda s, c: s + c, fits, edit),
            st.builds(lambda s, c: c + s, fits, edit),
            st.builds(lambda s, c: s[: len(s) // 2] + c + s[len(s) // 2 :], fits, edit),
            st.text(_chars, max_size=12),
        ]
    return misses


@st.composite
def _broken_model(draw: Draw[Any], model: type[BaseModel]) -> dict[str, Any]:
    value = dict(draw(model_values(model)))
    fields = model.model_fields
    how = draw(st.sampled_from(["drop", "extra", "field"]))
    if how == "drop" and value:
        del value[draw(st.sampled_from(sorted(value)))]
    elif how == "extra":
        value[draw(_names)] = draw(_simple)
    else:
        name = draw(st.sampled_from(sorted(fields)))
        info = fields[name]
        value[name] = draw(broken(shape_of(info.annotation, tuple(info.metadata))))
    return value


@st.composite
def _broken_list(draw: Draw[Any], shape: Shape) -> list[Any]:
    assert shape.item is not None
    low, high = shape.limits.get("min_length", 0), shape.limits.get("max_length")
    how = draw(st.sampled_from(["long", "short", "item"]))
    if how == "long" and high is not None and high < MAX_LIST_DRAWN:
        longer: list[Any] = draw(st.lists(valid(shape.item), min_size=high + 1, max_size=high + 1))
        return longer
    if how == "short" and low > 0:
        shorter: list[Any] = draw(st.lists(valid(shape.item), min_size=low - 1, max_size=low - 1))
        return shorter
    items = draw(st.lists(valid(shape.item), min_size=max(low - 1, 0), max_size=max(low, 2)))
    position = draw(st.integers(0, len(items)))
    return [*items[:position], draw(broken(shape.item)), *items[position:]]


# ---- documents ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One client write: the payload (create) or the masked changes (update)."""

    data: dict[str, Any]
    before: dict[str, Any] | None = None
    """The stored document an update applies to."""
    edits: tuple[str, ...] = ()
    """How the write was broken, for failure messages (empty: meant to be valid)."""


Refine = Callable[[Draw[Any], dict[str, Any]], dict[str, Any]]
"""An operation's hook that makes a valid write consistent with its arranged world."""


def _marker_value(spec: FieldSpec, shape: Shape) -> st.SearchStrategy[Any]:
    if isinstance(spec.marker, RequestTime):
        return st.just(REQUEST_TIME)
    if isinstance(spec.marker, CallerUid):
        return st.just(OWNER)
    if isinstance(spec.marker, DocId):
        return st.just(THIS_DOC)
    return valid(shape)


_OTHER_IDS = ("someone-else", "", None, 7, "OWNER")
_UNSTAMPED = (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None, "now", 0)


@st.composite
def create_cases(draw: Draw[Any], model: type[Document], refine: Refine | None = None) -> Case:
    """Payloads creating a ``model`` document: valid, or broken in up to three ways."""
    fields = {s.name: s for s in specs(model)}
    creatable = [s for s in fields.values() if s.client_creates()]
    data: dict[str, Any] = {}
    for spec in creatable:
        always = spec.required or not isinstance(spec.marker, Client)
        if always or draw(st.booleans()):
            data[spec.name] = draw(_marker_value(spec, field_shape(spec)))
    status = model.transitions
    if status and any(s.name == status.field for s in creatable):
        data[status.field] = draw(st.sampled_from(status.initial))
    if refine is not None:
        data = refine(draw, data)
    edits = []
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        edit = draw(st.sampled_from(_CREATE_EDITS))
        done = edit(draw, model, data)
        if done:
            edits.append(done)
    return Case(data, edits=tuple(edits))


def _clients(model: type[Document], *, creating: bool) -> list[FieldSpec]:
    writable = FieldSpec.client_creates if creating else FieldSpec.client_updates
    return [s for s in specs(model) if isinstance(s.marker, Client) and writable(s)]


def _edit_drop(draw: Draw[Any], model: type[Document], data: dict[str, Any]) -> str:
    if not data:
        return ""
    name = draw(st.sampled_from(sorted(data)))
    del data[name]
    return f"dropped {name}"


def _edit_unknown(draw: Draw[Any], model: type[Document], data: dict[str, Any]) -> str:
    name = draw(_names.filter(lambda n: n not in model.model_fields))
    data[name] = draw(_simple)
    return f"unknown field {name}"


def _edit_server_field(draw: Draw[Any], model: type[Document], data: dict[str, Any]) -> str:
    others = [s for s in specs(model) if not s.client_creates()]
    if not others:
        return ""
    spec = draw(st.sampled_from(others))
    shape = field_shape(spec)
    stamp = [st.just(REQUEST_TIME)] if shape.kind == "datetime" else []
    data[spec.name] = draw(st.one_of(valid(shape), *stamp))
    return f"server-owned {spec.name}"


def _edit_break(draw: Draw[Any], model: type[Document], data: dict[str, Any]) -> str:
    specs_ = _clients(model, creating=True)
    if not specs_:
        return ""
    spec = draw(st.sampled_from(specs_))
    data[spec.name] = draw(st.one_of(broken(field_shape(spec)), st.just(REQUEST_TIME)))
    return f"broke {spec.name}"


def _edit_other_valid(draw: Draw[Any], model: type[Document], data: dict[str, Any]) -> str:
    specs_ = _clients(model, creating=True)
    if not specs_:
        return ""
    spec = draw(st.sampled_from(specs_))
    data[spec.name] = draw(valid(field_shape(spec)))
    return f"other value for {spec.name}"


def _edit_markers(draw: Draw[Any], model: type[Document], data: dict[str, Any]) -> str:
    marked = [s for s in specs(model) if s.client_creates() and not isinstance(s.marker, Client)]
    if not marked:
        return ""
    spec = draw(st.sampled_from(marked))
    wrong = _UNSTAMPED if isinstance(spec.marker, RequestTime) else _OTHER_IDS
    data[spec.name] = draw(st.sampled_from(wrong))
    return f"wrong {type(spec.marker).__name__} {spec.name}"


def _edit_status(draw: Draw[Any], model: type[Document], data: dict[str, Any]) -> str:
    status = model.transitions
    if status is None:
        return ""
    shape = field_shape(next(s for s in specs(model) if s.name == status.field))
    data[status.field] = draw(st.one_of(valid(shape), broken(shape)))
    return f"status {data[status.field]!r}"


_CREATE_EDITS = (
    _edit_drop,
    _edit_unknown,
    _edit_server_field,
    _edit_break,
    _edit_break,
    _edit_other_valid,
    _edit_markers,
    _edit_status,
)


@st.composite
def stored_documents(draw: Draw[Any], model: type[Document]) -> dict[str, Any]:
    """A valid stored ``model`` document (server fields included), as functions write it."""
    document: dict[str, Any] = {}
    status = model.transitions
    for spec in specs(model):
        shape = field_shape(spec)
        if isinstance(spec.marker, CallerUid):
            value: Any = OWNER
        elif isinstance(spec.marker, DocId):
            value = THIS_DOC
        elif status is not None and spec.name == status.field:
            # Favour the statuses clients act in, or most edits would be refused.
            acting = sorted({*status.initial, *status.moves})
            value = draw(st.one_of(st.sampled_from(acting), valid(shape)))
        elif spec.required or draw(st.booleans()):
            value = draw(valid(shape))
        else:
            continue
        document[spec.name] = value
    probe = fill(document, _PROBE_IDS)
    try:
        model.model_validate(probe)
    except ValueError:
        reject()  # a rare draw the model refuses (e.g. a regex corner): not a stored doc
    return document


_PROBE_IDS: Mapping[Slot, str] = {OWNER: "probe-uid", THIS_DOC: "probe-doc"}


@st.composite
def update_cases(draw: Draw[Any], model: type[Document], refine: Refine | None = None) -> Case:
    """Masked updates of a stored ``model`` document: valid, or broken in up to three ways."""
    before = draw(stored_documents(model))
    if refine is not None:
        before = refine(draw, before)
    changes: dict[str, Any] = {}
    writable = {s.name: s for s in _clients(model, creating=False)}
    for name in draw(st.sets(st.sampled_from(sorted(writable)), max_size=3)) if writable else ():
        changes[name] = draw(valid(field_shape(writable[name])))
    status = model.transitions
    if status and status.field in {s.name for s in _clients(model, creating=False)}:
        moves = status.moves.get(before.get(status.field), ())
        if moves and draw(st.booleans()):
            changes[status.field] = draw(st.sampled_from(moves))
    for spec in specs(model):
        if isinstance(spec.marker, RequestTime) and spec.marker.on_update:
            changes[spec.name] = REQUEST_TIME
        if isinstance(spec.marker, OwnEntry) and draw(st.booleans()):
            # The caller's own entry, by field path: stamped, or (if removable) deleted.
            own = [REQUEST_TIME, DELETE] if spec.marker.removable else [REQUEST_TIME]
            changes[own_entry_path(spec.name, OWNER)] = draw(st.sampled_from(own))
    edits = []
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        edit = draw(st.sampled_from(_UPDATE_EDITS))
        done = edit(draw, model, before, changes)
        if done:
            edits.append(done)
    return Case(changes, before=before, edits=tuple(edits))


def _update_drop_stamp(
    draw: Draw[Any], model: type[Document], before: dict[str, Any], changes: dict[str, Any]
) -> str:
    stamped = sorted((k for k, v in changes.items() if v is REQUEST_TIME), key=repr)
    if not stamped:
        return ""
    name = draw(st.sampled_from(stamped))
    if draw(st.booleans()):
        del changes[name]
    else:
        changes[name] = draw(st.sampled_from(_UNSTAMPED))
    return f"unstamped {name}"


def _update_locked_field(
    draw: Draw[Any], model: type[Document], before: dict[str, Any], changes: dict[str, Any]
) -> str:
    locked = [s for s in specs(model) if not s.client_updates()]
    if not locked:
        return ""
    spec = draw(st.sampled_from(locked))
    shape = field_shape(spec)
    stamp = [st.just(REQUEST_TIME)] if shape.kind == "datetime" else []
    changes[spec.name] = draw(st.one_of(valid(shape), st.sampled_from(_OTHER_IDS), *stamp))
    return f"locked {spec.name}"


def _update_unknown(
    draw: Draw[Any], model: type[Document], before: dict[str, Any], changes: dict[str, Any]
) -> str:
    return _edit_unknown(draw, model, changes)


def _update_break(
    draw: Draw[Any], model: type[Document], before: dict[str, Any], changes: dict[str, Any]
) -> str:
    writable = _clients(model, creating=False)
    if not writable:
        return ""
    spec = draw(st.sampled_from(writable))
    changes[spec.name] = draw(st.one_of(broken(field_shape(spec)), st.just(REQUEST_TIME)))
    return f"broke {spec.name}"


def _update_same(
    draw: Draw[Any], model: type[Document], before: dict[str, Any], changes: dict[str, Any]
) -> str:
    if not before:
        return ""
    name = draw(st.sampled_from(sorted(before)))
    value = before[name]
    if isinstance(value, int) and not isinstance(value, bool) and draw(st.booleans()):
        value = float(value)  # equal for Firestore's diff() and the twin alike
    changes[name] = value
    return f"same {name}"


def _update_status(
    draw: Draw[Any], model: type[Document], before: dict[str, Any], changes: dict[str, Any]
) -> str:
    return _edit_status(draw, model, changes)


def own_entry_path(name: str, key: str | Slot) -> Join:
    """The field path ``name.<key>`` of an :class:`OwnEntry` map's entry."""
    return Join((f"{name}.", key))


def _update_own_entry(
    draw: Draw[Any], model: type[Document], before: dict[str, Any], changes: dict[str, Any]
) -> str:
    own = [s for s in specs(model) if isinstance(s.marker, OwnEntry)]
    if not own:
        return ""
    spec = draw(st.sampled_from(own))
    choice = draw(st.sampled_from(["other key", "other key", "value", "delete", "whole map"]))
    if choice == "whole map":
        changes[spec.name] = draw(
            st.one_of(valid(field_shape(spec)), st.just({OWNER: _UNSTAMPED[0]}))
        )
        return f"replaced {spec.name}"
    key: str | Slot = OWNER if choice != "other key" else draw(st.sampled_from(_OTHER_KEYS))
    values = [REQUEST_TIME, DELETE] if choice == "other key" else [DELETE]
    if choice == "value":
        values = [*_UNSTAMPED[:1], "now", 0, True]
    changes[own_entry_path(spec.name, key)] = draw(st.sampled_from(values))
    return f"{choice} in {spec.name}"


_OTHER_KEYS = ("someone-else", "OWNER", "x")


_UPDATE_EDITS = (
    _update_own_entry,
    _update_drop_stamp,
    _update_locked_field,
    _update_unknown,
    _update_break,
    _update_break,
    _update_same,
    _update_status,
)
