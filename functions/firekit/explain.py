"""Why the rules refused a client's write, in words: a development aid for the emulators.

Three sources, each saying what it knows:

- the document models' Python twin of the generated rules (:func:`firekit.docmodel.check_create`,
  :func:`firekit.docmodel.check_update`): unknown and missing fields, types, bounds,
  fields functions own, request-time stamps, status moves; each issue in plain words;
- ownership: a ``CallerUid`` field of the stored document, or an owner wildcard of the
  path (``users/{uid}/...``), that is not the caller;
- the Firestore emulator's own report: its ``PERMISSION_DENIED`` message names the rule
  lines it evaluated (``false for 'create' @ L423``); the first is quoted from the rules
  source, and a role the line asks for (what the twin cannot know) is compared with the
  caller's.

Never deployed: ``main.py`` exports the callable built on this only in the Functions
emulator (``firebase deploy`` loads ``main.py`` outside it).
The domain's models are passed in; nothing here knows them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from firekit.docmodel import (
    REQUEST_TIME,
    CallerUid,
    Client,
    DocId,
    Document,
    FieldSpec,
    RequestTime,
    check_create,
    check_update,
    specs,
)
from firekit.errors import ROOT_FIELD, FieldIssue

Op = Literal["create", "update", "set", "delete"]
MAX_STATEMENT_LINES = 12
"""A rule statement longer than this is cut: the line the emulator named leads it."""


# ---- the answer ------------------------------------------------------------------------


CheckKind = Literal[
    "unknown_field",
    "missing_field",
    "type",
    "bound",
    "format",
    "server_owned",
    "immutable",
    "request_time_expected",
    "doc_id",
    "initial_status",
    "transition",
    "not_editable_now",
    "not_deletable",
    "not_owner",
    "no_such_document",
    "already_exists",
    "no_model_for_path",
    "clients_never_write",
    "role",
    "rule",
    "invalid",
]
"""What failed, stably named for clients to branch on."""


class Check(BaseModel):
    """One reason the write is refused: a stable kind, the field, plain words."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    check: CheckKind
    field: str | None = None
    message: str


class RuleLine(BaseModel):
    """The rule statement the emulator named, as the rules source has it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    line: int
    text: str
    """The statement starting at ``line``, whitespace collapsed; 'rules source not found'
    when the source could not be read."""
    emulator: str
    """What the emulator said of that line: ``false``, ``Null value error.``, ..."""


class Explanation(BaseModel):
    """The verdict on one write and every reason for it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    allowed: bool
    """True when no check below failed (the rules may still refuse for a reason outside
    the model, e.g. another document they read: then ``rule`` says where)."""
    model: str | None
    checks: list[Check]
    rule: RuleLine | None = None


# ---- the client's payload, decoded -----------------------------------------------------


@dataclass(frozen=True)
class Increment:
    """``increment(by)``."""

    by: int | float


@dataclass(frozen=True)
class ArrayUnion:
    """``arrayUnion(...elements)``."""

    elements: tuple[Any, ...]


@dataclass(frozen=True)
class ArrayRemove:
    """``arrayRemove(...elements)``."""

    elements: tuple[Any, ...]


@dataclass(frozen=True)
class GeoPoint:
    """A Firestore geo point (what the SDK's ``GeoPoint`` stores)."""

    latitude: float
    longitude: float


class _DeleteField:
    def __repr__(self) -> str:
        return "DELETE_FIELD"


DELETE_FIELD: Final = _DeleteField()
"""``deleteField()``."""

_FIELD_VALUE = "__fieldValue__"
_TIMESTAMP = "__timestamp__"
_GEO_POINT = "__geoPoint__"


def decode(value: Any) -> Any:
    """A payload as ``contract/explain.ts`` encodes it, with its sentinels as Python values.

    ``{"__fieldValue__": "serverTimestamp"}`` is :data:`REQUEST_TIME`, ``"delete"``
    :data:`DELETE_FIELD`, ``"increment"`` (``by``), ``"arrayUnion"``/``"arrayRemove"``
    (``elements``) their classes; ``{"__timestamp__": iso}`` a UTC ``datetime``;
    ``{"__geoPoint__": [lat, lng]}`` a :class:`GeoPoint`.
    """
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if _FIELD_VALUE in value:
        return _field_value(value)
    if set(value) == {_TIMESTAMP} and isinstance(value[_TIMESTAMP], str):
        stamp = dt.datetime.fromisoformat(value[_TIMESTAMP].replace("Z", "+00:00"))
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    if set(value) == {_GEO_POINT} and isinstance(value[_GEO_POINT], list):
        lat, lng = value[_GEO_POINT]
        return GeoPoint(float(lat), float(lng))
    return {k: decode(v) for k, v in value.items()}


def _field_value(value: Mapping[str, Any]) -> Any:
    kind = value[_FIELD_VALUE]
    elements = tuple(decode(e) for e in value.get("elements", ()))
    sentinels: dict[str, Callable[[], Any]] = {
        "serverTimestamp": lambda: REQUEST_TIME,
        "delete": lambda: DELETE_FIELD,
        "increment": lambda: Increment(value.get("by", 0)),
        "arrayUnion": lambda: ArrayUnion(elements),
        "arrayRemove": lambda: ArrayRemove(elements),
    }
    if kind not in sentinels:
        raise ValueError(f"unknown field value {kind!r}")
    return sentinels[kind]()


def stored(value: Any) -> Any:
    """A value read with the admin SDK as the twin compares it: plain ``datetime`` (not the
    SDK's subclass, which would differ from an equal client value), :class:`GeoPoint`,
    a reference as its path."""
    if isinstance(value, dt.datetime):
        return dt.datetime.fromtimestamp(value.timestamp(), tz=dt.UTC)
    if isinstance(value, Mapping):
        return {k: stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stored(v) for v in value]
    if hasattr(value, "latitude") and hasattr(value, "longitude"):
        return GeoPoint(value.latitude, value.longitude)
    if hasattr(value, "path") and hasattr(value, "id"):  # a DocumentReference
        return str(value.path)
    return value


# ---- which model -----------------------------------------------------------------------


def match_path(
    models: Iterable[type[Document]], path: str
) -> tuple[type[Document], dict[str, str]] | None:
    """The model whose ``path`` pattern matches ``path``, with the wildcards' values."""
    segments = path.strip("/").split("/")
    for model in models:
        pattern = model.path.split("/")
        if len(pattern) != len(segments):
            continue
        bound: dict[str, str] = {}
        for want, got in zip(pattern, segments, strict=True):
            if want.startswith("{") and want.endswith("}"):
                bound[want[1:-1]] = got
            elif want != got:
                break
        else:
            return model, bound
    return None


# ---- the explanation -------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """The write a client attempted: where, how, what (decoded, see :func:`decode`)."""

    path: str
    op: Op
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Caller:
    """Who wrote: the uid and the token's claims."""

    uid: str
    claims: Mapping[str, Any]


@dataclass(frozen=True)
class Rules:
    """Where the rules' source is, and how a statement names the roles it needs."""

    source: Path
    roles_needed: Callable[[str], set[str]]
    """The roles a rule statement's text asks of the caller (empty: none)."""
    role_claim: str = "role"


def explain(
    models: Sequence[type[Document]],
    write: Write,
    caller: Caller,
    before: Mapping[str, Any] | None,
    *,
    denial: str | None = None,
    rules: Rules | None = None,
    owner_wildcards: Iterable[str] = ("uid",),
    hand_written: Iterable[type[Document]] = (),
) -> Explanation:
    """Why ``caller`` may not make ``write`` over ``before`` (the stored document, or None).

    ``denial``: the message the client got, whose rule lines are looked up in ``rules``.
    ``hand_written``: models whose rules are written by hand, not generated: the twin
    does not judge them (only ownership and the emulator's line do).
    """
    found = match_path(models, write.path)
    judged_as = "create" if write.op == "set" and before is None else write.op
    judged_as = "update" if judged_as == "set" else judged_as
    rule = rule_line(denial, rules.source, judged_as) if denial and rules else None
    if found is None:
        message = f"No document model matches {write.path}: only functions write there."
        checks = [Check(check="no_model_for_path", message=message)]
        return Explanation(allowed=False, model=None, checks=checks, rule=rule)
    model, wildcards = found
    checks = _ownership(
        model, write, caller, before, wildcards=wildcards, owner_wildcards=set(owner_wildcards)
    )
    judged = model not in set(hand_written)
    if judged:
        checks += _twin(model, write, caller, before)
    if rule is not None and rules is not None:
        passed = (
            "The model's checks pass" if judged else f"{model.__name__}'s rules are hand-written"
        )
        checks += _from_rule(rule, caller, rules, found=bool(checks), passed=passed)
    return Explanation(allowed=not checks, model=model.__name__, checks=checks, rule=rule)


def _ownership(
    model: type[Document],
    write: Write,
    caller: Caller,
    before: Mapping[str, Any] | None,
    *,
    wildcards: Mapping[str, str],
    owner_wildcards: set[str],
) -> list[Check]:
    checks = [
        Check(
            check="not_owner",
            message=f"{write.path} belongs to another user: {{{name}}} in the path is not "
            "your uid.",
        )
        for name, value in wildcards.items()
        if name in owner_wildcards and value != caller.uid
    ]
    if before is None:
        if write.op in ("update", "delete"):
            what = "an update" if write.op == "update" else "a delete"
            message = f"{write.path} does not exist: {what} needs an existing document."
            checks.append(Check(check="no_such_document", message=message))
        return checks
    if write.op == "create":
        message = f"{write.path} already exists: create needs a new id (or use update)."
        checks.append(Check(check="already_exists", message=message))
    for spec in specs(model):
        if isinstance(spec.marker, CallerUid) and before.get(spec.name) != caller.uid:
            message = f"{write.path} belongs to another user: its {spec.name} is not your uid."
            checks.append(Check(check="not_owner", field=spec.name, message=message))
    return checks


def _twin(
    model: type[Document], write: Write, caller: Caller, before: Mapping[str, Any] | None
) -> list[Check]:
    creating = before is None or write.op == "create"
    if write.op == "delete" or (write.op == "update" and before is None):
        return []
    fields = specs(model)
    if creating and not any(s.client_creates() for s in fields):
        message = f"A client never creates {model.__name__} documents: functions do."
        return [Check(check="clients_never_write", message=message)]
    if not creating and not any(s.client_updates() for s in fields):
        message = f"A client never changes {model.__name__} documents: functions do."
        return [Check(check="clients_never_write", message=message)]
    doc_id = write.path.rstrip("/").rsplit("/", 1)[-1]
    if creating:
        sent = _created(write.data)
        issues = check_create(model, sent, uid=caller.uid, doc_id=doc_id)
        return [_words(model, i, sent, None) for i in issues]
    assert before is not None  # not creating: the document exists
    changes, deleted = _changes(before, write)
    how = "a set without merge" if write.op == "set" else "deleteField()"
    checks = [_deleted(model, name, how) for name in sorted(deleted)]
    issues = check_update(model, before, changes, uid=caller.uid)
    return checks + [_words(model, i, changes, before) for i in issues]


def _created(data: Mapping[str, Any]) -> dict[str, Any]:
    # What a create stores: transforms apply to nothing (increment from 0, a union of
    # the elements, a removal from nothing); deleteField() in a create writes nothing.
    return {k: _applied(None, v) for k, v in data.items() if v is not DELETE_FIELD}


def _applied(current: Any, value: Any) -> Any:
    if isinstance(value, Increment):
        return (current if isinstance(current, int | float) else 0) + value.by
    if isinstance(value, ArrayUnion):
        base = list(current) if isinstance(current, list) else []
        return base + [e for e in value.elements if e not in base]
    if isinstance(value, ArrayRemove):
        base = list(current) if isinstance(current, list) else []
        return [e for e in base if e not in value.elements]
    return value


def _changes(before: Mapping[str, Any], write: Write) -> tuple[dict[str, Any], set[str]]:
    """The new top-level values an update (field paths allowed) or a set makes, and the
    top-level fields it deletes."""
    if write.op == "set":  # a set without merge replaces the whole document
        changes = {k: _applied(before.get(k), v) for k, v in write.data.items()}
        return changes, set(before) - set(write.data)
    changes = {}
    deleted = set()
    for path, value in write.data.items():
        top, *rest = path.split(".")
        if not rest:
            if value is DELETE_FIELD:
                deleted |= {top} & set(before)
            else:
                changes[top] = _applied(before.get(top), value)
            continue
        current = changes.get(top, before.get(top))
        changes[top] = _set_in(current if isinstance(current, dict) else {}, rest, value)
    return changes, deleted


def _set_in(mapping: Mapping[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    head, *rest = path
    out = dict(mapping)
    if rest:
        inner = out.get(head)
        out[head] = _set_in(inner if isinstance(inner, dict) else {}, rest, value)
    elif value is DELETE_FIELD:
        out.pop(head, None)
    else:
        out[head] = _applied(out.get(head), value)
    return out


def _deleted(model: type[Document], name: str, how: str) -> Check:
    spec = next((s for s in specs(model) if s.name == name), None)
    if spec is not None and spec.client_updates():
        message = f"{name} cannot be deleted: the rules check its new value on every change."
        return Check(check="not_deletable", field=name, message=message)
    if spec is not None and spec.client_creates():
        message = f"{name} is set once, at create: {how} would delete it."
        return Check(check="immutable", field=name, message=message)
    message = f"{name} of a {model.__name__} is written by functions only: {how} would delete it."
    return Check(check="server_owned", field=name, message=message)


# ---- a twin issue in words -------------------------------------------------------------


def _words(
    model: type[Document],
    issue: FieldIssue,
    sent: Mapping[str, Any],
    before: Mapping[str, Any] | None,
) -> Check:
    # A top-level value's own issue comes as "<field>.__root__" (pydantic's empty location).
    name = issue["field"].removesuffix(f".{ROOT_FIELD}")
    spec = next((s for s in specs(model) if s.name == name), None)
    kind = issue["issue"]
    if kind == "not_writable":
        if spec is None:
            return Check(check="unknown_field", field=name, message=_unknown(model, name))
        return _not_writable(model, spec, creating=before is None)
    if kind in _MARKER_WORDS and spec is not None:
        return _MARKER_WORDS[kind](model, spec, sent, before)
    return _value_words(name, kind, issue["message"], _at(sent, name))


def _unknown(model: type[Document], name: str) -> str:
    return f"{name} is not a field of {model.__name__}."


def _not_writable(model: type[Document], spec: FieldSpec, *, creating: bool) -> Check:
    if not creating and spec.client_creates():
        message = f"{spec.name} is set once, at create: a client cannot change it."
        return Check(check="immutable", field=spec.name, message=message)
    message = f"{spec.name} of a {model.__name__} is written by functions only."
    return Check(check="server_owned", field=spec.name, message=message)


def _request_time(
    model: type[Document], spec: FieldSpec, sent: Mapping[str, Any], before: object
) -> Check:
    when = "" if before is None else " on every update"
    got = "you left it out" if spec.name not in sent else f"you sent {_kind(sent[spec.name])}"
    message = f"{spec.name} must be serverTimestamp(){when} ({got})."
    return Check(check="request_time_expected", field=spec.name, message=message)


def _caller_uid(
    model: type[Document], spec: FieldSpec, sent: Mapping[str, Any], before: object
) -> Check:
    message = f"{spec.name} must be your uid (you sent {sent.get(spec.name)!r})."
    return Check(check="not_owner", field=spec.name, message=message)


def _doc_id(
    model: type[Document], spec: FieldSpec, sent: Mapping[str, Any], before: object
) -> Check:
    message = f"{spec.name} must be the document's own id (you sent {sent.get(spec.name)!r})."
    return Check(check="doc_id", field=spec.name, message=message)


def _missing(
    model: type[Document], spec: FieldSpec, sent: Mapping[str, Any], before: object
) -> Check:
    if isinstance(spec.marker, RequestTime):
        return _request_time(model, spec, sent, before)
    hint = {CallerUid: ": set it to your uid", DocId: ": set it to the document's id"}
    message = f"{spec.name} is required{hint.get(type(spec.marker), '')}."
    return Check(check="missing_field", field=spec.name, message=message)


def _initial_status(
    model: type[Document], spec: FieldSpec, sent: Mapping[str, Any], before: object
) -> Check:
    allowed = _either(model.transitions.initial if model.transitions else ())
    message = (
        f"A new {model.__name__} must have {spec.name} {allowed} "
        f"(you sent {sent.get(spec.name)!r})."
    )
    return Check(check="initial_status", field=spec.name, message=message)


def _transition(
    model: type[Document], spec: FieldSpec, sent: Mapping[str, Any], before: object
) -> Check:
    status = model.transitions
    current = before.get(spec.name) if isinstance(before, Mapping) else None
    target = sent.get(spec.name)
    moves = status.moves.get(str(current), ()) if status else ()
    may = (
        f"a client may move {current} -> {_either(moves)}"
        if moves
        else f"a client may not move a {model.__name__} out of {current} (functions do)"
    )
    message = f"{spec.name} cannot move from {current} to {target}: {may}."
    return Check(check="transition", field=spec.name, message=message)


def _not_editable_now(
    model: type[Document], spec: FieldSpec, sent: Mapping[str, Any], before: object
) -> Check:
    status = model.transitions
    field = status.field if status else "status"
    current = before.get(field) if isinstance(before, Mapping) else None
    editable = spec.marker.editable_when if isinstance(spec.marker, Client) else None
    message = (
        f"{spec.name} cannot change while {field} is {current}: "
        f"only while {field} is {_either(editable or ())}."
    )
    return Check(check="not_editable_now", field=spec.name, message=message)


_MARKER_WORDS: dict[str, Callable[[type[Document], FieldSpec, Mapping[str, Any], Any], Check]] = {
    "request_time": _request_time,
    "caller_uid": _caller_uid,
    "doc_id": _doc_id,
    "missing": _missing,
    "initial_status": _initial_status,
    "transition": _transition,
    "not_editable_now": _not_editable_now,
}
"""The twin's own issues (:mod:`firekit.docmodel`), by their ``issue``."""

_BOUNDS = frozenset(
    {
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "finite_number",
    }
)


def _value_words(name: str, kind: str, said: str, value: Any) -> Check:
    """A pydantic issue of a field's value, in its words, with what was sent."""
    if kind == "extra_forbidden":
        return Check(check="unknown_field", field=name, message=f"{name} is not a field here.")
    if kind == "missing":
        return Check(check="missing_field", field=name, message=f"{name} is required.")
    if kind in _BOUNDS:
        return Check(check="bound", field=name, message=f"{name}: {said}")
    if kind == "string_pattern_mismatch":
        return Check(check="format", field=name, message=f"{name}: {said}")
    if kind.endswith("_type") or kind in ("literal_error", "enum", "is_instance_of"):
        message = f"{name}: {said} (you sent {_kind(value)})."
        return Check(check="type", field=name, message=message)
    return Check(check="invalid", field=name, message=f"{name}: {said}")


def _at(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _kind(value: Any) -> str:
    """What a value is, in the words of a Firestore client."""
    if value is REQUEST_TIME:
        return "serverTimestamp()"
    if isinstance(value, str) and len(value) < 40:
        return f"the string {value!r}"
    names: list[tuple[type | tuple[type, ...], str]] = [
        (type(None), "null"),
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (dt.datetime, "a timestamp"),
        (GeoPoint, "a geo point"),
        (list, "an array"),
        (dict, "a map"),
        ((Increment, ArrayUnion, ArrayRemove), f"{type(value).__name__}()"),
    ]
    return next((word for kind, word in names if isinstance(value, kind)), "a value")


def _either(values: Iterable[str]) -> str:
    items = list(values)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


# ---- the emulator's report -------------------------------------------------------------

_NAMED_LINE = re.compile(r"(?P<said>[^,\n]*?)\s*for '(?P<op>\w+)' @ L(?P<line>\d+)")


def named_lines(denial: str) -> list[tuple[int, str, str]]:
    """The rule lines a Firestore emulator denial names, in its order, with what it said
    of each (``false``, ``Null value error.``, ``evaluation error at L423:24``) and for
    which operation (``create``, ``update``...)."""
    return [(int(m["line"]), m["said"].strip(), m["op"]) for m in _NAMED_LINE.finditer(denial)]


def rule_line(denial: str, source: Path, op: str | None = None) -> RuleLine | None:
    """The first rule line ``denial`` names (for ``op``, if it names one for it: a set
    without merge is judged as both a create and an update), quoted from ``source``."""
    lines = named_lines(denial)
    if not lines:
        return None
    line, said, _ = next((named for named in lines if named[2] == op), lines[0])
    try:
        text = statement(source.read_text().splitlines(), line)
    except OSError:
        text = "rules source not found"
    return RuleLine(line=line, text=text, emulator=said)


def statement(lines: Sequence[str], number: int) -> str:
    """The rule statement starting at line ``number`` (1-based), up to its ``;``."""
    parts = []
    for text in lines[number - 1 : number - 1 + MAX_STATEMENT_LINES]:
        parts.append(text.strip())
        if text.rstrip().endswith((";", "{")):
            break
    return " ".join(parts)


def _from_rule(
    rule: RuleLine, caller: Caller, rules: Rules, *, found: bool, passed: str
) -> list[Check]:
    """The role the named line asks for, if the caller lacks it; else, when nothing else
    was ``found``, the line itself (``passed``: why the model's checks did not say)."""
    needed = rules.roles_needed(rule.text)
    role = caller.claims.get(rules.role_claim)
    held = set(role) if isinstance(role, list) else {role}
    if needed and not needed & held:
        message = (
            f"The rule at L{rule.line} needs the role {_either(sorted(needed))}; "
            f"your token's {rules.role_claim} is {role!r}."
        )
        return [Check(check="role", message=message)]
    if found:
        return []
    message = (
        f"{passed}, but the rules refused at L{rule.line} "
        f"({rule.emulator or 'false'}): {rule.text} Look at its other conditions "
        "(a document it reads, a cap, your token)."
    )
    return [Check(check="rule", message=message)]
