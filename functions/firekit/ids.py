"""Document ids a caller may name: :data:`DocumentId`, and the stricter :data:`PlainId`.

Firestore refuses some strings as document ids with an error at the first read or write:
``.`` and ``..``, anything with a ``/``, ids over 1,500 bytes, and the ids it reserves,
``__.*__`` (``__name__`` among them). An id that reaches a handler unchecked turns a bad
request into ``INTERNAL``; typed as :data:`DocumentId` it is ``INVALID_ARGUMENT`` with a
stable ``issue`` (``document_id``) at validation, before anything runs.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

MAX_ID_BYTES = 1500
"""Firestore's limit on a document id, in UTF-8 bytes."""
_RESERVED = re.compile(r"^__.*__$", re.DOTALL)


def check_document_id(value: str) -> str:
    """``value`` if Firestore accepts it as a document id; else a pydantic error.

    The message never quotes the value (see :func:`firekit.errors.field_issues`).
    """
    if value in (".", "..") or "/" in value or _RESERVED.match(value):
        raise PydanticCustomError(
            "document_id", "Not a usable id: '.', '..', '/' and '__…__' are Firestore's."
        )
    if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise PydanticCustomError("document_id", "Ids are at most 1,500 bytes.")
    return value


DocumentId = Annotated[str, Field(min_length=1), AfterValidator(check_document_id)]
"""Any string Firestore takes as a document id."""


PlainId = Annotated[DocumentId, Field(max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
"""A :data:`DocumentId` of at most 128 letters, digits, ``_`` and ``-``: what Firestore's
auto ids and Auth's uids are made of. Reserved ids (``__name__``) are refused all the same."""
