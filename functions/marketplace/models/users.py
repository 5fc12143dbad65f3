"""A user's documents: public profile, private account, devices, inbox, favourites."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field

from firekit.docmodel import CallerUid, Client, DocId, Document, RequestTime
from marketplace.models.common import HTTPS_URL, DocRef, Uid, Value
from marketplace.models.photos import Photo, PhotoIssue
from marketplace.roles import RoleName

MAX_DISPLAY_NAME = 80


class Profile(Document):
    """``users/{uid}``: public. Created by the sign-up function; the owner edits the rest."""

    path = "users/{uid}"

    displayName: Annotated[str, Field(max_length=MAX_DISPLAY_NAME), Client(create=False)]
    photoURL: Annotated[
        str | None, Field(max_length=2048, pattern=HTTPS_URL), Client(create=False)
    ] = None
    bio: Annotated[str, Field(max_length=500), Client(create=False)] = ""
    role: RoleName
    searchName: Annotated[str, Field(max_length=MAX_DISPLAY_NAME)] = ""
    verified: bool = False
    """An agent whose identity an admin checked (publishes without moderation)."""
    plan: Literal["agent_pro"] | None = None
    """The paid plan, mirrored from Stripe by functions."""
    avatar: Photo | None = None
    """The user's uploaded photo, processed (request_photo_upload); apps show it before
    ``photoURL`` (what the sign-in provider or the user gave)."""
    createdAt: dt.datetime | None = None
    updatedAt: dt.datetime | None = None


class QuietHours(Value):
    """No pushes between ``start`` and ``end`` (local ``HH:MM``) in ``timezone``."""

    start: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    end: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    timezone: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_]+(/[A-Za-z_+-]+)*$")
    ]


class NotificationSettings(Value):
    """Which channels a user wants, and when not to be disturbed."""

    push: bool
    email: bool
    quietHours: QuietHours | None = None


class PrivateAccount(Document):
    """``users/{uid}/private/account``: only the owner reads it."""

    path = "users/{uid}/private/{doc}"

    email: Annotated[str, Field(max_length=320)] | None = None
    phone: Annotated[str | None, Field(pattern=r"^\+[1-9][0-9]{6,14}$"), Client(create=False)] = (
        None
    )
    notifications: Annotated[NotificationSettings | None, Client(create=False)] = None
    stripeCustomerId: str | None = None
    avatarIssue: PhotoIssue | None = None
    """Why the latest avatar upload was refused (cleared when one succeeds)."""
    pushTokens: list[Annotated[str, Field(min_length=1, max_length=4096)]] | None = None
    """The newest devices' tokens, kept by a function (``on_device_written``) so a
    fan-out reads them with the account instead of querying devices."""
    createdAt: dt.datetime | None = None


class Device(Document):
    """``users/{uid}/devices/{token}``: an FCM registration token of the owner's."""

    path = "users/{uid}/devices/{token}"

    token: Annotated[str, Field(min_length=1, max_length=4096), DocId()]
    ownerId: Annotated[Uid, CallerUid()]
    """The owner again, as a field, for collection-group queries by owner (support
    tools); pushes read the tokens kept on the private account instead."""
    platform: Annotated[Literal["ios", "android", "web"], Client()]
    appVersion: Annotated[str, Field(min_length=1, max_length=32), Client()]
    locale: Annotated[
        str | None, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"), Client()
    ] = None
    createdAt: Annotated[dt.datetime, RequestTime()]
    updatedAt: Annotated[dt.datetime, RequestTime(on_update=True)]


NotificationKind = Literal[
    "listing_match", "price_drop", "message", "offer", "viewing", "system", "listing_review"
]


class Notification(Document):
    """``users/{uid}/notifications/{id}``: written by functions; the owner marks it read."""

    path = "users/{uid}/notifications/{notificationId}"

    kind: NotificationKind
    title: Annotated[str, Field(min_length=1, max_length=120)]
    body: Annotated[str, Field(max_length=500)]
    listingId: DocRef | None = None
    link: Annotated[str, Field(max_length=512)] | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    createdAt: dt.datetime | None = None
    read: Annotated[bool, Client(create=False)] = False
    readAt: Annotated[dt.datetime | None, RequestTime(on_create=False, on_update=True)] = None
    emailDay: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    """Functions only: the day whose email digest still has to carry this alert."""
    emailTo: Annotated[str, Field(max_length=320)] | None = None
    """Functions only: where that digest goes (the address when the alert was made)."""
    emailAfter: dt.datetime | None = None
    """Functions only: when this still-unread entry joins the email digest (chat: the
    message's time + 12 h, if the user wants email); cleared once it has, or once read."""


class Favorite(Document):
    """``users/{uid}/favorites/{listingId}``: the owner's saved listing."""

    path = "users/{uid}/favorites/{listingId}"

    listingId: Annotated[DocRef, DocId()]
    createdAt: Annotated[dt.datetime, RequestTime()]


class UnreadCounter(Document):
    """``users/{uid}/counters/unread``: the app badge. Functions write it; the owner reads."""

    path = "users/{uid}/counters/{counterId}"

    messages: Annotated[int, Field(ge=0)] = 0
    """Unread messages over all the user's conversations."""
    conversations: Annotated[int, Field(ge=0)] = 0
    """Conversations with at least one unread message."""
    updatedAt: dt.datetime | None = None
