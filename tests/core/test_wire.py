"""``firekit.wire`` writes what the SDK writes and reads what the SDK reads.

The shim reaches into private parts of one version of the SDK: the version installed is
the one it was checked against, and every line that reaches in says so. Encoding is
checked write by write against the SDK's own ``pbs_for_*`` on hand-picked and generated
documents (every value type, nested and empty maps, every sentinel, field names that
need quoting). Reading and committing run against the emulator, side by side with the
SDK, on the shim and on the public path ``FANOUT_WIRE=0`` switches to.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.field_path import FieldPath
from hypothesis import given, settings
from hypothesis import strategies as st

from firekit import wire

PATH = "projects/p/databases/(default)/documents/things/one"
STAMP = dt.datetime(2026, 11, 24, 12, 30, 15, 123456, tzinfo=dt.UTC)

REQUIREMENTS = Path(__file__).resolve().parents[2] / "functions" / "requirements.txt"


def test_the_installed_sdk_is_the_version_the_shim_was_checked_against() -> None:
    # On a new SDK: run this file (its differential tests hold the shim to the SDK's own
    # encoding and reads), check each "# private:" line in wire.py still holds, then move
    # wire.CHECKED_AGAINST with the pin.
    pinned = re.search(r"^google-cloud-firestore==(\S+)$", REQUIREMENTS.read_text(), re.M)
    assert pinned is not None
    assert pinned.group(1) == wire.CHECKED_AGAINST
    assert importlib.metadata.version("google-cloud-firestore") == wire.CHECKED_AGAINST


def test_every_reach_into_the_sdks_private_parts_is_marked_where_it_happens() -> None:
    source = Path(wire.__file__).read_text().splitlines()
    # An attribute starting with "_" on anything but our own objects (``self``).
    reaching = re.compile(r"(?<!self)\._[a-z]\w*|\"_[a-z]\w*\"")
    unmarked = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(source, 1)
        if reaching.search(line.split("#")[0]) and "# private: " not in line
    ]
    assert unmarked == []
    assert sum("# private: " in line for line in source) >= 10


SHAPES: dict[str, dict[str, Any]] = {
    "scalars": {"s": "é", "i": -(2**63), "f": 1.5, "t": True, "n": None, "b": b"\x00\xff"},
    "times": {
        "aware": STAMP,
        "naive": STAMP.replace(tzinfo=None),
        "other zone": STAMP.astimezone(dt.timezone(dt.timedelta(hours=-5))),
        "nanos": DatetimeWithNanoseconds(2026, 1, 2, 3, 4, 5, nanosecond=123456789, tzinfo=dt.UTC),
    },
    "nested": {"a": {"b": {"c": [1, {"d": []}, {}], "e": {}}}, "z": ("x", 2, {"in": []})},
    "geo and refs": {"where": firestore.GeoPoint(51.5, -0.14)},
    "quoted names": {"a-b": {"c.d": 1, "`e`": 2, "ünï": 3}},
    "sentinels": {
        "createdAt": firestore.SERVER_TIMESTAMP,
        "count": firestore.Increment(2),
        "deep": {"at": firestore.SERVER_TIMESTAMP, "keep": 1},
        "only": {"transforms": firestore.Maximum(3.5)},
        "low": firestore.Minimum(-1),
        "tags": firestore.ArrayUnion(["a", {"m": 1}]),
        "gone": firestore.ArrayRemove([None]),
    },
    "empty": {},
    "an empty map": {"m": {}},
}


def sdk(kind: str, data: dict[str, Any]) -> Any:
    if kind == "create":
        return _helpers.pbs_for_create(PATH, data)[0]._pb
    if kind == "merge":
        return _helpers.pbs_for_set_with_merge(PATH, data, merge=True)[0]._pb
    return _helpers.pbs_for_set_no_merge(PATH, data)[0]._pb


def ours(kind: str, data: dict[str, Any]) -> Any:
    write = wire.encode_write(PATH, data, merge=kind == "merge")
    if kind == "create":
        write.current_document.exists = False
    return write


@pytest.mark.parametrize("kind", ["create", "set", "merge"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_writes_are_encoded_as_the_sdk_encodes_them(kind: str, shape: str) -> None:
    data = SHAPES[shape]
    data = data | {"ref": firestore.Client(project="p").document("a/b")}
    assert ours(kind, data) == sdk(kind, data)


def test_delete_field_is_written_in_a_merge_and_refused_elsewhere() -> None:
    data = {"gone": firestore.DELETE_FIELD, "kept": {"x": 1}}
    assert ours("merge", data) == sdk("merge", data)
    with pytest.raises(ValueError, match="merge=True"):
        wire.encode_write(PATH, data, merge=False)


def test_values_and_names_the_sdk_cannot_write_are_refused() -> None:
    with pytest.raises(TypeError, match="object"):
        wire.encode_write(PATH, {"x": object()}, merge=False)
    with pytest.raises(ValueError, match="field name"):
        wire.encode_write(PATH, {"x": {"": 1}}, merge=False)


_names = st.text(min_size=0, max_size=6)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=8)
    | st.floats(allow_nan=False)
    | st.binary(max_size=4)
    | st.datetimes(timezones=st.just(dt.UTC))
    | st.just(firestore.SERVER_TIMESTAMP)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner.filter(lambda v: v is not firestore.SERVER_TIMESTAMP), max_size=3)
        | st.dictionaries(_names, inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(_names, _values, max_size=4),
    kind=st.sampled_from(["create", "set", "merge"]),
)
def test_generated_documents_are_encoded_as_the_sdk_encodes_them(
    data: dict[str, Any], kind: str
) -> None:
    try:
        expected = sdk(kind, data)
    except (ValueError, TypeError) as refused:  # the SDK's own refusals
        with pytest.raises(type(refused)):
            ours(kind, data)
        return
    assert ours(kind, data) == expected


# --- against the emulator ---------------------------------------------------------


@pytest.fixture(params=["wire", "public SDK"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both paths: the shim, and the SDK's public API (``FANOUT_WIRE=0``)."""
    monkeypatch.setenv(wire.SETTING, "1" if request.param == "wire" else "0")
    return str(request.param)


def stored(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> list[firestore.DocumentReference]:
    """Three documents written by the SDK: every value type, nested, and one empty."""
    things = firestore_db.collection(unique("things"))
    refs = [things.document(f"d{n}") for n in range(3)]
    refs[0].set(SHAPES["scalars"] | SHAPES["times"] | {"ref": refs[1]})
    refs[1].set(SHAPES["nested"] | SHAPES["geo and refs"] | SHAPES["quoted names"])
    refs[2].set({})
    return refs


def test_documents_read_are_what_the_sdk_reads(
    firestore_db: firestore.Client, unique: Callable[[str], str], path: str
) -> None:
    refs = stored(firestore_db, unique)
    missing = refs[0].parent.document("absent")
    read = {s.reference.path: s for s in wire.get_all(firestore_db, [*refs, missing, refs[0]])}
    assert set(read) == {ref.path for ref in [*refs, missing]}
    for ref in refs:
        assert read[ref.path].exists and read[ref.path].id == ref.id
        assert read[ref.path].to_dict() == ref.get().to_dict()
    assert not read[missing.path].exists and read[missing.path].to_dict() is None
    streamed = list(wire.stream(refs[0].parent.order_by(FieldPath.document_id())))
    assert [s.reference.path for s in streamed] == [ref.path for ref in refs]
    assert [s.to_dict() for s in streamed] == [ref.get().to_dict() for ref in refs]
    assert list(wire.get_all(firestore_db, [])) == []


def test_a_batch_commits_whole_or_not_at_all(
    firestore_db: firestore.Client, unique: Callable[[str], str], path: str
) -> None:
    things = firestore_db.collection(unique("things"))
    things.document("taken").set({"v": 1, "keep": {"x": 1}})
    things.document("also taken").set({"v": 0})
    batch = wire.Batch(firestore_db)
    batch.create(things.document("new"), {"v": 2, "at": firestore.SERVER_TIMESTAMP})
    batch.set(things.document("taken"), {"keep": {"y": 2}}, merge=True)
    batch.create(things.document("also taken"), {"v": 3})
    with pytest.raises(AlreadyExists):
        batch.commit()
    assert not things.document("new").get().exists
    assert things.document("taken").get().to_dict() == {"v": 1, "keep": {"x": 1}}
    assert things.document("also taken").get().to_dict() == {"v": 0}

    batch = wire.Batch(firestore_db)
    batch.create(things.document("new"), {"v": 2, "at": firestore.SERVER_TIMESTAMP})
    batch.set(things.document("taken"), {"keep": {"y": 2}}, merge=True)
    batch.set(things.document("other"), {"v": 4})
    batch.commit()
    new = things.document("new").get().to_dict() or {}
    assert new["v"] == 2 and isinstance(new["at"], dt.datetime)
    assert things.document("taken").get().to_dict() == {"v": 1, "keep": {"x": 1, "y": 2}}
    assert things.document("other").get().to_dict() == {"v": 4}
