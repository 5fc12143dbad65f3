"""The sample's functions: a callable that adds a note, a trigger that counts them."""

from typing import Any

from firebase_admin import initialize_app
from firebase_functions import firestore_fn, https_fn
from google.cloud import firestore

initialize_app()  # the callable verifies callers' ID tokens with the default app
# Under the emulators the Firestore client finds FIRESTORE_EMULATOR_HOST and needs no
# credentials.


@https_fn.on_call()
def add_note(req: https_fn.CallableRequest[Any]) -> dict[str, str]:
    if req.auth is None:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAUTHENTICATED, "Sign in first.")
    text = req.data.get("text") if isinstance(req.data, dict) else None
    if not isinstance(text, str) or not text:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.INVALID_ARGUMENT, "text is needed.")
    note = firestore.Client().collection("notes").document()
    note.set({"owner": req.auth.uid, "text": text})
    return {"id": note.id}


@firestore_fn.on_document_created(document="notes/{note_id}")
def count_note(event: firestore_fn.Event[firestore_fn.DocumentSnapshot | None]) -> None:
    if event.data is None:
        return
    counts = firestore.Client().collection("noteCounts").document(event.data.get("owner"))
    counts.set({"notes": firestore.Increment(1)}, merge=True)
