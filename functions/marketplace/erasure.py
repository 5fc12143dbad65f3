"""Erasing an account: phase one (closed at once) and the cascade that does what
:data:`marketplace.ownership.MAP` declares, step by step, page by page.

Order matters, and why:

1. ``close``: Auth disabled and refresh tokens revoked (again: phase one did it, but a
   crash may have come between), and the profile's name blanked, so every notice the
   later steps cause says "a former user", never the name.
2. ``searches``, ``devices``: nothing new reaches the user (alerts, pushes, the calendar).
3. ``offers``, ``listings``, ``viewings``: the deals and visits end as the other party
   would see any withdrawal or cancellation (their holds released, they are told), and
   are then kept for them under the pseudonym.
4. ``favorites``: each leaves its listing's count through the same reconcile as a tap.
5. ``conversations``: kept for the other participant, closed, the user's messages from
   "a former user"; a buyer's conversation is re-keyed (its id names the buyer).
6. ``records``: reports and the audit log, pseudonymised.
7. ``stripe``: the customer (and its subscriptions) deleted at the processor.
8. ``storage``, ``own``, ``internal``: files, the user's own subtree, bookkeeping.
9. ``verify``: every finder of the map comes back empty, or the step sweeps again.
10. ``auth``: the Auth user deleted, last: until then the account stays disabled.
11. ``report``: what was kept and why, into the erasure's own document.

Every page is idempotent: a document already deleted or rewritten is skipped, a move that
is no longer allowed counts as done, a processor object already gone counts as done.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from firebase_admin import auth
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit import logs, ownership, storage
from firekit.claims import NO_SUCH_USER
from firekit.errors import MOVE_NOT_ALLOWED, AppError
from firekit.ownership import DONE, Cascade, Page, Step, StepContext, StepNotReadyError
from firekit.transactions import run_transaction
from marketplace import (
    audit,
    chat,
    favorites,
    offers,
    photo_uploads,
    queries,
    suspensions,
    viewings,
)
from marketplace.models.deals import OPEN_STATUSES
from marketplace.ownership import FORMER_USER, MAP
from marketplace.payments import customers, deposits, stripe_api
from marketplace.profiles import profile_ref

PAGE = 100
"""Documents per page where each needs reads or moves of its own."""
BULK = 400
"""Documents per page of plain deletes (a batch holds 500 writes; one is the progress)."""
MESSAGES = 200
"""Messages per page of a re-keyed conversation: two writes each (copy, delete)."""
CLOSED_REASON = "The account was closed."
BUSY_MESSAGE = "The account is being changed; try again in a moment."
STRIPE = Callable[[], Any]

ERASED = "erased"
"""A listing's ``archivedReason`` when its owner's account was erased."""


def _count(what: str, n: int) -> dict[str, int]:
    return {what: n} if n else {}


# --- 1. close ------------------------------------------------------------------------------


def close(ctx: StepContext) -> Page:
    """Disable the Auth user, revoke its tokens (again: phase one may have stopped before
    it), blank the profile's name and picture."""
    _disable(ctx.uid)
    profile = profile_ref(ctx.db, ctx.uid)
    if profile.get().exists:
        ctx.batch.update(
            profile,
            {
                "displayName": "",
                "searchName": "",
                "bio": "",
                "photoURL": firestore.DELETE_FIELD,
                "avatar": firestore.DELETE_FIELD,
            },
        )
    return DONE


# --- 2. searches, devices -----------------------------------------------------------------


def searches(ctx: StepContext) -> Page:
    """Delete a page of saved searches, each leaving the alert index in its transaction."""
    from marketplace import alerts  # lazy: the alert matcher is large

    query = queries.MY_SAVED_SEARCHES.build(ctx.db, equals={"ownerId": ctx.uid}, limit=PAGE)
    page = list(query.select([]).stream())
    for snapshot in page:

        def leave(transaction: firestore.Transaction, ref: Any = snapshot.reference) -> None:
            # Out of the index and deleted together: a crash between cannot strand it.
            alerts.SEARCH_INDEX.update(ctx.db, transaction, ref.id, group=None)
            transaction.delete(ref)

        run_transaction(ctx.db, leave, busy_message=BUSY_MESSAGE)
    return Page(done=len(page) < PAGE, counts=_count("savedSearches", len(page)))


def devices(ctx: StepContext) -> Page:
    """Delete a page of devices (their push tokens) and the calendar feed."""
    devices_page = list(
        ctx.db.collection(f"users/{ctx.uid}/devices").select([]).limit(PAGE).stream()
    )
    feeds = list(
        queries.CALENDAR_FEED_OF.build(ctx.db, equals={"uid": ctx.uid}).select([]).stream()
    )
    for snapshot in (*devices_page, *feeds):
        ctx.batch.delete(snapshot.reference)
    return Page(
        done=len(devices_page) < PAGE,
        counts=_count("devices", len(devices_page)) | _count("calendarFeeds", len(feeds)),
    )


# --- 3. offers, listings, viewings --------------------------------------------------------


def _stripe() -> Any:
    return stripe_api.client()


def offers_step(ctx: StepContext, stripe_client: STRIPE = _stripe) -> Page:
    """Withdraw the user's open offers (their holds cancelled now), then pseudonymise a
    page of their offers, buyer or agent; their offer slots go."""
    withdrawn = 0
    for status in OPEN_STATUSES:
        query = ctx.db.collection(offers.OFFERS).where(filter=FieldFilter("buyerId", "==", ctx.uid))
        for snapshot in query.where(filter=FieldFilter("status", "==", status)).stream():
            withdrawn += _settled(ctx.db, snapshot.id, "withdraw", ctx.uid)
            # The hold is released now, not by the follow-up trigger: the stripe step
            # must find nothing of the customer's still held.
            held = bool((snapshot.to_dict() or {}).get("deposit"))
            if held and deposits.carry_out(ctx.db, stripe_client(), snapshot.id) == "busy":
                raise StepNotReadyError(f"deposit of {snapshot.id} busy")
    rewritten = 0
    for role in ("buyerId", "agentId"):
        query = ctx.db.collection(offers.OFFERS).where(filter=FieldFilter(role, "==", ctx.uid))
        page = list(query.limit(PAGE).stream())
        for snapshot in page:
            data = snapshot.to_dict() or {}
            if role == "buyerId":
                slot = ctx.db.collection(offers.SLOTS).document(f"{data['listingId']}__{ctx.uid}")
                ctx.batch.delete(slot)
            ctx.batch.update(snapshot.reference, _offer_pseudonymised(data, ctx))
        rewritten += len(page)
        if len(page) == PAGE:
            return Page(False, _count("offersWithdrawn", withdrawn) | _count("offers", rewritten))
    return Page(True, _count("offersWithdrawn", withdrawn) | _count("offers", rewritten))


def _offer_pseudonymised(data: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for role, side in (("buyerId", "buyer"), ("agentId", "agent")):
        if data.get(role) == ctx.uid:
            fields[role] = ctx.pseudonym
            change = data.get("lastChange") or {}
            if change.get("by") == side and change.get("reason"):
                fields["lastChange.reason"] = firestore.DELETE_FIELD
            if side == "buyer":
                fields["message"] = firestore.DELETE_FIELD
            if side == "agent" and data.get("rejectionReason"):
                fields["rejectionReason"] = firestore.DELETE_FIELD
    return fields


def _settled(db: firestore.Client, offer_id: str, move: Any, uid: str) -> int:
    """Make a move; 0 if it is no longer allowed (another move got there first)."""
    try:
        offers.answer(db, offer_id, move, uid, reason=CLOSED_REASON)
    except AppError as refused:
        if MOVE_NOT_ALLOWED.raised(refused):
            return 0
        raise
    return 1


def listings(ctx: StepContext) -> Page:
    """Archive a page of the user's listings (their open offers lapse at once, buyers
    told), delete their photos, and keep each under the pseudonym."""
    from marketplace import offer_upkeep  # lazy: pulls the payments modules

    page = list(
        ctx.db.collection("listings")
        .where(filter=FieldFilter("ownerId", "==", ctx.uid))
        .limit(PAGE)
        .stream()
    )
    photos = 0
    for snapshot in page:
        data = snapshot.to_dict() or {}
        fields: dict[str, Any] = {
            "ownerId": ctx.pseudonym,
            "description": "",
            "photos": [],
            "photoIssues": firestore.DELETE_FIELD,
        }
        if data.get("status") != "archived":
            fields |= {"status": "archived", "archivedReason": ERASED}
        snapshot.reference.update(fields)
        offer_upkeep.end_offers_off_market(ctx.db, snapshot.id, "archived")
        photos += photo_uploads.remove_everything_of_listing(ctx.db, snapshot.id)
    return Page(len(page) < PAGE, _count("listings", len(page)) | _count("listingPhotos", photos))


def viewings_step(ctx: StepContext) -> Page:
    """Cancel the user's future viewings (the other party told, places released), then
    pseudonymise a page of their viewings and delete what still names them."""
    cancelled = 0
    now = ctx.now
    for query in (queries.BUYER_VIEWINGS, queries.AGENT_VIEWINGS):
        side = query.equals[0]
        for snapshot in query.build(
            ctx.db, equals={side: ctx.uid}, ranges={"slotStart": [(">=", now)]}
        ).stream():
            if (snapshot.to_dict() or {}).get("status") in viewings.ACTIVE:
                try:
                    viewings.move(ctx.db, snapshot.id, "cancel", ctx.uid, reason=CLOSED_REASON)
                    cancelled += 1
                except AppError as refused:
                    if not MOVE_NOT_ALLOWED.raised(refused):
                        raise
    rewritten = 0
    for side in ("requesterId", "agentId"):
        mine = ctx.db.collection("viewings").where(filter=FieldFilter(side, "==", ctx.uid))
        page = list(mine.limit(PAGE).stream())
        for snapshot in page:
            ctx.batch.update(snapshot.reference, _viewing_pseudonymised(snapshot.to_dict(), ctx))
        rewritten += len(page)
        if len(page) == PAGE:
            return Page(
                False, _count("viewingsCancelled", cancelled) | _count("viewings", rewritten)
            )
    leftovers = _delete_found(ctx, ("viewingLocks/{lockId}", "viewingHolds/{holdId}"))
    return Page(
        True,
        _count("viewingsCancelled", cancelled)
        | _count("viewings", rewritten)
        | _count("viewingPlaces", leftovers),
    )


def _viewing_pseudonymised(data: Mapping[str, Any] | None, ctx: StepContext) -> dict[str, Any]:
    data = data or {}
    fields: dict[str, Any] = {"locks": [], "holds": []}
    if data.get("requesterId") == ctx.uid:
        fields |= {"requesterId": ctx.pseudonym, "note": firestore.DELETE_FIELD}
    if data.get("agentId") == ctx.uid:
        fields["agentId"] = ctx.pseudonym
    change = data.get("lastChange") or {}
    if change.get("by") == ctx.uid:
        fields["lastChange.by"] = ctx.pseudonym
        if change.get("reason"):
            fields["lastChange.reason"] = firestore.DELETE_FIELD
    return fields


# --- 4. favourites --------------------------------------------------------------------------


def favorites_step(ctx: StepContext) -> Page:
    """Delete a page of favourites and take each off its listing's count, in the page's
    own batch (so a crash leaves both as they were); then marks a late trigger counted
    after their favourite went, or whose listing is gone, reconciled one by one."""
    page = [
        s.id
        for s in ctx.db.collection(f"users/{ctx.uid}/favorites").select([]).limit(PAGE).stream()
    ]
    uncounted = favorites.forget_in(ctx.db, ctx.batch, ctx.uid, page)
    if page:
        return Page(False, _count("favorites", len(page)) | _count("uncounted", uncounted))
    marks = list(
        ctx.db.collection_group(favorites.MARKS_COLLECTION)
        .where(filter=FieldFilter("uid", "==", ctx.uid))
        .limit(PAGE)
        .stream()
    )
    for mark in marks:
        listing = mark.reference.parent.parent
        assert listing is not None

        def recount(transaction: firestore.Transaction, lid: str = listing.id) -> int:
            return favorites.reconcile(ctx.db, transaction, ctx.uid, lid)

        if run_transaction(ctx.db, recount, busy_message=BUSY_MESSAGE) == 0:
            ctx.batch.delete(mark.reference)  # its listing is gone: nothing to count down
    return Page(len(marks) < PAGE, _count("marksSwept", len(marks)))


# --- 5. conversations -----------------------------------------------------------------------


def conversations(ctx: StepContext) -> Page:
    """One conversation a page (its messages in pages of :data:`PAGE`): kept for the other
    participant under the pseudonym, blocked, and re-keyed when its id names the user.

    Cursor: ``{conversationId}`` while its messages are being moved."""
    if ctx.cursor:
        return _move_messages(ctx, ctx.cursor)
    query = ctx.db.collection("conversations").where(
        filter=FieldFilter("participantIds", "array_contains", ctx.uid)
    )
    found = list(query.limit(1).stream())
    if not found:
        return DONE
    return _move_messages(ctx, found[0].id)


def _new_id(conversation_id: str, uid: str, pseudonym: str) -> str:
    listing_id, _, buyer = conversation_id.rpartition("__")
    return f"{listing_id}__{pseudonym}" if buyer == uid else conversation_id


def _move_messages(ctx: StepContext, conversation_id: str) -> Page:
    db, uid, alias = ctx.db, ctx.uid, ctx.pseudonym
    old = chat.conversation_ref(db, conversation_id)
    new = chat.conversation_ref(db, _new_id(conversation_id, uid, alias))
    rekeyed = old.id != new.id
    data = old.get().to_dict()
    if data is not None and rekeyed and not new.get().exists:
        # The new conversation first (so its messages have a parent), closed to posting.
        ctx.batch.create(new, _conversation_pseudonymised(data, uid, alias, ctx.now))
        return Page(False, {}, conversation_id)
    if rekeyed:
        messages = list(old.collection("messages").limit(MESSAGES).stream())
        for message in messages:
            ctx.batch.set(
                new.collection("messages").document(message.id), _said(message, uid, alias)
            )
            ctx.batch.delete(message.reference)
    else:
        messages = list(
            old.collection("messages")
            .where(filter=FieldFilter("senderId", "==", uid))
            .limit(MESSAGES)
            .stream()
        )
        for message in messages:
            ctx.batch.update(message.reference, {"senderId": alias})
    if len(messages) == MESSAGES:
        return Page(False, _count("messages", len(messages)), conversation_id)
    # The last page: the conversation itself, the other side's inbox and badge.
    other = chat.other_participant(data or {}, uid) if data else None
    if data is not None and rekeyed:
        ctx.batch.delete(old)
    elif data is not None:
        ctx.batch.set(old, _conversation_pseudonymised(data, uid, alias, ctx.now))
    if other is not None:
        _reword_inbox(ctx, other, conversation_id, new.id)
        ctx.batch.delete(db.collection(chat.PUSH_STATE).document(f"{conversation_id}__{other}"))
    ctx.batch.delete(db.collection(chat.PUSH_STATE).document(f"{conversation_id}__{uid}"))
    for report in (
        db.collection("reports")
        .where(filter=FieldFilter("conversationId", "==", conversation_id))
        .stream()
    ):
        ctx.batch.update(report.reference, {"conversationId": new.id})
    return Page(False, _count("messages", len(messages)) | {"conversations": 1}, None)


def _said(message: firestore.DocumentSnapshot[Any], uid: str, alias: str) -> dict[str, Any]:
    data = dict(message.to_dict() or {})
    if data.get("senderId") == uid:
        data["senderId"] = alias
    return data


def _conversation_pseudonymised(
    data: Mapping[str, Any], uid: str, alias: str, now: dt.datetime
) -> dict[str, Any]:
    def swap(value: Any) -> Any:
        return alias if value == uid else value

    def keys(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
        return {swap(k): v for k, v in (mapping or {}).items()}

    out = dict(data)
    out["buyerId"], out["agentId"] = swap(data.get("buyerId")), swap(data.get("agentId"))
    out["participantIds"] = [swap(p) for p in data.get("participantIds") or []]
    out["lastReadAt"] = keys(data.get("lastReadAt"))
    out["unread"] = keys(data.get("unread"))
    # Blocked by the former user: the rules let nobody post into it any more.
    out["blockedBy"] = keys(data.get("blockedBy")) | {alias: now}
    last = data.get("lastMessage")
    if isinstance(last, Mapping):
        out["lastMessage"] = dict(last) | {"senderId": swap(last.get("senderId"))}
    return out


def _reword_inbox(ctx: StepContext, other: str, old_id: str, new_id: str) -> None:
    """The other participant's chat inbox entries: from "a former user", re-keyed if their
    id names the user."""
    inbox = ctx.db.collection(f"users/{other}/notifications")
    entries = inbox.where(filter=FieldFilter("data.conversationId", "==", old_id)).stream()
    for entry in entries:
        data = dict(entry.to_dict() or {})
        data["title"] = f"New message from {FORMER_USER.lower()}"
        inner = dict(data.get("data") or {})
        inner["conversationId"] = new_id
        if inner.get("senderId") == ctx.uid:
            inner["senderId"] = ctx.pseudonym
        if isinstance(data.get("link"), str):
            data["link"] = data["link"].replace(old_id, new_id)
        data["data"] = inner
        entry_id = entry.id.replace(old_id, new_id)
        if entry_id != entry.id:
            ctx.batch.delete(entry.reference)
        ctx.batch.set(inbox.document(entry_id), data)


# --- 6. records -----------------------------------------------------------------------------


def records(ctx: StepContext) -> Page:
    """Reports and audit entries: the user's id replaced by the pseudonym."""
    n = 0
    for collection, field_name in (
        ("reports", "reporterId"),
        ("reports", "reportedUid"),
        ("auditLog", "actorUid"),
    ):
        query = ctx.db.collection(collection).where(filter=FieldFilter(field_name, "==", ctx.uid))
        for snapshot in query.limit(PAGE).stream():
            ctx.batch.update(snapshot.reference, {field_name: ctx.pseudonym})
            n += 1
    target = f"users/{ctx.uid}"
    for snapshot in (
        ctx.db.collection("auditLog")
        .where(filter=FieldFilter("target", "==", target))
        .limit(PAGE)
        .stream()
    ):
        ctx.batch.update(snapshot.reference, {"target": f"users/{ctx.pseudonym}"})
        n += 1
    return Page(n < PAGE, _count("records", n))


# --- 7. stripe ------------------------------------------------------------------------------


def stripe_step(ctx: StepContext, stripe_client: STRIPE = _stripe) -> Page:
    """Delete the Stripe customer (its subscriptions cancelled first), blank our uid from
    its payments' metadata, and delete our mirror of it."""
    customer_id = customers.stored_customer_id(ctx.db, ctx.uid)
    root = customers.customer_ref(ctx.db, ctx.uid)
    links = list(
        ctx.db.collection(deposits.PAYMENT_LINKS)
        .where(filter=FieldFilter("uid", "==", ctx.uid))
        .stream()
    )
    # Our own record of the user's payments: Stripe lists payment intents by customer,
    # localstripe does not, and a deposit's intent may predate the customer's mirror.
    intents = sorted(
        {s.id for s in root.collection("payments").select([]).stream()}
        | {link.id for link in links}
    )
    counts: dict[str, int] = {}
    if customer_id is not None or intents:
        api = stripe_client()
        if customer_id is not None:
            # The link first: a webhook arriving after this finds no user to change.
            ctx.db.collection(customers.BY_STRIPE_ID).document(customer_id).delete()
        counts = _forget_customer(api, customer_id, intents, ctx.uid, ctx.pseudonym)
    for link in links:
        if (link.to_dict() or {}).get("purpose") == "deposit":
            ctx.batch.update(link.reference, {"uid": ctx.pseudonym})
        else:
            ctx.batch.delete(link.reference)
    deleted = _delete_tree(ctx.db, root)
    return Page(True, counts | _count("customerDocuments", deleted))


def _forget_customer(
    api: Any, customer_id: str | None, intents: Iterable[str], uid: str, alias: str
) -> dict[str, int]:
    import stripe  # lazy: see bench/cold_start.py

    counts = {"subscriptionsCancelled": 0, "paymentsBlanked": 0, "stripeCustomers": 0}
    try:
        for intent_id in intents:
            intent = _gone_is_none(stripe, partial(api.v1.payment_intents.retrieve, intent_id))
            if intent is not None and (intent.to_dict().get("metadata") or {}).get("uid") == uid:
                # The pseudonym, not "": Stripe drops a key set to "", localstripe ignores it.
                api.v1.payment_intents.update(intent_id, {"metadata": {"uid": alias}})
                counts["paymentsBlanked"] += 1
        if customer_id is None:
            return counts
        listed = api.v1.subscriptions.list({"customer": customer_id, "status": "all"})
        for sub in listed.data:
            if sub.to_dict().get("status") not in ("canceled", "incomplete_expired"):
                api.v1.subscriptions.cancel(sub.id)
                counts["subscriptionsCancelled"] += 1
        if _gone_is_none(stripe, lambda: api.v1.customers.delete(customer_id)) is not None:
            counts["stripeCustomers"] = 1
    except stripe.StripeError as exc:
        raise StepNotReadyError(f"Stripe: {exc}") from exc
    return counts


def _gone_is_none(stripe: Any, call: Callable[[], Any]) -> Any:
    """The call's answer, or None when Stripe says the object is not there (any more)."""
    try:
        return call()
    except stripe.InvalidRequestError as exc:
        if getattr(exc, "http_status", None) == 404:
            return None
        raise


# --- 8. storage, own, internal --------------------------------------------------------------


def storage_step(ctx: StepContext) -> Page:
    """Avatars, avatar uploads and the user's exports."""
    removed = photo_uploads.remove_everything_of_user(ctx.db, ctx.uid)
    removed += storage.delete_prefix(storage.default_bucket_name(), f"exports/{ctx.uid}/")
    return Page(True, _count("storageObjects", removed))


def own(ctx: StepContext) -> Page:
    """The user's own subtree (no deeper than one level: none of its documents has
    subcollections), a page at a time, the profile last."""
    profile = profile_ref(ctx.db, ctx.uid)
    deleted = 0
    for collection in profile.collections():
        for snapshot in collection.select([]).limit(BULK - deleted).stream():
            ctx.batch.delete(snapshot.reference)
            deleted += 1
        if deleted >= BULK:  # the batch is full: the next page goes on from here
            return Page(False, _count("ownDocuments", deleted))
    if profile.get().exists:
        ctx.batch.delete(profile)
        deleted += 1
    return Page(True, _count("ownDocuments", deleted))


def _delete_tree(db: firestore.Client, ref: firestore.DocumentReference) -> int:
    deleted = 0
    for collection in ref.collections():
        deleted += db.recursive_delete(collection)
    if ref.get().exists:
        ref.delete()
        deleted += 1
    return deleted


def internal(ctx: StepContext) -> Page:
    """Bookkeeping that names the user: locks, rate-limit counters, mail digests."""
    return Page(True, _count("internal", _delete_found(ctx, INTERNAL)))


INTERNAL = (
    "_paymentLocks/{lock}",
    "mail/digest-{uid}_{day}-{key}",
    "_rateLimits/{key}",
)


def _delete_found(ctx: StepContext, paths: Iterable[str]) -> int:
    n = 0
    for path in paths:
        for entry in MAP.at(path):
            for ref in _documents(ctx.db, entry.find(ctx.db, ctx.uid) if entry.find else []):
                ctx.batch.delete(ref)
                n += 1
    return n


def _documents(db: firestore.Client, found: Iterable[Any]) -> list[firestore.DocumentReference]:
    out: list[firestore.DocumentReference] = []
    for source in found:
        if isinstance(source, firestore.DocumentReference):
            if source.get().exists:
                out.append(source)
        else:
            out += [s.reference for s in source.limit(PAGE).select([]).stream()]
    return out


# --- 9. verify, 10. auth, 11. report --------------------------------------------------------


def leftovers(db: firestore.Client, uid: str) -> dict[str, int]:
    """What the map's finders still find of ``uid``, by entry path (empty: nothing)."""
    found = {}
    for entry in MAP.entries:
        if entry.find is None:
            continue
        n = len(_documents(db, entry.find(db, uid)))
        if n:
            found[entry.path] = n
    return found


def verify(ctx: StepContext) -> Page:
    """Done only when no finder of the map finds the user; late arrivals (a follow-up
    that wrote to the inbox after ``own``) are swept and looked for again."""
    left = leftovers(ctx.db, ctx.uid)
    if not left:
        return DONE
    logs.warning("erasure found leftovers", erasureId=ctx.erasure_id, paths=sorted(left))
    for path in left:
        entry = MAP.at(path)[0]
        if isinstance(entry.erase, ownership.Delete):
            _delete_found(ctx, [path])
    if any(not isinstance(MAP.at(p)[0].erase, ownership.Delete) for p in left):
        raise StepNotReadyError(f"records still name the user: {sorted(left)}")
    return Page(False, _count("swept", sum(left.values())))


def auth_step(ctx: StepContext) -> Page:
    """Delete the Auth user (already gone counts as done)."""
    try:
        auth.delete_user(ctx.uid)
        return Page(True, {"authUsers": 1})
    except auth.UserNotFoundError:
        return DONE


def report(ctx: StepContext) -> Page:
    """Write what erasure keeps, and why and for how long, into the erasure's document."""
    ctx.batch.update(
        CASCADE.ref(ctx.db, ctx.erasure_id), {"kept": MAP.kept(), "keptAs": FORMER_USER}
    )
    return DONE


CASCADE = Cascade(
    (
        Step("close", close),
        Step("searches", searches),
        Step("devices", devices),
        Step("offers", offers_step),
        Step("listings", listings),
        Step("viewings", viewings_step),
        Step("favorites", favorites_step),
        Step("conversations", conversations),
        Step("records", records),
        Step("stripe", stripe_step),
        Step("storage", storage_step),
        Step("own", own),
        Step("internal", internal),
        Step("verify", verify),
        Step("auth", auth_step),
        Step("report", report),
    )
)


# --- phase one -------------------------------------------------------------------------------


def begin(db: firestore.Client, uid: str, *, requested_by: str, now: dt.datetime) -> str:
    """Phase one: the tombstone and the erasure in one transaction (from then on the
    rules and every callable refuse the uid), then the Auth account disabled and its
    refresh tokens revoked (the cascade's first step does both again, should this stop
    between). A repeated request returns the erasure already begun."""
    erasure_id = run_transaction(
        db,
        lambda t: CASCADE.begin_in(t, db, uid, requested_by=requested_by, facts={}, now=now),
        busy_message=BUSY_MESSAGE,
    )
    _disable(uid)
    return erasure_id


def begin_for_admin(
    db: firestore.Client, uid: str, *, actor_uid: str, reason: str, now: dt.datetime
) -> str:
    """Phase one on an admin's word: as :func:`begin`, with the audit entry (who, why)
    in the same transaction (a repeated request returns the erasure begun and records
    nothing more). A suspended account is erased too: its suspension is replaced.
    Raises :data:`~firekit.claims.NO_SUCH_USER` for no account."""
    try:
        auth.get_user(uid)
    except auth.UserNotFoundError:
        raise NO_SUCH_USER() from None

    def apply(transaction: firestore.Transaction) -> str:
        tombstone = ownership.tombstone_ref(db, uid).get(transaction=transaction)
        state = ownership.account_state(tombstone)
        erasure_id = CASCADE.begin_in(transaction, db, uid, requested_by="admin", facts={}, now=now)
        if state != "closed":  # else a repeated request: the same erasure, audited once
            audit.record_in(
                transaction,
                db,
                "user.erased",
                actor_uid=actor_uid,
                target=f"users/{uid}",
                before={"account": state},
                after={"account": "closed", "erasureId": erasure_id},
                reason=reason,
            )
        return erasure_id

    erasure_id = run_transaction(db, apply, busy_message=BUSY_MESSAGE)
    _disable(uid)
    return erasure_id


def _disable(uid: str) -> None:
    # No Auth user (deleted by hand, or by the last step): nothing to close.
    with contextlib.suppress(auth.UserNotFoundError):
        suspensions.close_sign_in(uid)


def stalled(db: firestore.Client, untouched_since: dt.datetime) -> list[str]:
    """Running erasures whose progress has not moved since ``untouched_since``."""
    running = (
        db.collection(ownership.ERASURES)
        .where(filter=FieldFilter("state", "==", "running"))
        .select([])
        .stream()
    )
    return [s.id for s in running if s.update_time is not None and s.update_time < untouched_since]
