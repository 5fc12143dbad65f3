"""Firestore documents as pydantic models that also say who may write each field.

One declaration serves three readers: functions validate stored documents with the model;
``rules/`` generates the shape checks of ``firestore.rules`` from it; and
:func:`check_create` / :func:`check_update` are the Python twin of those generated rules
(what a *client* may write), which the property tests compare with the real rules.

Markers go in ``Annotated`` metadata. A field without a marker is written by functions
only, so forgetting a marker can only make the rules stricter.

- :class:`Client`: a client sets it at create and/or changes it on update (optionally only
  while the document's status is one of ``editable_when``).
- :class:`RequestTime`: a client must set it to the request time (``serverTimestamp()``),
  at create and/or on every update.
- :class:`CallerUid`: set at create to the caller's uid; never changed by a client.
- :class:`DocId`: set at create to the document's own id; never changed by a client.
- :class:`OwnEntry`: a ``dict[uid, datetime]`` map in which a client changes only its own
  key (the caller's uid), setting it to the request time (and, if ``removable``, deleting
  it); never set at create. Clients write it by field path:
  ``{"lastReadAt.<uid>": serverTimestamp()}`` (or ``deleteField()``).

A marker pins a value; it never lifts the field's own bounds (a ``DocId`` field typed
with ``max_length=128`` refuses a longer id, though Firestore would store it).

A model's ``transitions`` (a :class:`Transitions`) names its status field, the statuses a
client may create a document with, and the status changes a client may make.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from firekit.errors import FieldIssue, field_issues


@dataclass(frozen=True)
class Client:
    """Written by clients: at create (``create``) and on update (``update``)."""

    create: bool = True
    update: bool = True
    editable_when: tuple[str, ...] | None = None
    """Statuses in which an update may change the field (None: any)."""


@dataclass(frozen=True)
class RequestTime:
    """Clients must set this timestamp to the request time (``serverTimestamp()``)."""

    on_create: bool = True
    on_update: bool = False


@dataclass(frozen=True)
class CallerUid:
    """Set at create to the caller's uid (ownership); immutable for clients."""


@dataclass(frozen=True)
class DocId:
    """Set at create to the document's own id; immutable for clients."""


@dataclass(frozen=True)
class OwnEntry:
    """A ``dict[uid, datetime]`` where a client sets only its own key, to the request time.

    With ``removable`` the client may also delete its own key. Never set at create (the
    map starts empty; functions may write any key).
    """

    removable: bool = False


@dataclass(frozen=True)
class Transitions:
    """The status field and the moves a client may make; all others are functions'."""

    field: str
    initial: tuple[str, ...]
    moves: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def allows(self, before: str, after: str) -> bool:
        """May a client move the status from ``before`` to ``after``?"""
        return before == after or after in self.moves.get(before, ())


class _RequestTimeSentinel:
    def __repr__(self) -> str:
        return "REQUEST_TIME"


REQUEST_TIME: Final = _RequestTimeSentinel()
"""In client payloads given to the twin checks: 'set to the request time'."""


class _DeleteSentinel:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _DeleteSentinel()
"""In client updates given to the twin checks: 'delete this field' (``deleteField()``)."""


class Document(BaseModel):
    """Base of stored document models: strict types, no unknown fields."""

    # defer_build: a model's validator is built at its first use, not when main.py
    # imports it (every cold instance would pay for every model; a handler uses a few).
    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)

    path: ClassVar[str] = ""
    """The collection path pattern, e.g. ``listings/{listingId}``."""
    transitions: ClassVar[Transitions | None] = None


Marker = Client | RequestTime | CallerUid | DocId | OwnEntry


@dataclass(frozen=True)
class FieldSpec:
    """One field of a document model, with its write marker (None: functions only)."""

    name: str
    annotation: Any
    metadata: tuple[Any, ...]
    required: bool
    marker: Marker | None

    @property
    def constraints(self) -> tuple[Any, ...]:
        """Pydantic metadata other than our markers."""
        return tuple(m for m in self.metadata if not isinstance(m, Marker))

    def client_creates(self) -> bool:
        """May (or must) a client set this field when creating the document?"""
        m = self.marker
        return (
            (isinstance(m, Client) and m.create)
            or isinstance(m, (CallerUid, DocId))
            or (isinstance(m, RequestTime) and m.on_create)
        )

    def client_updates(self) -> bool:
        """May a client change this field on update?"""
        m = self.marker
        return (
            (isinstance(m, Client) and m.update)
            or (isinstance(m, RequestTime) and m.on_update)
            or isinstance(m, OwnEntry)
        )


def specs(model: type[Document]) -> tuple[FieldSpec, ...]:
    """The fields of ``model`` with their markers, in declaration order."""
    return _specs(model)


@cache
def _specs(model: type[Document]) -> tuple[FieldSpec, ...]:
    out = []
    for name, info in model.model_fields.items():
        markers = [m for m in info.metadata if isinstance(m, Marker)]
        if len(markers) > 1:
            raise TypeError(f"{model.__name__}.{name}: one write marker at most")
        out.append(
            FieldSpec(
                name,
                info.annotation,
                tuple(info.metadata),
                info.is_required(),
                markers[0] if markers else None,
            )
        )
    return tuple(out)


@cache
def _adapter(model: type[Document], name: str) -> TypeAdapter[Any]:
    spec = next(s for s in specs(model) if s.name == name)
    annotated: Any = (
        Annotated[(spec.annotation, *spec.constraints)] if spec.constraints else spec.annotation
    )
    if isinstance(spec.annotation, type) and issubclass(spec.annotation, BaseModel):
        return TypeAdapter(annotated)  # a nested model brings its own strict config
    return TypeAdapter(annotated, config=ConfigDict(strict=True))


def _issue(field_name: str, issue: str, message: str) -> FieldIssue:
    return {"field": field_name, "issue": issue, "message": message}


def _value_issues(model: type[Document], name: str, value: Any) -> list[FieldIssue]:
    try:
        _adapter(model, name).validate_python(value)
    except ValidationError as exc:
        return [{**i, "field": f"{name}.{i['field']}".rstrip(".")} for i in field_issues(exc)]
    return []


def _marker_issues(
    spec: FieldSpec, value: Any, *, uid: str | None, doc_id: str, creating: bool
) -> list[FieldIssue] | None:
    """Issues for marker-governed values; None when the marker does not decide."""
    m = spec.marker
    if isinstance(m, RequestTime):
        ok = value is REQUEST_TIME
        return [] if ok else [_issue(spec.name, "request_time", "Must be the request time.")]
    if isinstance(m, CallerUid) and creating:
        return [] if value == uid else [_issue(spec.name, "caller_uid", "Must be your uid.")]
    if isinstance(m, DocId) and creating:
        return [] if value == doc_id else [_issue(spec.name, "doc_id", "Must be the id.")]
    return None


def check_create(
    model: type[Document], data: Mapping[str, Any], *, uid: str | None, doc_id: str
) -> list[FieldIssue]:
    """Why a client may not create ``data`` as a new ``model`` document ([] if it may)."""
    fields = {s.name: s for s in specs(model)}
    issues = [
        _issue(k, "not_writable", "Field not writable.")
        for k in data
        if k not in fields or not fields[k].client_creates()
    ]
    for spec in fields.values():
        if (
            spec.client_creates()
            and spec.name not in data
            and (spec.required or isinstance(spec.marker, (RequestTime, CallerUid, DocId)))
        ):
            issues.append(_issue(spec.name, "missing", "Field required."))
    for name, value in data.items():
        if name in fields and fields[name].client_creates():
            spec = fields[name]
            decided = _marker_issues(spec, value, uid=uid, doc_id=doc_id, creating=True)
            issues += decided or []
            if not isinstance(spec.marker, RequestTime):  # a marker never lifts the bounds
                issues += _value_issues(model, name, value)
    status = model.transitions
    if status and data.get(status.field) not in status.initial:
        issues.append(_issue(status.field, "initial_status", "Not a status to create with."))
    return issues


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    """Top-level keys whose value differs, as rules' ``diff().affectedKeys()`` sees them."""
    keys = set(before) | set(after)
    return {k for k in keys if k not in before or k not in after or not _same(before[k], after[k])}


def _same(a: Any, b: Any) -> bool:
    # Firestore compares by value and type: 1 (integer) equals 1.0 (double), True is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def apply_update(before: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``before`` with a masked update applied, as Firestore applies it.

    A key ``"field.key"`` is a field path into the map ``field`` (one level deep, how
    clients write :class:`OwnEntry` maps); a value :data:`DELETE` removes the field.
    Request-time stamps are transforms, which Firestore applies after the plain values
    of the same write: ``{"m": {}, "m.uid": serverTimestamp()}`` leaves the stamp in.
    """
    after = dict(before)
    stamps_last = sorted(changes.items(), key=lambda item: item[1] is REQUEST_TIME)
    for path, value in stamps_last:
        top, dot, key = path.partition(".")
        if not dot:
            if value is DELETE:
                after.pop(top, None)
            else:
                after[top] = value
            continue
        current = after.get(top)
        inner = dict(current) if isinstance(current, Mapping) else {}
        if value is DELETE:
            inner.pop(key, None)
        else:
            inner[key] = value
        after[top] = inner
    return after


def _own_entry_issues(
    name: str, marker: OwnEntry, before: Any, after: Any, uid: str | None
) -> list[FieldIssue]:
    """Issues of a changed :class:`OwnEntry` map: only the caller's key, to the request time."""
    if not isinstance(after, Mapping):
        return [_issue(name, "own_entry", "Must be a map of uid to time.")]
    prior = before if isinstance(before, Mapping) else {}
    touched = changed_keys(prior, after) | {k for k, v in after.items() if v is REQUEST_TIME}
    if uid is None or not touched <= {uid}:
        return [_issue(name, "own_entry", "Only your own entry may change.")]
    if uid in after:
        if after[uid] is REQUEST_TIME:
            return []
        return [_issue(f"{name}.{uid}", "request_time", "Must be the request time.")]
    if not marker.removable:
        return [_issue(f"{name}.{uid}", "not_removable", "Your entry cannot be removed.")]
    return []


def check_update(
    model: type[Document], before: Mapping[str, Any], changes: Mapping[str, Any], *, uid: str | None
) -> list[FieldIssue]:
    """Why a client may not apply ``changes`` (a masked update) to ``before`` ([] if ok)."""
    fields = {s.name: s for s in specs(model)}
    after = apply_update(before, changes)
    changed = changed_keys(before, after) | {
        k.split(".", 1)[0] for k, v in changes.items() if v is REQUEST_TIME
    }
    deleted = sorted(k for k in before if k not in after)
    issues_deleted = [_issue(k, "deleted", "A field cannot be deleted.") for k in deleted]
    issues = issues_deleted + [
        _issue(k, "not_writable", "Field not writable.")
        for k in sorted(changed)
        if k not in fields or not fields[k].client_updates()
    ]
    for spec in fields.values():
        if (
            isinstance(spec.marker, RequestTime)
            and spec.marker.on_update
            and (changes.get(spec.name) is not REQUEST_TIME)
        ):
            issues.append(_issue(spec.name, "request_time", "Must be the request time."))
    status = model.transitions
    current = before.get(status.field) if status else None
    for name in sorted(changed & {k for k, s in fields.items() if s.client_updates()}):
        spec = fields[name]
        if name in deleted:
            continue
        if isinstance(spec.marker, OwnEntry):
            issues += _own_entry_issues(spec.name, spec.marker, before.get(name), after[name], uid)
            continue
        decided = _marker_issues(spec, after[name], uid=uid, doc_id="", creating=False)
        issues += decided if decided is not None else _value_issues(model, name, after[name])
        editable = spec.marker.editable_when if isinstance(spec.marker, Client) else None
        if editable is not None and current not in editable:
            issues.append(_issue(name, "not_editable_now", "Not editable in this status."))
    if (
        status
        and status.field in changed
        and not status.allows(str(current), str(after.get(status.field)))
    ):
        issues.append(_issue(status.field, "transition", "Status change not allowed."))
    return issues
