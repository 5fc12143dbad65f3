"""Cloud Storage for functions: one client, upload and download URLs signed the same way
deployed and under the stand-in, writes that happen once, objects streamed in and out in
chunks (the trigger for finished uploads is :mod:`firekit.uploads`, so code that only reads
or writes objects loads no SDK trigger).

Under the emulators ``STORAGE_EMULATOR_HOST`` points google-cloud-storage at the stand-in
(fake-gcs-server; see docs/storage-stand-in.md), which checks no credentials: the client is
anonymous, and URLs are signed with a key made in this process. Deployed, the
client uses the runtime's service account, which holds no private key: URLs are signed by
IAM's ``signBlob`` on the service account itself, which needs the
``iam.serviceAccounts.signBlob`` permission (role "Service Account Token Creator" granted
to the account on itself) and the IAM Credentials API enabled.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import google.auth
import google.auth.transport.requests
from google.api_core.exceptions import NotFound, PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]

from firekit.bootstrap import project_id

EMULATOR_HOST_VAR = "STORAGE_EMULATOR_HOST"
IMMUTABLE = "public, max-age=31536000, immutable"
"""Cache-Control for objects whose name changes whenever their bytes would."""


def emulated() -> bool:
    """True when google-cloud-storage talks to the local stand-in."""
    return bool(os.environ.get(EMULATOR_HOST_VAR))


@functools.cache
def client() -> storage.Client:
    """The process's storage client (anonymous on the stand-in)."""
    if emulated():
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return storage.Client(project=project_id(), credentials=anonymous)
    return storage.Client()


def default_bucket_name() -> str:
    """The project's default bucket: ``FIREBASE_CONFIG.storageBucket`` as the runtime, the
    emulators and the deploying CLI set it; else ``<project>.appspot.com``."""
    config = os.environ.get("FIREBASE_CONFIG", "")
    if config.startswith("{"):
        bucket = json.loads(config).get("storageBucket")
        if bucket:
            return str(bucket)
    return f"{project_id()}.appspot.com"


def bucket(name: str) -> storage.Bucket:
    """A bucket handle (no request is made)."""
    return client().bucket(name)


@dataclasses.dataclass(frozen=True)
class SignedUpload:
    """What a client needs to upload one object: ``PUT`` the bytes to ``url`` with exactly
    ``headers`` before ``expires_at``."""

    url: str
    headers: dict[str, str]
    expires_at: dt.datetime
    method: str = "PUT"


def signed_upload(
    bucket_name: str,
    object_name: str,
    *,
    content_type: str,
    max_bytes: int,
    lifetime: dt.timedelta,
) -> SignedUpload:
    """A V4 signed ``PUT`` URL for one new object: bound to its name, its content type, a
    size of at most ``max_bytes`` and ``ifGenerationMatch=0`` (it cannot replace an object),
    valid for ``lifetime``. Cloud Storage enforces all of it; the stand-in none (so what
    reads the upload checks size and type again)."""
    headers = {
        "x-goog-content-length-range": f"0,{max_bytes}",
        "x-goog-if-generation-match": "0",
    }
    blob = bucket(bucket_name).blob(object_name)
    url = blob.generate_signed_url(
        version="v4",
        method="PUT",
        expiration=lifetime,
        content_type=content_type,
        headers=dict(headers),  # a copy: the library adds Host to the dict it is given
        **_signing(),
    )
    expires_at = dt.datetime.now(dt.UTC) + lifetime
    return SignedUpload(url, {"Content-Type": content_type, **headers}, expires_at)


MAX_SIGNED_LIFETIME = dt.timedelta(days=7)
"""The longest a V4 signed URL may live (604800 s): Cloud Storage refuses longer ones."""


def signed_download(
    bucket_name: str,
    object_name: str,
    lifetime: dt.timedelta,
    *,
    download_as: str | None = None,
) -> str:
    """A V4 signed ``GET`` URL for one object of a private bucket, valid for ``lifetime``
    (at most :data:`MAX_SIGNED_LIFETIME`: a longer one raises ``ValueError`` here rather
    than a URL Cloud Storage would refuse). ``download_as``: the file name a browser saves
    it under. Signed as :func:`signed_upload` signs; the stand-in checks no signature."""
    if not dt.timedelta(0) < lifetime <= MAX_SIGNED_LIFETIME:
        raise ValueError(f"a signed URL lives more than 0 s and at most 7 days, not {lifetime}")
    disposition = {"response_disposition": f'attachment; filename="{download_as}"'}
    url: str = (
        bucket(bucket_name)
        .blob(object_name)
        .generate_signed_url(
            version="v4",
            method="GET",
            expiration=lifetime,
            **(disposition if download_as else {}),
            **_signing(),
        )
    )
    return url


WRITE_CHUNK = 8 * 1024 * 1024
"""What a streamed write holds before sending it (a multiple of 256 KiB, as resumable
uploads require): the memory a writer costs, whatever the object's size."""
READ_CHUNK = 1024 * 1024


def open_write(bucket_name: str, object_name: str, *, content_type: str) -> io.BufferedIOBase:
    """A file to stream one object into (a resumable upload, :data:`WRITE_CHUNK` at a
    time), replacing any object of that name. Use it as a context manager: the object
    exists once the block ends without an exception; an exception abandons the upload and
    leaves any earlier object of that name as it was. Not seekable (``zipfile`` copes)."""
    blob = bucket(bucket_name).blob(object_name)
    # flush() cannot send a partial chunk; zipfile and TextIOWrapper call it anyway.
    writer: io.BufferedIOBase = blob.open(
        "wb", chunk_size=WRITE_CHUNK, ignore_flush=True, content_type=content_type
    )
    return writer


def open_read(bucket_name: str, object_name: str) -> io.BufferedIOBase:
    """A file reading one object :data:`READ_CHUNK` at a time; the first read raises
    ``google.api_core.exceptions.NotFound`` if the object is gone."""
    reader: io.BufferedIOBase = (
        bucket(bucket_name).blob(object_name).open("rb", chunk_size=READ_CHUNK)
    )
    return reader


def object_names(bucket_name: str, prefix: str) -> Iterator[str]:
    """The names of the objects under ``prefix``, in name order (listed page by page)."""
    for blob in client().list_blobs(bucket_name, prefix=prefix):
        yield str(blob.name)


def write_once(
    bucket_name: str, object_name: str, data: bytes, *, content_type: str, cache_control: str
) -> bool:
    """Create ``object_name`` unless it exists (``ifGenerationMatch=0``): False when it
    already did, which is how a redelivered event writes nothing twice."""
    blob = bucket(bucket_name).blob(object_name)
    blob.cache_control = cache_control
    try:
        blob.upload_from_string(data, content_type=content_type, if_generation_match=0)
    except PreconditionFailed:
        return False
    return True


def read(bucket_name: str, object_name: str, generation: int) -> bytes | None:
    """The bytes of that generation of the object, or None once it is gone or replaced."""
    blob = bucket(bucket_name).blob(object_name, generation=generation)
    try:
        data: bytes = blob.download_as_bytes()
    except NotFound:
        return None
    return data


def delete(bucket_name: str, object_name: str, generation: int | None = None) -> bool:
    """Delete the object (only that generation, when given); False if it was not there."""
    blob = bucket(bucket_name).blob(object_name)
    try:
        blob.delete(if_generation_match=generation)
    except (NotFound, PreconditionFailed):
        return False
    return True


def delete_prefix(bucket_name: str, prefix: str) -> int:
    """Delete every object whose name starts with ``prefix`` (a folder: end it with ``/``);
    how many were. Listing pages through any number of objects."""
    if not prefix.endswith("/"):
        raise ValueError(f"{prefix!r}: a prefix to delete must name a folder (end with '/')")
    removed = 0
    for blob in client().list_blobs(bucket_name, prefix=prefix):
        try:
            blob.delete()
            removed += 1
        except NotFound:
            pass  # deleted meanwhile by someone else: the outcome is the same
    return removed


def public_url(bucket_name: str, object_name: str) -> str:
    """The object's plain URL: ``https://storage.googleapis.com/<bucket>/<name>`` deployed
    (readable when the bucket grants ``allUsers`` read), the stand-in's under it."""
    url: str = bucket(bucket_name).blob(object_name).public_url
    return url


@dataclasses.dataclass(frozen=True)
class FinishedUpload:
    """An object that finished uploading, as the event names it."""

    bucket: str
    name: str
    generation: int
    size: int
    content_type: str | None
    event_id: str


_signer_lock = threading.Lock()


@functools.cache
def _local_signer() -> Any:
    # The stand-in checks no signature, but the URL must have the real V4 shape so the
    # client code is the production code: sign with a key made for this process.
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        {
            "type": "service_account",
            "project_id": project_id(),
            "private_key_id": "emulated",
            "private_key": pem,
            "client_email": f"emulated@{project_id()}.iam.gserviceaccount.com",
            "client_id": "0",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def _signing() -> dict[str, Any]:
    # What generate_signed_url signs with: a key made in this process under the stand-in;
    # deployed, IAM signBlob as the runtime's service account (see the module).
    if emulated():
        return {"credentials": _local_signer()}
    credentials = _service_account_credentials()
    return {
        "service_account_email": credentials.service_account_email,
        "access_token": credentials.token,
    }


def _service_account_credentials() -> Any:
    # The runtime's credentials carry an email and a short-lived token; refresh the token
    # when it is missing or near its end (one shared credential per instance).
    with _signer_lock:
        credentials = _default_credentials()
        if not credentials.valid:
            credentials.refresh(google.auth.transport.requests.Request())
        return credentials


@functools.cache
def _default_credentials() -> Any:
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return credentials
