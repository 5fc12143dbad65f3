"""Homefront's way to tell one user something: :data:`USERS` (a :class:`firekit.notify.Notifier`).

Every user's inbox is ``users/{uid}/notifications``, their settings, email address and push
tokens are on ``users/{uid}/private/account`` (one read), their devices under
``users/{uid}/devices``. Listings (review decisions), chat, viewings and offers call
:func:`notify` (or :data:`USERS`' pieces); the saved-search fan-out reads accounts with
:func:`reach_of` too, so every path honours the same settings and quiet hours.

The daily email digest of inbox documents (:func:`render_digest`) carries every kind: a
section per kind when a day mixes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.cloud import firestore
from pydantic import ValidationError

from firekit import mail, push
from firekit.notify import Notice, Notifier, Outcome, QuietHours, Reach
from marketplace.models.users import NotificationSettings
from marketplace.profiles import profile_ref

__all__ = [
    "DEVICES",
    "USERS",
    "Notice",
    "Outcome",
    "Reach",
    "display_name",
    "notify",
    "reach_of",
    "render_digest",
]

DEVICES = push.Devices(collection="users/{uid}/devices", holder="users/{uid}/private/account")
"""Devices under their user; their tokens kept on the private account (one read)."""


def reach_of(account: Mapping[str, Any]) -> Reach:
    """How to reach a user, from their private account: no settings means push yes and
    email yes (to a usable address); settings that no longer fit the model count as none."""
    try:
        settings = account.get("notifications")
        prefs = NotificationSettings.model_validate(settings) if settings else None
    except ValidationError:
        prefs = None
    email = account.get("email")
    address = email if isinstance(email, str) and "@" in email else None
    quiet = prefs.quietHours if prefs else None
    return Reach(
        push=prefs.push if prefs else True,
        email=address if prefs is None or prefs.email else None,
        quiet=QuietHours(quiet.start, quiet.end, quiet.timezone) if quiet else None,
        tokens=push.tokens_in(DEVICES, account),
    )


USERS = Notifier(
    reach_of=reach_of,
    inbox="users/{uid}/notifications",
    account="users/{uid}/private/account",
    devices=DEVICES,
)
"""Where Homefront's users are told things."""


def notify(db: firestore.Client, notice: Notice, *, notifier: Notifier = USERS) -> Outcome:
    """Tell one user once (see :meth:`firekit.notify.Notifier.notify`)."""
    return notifier.notify(db, notice)


def display_name(db: firestore.Client, uid: str) -> str | None:
    """The name a notice calls a user by ("New message from Ann"): their profile's
    ``displayName``, None if they have none (one read)."""
    snapshot = profile_ref(db, uid).get()
    name = (snapshot.to_dict() or {}).get("displayName") if snapshot.exists else None
    return (" ".join(name.split()) or None) if isinstance(name, str) else None


def listing_title(db: firestore.Client, listing_id: str) -> str:
    """What a notice calls a listing: its title, or "the home" (one read)."""
    listing = db.document(f"listings/{listing_id}").get()
    return str((listing.to_dict() or {}).get("title") or "the home")


def move_notices(
    kind: str,
    subject_id: str,
    data: Mapping[str, Any],
    *,
    recipients: Sequence[str],
    title: str,
    text: str,
    change: str,
) -> list[Notice]:
    """One notice per recipient of a move on a viewing or an offer (``kind``): told once
    per revision (the inbox id), the move's reason appended, collapsed per subject."""
    reason = data["lastChange"].get("reason")
    body = f"{text} Reason: {reason}" if reason else text
    return [
        Notice(
            uid=uid,
            id=f"{kind}-{subject_id}-{data['revision']}",
            kind=kind,
            title=title,
            body=body,
            link=f"/{kind}s/{subject_id}",
            data={f"{kind}Id": subject_id, "change": change},
            extra={"listingId": data["listingId"]},
            collapse_id=f"{kind}-{subject_id}",
        )
        for uid in recipients
    ]


# --- the daily email digest -----------------------------------------------------------

_ALERTS = mail.Section(
    one="new home",
    many="new homes",
    heading="Homes matching your saved searches",
    subject="{counted} for your saved searches",
    intro="Here is what matched your saved searches on {day}.",
)
_MESSAGES = mail.Section(
    one="unread message",
    many="unread messages",
    heading="Messages waiting for you",
    subject="{counted} waiting for you",
    intro="These messages are still unread.",
)
_LISTINGS = mail.Section(
    one="update on your listings",
    many="updates on your listings",
    heading="Your listings",
    intro="Here is what happened to your listings on {day}.",
)
_OTHER = mail.Section(one="other update", many="other updates", heading="Other news")
SECTIONS: Mapping[str, mail.Section] = {
    "message": _MESSAGES,
    "listing_review": _LISTINGS,
    "listing_match": _ALERTS,
    "price_drop": _ALERTS,
}
"""The digest's section of each notification kind, in the order a mixed digest shows them
(other kinds last, as "other updates")."""


def render_digest(day: str, items: Sequence[Mapping[str, Any]]) -> mail.Rendered:
    """One user's day of inbox documents as an email, a section per kind."""
    return mail.render_digest(day, items, SECTIONS, _OTHER)
