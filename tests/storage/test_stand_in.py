"""The Cloud Storage stand-in (fake-gcs-server) in the dev stack: what the photo code
relies on, through google-cloud-storage as the functions use it (docs/storage-stand-in.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from google.api_core.exceptions import NotFound, PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]
from google.oauth2 import service_account

import devstack
from pytest_firebase.stack import EmulatorStack, StackError


@pytest.fixture(scope="module")
def gcs(firebase_stack: EmulatorStack) -> Iterator[storage.Client]:
    """An anonymous client on the stand-in, found through STORAGE_EMULATOR_HOST as the
    functions find it."""
    env = devstack.storage_environment(firebase_stack.config.port_offset)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        yield storage.Client(project=devstack.PROJECT_ID, credentials=anonymous)


@pytest.fixture
def bucket(gcs: storage.Client) -> storage.Bucket:
    return gcs.bucket(devstack.STORAGE_BUCKET)


@pytest.fixture
def prefix() -> str:
    """A folder of this test's own: the stand-in keeps objects for the whole session."""
    return f"tests/{uuid.uuid4().hex}/"


def test_the_functions_are_pointed_at_the_stand_in_and_its_bucket_exists(
    firebase_stack: EmulatorStack, gcs: storage.Client
) -> None:
    host = f"http://127.0.0.1:{devstack.FAKE_GCS_PORT + firebase_stack.config.port_offset}"
    assert firebase_stack.config.extra_env["STORAGE_EMULATOR_HOST"] == host
    assert devstack.STORAGE_BUCKET == "demo-marketplace.appspot.com"
    found = gcs.lookup_bucket(devstack.STORAGE_BUCKET)
    assert found is not None and found.name == devstack.STORAGE_BUCKET


def test_bytes_round_trip_with_their_content_type(bucket: storage.Bucket, prefix: str) -> None:
    data = b"\xff\xd8\xff\xe0 not really a jpeg \x00\x01"
    bucket.blob(f"{prefix}a.jpg").upload_from_string(data, content_type="image/jpeg")

    stored = bucket.get_blob(f"{prefix}a.jpg")
    assert stored is not None
    assert stored.content_type == "image/jpeg"
    assert stored.size == len(data)
    assert stored.download_as_bytes() == data


def test_a_write_only_if_absent_is_refused_once_the_object_exists(
    bucket: storage.Bucket, prefix: str
) -> None:
    blob = bucket.blob(f"{prefix}320.webp")
    blob.upload_from_string(b"first", content_type="image/webp", if_generation_match=0)

    with pytest.raises(PreconditionFailed) as refused:
        bucket.blob(f"{prefix}320.webp").upload_from_string(
            b"second", content_type="image/webp", if_generation_match=0
        )
    assert refused.value.code == 412
    assert bucket.blob(f"{prefix}320.webp").download_as_bytes() == b"first"


def test_objects_are_listed_by_prefix(
    gcs: storage.Client, bucket: storage.Bucket, prefix: str
) -> None:
    for name in ("photos/L1/p1.webp", "photos/L1/p2.webp", "photos/L2/p1.webp", "other"):
        bucket.blob(prefix + name).upload_from_string(name.encode())

    listed = [b.name for b in gcs.list_blobs(devstack.STORAGE_BUCKET, prefix=f"{prefix}photos/L1/")]
    assert listed == [f"{prefix}photos/L1/p1.webp", f"{prefix}photos/L1/p2.webp"]


def test_a_deleted_object_is_gone(bucket: storage.Bucket, prefix: str) -> None:
    blob = bucket.blob(f"{prefix}upload.jpg")
    blob.upload_from_string(b"bytes")
    assert blob.exists()

    blob.delete()

    assert not blob.exists()
    with pytest.raises(NotFound):
        blob.delete()


def _local_signer() -> service_account.Credentials:
    """A service-account credential around a key made here: it signs offline (anonymous
    credentials cannot sign), as the emulated functions will."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    info = {
        "type": "service_account",
        "project_id": devstack.PROJECT_ID,
        "private_key_id": "local",
        "private_key": pem,
        "client_email": f"emulator@{devstack.PROJECT_ID}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    make = service_account.Credentials.from_service_account_info
    signer: service_account.Credentials = make(info)  # type: ignore[no-untyped-call]
    return signer


def test_a_v4_signed_put_url_takes_an_upload(
    firebase_stack: EmulatorStack, bucket: storage.Bucket, prefix: str
) -> None:
    blob = bucket.blob(f"{prefix}uploads/slot-1")
    headers = {"x-goog-content-length-range": "0,15728640"}
    url = blob.generate_signed_url(
        version="v4",
        method="PUT",
        expiration=dt.timedelta(minutes=15),
        content_type="image/jpeg",
        headers=headers,
        credentials=_local_signer(),
    )
    port = devstack.FAKE_GCS_PORT + firebase_stack.config.port_offset
    assert url.startswith(f"http://127.0.0.1:{port}/{devstack.STORAGE_BUCKET}/")
    assert "X-Goog-Signature=" in url

    data = b"\xff\xd8\xff" + bytes(range(256)) * 4
    answer = requests.put(
        url, data=data, headers={"Content-Type": "image/jpeg", **headers}, timeout=10
    )

    assert answer.status_code == 200, answer.text
    stored = bucket.get_blob(f"{prefix}uploads/slot-1")
    assert stored is not None
    assert stored.content_type == "image/jpeg"
    assert stored.download_as_bytes() == data


def test_the_public_url_serves_the_bytes(
    firebase_stack: EmulatorStack, bucket: storage.Bucket, prefix: str
) -> None:
    blob = bucket.blob(f"{prefix}photos/p1/320.webp")
    blob.upload_from_string(b"RIFF....WEBPdata", content_type="image/webp")
    port = devstack.FAKE_GCS_PORT + firebase_stack.config.port_offset
    assert blob.public_url == (
        f"http://127.0.0.1:{port}/{devstack.STORAGE_BUCKET}/{prefix}photos/p1/320.webp"
    )

    answer = requests.get(blob.public_url, timeout=10)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "image/webp"
    assert answer.content == b"RIFF....WEBPdata"


def test_the_dev_stack_lists_the_stand_in_among_its_services() -> None:
    rows = EmulatorStack(devstack.stack_config(offset=10)).describe()
    assert ("storage", f"http://127.0.0.1:{devstack.FAKE_GCS_PORT + 10}") in rows


def test_without_the_stand_in_installed_the_stack_says_to_run_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(devstack, "FAKE_GCS_DIR", tmp_path / "fake-gcs-server")

    with pytest.raises(StackError, match="run `make bootstrap`"):
        devstack.stack_config(offset=10)
