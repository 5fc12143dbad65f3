"""Chat: conversation summaries, unread counts that are exact by construction, read
receipts, and telling the recipient of a new message.

**Derived, never counted.** A participant's ``unread`` in a conversation is the number of
the other participant's messages created after their ``lastReadAt`` (all of them before
the first read), and their app badge (``users/{uid}/counters/unread``) is the sum of their
``unread`` over every conversation. Both are *recomputed* with ``count()`` and ``sum()``
aggregations whenever something they depend on changes, never kept as +1/-1, so a
duplicated, lost-then-retried or reordered event cannot make them drift: the next
recomputation is right whatever came before. There is no cap.

**Why the recomputations cannot race to a stale value.** A recount reads the
conversation, then counts the reader's unread (after the message was committed) and, side
by side, reads their badge and then sums their unread over all their conversations; it
commits the conversation's changes and the badge in one batch, each only if it is still
the version read, and otherwise starts again. Two recounts of one conversation therefore
cannot both land on the same version, and a read mark is itself a write to the document,
so a recount that read before it fails and counts again. Between two writes of the
conversation the truth only grows (new messages), so a recount that finds the stored value
unchanged has nothing to write there. The badge's truth can move both ways (one
conversation read while another receives), so the badge is always written, on the version
read before summing: of two recounts racing on one user's badge, the one that read first
fails and sums again. (The sum saw this conversation at the version read, so the badge
swaps its stored count for the new one.) No transaction holds a lock across the
aggregations, so concurrent triggers never wait on each other: in the emulator, two such
transactions on one conversation waited about 2 s for each other's lock. Four dependent
round trips per message: the conversation, the badge (beside the count), the sum, the
commit.

**Coalescing bursts.** Firestore sustains about one write a second to one document. The
summary moves only when the message is newer than the one shown (``lastMessage``), and a
message whose newer sibling from the same sender is already summarized needs nothing: that
sibling's recount ran after this message existed, and its trigger refreshes the badge. So
a burst ends with the newest message shown and exact counts, writing the conversation
about once per trigger that finds something new, not once per message.

**Telling the recipient** (:func:`notify_recipient`): nothing if they have read the
message already or have blocked the sender; the first unread message of a streak (the
messages since their last read) gets an inbox entry, which joins their daily email digest
after :data:`EMAIL_AFTER` if it is still unread and they chose email; and each message may
push to their devices, at most once per :data:`PUSH_INTERVAL` of message time per
conversation, collapsed per conversation, never to a device the sender also holds.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from google.api_core.exceptions import AlreadyExists, FailedPrecondition, NotFound
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from firekit import logs, ownership
from firekit.errors import BUSY
from firekit.transactions import run_transaction
from marketplace import queries

CONVERSATIONS = "conversations"
PREVIEW_LENGTH = 140
PUSH_INTERVAL = dt.timedelta(seconds=30)
"""At most one push per conversation per recipient within this much message time."""
EMAIL_AFTER = dt.timedelta(hours=12)
"""An unread message joins the recipient's email digest after this long."""
COUNTER = "users/{uid}/counters/unread"
PUSH_STATE = "_chatPush"
"""Server-only: per conversation and recipient, the last pushed message."""
_BUSY = "conversation busy; retry"

if TYPE_CHECKING:
    from firekit.push import PushTransport


def conversation_ref(db: firestore.Client, conversation_id: str) -> firestore.DocumentReference:
    """The conversation's document."""
    return db.collection(CONVERSATIONS).document(conversation_id)


def counter_ref(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """The user's unread counter (the app badge)."""
    return db.document(COUNTER.format(uid=uid))


def inbox_id(conversation_id: str, read_at: dt.datetime | None) -> str:
    """The inbox entry of one unread streak: the recipient's last read before it."""
    streak = 0 if read_at is None else _micros(read_at)
    return f"chat-{conversation_id}-{streak}"


def _micros(at: dt.datetime) -> int:
    return int(at.timestamp()) * 1_000_000 + at.microsecond


def is_kept_for_other(conversation_id: str) -> bool:
    """Whether the conversation is an erased buyer's, re-keyed to their pseudonym and kept
    for the agent (its messages were copied there: nobody is told of them again)."""
    return ownership.is_pseudonym(conversation_id.rpartition("__")[2])


def other_participant(conversation: Mapping[str, Any], uid: str) -> str | None:
    """The participant who is not ``uid`` (None if ``uid`` is not one of the two)."""
    ids = [p for p in conversation.get("participantIds") or [] if isinstance(p, str)]
    if uid not in ids or len(ids) != 2:
        return None
    return ids[0] if ids[1] == uid else ids[1]


def read_at(conversation: Mapping[str, Any], uid: str) -> dt.datetime | None:
    """When ``uid`` last marked the conversation read (None: never)."""
    value = (conversation.get("lastReadAt") or {}).get(uid)
    return value if isinstance(value, dt.datetime) else None


def preview(text: str) -> str:
    """The first :data:`PREVIEW_LENGTH` characters of a message."""
    return text[:PREVIEW_LENGTH]


def _order(sent_at: dt.datetime, message_id: str) -> tuple[dt.datetime, str]:
    # Messages committed in one batch share a timestamp: their ids break the tie.
    return sent_at, message_id


def _shown(conversation: Mapping[str, Any]) -> tuple[dt.datetime, str] | None:
    last = conversation.get("lastMessage") or {}
    sent_at, message_id = last.get("sentAt"), last.get("messageId")
    if isinstance(sent_at, dt.datetime) and isinstance(message_id, str):
        return _order(sent_at, message_id)
    return None


def _covered(
    conversation: Mapping[str, Any], message_id: str, sender: str, sent_at: dt.datetime
) -> bool:
    """Is a *newer* message of the same sender already summarized? Then its recount of
    this message's recipient ran after this message existed, and its trigger owns the
    badge refresh (a retry of this message's own trigger must still refresh: it may have
    failed between its commit and the badge)."""
    shown = _shown(conversation)
    last_sender = (conversation.get("lastMessage") or {}).get("senderId")
    return shown is not None and last_sender == sender and shown > _order(sent_at, message_id)


def unread_count(
    db: firestore.Client, conversation_id: str, conversation: Mapping[str, Any], reader: str
) -> int:
    """How many of the other participant's messages ``reader`` has not read (exact).

    Called after the conversation was read; the recount is written only on that version,
    which is what orders the count after everything it must see."""
    sender = other_participant(conversation, reader)
    if sender is None:
        return 0
    query = (
        conversation_ref(db, conversation_id)
        .collection("messages")
        .where(filter=FieldFilter("senderId", "==", sender))
    )
    since = read_at(conversation, reader)
    if since is not None:
        query = query.where(filter=FieldFilter("createdAt", ">", since))
    result = query.count(alias="n").get()
    return int(result[0][0].value)


@dataclass(frozen=True)
class Summarized:
    """What :func:`summarize` did for one message."""

    outcome: Literal["updated", "unchanged", "coalesced", "gone"]
    recipient: str | None = None


def summarize(
    db: firestore.Client, conversation_id: str, message_id: str, message: Mapping[str, Any]
) -> Summarized:
    """Show the message in the conversation's summary if it is the newest, recount its
    recipient's unread and their badge. Safe to run any number of times, in any order
    with other messages' and read marks' runs."""
    sender, sent_at = message.get("senderId"), message.get("createdAt")
    if not isinstance(sender, str) or not isinstance(sent_at, dt.datetime):
        return Summarized("gone")
    outcome: list[Summarized] = []

    def plan(conversation: Mapping[str, Any] | None) -> _Recount | None:
        outcome.clear()
        recipient = other_participant(conversation, sender) if conversation else None
        if conversation is None or recipient is None:
            outcome.append(Summarized("gone"))
            return None
        if _covered(conversation, message_id, sender, sent_at):
            outcome.append(Summarized("coalesced"))
            return None
        changes: dict[str, Any] = {}
        shown = _shown(conversation)
        if shown is None or _order(sent_at, message_id) > shown:
            text = message.get("text")
            changes["lastMessage"] = {
                "messageId": message_id,
                "text": preview(text if isinstance(text, str) else ""),
                "senderId": sender,
                "sentAt": sent_at,
            }
            changes["updatedAt"] = sent_at
        outcome.append(Summarized("updated", recipient))
        return _Recount(recipient, changes)

    wrote = _recount(db, conversation_id, plan)
    done = outcome[-1]
    if done.outcome == "updated" and not wrote:
        return Summarized("unchanged", done.recipient)
    return done


def recount_reader(db: firestore.Client, conversation_id: str, reader: str) -> bool:
    """After ``reader`` marked the conversation read: recount their unread and their
    badge. Returns whether their count changed."""

    def plan(conversation: Mapping[str, Any] | None) -> _Recount | None:
        if conversation is None or other_participant(conversation, reader) is None:
            return None
        return _Recount(reader, {})

    return _recount(db, conversation_id, plan)


@dataclass(frozen=True)
class _Recount:
    """What a recount writes besides the reader's count and badge: the summary."""

    reader: str
    changes: dict[str, Any]


ATTEMPTS = 10
_AGGREGATE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chat-aggregate")
"""The count and the badge's read and sum run side by side (both wait on Firestore)."""


def _recount(
    db: firestore.Client,
    conversation_id: str,
    plan: Callable[[Mapping[str, Any] | None], _Recount | None],
) -> bool:
    """Read the conversation, ``plan`` what to write, recount the reader's unread and
    badge, and commit it all in one batch, on the versions read; otherwise start again
    (see the module docstring). Returns whether the reader's count changed."""
    ref = conversation_ref(db, conversation_id)
    for attempt in range(ATTEMPTS):
        snapshot = ref.get()
        conversation = (snapshot.to_dict() or {}) if snapshot.exists else None
        recount = plan(conversation)
        if recount is None or conversation is None:
            return False
        reader = recount.reader
        counted = _AGGREGATE.submit(unread_count, db, conversation_id, conversation, reader)
        badge_ref, badge, total = _badge(db, reader)  # the badge read, then the sum
        count = counted.result()
        stored = (conversation.get("unread") or {}).get(reader)
        changes = dict(recount.changes)
        if stored != count:
            changes[FieldPath("unread", reader).to_api_repr()] = count
        # The sum saw this conversation as read above (its writes are guarded by that
        # version): swap its stored count for the new one.
        before = stored if isinstance(stored, int) else 0
        counts = {
            "messages": total["messages"] - before + count,
            "conversations": total["conversations"] - (before > 0) + (count > 0),
        }
        batch = db.batch()
        if changes:
            batch.update(ref, changes, option=_unchanged(snapshot))
        fields = counts | {"updatedAt": firestore.SERVER_TIMESTAMP}
        if badge.exists:
            batch.update(badge_ref, fields, option=_unchanged(badge))
        else:
            batch.create(badge_ref, fields)
        try:
            batch.commit()
        except (FailedPrecondition, AlreadyExists, NotFound):
            _back_off(attempt)
            continue
        return stored != count
    raise BUSY(_BUSY)


def _badge(
    db: firestore.Client, uid: str
) -> tuple[firestore.DocumentReference, firestore.DocumentSnapshot[Any], dict[str, int]]:
    """The user's badge as stored, then (after that read) their unread over all their
    conversations and how many conversations have any."""
    ref = counter_ref(db, uid)
    snapshot = ref.get()
    # Only the user's own conversations have an ``unread.<uid>`` entry: no array filter,
    # so the automatic single-field index of the map entry serves it.
    entry = FieldPath("unread", uid).to_api_repr()
    mine = db.collection(CONVERSATIONS).where(filter=FieldFilter(entry, ">", 0))
    # (the SDK annotates ``count()`` as returning the aggregation's class, not an instance)
    total = cast(Any, mine.count(alias="conversations")).sum(entry, alias="messages")
    found = {r.alias: int(r.value or 0) for r in total.get()[0]}
    sums = {"messages": found.get("messages", 0), "conversations": found.get("conversations", 0)}
    return ref, snapshot, sums


def refresh_counter(db: firestore.Client, uid: str) -> dict[str, int]:
    """Recompute the user's badge from all their conversations and write it (a repair,
    and the seed's check); the triggers keep it as part of each recount instead."""
    for attempt in range(ATTEMPTS):
        ref, badge, sums = _badge(db, uid)
        fields = sums | {"updatedAt": firestore.SERVER_TIMESTAMP}
        try:
            if badge.exists:
                ref.update(fields, option=_unchanged(badge))
            else:
                ref.create(fields)
        except (FailedPrecondition, AlreadyExists, NotFound):
            _back_off(attempt)
            continue
        return sums
    raise BUSY("unread counter busy; retry")


def _back_off(attempt: int) -> None:
    """Wait a random, growing while before reading again: out of step with the rival."""
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


def _unchanged(snapshot: firestore.DocumentSnapshot[Any]) -> Any:
    return firestore.Client.write_option(last_update_time=snapshot.update_time)


def mark_streak_read(
    db: firestore.Client, uid: str, conversation_id: str, read_before: dt.datetime | None
) -> bool:
    """The reader's inbox entry for the streak that this read ended, marked read (and out
    of the email digest, if it had not joined it yet). False if there is none."""
    ref = db.document(f"users/{uid}/notifications/{inbox_id(conversation_id, read_before)}")
    try:
        ref.update(
            {
                "read": True,
                "readAt": firestore.SERVER_TIMESTAMP,
                "emailAfter": firestore.DELETE_FIELD,
            }
        )
    except NotFound:
        return False  # the streak had no entry (read before the notification ran)
    logs.info("chat inbox entry read", uid=uid, conversationId=conversation_id)
    return True


# --- telling the recipient ----------------------------------------------------------


@dataclass(frozen=True)
class Told:
    """What :func:`notify_recipient` did for one message."""

    outcome: Literal["told", "read", "blocked", "gone"]
    inbox_created: bool = False
    pushed: int = 0
    throttled: bool = False


def notify_recipient(
    db: firestore.Client,
    conversation_id: str,
    message_id: str,
    message: Mapping[str, Any],
    *,
    transport: PushTransport | None = None,
    now: dt.datetime | None = None,
) -> Told:
    """Tell the recipient of a message: the streak's inbox entry, a throttled push.

    The decision (inbox entry, push state) commits in one transaction that reads the
    conversation, so a read mark that lands meanwhile makes it decide again. Run once per
    message (the trigger's claim): a retry after a crash may push again, with the same
    collapse id, which replaces the first on the device.
    """
    from firekit.notify import Notice  # lazy: the summary's instances never push
    from marketplace import notify

    sender, sent_at = message.get("senderId"), message.get("createdAt")
    text = message.get("text")
    if not isinstance(sender, str) or not isinstance(sent_at, dt.datetime):
        return Told("gone")
    ref = conversation_ref(db, conversation_id)
    first = ref.get()
    recipient = other_participant(first.to_dict() or {}, sender) if first.exists else None
    if recipient is None:
        return Told("gone")
    reach = notify.USERS.reaches(db, [recipient, sender])
    to, by = reach[recipient], reach[sender]
    name = notify.display_name(db, sender) or "Someone"
    body = preview(text if isinstance(text, str) else "")
    link = f"/conversations/{conversation_id}"
    data = {"conversationId": conversation_id, "messageId": message_id, "senderId": sender}
    state_ref = db.collection(PUSH_STATE).document(f"{conversation_id}__{recipient}")

    def decide(transaction: firestore.Transaction) -> Told:
        conversation = ref.get(transaction=transaction).to_dict() or {}
        last_read = read_at(conversation, recipient)
        if last_read is not None and last_read >= sent_at:
            return Told("read")
        if recipient in (conversation.get("blockedBy") or {}):
            return Told("blocked")
        pushed = state_ref.get(transaction=transaction).to_dict() or {}
        last_pushed = pushed.get("lastPushedSentAt")
        again = pushed.get("lastMessageId") == message_id  # this message's own retry
        due = not isinstance(last_pushed, dt.datetime) or sent_at >= last_pushed + PUSH_INTERVAL
        # The streak's first unread message makes its entry; it joins the email digest
        # only after EMAIL_AFTER unread (queue_unread_emails), not today.
        email_after = {"emailAfter": sent_at + EMAIL_AFTER} if to.email is not None else {}
        entry = Notice(
            uid=recipient,
            id=inbox_id(conversation_id, last_read),
            kind="message",
            title=f"New message from {name}"[:120],
            body=body,
            link=link,
            data=data,
            push=False,
            email=False,
            extra=email_after,
        )
        created = notify.USERS.create_inbox_in(db, transaction, entry, to)  # reads: first
        if due and not again:
            transaction.set(state_ref, {"lastPushedSentAt": sent_at, "lastMessageId": message_id})
        return Told("told", created, int(due or again), throttled=not (due or again))

    told = run_transaction(db, decide, busy_message=_BUSY)
    if told.outcome != "told" or not told.pushed:
        return told
    if not to.wants_push(now or dt.datetime.now(dt.UTC)):
        return Told("told", told.inbox_created, 0, told.throttled)
    report = notify.USERS.push_to(
        db,
        recipient,
        to,
        collapse_id=f"chat-{conversation_id}",
        title=name,
        body=body,
        data=data | {"kind": "message", "link": link},
        exclude=set(by.tokens or ()),
        transport=transport,
    )
    return Told("told", told.inbox_created, report.sent, told.throttled)


def queue_unread_emails(
    db: firestore.Client, now: dt.datetime, *, page: int = 200, budget_s: float = 480.0
) -> int:
    """Put every chat inbox entry unread for :data:`EMAIL_AFTER` into its recipient's
    email digest of today (if they still want email); read ones just leave the queue.
    Returns how many joined a digest. Page by page within a time budget; what is left
    goes on the next run."""
    started, joined = time.monotonic(), 0
    while time.monotonic() - started < budget_s:
        due = list(
            queries.CHAT_EMAIL_DUE.build(
                db, ranges={"emailAfter": [("<=", now)]}, limit=page
            ).stream()
        )
        for entry in due:
            owner = entry.reference.parent.parent
            if owner is not None:
                joined += _queue_one(db, entry.reference, owner.id, now)
        if len(due) < page:
            break
    return joined


def _queue_one(
    db: firestore.Client, entry_ref: firestore.DocumentReference, uid: str, now: dt.datetime
) -> int:
    from marketplace import notify  # lazy: see notify_recipient

    reach = notify.USERS.reach(db, uid)

    def apply(transaction: firestore.Transaction) -> int:
        entry = entry_ref.get(transaction=transaction)
        data = entry.to_dict() or {}
        if not entry.exists or "emailAfter" not in data:
            return 0  # another run took it
        fields: dict[str, Any] = {"emailAfter": firestore.DELETE_FIELD}
        joins = not data.get("read") and reach.email is not None
        if joins:
            fields |= notify.USERS.digest_fields(reach, now)
        transaction.update(entry_ref, fields)
        return int(joins)

    return run_transaction(db, apply, busy_message="inbox entry busy; retry")


# --- reports ------------------------------------------------------------------------


def complete_report(
    db: firestore.Client, transaction: firestore.Transaction, report_id: str
) -> None:
    """Fill in what a moderator needs that the reporter did not write: the reported
    participant, the listing, and the reported message's text (all read as stored)."""
    ref = db.collection("reports").document(report_id)
    report = ref.get(transaction=transaction)
    data = report.to_dict() or {}
    conversation_id, message_id = data.get("conversationId"), data.get("messageId")
    if not report.exists or not isinstance(conversation_id, str):
        return
    conversation = conversation_ref(db, conversation_id).get(transaction=transaction)
    about = conversation.to_dict() or {}
    reporter = data.get("reporterId")
    fields: dict[str, Any] = {
        "status": data.get("status") or "open",
        "reportedUid": other_participant(about, reporter) if isinstance(reporter, str) else None,
        "listingId": about.get("listingId"),
        "excerpt": None,
    }
    if isinstance(message_id, str):
        message = conversation_ref(db, conversation_id).collection("messages").document(message_id)
        found = message.get(transaction=transaction).to_dict() or {}
        text = found.get("text")
        fields["excerpt"] = text if isinstance(text, str) else None
        if isinstance(found.get("senderId"), str):
            fields["reportedUid"] = found["senderId"]
    transaction.update(ref, fields)
