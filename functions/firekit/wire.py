"""A shim over private internals of ``google-cloud-firestore``: documents to and from the
wire without the SDK's proto-plus layer, for the fan-out's hot loops.

**What it is.** The SDK's public API has no way to read or write documents without
building every value through proto-plus wrappers and deep-copying each document twice on
the way in (once as the snapshot is built, again in ``to_dict``). For a fan-out that reads
and writes tens of thousands of small documents that is most of its CPU: encoding 10,000
inbox documents takes the SDK 1.2 s and this module 0.09 s, and the SDK's read side costs
about as much again. So this module reaches into the SDK's private parts (its GAPIC stub,
the client's database string and RPC metadata, a query's protobuf, a reference's full
path, the raw ``_pb`` of a response): each such line says ``# private: <what>``. The RPCs
are still the SDK's own (its GAPIC stub, retries and metadata); values are written
straight into the protobuf messages the stub sends, and read straight off the ones it
returns.

**Checked against one SDK version**, :data:`CHECKED_AGAINST`, the pin in
``functions/requirements.txt``: ``tests/core/test_wire.py`` fails when the installed
version differs (then re-run that file, whose differential tests hold every write to the
SDK's own encoding and every read to its reads, and move the constant with the pin).

**One setting turns it off:** ``FANOUT_WIRE=0`` in the environment (``functions/.env``,
or the shell of a benchmark; read at each call) makes :func:`stream`, :func:`get_all` and
:class:`Batch` go through the SDK's public API (``Query.stream``, ``Client.get_all``,
``WriteBatch``) with the same results, slower. Everything the fan-out reads and writes in
bulk goes through here, so this switches the whole fan-out to the public SDK path.

What it covers is what the hot loops need:

- :class:`Batch`: ``create``, ``set`` and ``set(merge=True)``, committed atomically. Every
  value type the SDK encodes but vectors and BSON types, and every sentinel
  (``SERVER_TIMESTAMP``, ``DELETE_FIELD`` in a merge, ``Increment``, ``Maximum``,
  ``Minimum``, ``ArrayUnion``, ``ArrayRemove``).
- :func:`stream` and :func:`get_all`: a query's documents or documents by reference, as
  :class:`Snapshot`, which has the parts of ``DocumentSnapshot`` callers use (``id``,
  ``reference``, ``exists``, ``to_dict``: :class:`Document`). Maps holding vectors or BSON
  types come back as plain maps.

Everything else goes through the SDK as usual.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1 import transforms
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import write as write_types
from google.protobuf import timestamp_pb2

CHECKED_AGAINST = "2.34.1"
"""The ``google-cloud-firestore`` version this shim was checked against (its pin)."""
SETTING = "FANOUT_WIRE"
"""``0``: go through the SDK's public API instead (see the module docstring)."""

_Write = write_types.Write.pb()
_REQUEST_TIME = 1  # DocumentTransform.FieldTransform.ServerValue.REQUEST_TIME


def enabled() -> bool:
    """Whether to go around the SDK's proto-plus layer (the default) or through its
    public API (``FANOUT_WIRE=0``)."""
    return os.environ.get(SETTING, "1") != "0"


class Document(Protocol):
    """What callers use of a document read, here or by the SDK."""

    @property
    def reference(self) -> firestore.DocumentReference: ...

    @property
    def exists(self) -> bool: ...

    @property
    def id(self) -> str: ...

    def to_dict(self) -> dict[str, Any] | None: ...


@dataclass(slots=True)
class Snapshot:
    """A document as read: its reference, whether it exists, and its data."""

    reference: firestore.DocumentReference
    exists: bool
    _data: dict[str, Any] | None

    @property
    def id(self) -> str:
        """The document's id."""
        return str(self.reference.id)

    def to_dict(self) -> dict[str, Any] | None:
        """The document's data (None if it does not exist). Not a copy: it is the
        caller's, as nothing else holds it."""
        return self._data


# --- reading --------------------------------------------------------------------------


def stream(query: firestore.Query) -> Iterator[Document]:
    """The documents ``query`` returns, in its order. Closing the iterator cancels it."""
    if not enabled():
        yield from query.stream()
        return
    client = query._client  # private: the query's client
    parent, _ = query._parent._parent_info()  # private: the parent's resource name
    responses = client._firestore_api.run_query(  # private: the GAPIC stub
        request={
            "parent": parent,
            "structured_query": query._to_protobuf(),  # private: the query's protobuf
        },
        metadata=client._rpc_metadata,  # private: the client's RPC metadata
    )
    try:
        for response in responses:
            pb = response._pb  # private: proto-plus's raw protobuf
            if pb.HasField("document"):
                yield _snapshot(client, pb.document.name, pb.document.fields)
    finally:
        cancel = getattr(responses, "cancel", None)
        if cancel is not None:
            cancel()


def get_all(
    client: firestore.Client, references: Sequence[firestore.DocumentReference]
) -> Iterator[Document]:
    """Each of ``references`` once, found or not, in the order the server answers."""
    if not references:
        return
    if not enabled():
        yield from client.get_all(list(dict.fromkeys(references)))
        return
    paths = list(
        dict.fromkeys(ref._document_path for ref in references)  # private: full names
    )
    responses = client._firestore_api.batch_get_documents(  # private: the GAPIC stub
        request={
            "database": client._database_string,  # private: the database's name
            "documents": paths,
        },
        metadata=client._rpc_metadata,  # private: the client's RPC metadata
    )
    for response in responses:
        pb = response._pb  # private: proto-plus's raw protobuf
        if pb.WhichOneof("result") == "found":
            yield _snapshot(client, pb.found.name, pb.found.fields)
        else:
            yield Snapshot(client.document(_relative(client, pb.missing)), False, None)


def _relative(client: firestore.Client, name: str) -> str:
    database = client._database_string  # private: the database's name
    return name[len(database) + len("/documents/") :]


def _snapshot(client: firestore.Client, name: str, fields: Any) -> Snapshot:
    data = {key: decode(value, client) for key, value in fields.items()}
    return Snapshot(client.document(_relative(client, name)), True, data)


def decode(value: Any, client: firestore.Client) -> Any:
    """A raw ``Value`` protobuf as the Python value the SDK would give (references to
    ``client``'s documents; a map is always a map)."""
    kind = value.WhichOneof("value_type")
    if kind == "string_value":
        return value.string_value
    if kind == "map_value":
        return {key: decode(item, client) for key, item in value.map_value.fields.items()}
    if kind == "array_value":
        return [decode(item, client) for item in value.array_value.values]
    if kind == "integer_value":
        return value.integer_value
    if kind == "boolean_value":
        return value.boolean_value
    if kind == "null_value" or kind is None:
        return None
    if kind == "timestamp_value":
        return DatetimeWithNanoseconds.from_timestamp_pb(value.timestamp_value)  # type: ignore[no-untyped-call]
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "reference_value":
        return client.document(_relative(client, value.reference_value))
    if kind == "geo_point_value":
        return firestore.GeoPoint(value.geo_point_value.latitude, value.geo_point_value.longitude)
    raise ValueError(f"unknown Firestore value type {kind!r}")


# --- writing --------------------------------------------------------------------------


class Batch:
    """Writes committed together, all or none (as ``WriteBatch``; with ``FANOUT_WIRE=0``,
    a ``WriteBatch``)."""

    def __init__(self, client: firestore.Client) -> None:
        self.client = client
        self.writes: list[Any] = []
        self._public = None if enabled() else client.batch()

    def create(self, reference: firestore.DocumentReference, data: Mapping[str, Any]) -> None:
        """Create the document; the commit fails with ``AlreadyExists`` if it exists."""
        if self._public is not None:
            self._public.create(reference, dict(data))
            return
        path = reference._document_path  # private: the document's full name
        write = encode_write(path, data, merge=False)
        write.current_document.exists = False
        self.writes.append(write)

    def set(
        self,
        reference: firestore.DocumentReference,
        data: Mapping[str, Any],
        *,
        merge: bool = False,
    ) -> None:
        """Replace the document, or with ``merge`` write only the fields ``data`` names."""
        if self._public is not None:
            self._public.set(reference, dict(data), merge=merge)
            return
        path = reference._document_path  # private: the document's full name
        self.writes.append(encode_write(path, data, merge=merge))

    def commit(self) -> Any:
        """Commit the writes; raises what the SDK's batch would (``AlreadyExists``, ...)."""
        if self._public is not None:
            return self._public.commit()
        client = self.client
        return client._firestore_api.commit(  # private: the GAPIC stub
            request={
                "database": client._database_string,  # private: the database's name
                "writes": self.writes,
            },
            metadata=client._rpc_metadata,  # private: the client's RPC metadata
        )


_EMPTY = object()
"""An empty map as a value: a field of its own (as in the SDK)."""


def encode_write(path: str, data: Mapping[str, Any], *, merge: bool) -> Any:
    """The raw ``Write`` of ``set(data)`` (``merge``: of ``set(data, merge=True)``) on the
    document at ``path`` (its full name), as the SDK builds it."""
    write = _Write()
    write.update.name = path
    leaves: list[tuple[tuple[str, ...], Any]] = []
    _leaves(data, (), leaves)
    if not data:
        leaves = []  # an empty document: no fields, and (merged) an empty mask
    fields = write.update.fields
    masked: list[tuple[str, ...]] = []
    transformed: list[tuple[tuple[str, ...], Any]] = []
    for parts, value in leaves:
        if value is transforms.DELETE_FIELD:
            if not merge:
                raise ValueError("DELETE_FIELD needs set(..., merge=True)")
            masked.append(parts)
        elif isinstance(value, _TRANSFORMS):
            transformed.append((parts, value))
        else:
            target = fields
            for part in parts[:-1]:
                target = target[part].map_value.fields
            if value is _EMPTY:
                target[parts[-1]].map_value.SetInParent()
            else:
                encode(value, target[parts[-1]])
            masked.append(parts)
    if merge:  # the SDK sends a mask with a merge even if it is empty
        write.update_mask.SetInParent()
        write.update_mask.field_paths.extend(FieldPath(*p).to_api_repr() for p in sorted(masked))
    for parts, value in sorted(transformed, key=lambda item: item[0]):
        _transform(write.update_transforms.add(), FieldPath(*parts).to_api_repr(), value)
    return write


_TRANSFORMS = (
    transforms.Sentinel,
    transforms.Increment,
    transforms.Maximum,
    transforms.Minimum,
    transforms.ArrayUnion,
    transforms.ArrayRemove,
)
"""What becomes a field transform (``DELETE_FIELD``, a sentinel too, is taken first)."""


def _leaves(
    data: Mapping[str, Any], prefix: tuple[str, ...], out: list[tuple[tuple[str, ...], Any]]
) -> None:
    """Depth first, keys sorted (the SDK's order): (path, value) of every leaf."""
    if not data:
        out.append((prefix, _EMPTY))
        return
    for key in sorted(data):
        if not isinstance(key, str) or not key:
            raise ValueError(f"a field name must be a non-empty string, not {key!r}")
        value = data[key]
        if isinstance(value, dict):
            _leaves(value, (*prefix, key), out)
        else:
            out.append(((*prefix, key), value))


def _transform(out: Any, field_path: str, value: Any) -> None:
    out.field_path = field_path
    if value is transforms.SERVER_TIMESTAMP:
        out.set_to_server_value = _REQUEST_TIME
    elif isinstance(value, transforms.Increment):
        encode(value.value, out.increment)
    elif isinstance(value, transforms.Maximum):
        encode(value.value, out.maximum)
    elif isinstance(value, transforms.Minimum):
        encode(value.value, out.minimum)
    elif isinstance(value, transforms.ArrayUnion):
        for item in value.values:
            encode(item, out.append_missing_elements.values.add())
    elif isinstance(value, transforms.ArrayRemove):
        for item in value.values:
            encode(item, out.remove_all_from_array.values.add())
    else:
        raise TypeError(f"cannot write the sentinel {value!r} here")


def encode(value: Any, out: Any) -> None:
    """Write ``value`` into the raw ``Value`` protobuf ``out``, as the SDK encodes it."""
    if value is None:
        out.null_value = 0
    elif value is True or value is False:
        out.boolean_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, int):
        out.integer_value = value
    elif isinstance(value, float):
        out.double_value = value
    else:
        _encode_structured(value, out)


def _encode_structured(value: Any, out: Any) -> None:
    if isinstance(value, dict):
        out.map_value.SetInParent()
        fields = out.map_value.fields
        for key, item in value.items():
            encode(item, fields[key])
    elif isinstance(value, (list, tuple, set, frozenset)):
        out.array_value.SetInParent()
        values = out.array_value.values
        for item in value:
            encode(item, values.add())
    elif isinstance(value, DatetimeWithNanoseconds):
        out.timestamp_value.CopyFrom(value.timestamp_pb())  # type: ignore[no-untyped-call]
    elif isinstance(value, dt.datetime):
        out.timestamp_value.CopyFrom(_timestamp(value))
    elif isinstance(value, bytes) and getattr(value, "subtype", None) is None:
        out.bytes_value = value
    elif getattr(value, "_document_path", None) is not None:  # private: a reference's name
        out.reference_value = value._document_path  # private: a reference's full name
    elif isinstance(value, firestore.GeoPoint):
        out.geo_point_value.latitude = value.latitude
        out.geo_point_value.longitude = value.longitude
    else:
        raise TypeError(f"cannot write a {type(value).__name__} here: {value!r}")


def _timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    # As the SDK's _datetime_to_pb_timestamp: a naive datetime is UTC.
    stamp = timestamp_pb2.Timestamp()
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    stamp.FromDatetime(value)
    return stamp
