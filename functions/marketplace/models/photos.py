"""Processed photos (a listing's, a profile's avatar) and the upload slots behind them.

Functions write all of it: a client asks for a slot (``request_photo_upload``), uploads
to the signed URL it gets, and the processing function records what came out.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from firekit.docmodel import Document
from marketplace.models.common import Uid, Value

PHOTO_ID = r"^[A-Za-z0-9]{20}$"
PhotoId = Annotated[str, Field(pattern=PHOTO_ID)]
SERVED_URL = r"^(https://[^\s]+|http://127\.0\.0\.1:[0-9]+/[^\s]+)$"
"""Where a processed photo is read: Cloud Storage deployed, the local stand-in (only on
127.0.0.1) under the emulators."""
ServedUrl = Annotated[str, Field(max_length=2048, pattern=SERVED_URL)]
Pixels = Annotated[int, Field(ge=1, le=100_000)]


class PhotoSize(Value):
    """One rendition: the same picture ``width`` pixels wide, as WebP and as JPEG."""

    width: Pixels
    height: Pixels
    webp: ServedUrl
    jpeg: ServedUrl


class Photo(Value):
    """A processed photo: upright, in sRGB, with no metadata. Its order is its position."""

    id: PhotoId
    width: Pixels
    height: Pixels
    """The upright original's size (the renditions never upscale it)."""
    placeholder: Annotated[str, Field(min_length=6, max_length=100)]
    """A blurhash to paint while the first rendition loads."""
    sizes: Annotated[list[PhotoSize], Field(min_length=1, max_length=4)]
    """Narrowest first."""
    addedAt: dt.datetime


PhotoProblem = Literal[
    "not_an_image", "too_many_pixels", "unreadable", "too_large", "too_many_photos", "gone"
]


class PhotoIssue(Value):
    """Why an upload was refused, for the person who uploaded it."""

    photoId: PhotoId
    reason: PhotoProblem
    message: Annotated[str, Field(max_length=300)]
    at: dt.datetime


MAX_PHOTO_ISSUES = 12
"""A listing keeps its most recent issues only."""

PhotoTarget = Literal["listing", "avatar"]


class UploadSlot(Value):
    """A signed upload URL handed out and not yet processed."""

    uid: Uid
    """Who asked for it."""
    contentType: Annotated[str, Field(max_length=40)]
    expiresAt: dt.datetime
    attempts: Annotated[int, Field(ge=0, le=100)] = 0
    """Processing runs started on its upload (a run that keeps failing stops at a limit)."""


class PhotoUploads(Document):
    """``photoUploads/{subject}``: the open upload slots of one listing
    (``listing-{listingId}``) or one user's avatar (``avatar-{uid}``). Functions only."""

    path = "photoUploads/{subject}"

    slots: dict[PhotoId, UploadSlot] = Field(default_factory=dict)
