"""Firestore over its REST API, as an end user, so the security rules apply.

The emulator treats ``Authorization: Bearer <unsigned JWT>`` as that user's ID token and
``Bearer owner`` as an admin that bypasses the rules. Every write goes through ``:commit``
so creates, masked updates, preconditions and server timestamps behave as the client SDKs'
writes do.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import requests


class _ServerTimestamp:
    def __repr__(self) -> str:
        return "SERVER_TIMESTAMP"


SERVER_TIMESTAMP: Final = _ServerTimestamp()
"""Sentinel: write the request time, as ``serverTimestamp()`` does in the client SDKs."""


@dataclass(frozen=True)
class GeoPoint:
    """A Firestore geo point value."""

    latitude: float
    longitude: float


@dataclass(frozen=True)
class Reference:
    """A Firestore reference value (a document path such as ``users/u1``)."""

    path: str


def encode_value(value: Any, project: str) -> dict[str, Any]:
    """A Python value as a Firestore REST ``Value``."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return {"timestampValue": stamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}
    if isinstance(value, GeoPoint):
        return {"geoPointValue": {"latitude": value.latitude, "longitude": value.longitude}}
    if isinstance(value, Reference):
        return {"referenceValue": f"{_root(project)}/{value.path}"}
    if isinstance(value, Mapping):
        return {"mapValue": {"fields": {k: encode_value(v, project) for k, v in value.items()}}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [encode_value(v, project) for v in value]}}
    raise TypeError(f"cannot encode {type(value).__name__} as a Firestore value")


def decode_value(value: Mapping[str, Any]) -> Any:
    """A Firestore REST ``Value`` as a Python value."""
    (kind, raw), *_ = value.items()
    simple: dict[str, Callable[[Any], Any]] = {
        "nullValue": lambda _: None,
        "booleanValue": bool,
        "stringValue": str,
        "doubleValue": float,
        "integerValue": int,
    }
    if kind in simple:
        return simple[kind](raw)
    if kind == "timestampValue":
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if kind == "bytesValue":
        return base64.b64decode(raw)
    if kind == "geoPointValue":
        return GeoPoint(raw.get("latitude", 0.0), raw.get("longitude", 0.0))
    if kind == "referenceValue":
        return Reference(raw.split("/documents/", 1)[1])
    if kind == "mapValue":
        return decode_fields(raw.get("fields", {}))
    if kind == "arrayValue":
        return [decode_value(v) for v in raw.get("values", [])]
    raise ValueError(f"unknown Firestore value kind {kind!r}")


def decode_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Decode a REST ``fields`` map."""
    return {k: decode_value(v) for k, v in fields.items()}


def _root(project: str) -> str:
    return f"projects/{project}/databases/(default)/documents"


@dataclass(frozen=True)
class RestResult:
    """The outcome of one REST call: status, raw body and convenience views."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    @property
    def denied(self) -> bool:
        """The rules (or missing auth) refused the request."""
        return self.status in (401, 403)

    @property
    def data(self) -> dict[str, Any] | None:
        """Fields of a fetched document (None if missing or refused)."""
        if not self.ok or not isinstance(self.body, dict) or "fields" not in self.body:
            return {} if self.ok and isinstance(self.body, dict) and "name" in self.body else None
        return decode_fields(self.body["fields"])

    @property
    def documents(self) -> list[dict[str, Any]]:
        """Documents of a list or query result, each with its ``__path__``."""
        if not self.ok:
            return []
        if isinstance(self.body, list):  # runQuery streams one object per result
            raw = [item["document"] for item in self.body if "document" in item]
        else:
            raw = list(self.body.get("documents", [])) if isinstance(self.body, dict) else []
        return [
            {"__path__": d["name"].split("/documents/", 1)[1], **decode_fields(d.get("fields", {}))}
            for d in raw
        ]

    @property
    def error_message(self) -> str:
        """The server's error message, for assertion messages."""
        if isinstance(self.body, dict) and "error" in self.body:
            return str(self.body["error"].get("message", ""))
        if isinstance(self.body, list) and self.body and "error" in self.body[0]:
            return str(self.body[0]["error"].get("message", ""))
        return ""

    def expect_ok(self) -> RestResult:
        """Raise AssertionError with the server's message unless 2xx."""
        if not self.ok:
            raise AssertionError(f"expected success, got {self.status}: {self.error_message}")
        return self


_OPS = {
    "==": "EQUAL",
    "!=": "NOT_EQUAL",
    "<": "LESS_THAN",
    "<=": "LESS_THAN_OR_EQUAL",
    ">": "GREATER_THAN",
    ">=": "GREATER_THAN_OR_EQUAL",
    "in": "IN",
    "not-in": "NOT_IN",
    "array-contains": "ARRAY_CONTAINS",
    "array-contains-any": "ARRAY_CONTAINS_ANY",
}

Filter = tuple[str, str, Any]


class FirestoreRest:
    """One principal's view of Firestore: anonymous, a signed-in user, or the owner."""

    def __init__(self, host: str, project: str, bearer: str | None, *, timeout: float = 30):
        self.project = project
        self.base = f"http://{host}/v1/{_root(project)}"
        self._session = requests.Session()
        self._timeout = timeout
        if bearer is not None:
            self._session.headers["Authorization"] = f"Bearer {bearer}"

    def _call(self, method: str, url: str, **kwargs: Any) -> RestResult:
        response = self._session.request(method, url, timeout=self._timeout, **kwargs)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        return RestResult(response.status_code, body)

    def _name(self, path: str) -> str:
        return f"{_root(self.project)}/{path.strip('/')}"

    # ---- reads -------------------------------------------------------------------------
    def get(self, path: str) -> RestResult:
        """Get one document (rules ``get``)."""
        return self._call("GET", f"{self.base}/{quote(path.strip('/'))}")

    def list(self, collection: str, *, page_size: int = 100) -> RestResult:
        """List a collection without filters (rules ``list``)."""
        url = f"{self.base}/{quote(collection.strip('/'))}"
        return self._call("GET", url, params={"pageSize": page_size})

    def query(
        self,
        collection: str,
        where: Sequence[Filter] = (),
        *,
        order_by: Sequence[tuple[str, str]] = (),
        limit: int | None = None,
        collection_group: bool = False,
    ) -> RestResult:
        """A structured query (rules ``list``); ``collection`` may be a subcollection path."""
        parent, _, collection_id = collection.strip("/").rpartition("/")
        query: dict[str, Any] = {
            "from": [{"collectionId": collection_id, "allDescendants": collection_group}]
        }
        filters = [self._filter(f) for f in where]
        if len(filters) == 1:
            query["where"] = filters[0]
        elif filters:
            query["where"] = {"compositeFilter": {"op": "AND", "filters": filters}}
        if order_by:
            query["orderBy"] = [
                {
                    "field": {"fieldPath": f},
                    "direction": "DESCENDING" if d.lower().startswith("desc") else "ASCENDING",
                }
                for f, d in order_by
            ]
        if limit is not None:
            query["limit"] = limit
        url = f"{self.base}/{quote(parent)}:runQuery" if parent else f"{self.base}:runQuery"
        return self._call("POST", url, json={"structuredQuery": query})

    def _filter(self, condition: Filter) -> dict[str, Any]:
        field, op, value = condition
        return {
            "fieldFilter": {
                "field": {"fieldPath": field},
                "op": _OPS[op],
                "value": encode_value(value, self.project),
            }
        }

    # ---- writes ------------------------------------------------------------------------
    def _write(
        self, path: str, data: Mapping[str, Any], *, exists: bool | None, mask: Iterable[str] | None
    ) -> RestResult:
        plain = {k: v for k, v in data.items() if v is not SERVER_TIMESTAMP}
        stamps = [k for k, v in data.items() if v is SERVER_TIMESTAMP]
        write: dict[str, Any] = {
            "update": {
                "name": self._name(path),
                "fields": {k: encode_value(v, self.project) for k, v in plain.items()},
            }
        }
        if mask is not None:
            write["updateMask"] = {"fieldPaths": [m for m in mask if m not in stamps]}
        if exists is not None:
            write["currentDocument"] = {"exists": exists}
        if stamps:
            write["updateTransforms"] = [
                {"fieldPath": k, "setToServerValue": "REQUEST_TIME"} for k in stamps
            ]
        return self.commit([write])

    def commit(self, writes: Sequence[Mapping[str, Any]]) -> RestResult:
        """Commit raw REST ``Write`` objects atomically (a client batch)."""
        return self._call("POST", f"{self.base}:commit", json={"writes": list(writes)})

    def create(self, path: str, data: Mapping[str, Any]) -> RestResult:
        """Create a document that must not exist (rules ``create``)."""
        return self._write(path, data, exists=False, mask=None)

    def set(self, path: str, data: Mapping[str, Any]) -> RestResult:
        """Create or overwrite (rules ``create`` or ``update``)."""
        return self._write(path, data, exists=None, mask=None)

    def update(self, path: str, data: Mapping[str, Any]) -> RestResult:
        """Update only the given fields of an existing document (rules ``update``)."""
        return self._write(path, data, exists=True, mask=list(data))

    def delete(self, path: str) -> RestResult:
        """Delete a document (rules ``delete``)."""
        return self.commit([{"delete": self._name(path)}])
