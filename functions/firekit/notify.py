"""Telling one user something: an inbox document, a push to their devices, an email digest line.

The many-recipient fan-out (:mod:`firekit.fanout`) tells thousands of users about one
event; a :class:`Notifier` tells one user about one thing (a new message, a review
decision, a viewing booked). Both read the same account document the same way
(:meth:`Notifier.reach_in`) and use the same quiet hours (:func:`in_quiet_hours`), the
same push (:mod:`firekit.push`) and the same digest marks (:func:`firekit.mail.digest_fields`).

**Once.** A :class:`Notice` carries a deterministic id: its inbox document's. Creating
that document only if it is absent is what says "this user was told", so a duplicated
call (a redelivered event) creates nothing and pushes nothing. :meth:`Notifier.notify`:

1. reads the user's account (one read: settings, email address, push tokens);
2. creates the inbox document, marked for the day's email digest if the notice asks for
   email and the user wants it, and recording the push as pending (``data.pushPending``)
   if the notice asks for a push, the user allows push and it is not their quiet hours;
   if the document exists, it was told before: stop, unless its push is still pending
   (a call that died between creating and pushing), then push;
3. pushes to each of their devices (dead tokens pruned by :func:`firekit.push.send_pushes`)
   and clears ``pushPending``.

The push is recorded after it is sent, so the one moment a push can go twice is a crash
between the two (what :mod:`firekit.push` calls the ambiguous moment): the second carries
the same collapse id, and the device shows one. Two duplicates running at the very same
moment could both find the push pending; callers whose duplicates can overlap run under a
claim (``document_trigger``'s claim mode), which serialises them.

The inbox document's ``data.channels`` says how the user was told (``inApp``, ``push``,
``email``), as the fan-out's inbox documents do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.api_core import exceptions as gexc
from google.cloud import firestore

from firekit import logs, mail, ownership, push, wire

PUSH_PENDING = "pushPending"
"""The key in the inbox document's ``data`` saying its push has not been sent yet."""
CHANNELS = "channels"
"""The key in the inbox document's ``data`` listing how the user was told."""


@dataclass(frozen=True)
class QuietHours:
    """No pushes between ``start`` and ``end`` (local ``HH:MM``) in ``timezone``."""

    start: str
    end: str
    timezone: str


def in_quiet_hours(quiet: QuietHours | None, now: dt.datetime) -> bool:
    """Is ``now`` inside the user's quiet hours (which may span midnight)?"""
    if quiet is None or quiet.start == quiet.end:
        return False
    try:
        zone = ZoneInfo(quiet.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")  # an unknown zone: the hours as UTC beat pushing at 3 am
    local = now.astimezone(zone).strftime("%H:%M")
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


@dataclass(frozen=True, slots=True)  # one per recipient of a fan-out page: no __dict__
class Reach:
    """How a user may be reached, as their account says."""

    push: bool = True
    """Push allowed at all (quiet hours aside)."""
    email: str | None = None
    """The address to email, only if they want email."""
    quiet: QuietHours | None = None
    tokens: tuple[str, ...] | None = None
    """Their push tokens as kept on the account; None: never synced (their devices are read)."""

    def wants_push(self, now: dt.datetime) -> bool:
        """Push allowed and not their quiet hours (then the inbox carries it alone)."""
        return self.push and not in_quiet_hours(self.quiet, now)


NO_ACCOUNT = Reach()
"""A user without an account document: push allowed (to their devices), no email."""


@dataclass(frozen=True)
class Notice:
    """One thing to tell one user, once."""

    uid: str
    id: str
    """The inbox document's id: deterministic, so a duplicate finds it."""
    kind: str
    title: str
    body: str
    link: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    """Kept on the inbox document; its string values also go in the push's data."""
    push: bool = True
    """Push it (if the user allows and it is not their quiet hours)."""
    email: bool = True
    """Put it in the daily digest (if the user wants email and has an address)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """More top-level fields of the inbox document (a ``listingId``, an ``emailAfter``)."""
    collapse_id: str | None = None
    """Pushes with one collapse id replace each other on the device (default: ``id``)."""

    def push_data(self) -> dict[str, str]:
        """The push's data payload (FCM takes strings only)."""
        data = {k: v for k, v in self.data.items() if isinstance(v, str)}
        data |= {"notificationId": self.id, "kind": self.kind}
        return data | ({"link": self.link} if self.link else {})


@dataclass(frozen=True)
class Outcome:
    """What one :meth:`Notifier.notify` call did."""

    told: bool
    """This call created the inbox document (False: told before)."""
    pushed: int = 0
    """Devices this call pushed to."""
    emailed: bool = False
    """This call marked it for the email digest."""
    removed_tokens: int = 0


class PushUnavailableError(RuntimeError):
    """FCM answered a transient failure: the push stays pending; call again later."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Notifier:
    """Where a user's inbox, account and devices are, and how to read the account."""

    reach_of: Callable[[Mapping[str, Any]], Reach]
    """The account document's data -> how to reach the user (the domain's settings model)."""
    inbox: str = "users/{uid}/notifications"
    """The path pattern of a user's inbox collection."""
    account: str = "users/{uid}/private/account"
    """The path pattern of the document :attr:`reach_of` reads (settings, address, and the
    push tokens when it is :attr:`devices`' holder: :func:`firekit.push.tokens_in`)."""
    devices: push.Devices = field(default_factory=push.Devices)
    transport: Callable[[firestore.Client], push.PushTransport] = push.default_transport
    clock: Callable[[], dt.datetime] = _now

    # --- reading the account ------------------------------------------------------------

    def account_ref(self, db: firestore.Client, uid: str) -> firestore.DocumentReference:
        """The user's account document."""
        return db.document(self.account.format(uid=uid))

    def inbox_ref(
        self, db: firestore.Client, uid: str, notice_id: str
    ) -> firestore.DocumentReference:
        """One inbox document of the user."""
        return db.collection(self.inbox.format(uid=uid)).document(notice_id)

    def reach_in(self, data: Mapping[str, Any] | None) -> Reach:
        """How to reach a user, from their account document's data (None: no account)."""
        return NO_ACCOUNT if data is None else self.reach_of(data)

    def reach(
        self, db: firestore.Client, uid: str, *, transaction: firestore.Transaction | None = None
    ) -> Reach:
        """How to reach one user: one document read (in ``transaction`` if given)."""
        snapshot = self.account_ref(db, uid).get(transaction=transaction)
        return self.reach_in((snapshot.to_dict() or {}) if snapshot.exists else None)

    def reaches(self, db: firestore.Client, uids: Iterable[str]) -> dict[str, Reach]:
        """How to reach each of ``uids``, in one batched read (users without an account:
        :data:`NO_ACCOUNT`)."""
        wanted = list(dict.fromkeys(uids))
        found = dict.fromkeys(wanted, NO_ACCOUNT)
        for snapshot in wire.get_all(db, [self.account_ref(db, uid) for uid in wanted]):
            owner = snapshot.reference.parent.parent
            if snapshot.exists and owner is not None:
                found[owner.id] = self.reach_in(snapshot.to_dict() or {})
        return found

    # --- the pieces -----------------------------------------------------------------------

    def inbox_document(
        self, notice: Notice, reach: Reach, now: dt.datetime, *, push_pending: bool
    ) -> dict[str, Any]:
        """A new inbox document for ``notice``: digest-marked if emailed, push pending if
        ``push_pending``; ``data.channels`` says how the user is told."""
        emailed = notice.email and reach.email is not None
        channels = (
            {"inApp"} | ({"push"} if push_pending else set()) | ({"email"} if emailed else set())
        )
        data = dict(notice.data) | {CHANNELS: sorted(channels)}
        data |= {PUSH_PENDING: True} if push_pending else {}
        document: dict[str, Any] = {
            "kind": notice.kind,
            "title": notice.title,
            "body": notice.body,
            "link": notice.link,
            "data": data,
            "createdAt": firestore.SERVER_TIMESTAMP,
            "read": False,
        }
        return document | dict(notice.extra) | self.digest_fields(reach, now, wanted=emailed)

    def digest_fields(
        self, reach: Reach, now: dt.datetime, *, wanted: bool = True
    ) -> dict[str, Any]:
        """The fields that put an inbox document in the user's digest of ``now``'s day
        (none if they want no email or have no address)."""
        if not wanted or reach.email is None:
            return {}
        return mail.digest_fields(reach.email, now.astimezone(dt.UTC).date())

    def create_inbox_in(
        self,
        db: firestore.Client,
        transaction: firestore.Transaction,
        notice: Notice,
        reach: Reach,
        *,
        push_pending: bool = False,
    ) -> bool:
        """Create the notice's inbox document in ``transaction`` if it is absent; whether it
        was. Reads it first: call it after the transaction's other reads."""
        if ownership.is_pseudonym(notice.uid):
            return False  # a former user: nobody to tell
        ref = self.inbox_ref(db, notice.uid, notice.id)
        if ref.get(transaction=transaction).exists:
            return False
        document = self.inbox_document(notice, reach, self.clock(), push_pending=push_pending)
        transaction.create(ref, document)
        return True

    def push_to(
        self,
        db: firestore.Client,
        uid: str,
        reach: Reach,
        *,
        collapse_id: str,
        title: str,
        body: str,
        data: Mapping[str, str] | None = None,
        exclude: Collection[str] = (),
        transport: push.PushTransport | None = None,
    ) -> push.PushReport:
        """Push one message to each of the user's devices but the ``exclude``d tokens
        (a token the sender also holds); dead tokens are deleted. ``transport``: instead
        of the notifier's (tests)."""
        tokens = reach.tokens
        if tokens is None:
            tokens = tuple(s.id for s in self.devices.devices_of(db, uid).select([]).stream())
        message = push.Push(
            uid=uid,
            collapse_id=collapse_id,
            title=title,
            body=body,
            data=dict(data or {}),
            tokens=tuple(t for t in tokens if t not in exclude),
        )
        sender = transport or self.transport(db)
        return push.send_pushes(db, sender, self.devices, [message])

    # --- the whole -------------------------------------------------------------------------

    def notify(self, db: firestore.Client, notice: Notice) -> Outcome:
        """Tell one user once: inbox, then push, then (through the inbox) the digest.

        Raises :class:`PushUnavailableError` when FCM failed transiently: the inbox document
        exists with its push pending, and calling again pushes it.
        """
        if ownership.is_pseudonym(notice.uid):
            return Outcome(told=False)  # a former user: nobody to tell
        reach = self.reach(db, notice.uid)
        now = self.clock()
        pending = notice.push and reach.wants_push(now)
        ref = self.inbox_ref(db, notice.uid, notice.id)
        document = self.inbox_document(notice, reach, now, push_pending=pending)
        try:
            ref.create(document)
        except gexc.AlreadyExists:
            stored = ref.get()
            if not ((stored.to_dict() or {}).get("data") or {}).get(PUSH_PENDING):
                return Outcome(told=False)
            return self._push_pending(db, notice, reach, ref, told=False)
        emailed = mail.DIGEST_TO in document
        if not pending:
            return Outcome(told=True, emailed=emailed)
        outcome = self._push_pending(db, notice, reach, ref, told=True)
        return Outcome(True, outcome.pushed, emailed, outcome.removed_tokens)

    def _push_pending(
        self,
        db: firestore.Client,
        notice: Notice,
        reach: Reach,
        ref: firestore.DocumentReference,
        *,
        told: bool,
    ) -> Outcome:
        report = self.push_to(
            db,
            notice.uid,
            reach,
            collapse_id=notice.collapse_id or notice.id,
            title=notice.title,
            body=notice.body,
            data=notice.push_data(),
        )
        if report.retry:
            logs.warning("push to retry", notificationId=notice.id)
            raise PushUnavailableError(f"FCM unavailable for {notice.id}; the push is pending")
        ref.update({f"data.{PUSH_PENDING}": firestore.DELETE_FIELD})
        return Outcome(told=told, pushed=report.sent, removed_tokens=report.removed_tokens)
