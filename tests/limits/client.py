"""How a client writes under the caps (``marketplace.limits``), as REST batches.

A capped create is a batch of two writes: the document, and the caller's usage document
(``users/{uid}/limits/usage``) saying so. What an app does with the SDK's
``writeBatch``, ``arrayUnion``, ``arrayRemove``, ``increment`` and ``serverTimestamp``,
spelled out once for the tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from marketplace.limits import USAGE, Held, Rate, message_key
from pytest_firebase.rest import SERVER_TIMESTAMP, FirestoreRest, RestResult, encode_value

REQUEST_TIME = {"setToServerValue": "REQUEST_TIME"}

__all__ = ["CappedClient", "message_key"]


class CappedClient:
    """One signed-in user's writes of capped documents, each with its usage in one batch."""

    def __init__(self, rest: FirestoreRest, uid: str) -> None:
        self.rest = rest
        self.uid = uid

    # ---- raw writes -------------------------------------------------------------------
    def name(self, path: str) -> str:
        """The REST name of the document at ``path``."""
        return f"projects/{self.rest.project}/databases/(default)/documents/{path.strip('/')}"

    def create_write(self, path: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``data`` at ``path`` (must not exist), stamps as request-time transforms."""
        plain = {k: v for k, v in data.items() if v is not SERVER_TIMESTAMP}
        write: dict[str, Any] = {
            "update": {
                "name": self.name(path),
                "fields": {k: encode_value(v, self.rest.project) for k, v in plain.items()},
            },
            "currentDocument": {"exists": False},
        }
        stamps = [k for k, v in data.items() if v is SERVER_TIMESTAMP]
        if stamps:
            write["updateTransforms"] = [{"fieldPath": k, **REQUEST_TIME} for k in stamps]
        return write

    def usage_write(
        self, key: str, fields: Mapping[str, Any], transforms: Mapping[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """Merge ``fields`` into the usage map ``key`` and apply ``transforms`` to it."""
        name = self.name(USAGE.format(uid=self.uid))
        field_transforms = [{"fieldPath": f"{key}.{f}", **t} for f, t in transforms.items()]
        if not fields:  # the SDK sends a bare transform when nothing else is set
            return {"transform": {"document": name, "fieldTransforms": field_transforms}}
        return {
            "update": {
                "name": name,
                "fields": {key: encode_value(dict(fields), self.rest.project)},
            },
            "updateMask": {"fieldPaths": [f"{key}.{f}" for f in fields]},
            "updateTransforms": field_transforms,
        }

    def hold(self, held: Held, doc_id: str) -> dict[str, Any]:
        """List ``doc_id`` among the held ids (``arrayUnion``)."""
        ids = {"appendMissingElements": {"values": [{"stringValue": doc_id}]}}
        return self.usage_write(held.key, {}, {"ids": ids})

    def release(self, held: Held, doc_id: str) -> dict[str, Any]:
        """Take ``doc_id`` out of the held ids (``arrayRemove``), naming it ``released``."""
        ids = {"removeAllFromArray": {"values": [{"stringValue": doc_id}]}}
        return self.usage_write(held.key, {"released": doc_id}, {"ids": ids})

    def count(self, rate: Rate, key: str, *, new_window: bool) -> dict[str, Any]:
        """Count ``key`` in the current window, or open a new window with it."""
        if new_window:
            return self.usage_write(
                rate.key, {"count": 1, "last": key}, {"start": REQUEST_TIME, "at": REQUEST_TIME}
            )
        one = {"increment": {"integerValue": "1"}}
        return self.usage_write(rate.key, {"last": key}, {"count": one, "at": REQUEST_TIME})

    # ---- what an app does ---------------------------------------------------------------
    def create_held(self, held: Held, path: str, data: Mapping[str, Any]) -> RestResult:
        """Create a held document and list its id, in one batch."""
        doc_id = path.rsplit("/", 1)[1]
        return self.rest.commit([self.create_write(path, data), self.hold(held, doc_id)])

    def delete_held(self, held: Held, path: str) -> RestResult:
        """Delete a held document and release its id, in one batch."""
        doc_id = path.rsplit("/", 1)[1]
        return self.rest.commit([{"delete": self.name(path)}, self.release(held, doc_id)])

    def new_window(self, rate: Rate) -> bool:
        """Does the next creation open a new window? (The app listens to its usage.)"""
        usage = self.rest.get(USAGE.format(uid=self.uid)).data or {}
        window = usage.get(rate.key)
        if window is None:
            return True
        ends: dt.datetime = window["start"] + rate.window
        return dt.datetime.now(dt.UTC) >= ends

    def create_counted(
        self, rate: Rate, path: str, data: Mapping[str, Any], key: str | None = None
    ) -> RestResult:
        """Create a rate-capped document counted in the caller's window, in one batch."""
        counted = key if key is not None else counted_key(path)
        count = self.count(rate, counted, new_window=self.new_window(rate))
        return self.rest.commit([self.create_write(path, data), count])

    def create_capped(self, cap: Held | Rate, path: str, data: Mapping[str, Any]) -> RestResult:
        """Create a document under whichever cap it counts against."""
        if isinstance(cap, Held):
            return self.create_held(cap, path, data)
        return self.create_counted(cap, path, data)


def counted_key(path: str) -> str:
    """What the rules count a creation at ``path`` as (a message: conversation and id)."""
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[2] == "messages":
        return message_key(parts[1], parts[3])
    return parts[-1]
