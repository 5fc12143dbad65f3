"""The shape checks of ``firestore.rules``, generated from firekit ``Document`` models.

For each model the generator emits ``<name>CreateOk(data, docId)`` and/or
``<name>UpdateOk(before, after)`` (``name``: the class name in lowerCamelCase), true exactly
when :func:`firekit.docmodel.check_create` / :func:`~firekit.docmodel.check_update` find no
issue, and one ``is<Value>(v)`` helper per nested pydantic model they reach. The
hand-written policy (``rules/policy.rules``) decides *who* may write and calls these for
*what* they may write. A client-writable type the rules cannot check exactly raises
:class:`RulesGenerationError`: the generator never weakens a check to ``true``.

Where the rules language and pydantic differ, and what the output does about it (measured
on the Firestore emulator 1.19.9; ``tests/rules`` asserts each point):

- **String length.** ``string.size()`` counts UTF-16 code units (an emoji or any other
  character outside the Basic Multilingual Plane counts 2); pydantic's ``min_length`` /
  ``max_length`` count code points. ``size()`` decides whenever it can (it is never below
  the code point count and at most twice it); otherwise the check counts
  ``s.replace('[\\x{10000}-\\x{10FFFF}]', '_').size()``, which is the code point count.
  Combining marks are code points of their own on both sides (``"é"`` written as ``e`` +
  U+0301 is 2 long in both), so they agree without help.
- **Regular expressions.** pydantic validates ``pattern`` with Rust's ``regex`` crate as a
  *search*; ``string.matches()`` is RE2 (re2j in the emulator) and must match the *whole*
  string. A pattern anchored with ``^...$`` (no top-level ``|``) is emitted without the
  anchors; otherwise unanchored ends get ``(?s:.*)``. Rust's ``\\s`` is Unicode White_Space
  while RE2's is ASCII only, so ``\\s`` / ``\\S`` are spelled out as the 25 White_Space code
  points. ``\\d``, ``\\w``, ``\\b`` (Unicode in Rust, ASCII in RE2), lookaround and
  backreferences raise. ``\\p{...}`` classes pass through; they agree only as far as the two
  engines' Unicode tables do (none of the models uses one).
- **Numbers.** Strict ``int`` is rules ``int`` (a double such as ``3.0`` is not); strict
  ``float`` is rules ``number`` (ints accepted, bools not). NaN fails any bound on both
  sides.
- **Unchanged values.** Firestore's ``diff()`` and the twin both treat ``3`` and ``3.0`` as
  equal, so an update that rewrites an int field as an equal double is allowed by both and
  leaves a document the strict model rejects (a hole in the shared semantics, not a
  disagreement).
- **Expression budget.** A request may evaluate at most 1000 expressions, and function
  calls, member accesses and list literals all count. The heaviest valid write, a listing
  created with every field at its longest in astral characters and (while clients wrote
  them) 12 such photo URLs, took about 920 with the policy around it (measured by
  exhausting the budget); the checks are inlined rather than factored into helpers for
  that reason. A model much
  heavier than ``Listing`` would need its lists shortened, or the rules would deny valid
  writes (``tests/rules`` holds the worst case).
- **Deleted fields.** A masked update may delete a field (the twin's ``DELETE``). The
  generated update checks read ``after.<field>`` of every changed field, which errors for
  a deleted one, so the rules deny every deletion of a field; the twin reports it as
  ``deleted``. Inside an :class:`~firekit.docmodel.OwnEntry` map with ``removable``, the
  caller's own key may be deleted (``deleteField()`` on ``field.<uid>``).
- **Own entries.** An ``OwnEntry`` map's values are not type-checked beyond the caller's
  key: the other keys are unchanged (``diff(...).affectedKeys().hasOnly([uid])``), and the
  caller's is ``request.time`` or, when removable, absent.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from firekit.docmodel import (
    CallerUid,
    Client,
    DocId,
    Document,
    FieldSpec,
    Marker,
    OwnEntry,
    RequestTime,
    Transitions,
    specs,
)

MAX_UNROLLED_ITEMS = 20
"""Lists of checked items are unrolled per index; longer lists would blow the rules'
expression budget (1000 per request)."""

WHITE_SPACE = r"\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
"""Unicode White_Space (Rust's ``\\s``) as RE2 class members."""

ASTRAL = "[\\x{10000}-\\x{10FFFF}]"
"""Characters outside the BMP: 2 UTF-16 code units each, 1 code point."""

PRELUDE = """\
// Lengths are in code points, as pydantic counts them. size() counts UTF-16 code units
// (never fewer, at most twice as many); where it cannot tell, each astral character is
// first replaced by a single unit. Checks are spelled out inline rather than in helper
// functions because calls are dear in the 1000-expression budget of a request."""

_RULES_KEYWORDS = {
    "allow",
    "false",
    "function",
    "if",
    "in",
    "is",
    "let",
    "match",
    "null",
    "return",
    "service",
    "true",
    "rules_version",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RulesGenerationError(TypeError):
    """A client-writable field whose type or constraint the rules cannot check exactly."""


def function_prefix(model: type[BaseModel]) -> str:
    """``Listing`` -> ``listing``, ``SavedSearch`` -> ``savedSearch``."""
    name = model.__name__
    return name[:1].lower() + name[1:]


def render(models: Iterable[type[Document]]) -> str:
    """The rules text of every model's shape functions, their helpers and the prelude."""
    renderer = _Renderer()
    blocks = [renderer.model_functions(model) for model in models]
    parts = [PRELUDE]
    if renderer.helpers:  # filled while rendering the blocks; rules declare them first
        parts.append("// Nested values\n" + "\n".join(renderer.helpers.values()))
    parts += [block for block in blocks if block]
    return "\n\n".join(parts) + "\n"


# ---- literals and names ---------------------------------------------------------------


def quote(text: str) -> str:
    """A rules string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _literal(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "null"
    # Strict pydantic tells 1 from 1.0 and True in literals; rules `in` does not.
    raise RulesGenerationError(f"{where}: literal {value!r} has no exact rules equivalent")


def _array(values: Iterable[object], where: str = "") -> str:
    return "[" + ", ".join(_literal(v, where) for v in values) + "]"


def _number(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RulesGenerationError(f"{where}: bound {value!r} is not a number")
    text = repr(value) if isinstance(value, int) or value != int(value) else repr(int(value))
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text):
        raise RulesGenerationError(f"{where}: bound {value!r} needs an exponent or is not finite")
    return text


def _member(target: str, name: str) -> str:
    if _IDENTIFIER.fullmatch(name) and name not in _RULES_KEYWORDS:
        return f"{target}.{name}"
    return f"{target}[{quote(name)}]"


def _top_ops(check: str) -> set[str]:
    """The boolean operators of ``check`` outside parentheses and string literals."""
    ops: set[str] = set()
    depth, i, quoted = 0, 0, False
    while i < len(check):
        char = check[i]
        if quoted:
            i += 2 if char == "\\" else 1
            quoted = char != "'"
            continue
        if char == "'":
            quoted = True
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and check.startswith((" && ", " || "), i):
            ops.add(check[i + 1 : i + 3])
        i += 1
    return ops


def _group(check: str) -> str:
    return f"({check})" if _top_ops(check) else check


def _all(checks: Sequence[str], separator: str = " && ") -> str:
    """The conjunction of ``checks``, each parenthesised where ``||`` needs it."""
    parts = [c for c in checks if c != "true"]
    if not parts:
        return "true"
    return separator.join(f"({p})" if "||" in _top_ops(p) else p for p in parts)


def _any(checks: Sequence[str]) -> str:
    return " || ".join(f"({c})" if "&&" in _top_ops(c) else c for c in checks)


# ---- regular expressions --------------------------------------------------------------


def rules_regex(pattern: str) -> str:
    """A pydantic ``pattern`` (Rust regex, searched) as an RE2 regex for ``matches()``."""
    tokens, top_level_alternation = _regex_tokens(pattern)
    start = not top_level_alternation and tokens[:1] == ["^"]
    end = not top_level_alternation and len(tokens) > int(start) and tokens[-1] == "$"
    body = "".join(tokens[int(start) : len(tokens) - int(end)])
    if top_level_alternation:
        return f"(?s:.*)(?:{body})(?s:.*)"
    return ("" if start else "(?s:.*)") + body + ("" if end else "(?s:.*)")


_ASCII_ONLY_IN_RE2 = {"d", "D", "w", "W", "b", "B"}


def _regex_tokens(pattern: str) -> tuple[list[str], bool]:
    """Tokens of ``pattern`` rewritten for RE2, and whether it has a top-level ``|``."""
    tokens: list[str] = []
    depth, i, in_class, alternation = 0, 0, False, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            token, i = _escape(pattern, i, in_class)
            tokens.append(token)
            continue
        if in_class:
            if char == "[" and pattern.startswith("[:", i):
                end = pattern.index(":]", i) + 2
                tokens.append(pattern[i:end])
                i = end
                continue
            if char == "[" or pattern.startswith(("&&", "--", "~~"), i):
                raise RulesGenerationError(f"pattern {pattern!r}: class set operations")
            if char == "]" and not _class_just_opened(tokens):
                in_class = False
        elif char == "[":
            in_class = True
        elif char == "(":
            if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
                raise RulesGenerationError(f"pattern {pattern!r}: RE2 has no lookaround")
            flags = re.match(r"\(\?([a-zA-Z-]*)[:)]", pattern[i:])
            if flags and set(flags.group(1)) & set("xR"):
                raise RulesGenerationError(f"pattern {pattern!r}: RE2 lacks flags x and R")
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            alternation = True
        tokens.append(char)
        i += 1
    return tokens, alternation


def _class_just_opened(tokens: list[str]) -> bool:
    # `[]...]` and `[^]...]`: a `]` right after the opening is a literal.
    return tokens[-1:] == ["["] or tokens[-2:] == ["[", "^"]


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    letter = pattern[i + 1 : i + 2]
    if letter == "s":
        return (WHITE_SPACE if in_class else f"[{WHITE_SPACE}]"), i + 2
    if letter == "S" and not in_class:
        return f"[^{WHITE_SPACE}]", i + 2
    if letter in _ASCII_ONLY_IN_RE2 or letter == "S":
        raise RulesGenerationError(
            f"pattern {pattern!r}: \\{letter} is Unicode-aware in pydantic and ASCII in "
            "rules; spell the class out (e.g. [0-9])"
        )
    if letter.isdigit() or letter in "<>k":
        raise RulesGenerationError(f"pattern {pattern!r}: \\{letter} has no RE2 equivalent")
    if letter in "pPx" and pattern[i + 2 : i + 3] == "{":
        end = pattern.index("}", i) + 1
        return pattern[i:end], end
    return pattern[i : i + 2], i + 2


# ---- types ----------------------------------------------------------------------------


@dataclass
class _Bounds:
    """The pydantic constraints on one value, by kind."""

    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, constraints: Sequence[Any], where: str) -> _Bounds:
        bounds = cls()
        for item in constraints:
            bounds._add(item, where)
        return bounds

    def _add(self, item: Any, where: str) -> None:
        simple = {
            at.MinLen: "min_length",
            at.MaxLen: "max_length",
            at.Ge: "ge",
            at.Gt: "gt",
            at.Le: "le",
            at.Lt: "lt",
            at.MultipleOf: "multiple_of",
        }
        if isinstance(item, Marker) or _ignored_by_pydantic(item):
            return
        if isinstance(item, FieldInfo):
            for inner in item.metadata:
                self._add(inner, where)
            return
        if isinstance(item, at.Len):
            self._set("min_length", item.min_length, where)
            if item.max_length is not None:
                self._set("max_length", item.max_length, where)
            return
        for kind, key in simple.items():
            if isinstance(item, kind):
                self._set(key, getattr(item, key), where)
                return
        if not hasattr(item, "__dict__"):
            raise RulesGenerationError(f"{where}: constraint {item!r} unsupported")
        for key, value in vars(item).items():  # pydantic's general metadata, e.g. pattern
            if key == "strict" and value is True:
                continue  # the documents are strict already
            if key != "pattern" or not isinstance(value, str):
                raise RulesGenerationError(f"{where}: constraint {key}={value!r} unsupported")
            self._set(key, value, where)

    def _set(self, key: str, value: Any, where: str) -> None:
        if key in self.values and self.values[key] != value:
            raise RulesGenerationError(f"{where}: two different {key} constraints")
        self.values[key] = value

    def take(self, allowed: set[str], kind: str, where: str) -> dict[str, Any]:
        """The constraints, refusing any that does not apply to ``kind``."""
        unsupported = set(self.values) - allowed
        if unsupported:
            raise RulesGenerationError(f"{where}: {sorted(unsupported)} on {kind} unsupported")
        return self.values


def _ignored_by_pydantic(item: Any) -> bool:
    """Metadata pydantic does not validate with, which the rules therefore ignore too: not
    pydantic's nor ``annotated_types``', and without a schema hook of its own (an
    application's marker, such as a personal-data one on ``Uid``). Validators and anything
    else pydantic applies still reach the checks below, which refuse what they cannot
    express."""
    module = type(item).__module__.split(".")[0]
    return (
        module not in ("pydantic", "pydantic_core", "annotated_types")
        and not isinstance(item, at.BaseMetadata)
        and not hasattr(item, "__get_pydantic_core_schema__")
    )


def _peel(annotation: Any, constraints: Sequence[Any]) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` layers, collecting their metadata as constraints."""
    collected = list(constraints)
    while get_origin(annotation) is Annotated:
        collected += list(annotation.__metadata__)
        annotation = annotation.__origin__
    return annotation, collected


class _Renderer:
    """Renders checks, collecting one helper function per nested model on the way."""

    def __init__(self) -> None:
        self.helpers: dict[str, str] = {}
        self._helper_models: dict[str, type[BaseModel]] = {}
        self._in_progress: set[type[BaseModel]] = set()

    # -- values --
    def check(self, v: str, annotation: Any, constraints: Sequence[Any], where: str) -> str:
        """A rules expression true exactly when the value at ``v`` is valid."""
        annotation, constraints = _peel(annotation, constraints)
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):
            return self._union(v, get_args(annotation), constraints, where)
        if origin is Literal:
            _Bounds.of(constraints, where).take(set(), "a literal", where)
            return f"{v} in {_array(get_args(annotation), where)}"
        if origin in (list, Sequence):
            (item,) = get_args(annotation) or (Any,)
            return self._list(v, item, _Bounds.of(constraints, where), where)
        if origin in (dict, Mapping) or annotation in (dict, Mapping):
            return self._map(v, get_args(annotation), constraints, where)
        if annotation is Any:
            _Bounds.of(constraints, where).take(set(), "Any", where)
            return "true"  # pydantic accepts any value here, and so do the rules
        if annotation is type(None):
            return f"{v} == null"
        return self._scalar(v, annotation, _Bounds.of(constraints, where), where)

    def _union(self, v: str, args: tuple[Any, ...], constraints: Sequence[Any], where: str) -> str:
        options = [a for a in args if a is not type(None)]
        if len(options) > 1 and _Bounds.of(constraints, where).values:
            raise RulesGenerationError(f"{where}: constraints on a union of several types")
        # Under strict validation a value is valid for a union iff it is valid for a member.
        checks = [self.check(v, option, constraints, where) for option in options]
        either = _any(checks)
        return _any([f"{v} == null", either]) if len(options) < len(args) else either

    def _scalar(self, v: str, annotation: Any, bounds: _Bounds, where: str) -> str:
        if annotation is str:
            b = bounds.take({"min_length", "max_length", "pattern"}, "str", where)
            # matches() errors on anything but a string, which denies: with a pattern,
            # `is string` would only spend the request's 1000-expression budget.
            checks = [
                f"{v}.matches({quote(rules_regex(b['pattern']))})"
                if "pattern" in b
                else f"{v} is string"
            ]
            return _all(checks + _length_checks(v, b.get("min_length", 0), b.get("max_length")))
        if annotation is bool:
            bounds.take(set(), "bool", where)
            return f"{v} is bool"
        if annotation in (int, float):
            return self._number(v, annotation, bounds, where)
        if annotation is dt.datetime:
            bounds.take(set(), "datetime", where)
            return f"{v} is timestamp"
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            # Strict pydantic wants enum members, which no Firestore value is.
            raise RulesGenerationError(f"{where}: enum {annotation.__name__}; use a Literal")
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            bounds.take(set(), annotation.__name__, where)
            return f"{self._helper(annotation)}({v})"
        raise RulesGenerationError(f"{where}: no rules check for type {annotation!r}")

    def _number(self, v: str, annotation: Any, bounds: _Bounds, where: str) -> str:
        allowed = {"ge", "gt", "le", "lt"} | ({"multiple_of"} if annotation is int else set())
        b = bounds.take(allowed, annotation.__name__, where)
        # Strict float accepts ints but not bools; rules `number` is exactly int or float.
        checks = [f"{v} is {'int' if annotation is int else 'number'}"]
        ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
        checks += [f"{v} {op} {_number(b[key], where)}" for key, op in ops.items() if key in b]
        if "multiple_of" in b:
            checks.append(f"{v} % {_number(b['multiple_of'], where)} == 0")
        return _all(checks)

    def _list(self, v: str, item: Any, bounds: _Bounds, where: str) -> str:
        b = bounds.take({"min_length", "max_length"}, "list", where)

        def shape(target: str) -> list[str]:
            checks = [f"{target} is list"]
            if b.get("min_length"):
                checks.append(f"{target}.size() >= {b['min_length']}")
            if "max_length" in b:
                checks.append(f"{target}.size() <= {b['max_length']}")
            return checks

        peeled, item_constraints = _peel(item, ())
        if get_origin(peeled) is Literal and not _Bounds.of(item_constraints, where).values:
            return _all([*shape(v), f"{v}.hasOnly({_array(get_args(peeled), where)})"])
        item_check = self.check("v", item, (), f"{where}[]")
        if item_check == "true":
            return _all(shape(v))
        limit = b.get("max_length")
        if limit is None or limit > MAX_UNROLLED_ITEMS:
            raise RulesGenerationError(
                f"{where}: a list of checked items needs max_length <= {MAX_UNROLLED_ITEMS}"
            )
        # Rules have no loops: one helper checks an item, another each index (reading past
        # the end is an error, hence the size guards).
        name = _helper_name(where)
        item_helper = self._define(f"{name}Item", item_check)
        checks = [*shape("v"), *(f"n <= {i} || {item_helper}(v[{i}])" for i in range(limit))]
        return f"{self._define(name, _lines(checks), let='let n = v.size();')}({v})"

    def _define(self, name: str, body: str, let: str = "") -> str:
        """Declare helper ``name(v)`` returning ``body``; the name, for calling it."""
        binding = f"  {let}\n" if let else ""
        text = f"function {name}(v) {{\n{binding}  return {body};\n}}"
        if self.helpers.setdefault(name, text) != text:
            raise RulesGenerationError(f"two different helpers named {name}")
        return name

    def _map(self, v: str, args: tuple[Any, ...], constraints: Sequence[Any], where: str) -> str:
        _Bounds.of(constraints, where).take(set(), "dict", where)
        key, value = args or (str, Any)
        if key is not str or _peel(value, ())[0] is not Any:
            raise RulesGenerationError(f"{where}: rules cannot check the values of a map")
        return f"{v} is map"

    def _helper(self, model: type[BaseModel]) -> str:
        name = f"is{model.__name__}"
        known = self._helper_models.get(name)
        if known is model:
            return name
        if known is not None:
            raise RulesGenerationError(f"two nested models named {model.__name__}")
        if model in self._in_progress:
            raise RulesGenerationError(f"{model.__name__} is recursive; rules functions are not")
        self._in_progress.add(model)
        body = self._model_shape("v", model)
        self._in_progress.discard(model)
        self._helper_models[name] = model
        return self._define(name, body)

    def _model_shape(self, v: str, model: type[BaseModel]) -> str:
        config = model.model_config
        if not config.get("strict"):
            raise RulesGenerationError(f"{model.__name__} is not strict: lax coercions")
        fields = model.model_fields
        for name, info in fields.items():
            if info.alias not in (None, name):
                raise RulesGenerationError(f"{model.__name__}.{name}: aliases unsupported")
        required = [n for n, info in fields.items() if info.is_required()]
        checks = [f"{v} is map"]
        if config.get("extra") == "forbid":
            checks.append(f"{v}.keys().hasOnly({_array(fields)})")
        if required:
            checks.append(f"{v}.keys().hasAll({_array(required)})")
        for name, info in fields.items():
            where = f"{model.__name__}.{name}"
            check = self.check(_member(v, name), info.annotation, info.metadata, where)
            checks.append(check if name in required else _when_in(v, name, check))
        return _all(checks, "\n    && ")

    # -- documents --
    def model_functions(self, model: type[Document]) -> str:
        """The ``CreateOk`` / ``UpdateOk`` functions of ``model`` (may be empty)."""
        model.model_rebuild(raise_errors=False)  # documents defer_build (cold start): build now
        if not model.__pydantic_complete__:  # unresolved annotations would hide markers
            raise RulesGenerationError(f"{model.__name__} is not fully defined")
        if not model.model_config.get("strict"):
            raise RulesGenerationError(f"{model.__name__} is not strict: lax coercions")
        functions = [f for f in (self._create(model), self._update(model)) if f]
        if not functions:
            return ""
        return f"// {model.path or '(no path)'}: {model.__name__}\n" + "\n".join(functions)

    def _create(self, model: type[Document]) -> str | None:
        fields = [s for s in specs(model) if s.client_creates()]
        if not fields:
            return None
        marked = (RequestTime, CallerUid, DocId)
        required = [s.name for s in fields if s.required or isinstance(s.marker, marked)]
        checks = [f"data.keys().hasOnly({_array(s.name for s in fields)})"]
        if required:
            checks.append(f"data.keys().hasAll({_array(required)})")
        status = model.transitions
        for spec in fields:
            if status is not None and spec.name == status.field and _implied(spec, status):
                continue  # `in <initial statuses>` below says it all
            check = self._created_value(model, spec)
            checks.append(check if spec.name in required else _when_in("data", spec.name, check))
        if status is not None:
            checks.append(f"{_member('data', status.field)} in {_array(status.initial)}")
        name = f"{function_prefix(model)}CreateOk"
        return f"function {name}(data, docId) {{\n  return {_lines(checks)};\n}}"

    def _created_value(self, model: type[Document], spec: FieldSpec) -> str:
        value = _member("data", spec.name)
        if isinstance(spec.marker, RequestTime):
            return f"{value} == request.time"
        own = self.check(value, spec.annotation, spec.constraints, _where(model, spec))
        # The marker pins the value; the field's own bounds still hold (a document id may
        # be 1500 bytes, a DocRef only 128 characters), checked after the cheap equality.
        if isinstance(spec.marker, CallerUid):
            return _all([f"{value} == request.auth.uid", own])
        if isinstance(spec.marker, DocId):
            return _all([f"{value} == docId", own])
        return own

    def _update(self, model: type[Document]) -> str | None:
        fields = [s for s in specs(model) if s.client_updates()]
        if not fields:
            return None
        status = model.transitions
        checks = [f"changed.hasOnly({_array(s.name for s in fields)})"]
        for spec in fields:
            after = _member("after", spec.name)
            if isinstance(spec.marker, RequestTime):
                checks.append(f"{after} == request.time")  # on every update, changed or not
                continue
            if isinstance(spec.marker, OwnEntry):
                checks.append(_when_in("changed", spec.name, _own_entry(spec)))
                continue
            check = self.check(after, spec.annotation, spec.constraints, _where(model, spec))
            editable = spec.marker.editable_when if isinstance(spec.marker, Client) else None
            if editable is not None:
                if status is None:
                    raise RulesGenerationError(
                        f"{_where(model, spec)}: editable_when needs the model's transitions"
                    )
                check = _all([check, f"{_member('before', status.field)} in {_array(editable)}"])
            checks.append(_when_in("changed", spec.name, check))
        if status is not None and any(s.name == status.field for s in fields):
            moves = ", ".join(f"{quote(k)}: {_array(v)}" for k, v in status.moves.items())
            move = (
                f"{_member('after', status.field)} in "
                f"{{{moves}}}.get({_member('before', status.field)}, [])"
            )
            checks.append(_when_in("changed", status.field, move))
        name = f"{function_prefix(model)}UpdateOk"
        return (
            f"function {name}(before, after) {{\n"
            f"  let changed = after.diff(before).affectedKeys();\n"
            f"  return {_lines(checks)};\n}}"
        )


def _own_entry(spec: FieldSpec) -> str:
    """An :class:`OwnEntry` map changed only at the caller's key, to the request time.

    The stored map may be absent (``before.get``); reading ``after.<field>`` errors when
    the update deleted the whole field, which denies it like any deletion.
    """
    assert isinstance(spec.marker, OwnEntry)
    after, before = _member("after", spec.name), f"before.get({quote(spec.name)}, {{}})"
    stamped = f"{after}.get(request.auth.uid, null) == request.time"
    if spec.marker.removable:
        stamped = f"{stamped} || !(request.auth.uid in {after})"
    return _all(
        [
            f"{after} is map",
            f"{after}.diff({before}).affectedKeys().hasOnly([request.auth.uid])",
            stamped,
        ]
    )


def _implied(spec: FieldSpec, status: Transitions) -> bool:
    """Is the status field's own type check implied by ``in <initial statuses>``?"""
    annotation, constraints = _peel(spec.annotation, spec.constraints)
    if get_origin(annotation) is not Literal or _Bounds.of(constraints, "").values:
        return False
    return set(status.initial) <= set(get_args(annotation))


def _when_in(container: str, name: str, check: str) -> str:
    return f"!({quote(name)} in {container}) || {_group(check)}"


def _length_checks(v: str, low: int, high: int | None) -> list[str]:
    """Code point bounds of string ``v``, counting astral characters only if size() can't tell.

    ``size()`` counts UTF-16 units: at least the code points, at most twice as many.
    """
    exact = f"{v}.replace({quote(ASTRAL)}, '_').size()"
    checks = []
    if low == 1:
        checks.append(f"{v}.size() > 0")  # any character is at least one unit
    elif low > 1:
        checks.append(f"{v}.size() >= {2 * low} || {exact} >= {low}")
    if high is not None:
        checks.append(f"{v}.size() <= {high} || {exact} <= {high}")
    return checks


def _helper_name(where: str) -> str:
    """``Listing.photos`` -> ``isListingPhotos``; ``[]`` (list items) -> ``Item``."""
    words = re.findall(r"[A-Za-z0-9]+|\[\]", where)
    return "is" + "".join("Item" if w == "[]" else w[:1].upper() + w[1:] for w in words)


def _where(model: type[BaseModel], spec: FieldSpec) -> str:
    return f"{model.__name__}.{spec.name}"


def _lines(checks: Sequence[str]) -> str:
    return _all(checks, "\n    && ")
