"""What a user owns, and erasing it: the ownership map, tombstones and a resumable cascade.

The domain declares, once, every place a user's data lives (:class:`Entry`: a Firestore
path, a Storage prefix, a payment processor's object, the Auth record) and what happens
to it on export and on erasure (:class:`Delete`, :class:`Pseudonymise`, :class:`Keep`
with a reason and a retention). The declaration is data, so a test can hold it against
the models: every field that carries :class:`Personal` (the domain's user-id type carries
it, so every user-id field does) or whose name says it holds a person (``email``,
``phone``, ``displayName``, ...) must be named by the entry of its model's path.

Erasure has two phases. Phase one is one write: a **tombstone** ``_tombstones/{uid}``
(the security rules and every callable refuse its uid at once, whatever ID token it
still holds; the Admin SDK's revocation check cannot be relied on: ID tokens stay valid
for up to an hour and the emulator skips the check). A **suspension** is a tombstone too
(:func:`suspension`), refused the same way, but kept until it is lifted (no
``expiresAt``) and lifted by deleting it; an erasure of a suspended account replaces it.
Phase two is a :class:`Cascade`: ordered steps, each run page by page, with a progress
document that records, per step, where it stopped and what it counted, committed with
the page's own writes where the page's writes are Firestore writes. A crash anywhere
resumes at the step and page where it stopped; the erasure is ``done`` only when every
step says so, in the same write that removes the uid from the progress document, which
is then the erasure's report.

Pseudonyms (``former-<hex>``) replace the uid in records kept for someone else (a
message in another user's conversation, an accepted offer); :func:`is_pseudonym` lets
the core skip telling one (:meth:`firekit.notify.Notifier.notify`).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from google.cloud import firestore
from pydantic import BaseModel

from firekit import leases, logs
from firekit.errors import PermissionDenied, Refusal

# --- personal data on a model -----------------------------------------------------------

PersonalKind = Literal["uid", "email", "phone", "name", "text", "token"]


@dataclass(frozen=True)
class Personal:
    """Annotation metadata: this value identifies or describes a person. The rules
    generator and the pydantic validators ignore it; :func:`personal_fields` finds it."""

    kind: PersonalKind


NAMES_OF_PEOPLE = re.compile(
    r"(?i)^(uids?|.*Uids?|email|emailTo|emailAddress|.*Email|phone|phoneNumber|.*Phone"
    r"|displayName|searchName|fullName|firstName|lastName|name)$"
)
"""Field names that hold a person whatever their type: such a field must be marked
:class:`Personal` or named by the map, so a new ``email`` cannot slip past both."""


def personal_fields(model: type[BaseModel]) -> dict[str, str]:
    """Every field path of ``model`` (nested models joined with ``.``, a list's items as
    ``[]``, a mapping's keys as ``{}`` and its values as ``{*}``) that carries
    :class:`Personal`, or whose name says it holds a person (kind ``"name?"``)."""
    found: dict[str, str] = {}
    _fields(model, "", found)
    return found


def _fields(model: type[BaseModel], prefix: str, found: dict[str, str]) -> None:
    for name, info in model.model_fields.items():
        path = prefix + name
        marks = [m for m in info.metadata if isinstance(m, Personal)]
        if marks:
            found[path] = marks[0].kind
        _walk(path, info.annotation, found)
        named = NAMES_OF_PEOPLE.match(name) and info.annotation is not bool
        if named and not any(p.startswith(path) for p in found):
            found[path] = "name?"


def _walk(path: str, annotation: Any, found: dict[str, str]) -> None:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        marks = [m for m in args[1:] if isinstance(m, Personal)]
        if marks:
            found[path] = marks[0].kind
        _walk(path, args[0], found)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            _walk(path, arg, found)
    elif origin in (list, tuple, set, frozenset):
        for arg in args:
            if arg is not Ellipsis:
                _walk(path + "[]", arg, found)
    elif origin is dict:
        _walk(path + "{}", args[0], found)
        _walk(path + "{*}", args[1], found)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _fields(annotation, path + ".", found)


# --- the map ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delete:
    """Erased: the document, object or record is deleted."""

    why: str = "the user's own data"


@dataclass(frozen=True)
class Pseudonymise:
    """Kept for someone else, with the user's id replaced by the erasure's pseudonym and
    the fields in ``clear`` emptied; ``why`` says whose record it is."""

    why: str
    clear: tuple[str, ...] = ()


@dataclass(frozen=True)
class Keep:
    """Kept as it is, for a stated reason and a stated time."""

    why: str
    retention: str


Erase = Delete | Pseudonymise | Keep
Where = Literal["firestore", "storage", "stripe", "auth"]


@dataclass(frozen=True)
class Entry:
    """One place a user's data lives, and what export and erasure do with it.

    ``path``: a Firestore path pattern (``users/{uid}/favorites/{listingId}``), a Storage
    prefix (``gs://photos/avatars/{uid}/``), a processor object (``stripe:customer``) or
    ``auth:user``. ``owned_by``: how the user's documents are found (``{uid} in the path``,
    ``buyerId == uid``). ``fields``: each personal field (as :func:`personal_fields` names
    it) and what erasure does to it, in words. ``step``: the cascade step that does it.
    """

    path: str
    where: Where
    owned_by: str
    erase: Erase
    export: bool
    step: str
    fields: Mapping[str, str] = field(default_factory=dict)
    find: Finder | None = None
    """The user's documents here (Firestore entries): queries or collections to read,
    for the export and for the sweep that proves none is left."""


Finder = Callable[[firestore.Client, str], Sequence[Any]]
"""``(db, uid)`` -> the queries (or collection references) that read a user's documents
at one entry's path."""


@dataclass(frozen=True)
class OwnershipMap:
    """Every :class:`Entry`, and the checks a test holds them to."""

    entries: tuple[Entry, ...]

    def at(self, path: str) -> list[Entry]:
        """The entries of one path pattern."""
        return [entry for entry in self.entries if entry.path == path]

    def uncovered(self, models: Sequence[type[BaseModel]]) -> list[str]:
        """``Model.field`` for every personal field of ``models`` (by their ``path``
        class attribute) that no entry of that path names; empty when all are covered."""
        missing = []
        for model in models:
            path = str(getattr(model, "path", ""))
            named = {name for entry in self.at(path) for name in entry.fields}
            missing += [
                f"{model.__name__}.{name} ({kind}) at {path or '?'}"
                for name, kind in personal_fields(model).items()
                if name not in named
            ]
        return missing

    def steps(self) -> list[str]:
        """The cascade steps the entries name, in first-named order."""
        return list(dict.fromkeys(entry.step for entry in self.entries))

    def markdown(self) -> str:
        """The map as a Markdown table (the README's, held to it by a test)."""
        rows = ["| where | whose | export | erasure | step |", "|---|---|---|---|---|"]
        for entry in self.entries:
            erase = entry.erase
            if isinstance(erase, Delete):
                what = "deleted" + ("" if erase.why == Delete.why else f": {erase.why}")
            elif isinstance(erase, Pseudonymise):
                cleared = f" ({', '.join(erase.clear)} cleared)" if erase.clear else ""
                what = f"kept, pseudonymised{cleared}: {erase.why}"
            else:
                what = f"kept {erase.retention}: {erase.why}"
            export = "yes" if entry.export else "no"
            rows.append(f"| `{entry.path}` | {entry.owned_by} | {export} | {what} | {entry.step} |")
        return "\n".join(rows) + "\n"

    def kept(self) -> list[dict[str, str]]:
        """What erasure keeps, and why and for how long: the report's ``kept`` list."""
        out = []
        for entry in self.entries:
            if isinstance(entry.erase, Keep):
                out.append(
                    {"what": entry.path, "why": entry.erase.why, "for": entry.erase.retention}
                )
            elif isinstance(entry.erase, Pseudonymise):
                out.append({"what": entry.path, "why": entry.erase.why, "for": "pseudonymised"})
        return out


# --- pseudonyms and tombstones ----------------------------------------------------------

PSEUDONYM_PREFIX = "former-"
TOMBSTONES = "_tombstones"
"""``_tombstones/{uid}``: written by phase one; the rules and every callable refuse the uid."""
TOMBSTONE_KEPT = dt.timedelta(days=7)
"""How long a finished erasure's tombstone stays (a TTL policy on ``expiresAt`` removes
it): ID tokens expire within the hour, but a trigger's retries and late Cloud Tasks run
for up to 7 days, and a late one must still find the account closed."""
REPORT_KEPT = dt.timedelta(days=365)
"""How long an erasure's report stays (a TTL policy on ``expiresAt``): proof the request
was carried out, without personal data."""
ERASURES = "_erasures"
"""``_erasures/{erasureId}``: an erasure's progress while it runs, its report once done."""


def new_pseudonym() -> str:
    """A fresh pseudonym: one per erasure, so every record it rewrites agrees."""
    return PSEUDONYM_PREFIX + secrets.token_hex(10)


def is_pseudonym(uid: str) -> bool:
    """Whether ``uid`` is an erased user's pseudonym (nobody to tell, nobody to ask)."""
    return uid.startswith(PSEUDONYM_PREFIX)


def tombstone_ref(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """The tombstone of ``uid``, if their account is closed or suspended."""
    return db.collection(TOMBSTONES).document(uid)


def is_closed(db: firestore.Client, uid: str) -> bool:
    """Whether ``uid``'s account is closed (erased or being erased) or suspended: one read."""
    return bool(tombstone_ref(db, uid).get().exists)


AccountState = Literal["open", "suspended", "closed"]
"""What a tombstone says of an account: none (``open``), a suspension, an erasure
(``closed``: being erased or erased)."""
SUSPENSION = "suspension"


def suspension(reason: str, now: dt.datetime) -> dict[str, Any]:
    """A suspension's tombstone: refused like an erasure's, kept until lifted."""
    return {"kind": SUSPENSION, "reason": reason, "since": now}


def account_state(tombstone: firestore.DocumentSnapshot[Any]) -> AccountState:
    """The state ``tombstone`` (read, present or not) gives its account."""
    if not tombstone.exists:
        return "open"
    return "suspended" if (tombstone.to_dict() or {}).get("kind") == SUSPENSION else "closed"


ACCOUNT_CLOSED = Refusal(
    PermissionDenied, "account_closed", "This account has been closed or suspended."
)
"""What every callable answers a closed or suspended account's still-valid ID token."""


# --- the cascade ------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What one page of a step did: ``done`` when the step has nothing left, else the
    ``cursor`` to start the next page at (opaque to the runner); ``counts`` by what."""

    done: bool
    counts: Mapping[str, int] = field(default_factory=dict)
    cursor: str | None = None


DONE = Page(done=True)


@dataclass
class StepContext:
    """What a step's page gets: the erasure, where the step stopped, and a batch that the
    runner commits together with the progress (so a page of Firestore writes and its
    record land together or not at all)."""

    db: firestore.Client
    erasure_id: str
    uid: str
    pseudonym: str
    cursor: str | None
    batch: firestore.WriteBatch
    facts: Mapping[str, Any]
    """What phase one recorded for the steps (the domain's own, e.g. the user's email)."""
    now: dt.datetime


StepRun = Callable[[StepContext], Page]


@dataclass(frozen=True)
class Step:
    """One step of the cascade: a name (the progress document's key) and its page."""

    name: str
    run: StepRun


@dataclass(frozen=True)
class RunResult:
    """What one run did: ``done`` (every step done), ``more`` (time ran out: queue the
    next run), ``busy`` (another run holds the erasure) or ``unknown``."""

    outcome: Literal["done", "more", "busy", "unknown"]
    pages: int = 0


class StepNotReadyError(RuntimeError):
    """A step cannot go on now (a processor down, a follow-up not yet landed): the run
    stops, its progress kept, and the queue tries again later."""


RUN_LEASE = dt.timedelta(minutes=5)
RUN_BUDGET_S = 240.0
"""How long one run works before it hands the rest to the next (a task's deadline is
longer: the budget leaves room for the page in flight)."""


@dataclass(frozen=True)
class Cascade:
    """Ordered steps that erase one user, resumable at any page.

    Progress: ``_erasures/{erasureId}`` holds ``uid``, ``pseudonym``, ``facts``, and per
    step ``steps.{name}`` = ``{done, cursor, pages, counts}``. Every page commits its
    batch with its step's new cursor and counts, so a crash before the commit leaves both
    as they were and the page runs again (pages must be idempotent for their side effects
    outside Firestore). Runs hold a lease, so a duplicated task waits rather than racing.
    """

    steps: tuple[Step, ...]
    collection: str = ERASURES

    def ref(self, db: firestore.Client, erasure_id: str) -> firestore.DocumentReference:
        """The erasure's progress document (its report, once done)."""
        return db.collection(self.collection).document(erasure_id)

    def begin_in(
        self,
        transaction: firestore.Transaction,
        db: firestore.Client,
        uid: str,
        *,
        requested_by: str,
        facts: Mapping[str, Any],
        now: dt.datetime,
    ) -> str:
        """Phase one, in ``transaction``: the tombstone and the progress document, or the
        erasure already begun for ``uid`` (a repeated request is the same erasure). A
        suspension's tombstone is replaced: the account stays refused throughout."""
        tombstone = tombstone_ref(db, uid)
        existing = tombstone.get(transaction=transaction)
        if account_state(existing) == "closed":
            return str((existing.to_dict() or {})["erasureId"])
        erasure_id = uuid.uuid4().hex
        transaction.set(tombstone, {"kind": "erasure", "erasureId": erasure_id, "closedAt": now})
        transaction.create(
            self.ref(db, erasure_id),
            {
                "uid": uid,
                "pseudonym": new_pseudonym(),
                "requestedBy": requested_by,
                "facts": dict(facts),
                "state": "running",
                "startedAt": now,
                "steps": {s.name: {"done": False, "pages": 0, "counts": {}} for s in self.steps},
            },
        )
        return erasure_id

    def run(
        self,
        db: firestore.Client,
        erasure_id: str,
        *,
        budget_s: float = RUN_BUDGET_S,
        clock: Callable[[], dt.datetime] = leases.now,
    ) -> RunResult:
        """Run the erasure's steps from where they stopped until all are done or the
        budget is spent. Raises :class:`StepNotReadyError` (progress kept) for a retry."""
        lease = leases.try_acquire(
            self.ref(db, erasure_id).collection("run").document("lease"), RUN_LEASE
        )
        if lease is None:
            return RunResult("busy")
        with lease:
            return self._run(db, erasure_id, time.monotonic() + budget_s, clock)

    def _run(
        self,
        db: firestore.Client,
        erasure_id: str,
        deadline: float,
        clock: Callable[[], dt.datetime],
    ) -> RunResult:
        ref = self.ref(db, erasure_id)
        snapshot = ref.get()
        if not snapshot.exists:
            return RunResult("unknown")
        progress = snapshot.to_dict() or {}
        if progress.get("state") == "done":
            return RunResult("done")
        pages = 0
        for step in self.steps:
            state = (progress.get("steps") or {}).get(step.name) or {}
            cursor = state.get("cursor")
            while not state.get("done"):
                if time.monotonic() > deadline:
                    return RunResult("more", pages)
                batch = db.batch()
                context = StepContext(
                    db,
                    erasure_id,
                    progress["uid"],
                    progress["pseudonym"],
                    cursor,
                    batch,
                    progress.get("facts") or {},
                    clock(),
                )
                page = step.run(context)
                fields: dict[str, Any] = {
                    f"steps.{step.name}.done": page.done,
                    f"steps.{step.name}.cursor": page.cursor,
                    f"steps.{step.name}.pages": firestore.Increment(1),
                }
                for what, count in page.counts.items():
                    if count:
                        fields[f"steps.{step.name}.counts.{what}"] = firestore.Increment(count)
                batch.update(ref, fields)
                batch.commit()
                pages += 1
                state = {"done": page.done}
                cursor = page.cursor
                logs.info(
                    "erasure page",
                    erasureId=erasure_id,
                    step=step.name,
                    done=page.done,
                    counts=dict(page.counts),
                )
        self._finish(db, ref, clock())
        return RunResult("done", pages)

    def _finish(
        self, db: firestore.Client, ref: firestore.DocumentReference, now: dt.datetime
    ) -> None:
        @firestore.transactional
        def finish(transaction: firestore.Transaction) -> None:
            progress = ref.get(transaction=transaction).to_dict() or {}
            undone = [
                s.name for s in self.steps if not (progress["steps"].get(s.name) or {}).get("done")
            ]
            if undone:  # never done unless every step is
                raise StepNotReadyError(f"steps not done: {undone}")
            transaction.update(
                tombstone_ref(db, progress["uid"]), {"expiresAt": now + TOMBSTONE_KEPT}
            )
            transaction.update(
                ref,
                {
                    "state": "done",
                    "finishedAt": now,
                    "expiresAt": now + REPORT_KEPT,
                    "uid": firestore.DELETE_FIELD,
                    "facts": firestore.DELETE_FIELD,
                },
            )

        finish(db.transaction())
