"""The trigger for uploads that finished: each object written under a prefix of the
default bucket, handed over as a :class:`~firekit.storage.FinishedUpload`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from firebase_functions import storage_fn

from firekit import observe
from firekit.bootstrap import ensure_initialized
from firekit.events import enable_platform_retry
from firekit.storage import FinishedUpload, default_bucket_name

UploadHandler = Callable[[FinishedUpload], str]
"""Handles one finished upload; answers the outcome, for the log line."""


def upload_trigger(
    *, prefix: str, name: str | None = None, retry: bool = True, **options: Any
) -> Callable[[UploadHandler], Any]:
    """Run the handler for each object finished under ``prefix`` in the default bucket.

    The platform's trigger sees the whole bucket: anything outside ``prefix`` (what the
    handler itself writes, for instance) returns at once, so no output can ever start the
    handler again. Delivery is at least once and in any order: the handler must be
    idempotent. ``retry`` (on by default) has a failed run redelivered; the SDK writes
    ``retry=False`` into the manifest, so it is set there. Other options go to the SDK
    (``memory``, ``timeout_sec``, ...). The function is :func:`firekit.observe.observed`:
    the handler's answer is its line's outcome.
    """

    def decorate(handler: UploadHandler) -> Any:
        function_name = name or handler.__name__

        @functools.wraps(handler)
        def run(event: Any) -> None:
            data: storage_fn.StorageObjectData = event.data
            if not data.name.startswith(prefix):
                observe.annotate(outcome="skipped_outside_prefix")
                return
            upload = FinishedUpload(
                bucket=data.bucket,
                name=data.name,
                generation=int(data.generation),
                size=int(data.size),
                content_type=data.content_type,
                event_id=event.id,
            )
            observe.annotate(document=f"gs://{upload.bucket}/{upload.name}")
            try:
                outcome = handler(upload)
            except Exception:
                observe.annotate(outcome="error", severity="ERROR")  # the traceback follows
                raise
            observe.annotate(outcome=outcome)

        run.__name__ = run.__qualname__ = function_name
        ensure_initialized()
        function = storage_fn.on_object_finalized(bucket=default_bucket_name(), **options)(run)
        if retry:
            enable_platform_retry(function)
        return observe.observed(function)

    return decorate
