"""What a marketplace user owns, everywhere it lives, and what export and erasure do with it.

One declaration (:data:`MAP`) drives the export (:mod:`marketplace.export`: every entry
marked ``export``), the erasure cascade (:mod:`marketplace.erasure`: every entry's
``step``) and its final sweep, and the README's table. ``tests/privacy/test_map.py``
holds it against the models: a new field that holds a user id, email, phone or name, or a
new model, fails there until it is declared here.

Kept records name the user by a pseudonym (``former-<hex>``, one per erasure) and are
shown to the other party as "a former user".
"""

from __future__ import annotations

from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit import ledger, push, ratelimit
from firekit.fanout import engine
from firekit.ownership import Delete, Entry, Keep, OwnershipMap, Pseudonymise
from marketplace import chat, offers
from marketplace.favorites import FavoriteMark, FavoriteShard
from marketplace.models.documents import DOCUMENTS
from marketplace.payments import customers, deposits

FORMER_USER = "A former user"
"""How kept records show an erased user to the other party."""

MODELS = (*DOCUMENTS, FavoriteMark, FavoriteShard)
"""Every stored model the map is held against."""

EXPORTS = "exports"
"""``users/{uid}/exports/{day}``: one export a day (functions only)."""


def _where(collection: str, field: str) -> Any:
    def find(db: firestore.Client, uid: str) -> list[Any]:
        return [db.collection(collection).where(filter=FieldFilter(field, "==", uid))]

    return find


def _under(*collections: str) -> Any:
    def find(db: firestore.Client, uid: str) -> list[Any]:
        return [db.collection(c.format(uid=uid)) for c in collections]

    return find


def _the(path: str) -> Any:
    def find(db: firestore.Client, uid: str) -> list[Any]:
        return [db.document(path.format(uid=uid))]

    return find


def _ids_from(collection: str, prefix: str) -> Any:
    """Documents whose id starts with ``prefix`` (formatted with the uid)."""

    def find(db: firestore.Client, uid: str) -> list[Any]:
        start = prefix.format(uid=uid)
        ref = db.collection(collection)
        return [
            ref.where(filter=FieldFilter("__name__", ">=", ref.document(start))).where(
                filter=FieldFilter("__name__", "<", ref.document(start + "\uf8ff"))
            )
        ]

    return find


def _conversations(db: firestore.Client, uid: str) -> list[Any]:
    query = db.collection("conversations")
    return [query.where(filter=FieldFilter("participantIds", "array_contains", uid))]


def _marks(db: firestore.Client, uid: str) -> list[Any]:
    return [db.collection_group("favoriteMarks").where(filter=FieldFilter("uid", "==", uid))]


def _offer_slots(db: firestore.Client, uid: str) -> list[Any]:
    # `{listingId}__{buyer}`: found through the buyer's offers (no query by id suffix).
    mine = db.collection(offers.OFFERS).where(filter=FieldFilter("buyerId", "==", uid))
    listings = {(s.to_dict() or {}).get("listingId") for s in mine.select(["listingId"]).stream()}
    return [db.document(f"{offers.SLOTS}/{lid}__{uid}") for lid in sorted(filter(None, listings))]


_ERASED_EVERYWHERE = "the user's own data"
_COUNTERPARTY = "the other party's record of a deal or a visit"

MAP = OwnershipMap(
    (
        # --- the user's own subtree -----------------------------------------------------
        Entry(
            "users/{uid}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="close",
            fields={
                "displayName": "blanked first (so no notice names them), deleted last",
                "searchName": "blanked first, deleted last",
            },
            find=_the("users/{uid}"),
        ),
        Entry(
            "users/{uid}/private/{doc}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="own",
            fields={"email": "deleted", "phone": "deleted"},
            find=_under("users/{uid}/private"),
        ),
        Entry(
            "users/{uid}/devices/{token}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="devices",
            fields={"ownerId": "deleted with the device"},
            find=_under("users/{uid}/devices"),
        ),
        Entry(
            "users/{uid}/notifications/{notificationId}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="own",
            fields={"emailTo": "deleted"},
            find=_under("users/{uid}/notifications"),
        ),
        Entry(
            "users/{uid}/favorites/{listingId}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="favorites",
            find=_under("users/{uid}/favorites"),
        ),
        Entry(
            "users/{uid}/counters/{counterId}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=False,
            step="own",
            find=_under("users/{uid}/counters"),
        ),
        Entry(
            "users/{uid}/limits/{doc}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=False,
            step="own",
            find=_under("users/{uid}/limits"),
        ),
        Entry(
            "users/{uid}/availability/{scope}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="own",
            find=_under("users/{uid}/availability"),
        ),
        Entry(
            "users/{uid}/exports/{day}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=False,
            step="own",
            find=_under("users/{uid}/exports"),
        ),
        Entry(
            "savedSearches/{searchId}",
            "firestore",
            "ownerId == uid",
            Delete(),
            export=True,
            step="searches",
            fields={"ownerId": "deleted, and the search leaves the alert index", "name": "deleted"},
            find=_where("savedSearches", "ownerId"),
        ),
        Entry(
            "calendarFeeds/{token}",
            "firestore",
            "uid == uid",
            Delete(),
            export=True,
            step="devices",
            fields={"uid": "deleted"},
            find=_where("calendarFeeds", "uid"),
        ),
        Entry(
            "listings/{listingId}/favoriteMarks/{uid}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=False,
            step="favorites",
            fields={"uid": "deleted, the listing's count taken down by one"},
            find=_marks,
        ),
        Entry(
            "listings/{listingId}/favoriteShards/{shard}",
            "firestore",
            "none: counts only",
            Keep("a count of many users, nobody's own", "as long as the listing"),
            export=False,
            step="favorites",
        ),
        Entry(
            "photoUploads/{subject}",
            "firestore",
            "avatar-{uid}; or a listing of theirs",
            Delete(),
            export=False,
            step="storage",
            fields={"slots{*}.uid": "deleted with the slots"},
            find=_the("photoUploads/avatar-{uid}"),
        ),
        # --- records kept for someone else, pseudonymised ----------------------------------
        Entry(
            "listings/{listingId}",
            "firestore",
            "ownerId == uid",
            Pseudonymise(
                "archived; title, address and price stay as the record other users' offers "
                "and viewings point at",
                clear=("description", "photos", "photoIssues"),
            ),
            export=True,
            step="listings",
            fields={"ownerId": "pseudonym"},
            find=_where("listings", "ownerId"),
        ),
        Entry(
            "viewings/{viewingId}",
            "firestore",
            "requesterId == uid or agentId == uid",
            Pseudonymise(_COUNTERPARTY + ": future ones cancelled first", clear=("note",)),
            export=True,
            step="viewings",
            fields={
                "agentId": "pseudonym",
                "requesterId": "pseudonym",
                "lastChange.by": "pseudonym",
            },
            find=lambda db, uid: [
                *_where("viewings", "requesterId")(db, uid),
                *_where("viewings", "agentId")(db, uid),
            ],
        ),
        Entry(
            "viewingLocks/{lockId}",
            "firestore",
            "agent__{uid}__ in the id",
            Delete(),
            export=False,
            step="viewings",
            find=_ids_from("viewingLocks", "agent__{uid}__"),
        ),
        Entry(
            "viewingHolds/{holdId}",
            "firestore",
            "requesterId == uid",
            Delete(),
            export=False,
            step="viewings",
            fields={"requesterId": "deleted (released by the cancellation)"},
            find=_where("viewingHolds", "requesterId"),
        ),
        Entry(
            "offers/{offerId}",
            "firestore",
            "buyerId == uid or agentId == uid",
            Pseudonymise(
                _COUNTERPARTY + ": open ones withdrawn (or lapsed) and their holds released "
                "first; the deposit's state stays for the accounts",
                clear=("message", "rejectionReason", "lastChange.reason"),
            ),
            export=True,
            step="offers",
            fields={"buyerId": "pseudonym", "agentId": "pseudonym"},
            find=lambda db, uid: [
                *_where("offers", "buyerId")(db, uid),
                *_where("offers", "agentId")(db, uid),
            ],
        ),
        Entry(
            "conversations/{conversationId}",
            "firestore",
            "participantIds contains uid",
            Pseudonymise(
                "the other participant's conversation: kept, closed to new messages, the "
                "user shown as a former user (a buyer's conversation is re-keyed: its id "
                "names the buyer)"
            ),
            export=True,
            step="conversations",
            fields={
                "buyerId": "pseudonym",
                "agentId": "pseudonym",
                "participantIds[]": "pseudonym",
                "lastReadAt{}": "pseudonym",
                "blockedBy{}": "pseudonym (blocked: nobody can post to a former user)",
                "unread{}": "pseudonym",
                "lastMessage.senderId": "pseudonym",
            },
            find=_conversations,
        ),
        Entry(
            "conversations/{conversationId}/messages/{messageId}",
            "firestore",
            "senderId == uid",
            Pseudonymise("the other participant's conversation keeps what was said"),
            export=True,
            step="conversations",
            fields={"senderId": "pseudonym"},
        ),
        Entry(
            "reports/{reportId}",
            "firestore",
            "reporterId == uid or reportedUid == uid",
            Keep(
                "moderation record (abuse reports and what was reported), pseudonymised",
                "1 year",
            ),
            export=False,
            step="records",
            fields={"reporterId": "pseudonym", "reportedUid": "pseudonym"},
            find=lambda db, uid: [
                *_where("reports", "reporterId")(db, uid),
                *_where("reports", "reportedUid")(db, uid),
            ],
        ),
        Entry(
            "auditLog/{entryId}",
            "firestore",
            "actorUid == uid or target == users/{uid}",
            Keep("admins' accountability: who changed what, pseudonymised", "as the log"),
            export=False,
            step="records",
            fields={"actorUid": "pseudonym"},
            find=lambda db, uid: [
                *_where("auditLog", "actorUid")(db, uid),
                db.collection("auditLog").where(filter=FieldFilter("target", "==", f"users/{uid}")),
            ],
        ),
        # --- payments ---------------------------------------------------------------------
        Entry(
            "customers/{uid}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="stripe",
            fields={"email": "deleted"},
            find=_the("customers/{uid}"),
        ),
        Entry(
            "customers/{uid}/subscriptions/{subscriptionId}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="stripe",
            find=_under("customers/{uid}/subscriptions"),
        ),
        Entry(
            "customers/{uid}/payments/{paymentId}",
            "firestore",
            "{uid} in the path",
            Delete(),
            export=True,
            step="stripe",
            find=_under("customers/{uid}/payments"),
        ),
        Entry(
            customers.BY_STRIPE_ID + "/{customerId}",
            "firestore",
            "uid == uid",
            Delete(),
            export=False,
            step="stripe",
            find=_where(customers.BY_STRIPE_ID, "uid"),
        ),
        Entry(
            deposits.PAYMENT_LINKS + "/{paymentIntentId}",
            "firestore",
            "uid == uid",
            Delete("a featured listing's link; a deposit's link is pseudonymised"),
            export=False,
            step="stripe",
            find=_where(deposits.PAYMENT_LINKS, "uid"),
        ),
        Entry(
            "stripe:customer",
            "stripe",
            "the customer id on customers/{uid}",
            Delete(),
            export=False,
            step="stripe",
        ),
        Entry(
            "stripe:subscription",
            "stripe",
            "the customer's subscriptions",
            Delete("cancelled at once"),
            export=False,
            step="stripe",
        ),
        Entry(
            "stripe:payment_intent",
            "stripe",
            "metadata.uid == uid",
            Keep(
                "the processor's accounting record of a payment; our uid is blanked from its "
                "metadata",
                "Stripe's retention (financial records)",
            ),
            export=False,
            step="stripe",
        ),
        Entry(
            "stripe:event",
            "stripe",
            "events about the customer",
            Keep("Stripe's own event log: it cannot be deleted through the API", "30 days"),
            export=False,
            step="stripe",
        ),
        # --- internal bookkeeping ----------------------------------------------------------
        Entry(
            customers.LOCKS + "/{lock}",
            "firestore",
            "customer-{uid}, plan-{uid}, or uid == uid",
            Delete(),
            export=False,
            step="internal",
            find=lambda db, uid: [
                _the(customers.LOCKS + "/customer-{uid}")(db, uid)[0],
                _the(customers.LOCKS + "/plan-{uid}")(db, uid)[0],
                *_where(customers.LOCKS, "uid")(db, uid),
            ],
        ),
        Entry(
            offers.SLOTS + "/{listingId}__{uid}",
            "firestore",
            "the buyer's open offer per listing",
            Delete(),
            export=False,
            step="offers",
            find=_offer_slots,
        ),
        Entry(
            chat.PUSH_STATE + "/{conversationId}__{uid}",
            "firestore",
            "each conversation of theirs, both participants' throttles",
            Delete(),
            export=False,
            step="conversations",
        ),
        Entry(
            "mail/digest-{uid}_{day}-{key}",
            "firestore",
            "digest-{uid}_ in the id",
            Delete(),
            export=False,
            step="internal",
            find=_ids_from("mail", "digest-{uid}_"),
        ),
        Entry(
            "mail/{messageId}",
            "firestore",
            "other users' digests, which may name them",
            Keep("emails already sent to someone else: their correspondence", "as the mail log"),
            export=False,
            step="internal",
        ),
        Entry(
            ratelimit.COLLECTION + "/{key}",
            "firestore",
            "key == uid",
            Delete(),
            export=False,
            step="internal",
            find=_where(ratelimit.COLLECTION, "key"),
        ),
        Entry(
            push.OUTBOX + "/{id}",
            "firestore",
            "pushes to their tokens, or naming them",
            Keep(
                "the FCM stand-in's record of pushes already sent (under the emulators only: "
                "deployed, a push leaves for FCM and nothing is stored)",
                "emulators only",
            ),
            export=False,
            step="internal",
        ),
        Entry(
            "_searchIndex/{shard}",
            "firestore",
            "entries of the user's saved searches",
            Delete("each search leaves the alert index with it"),
            export=False,
            step="searches",
        ),
        Entry(
            engine.CHUNKS + "/{chunk}",
            "firestore",
            "recipients of an alert fan-out in flight",
            Keep(
                "a fan-out's delivery record (who was told), for at-least-once delivery", "14 days"
            ),
            export=False,
            step="internal",
        ),
        Entry(
            ledger.COLLECTION + "/{record}",
            "firestore",
            "the path of an event's document",
            Keep(
                "an event's idempotency record (the path of the document it was about)", "30 days"
            ),
            export=False,
            step="internal",
        ),
        Entry(
            "_tombstones/{uid}",
            "firestore",
            "{uid} in the path",
            Keep(
                "refuses the closed (or suspended) account's tokens and late events",
                "7 days after erasure; a suspension's until it is lifted",
            ),
            export=False,
            step="report",
        ),
        Entry(
            "_erasures/{erasureId}",
            "firestore",
            "uid while running",
            Keep("the erasure's report: counts and what was kept, no personal data", "1 year"),
            export=False,
            step="report",
        ),
        # --- Cloud Storage and Auth ----------------------------------------------------------
        Entry(
            "gs://{photos}/avatars/{uid}/",
            "storage",
            "{uid} in the name",
            Delete("deleted (Google's edge caches may serve a public copy for a while)"),
            export=True,
            step="storage",
        ),
        Entry(
            "gs://{default}/uploads/avatars/{uid}/",
            "storage",
            "{uid} in the name",
            Delete(),
            export=False,
            step="storage",
        ),
        Entry(
            "gs://{photos}/listings/{listingId}/",
            "storage",
            "a listing of theirs",
            Delete(),
            export=True,
            step="listings",
        ),
        Entry(
            "gs://{default}/exports/{uid}/",
            "storage",
            "{uid} in the name",
            Delete(),
            export=False,
            step="storage",
        ),
        Entry("auth:user", "auth", "the uid", Delete(), export=True, step="auth"),
    )
)
