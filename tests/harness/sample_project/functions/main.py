"""The sample's one function: count each user's notes as they are created."""

from firebase_functions import firestore_fn
from google.cloud import firestore


@firestore_fn.on_document_created(document="notes/{note_id}")
def count_note(event: firestore_fn.Event[firestore_fn.DocumentSnapshot | None]) -> None:
    if event.data is None:
        return
    # Under the emulator the client finds FIRESTORE_EMULATOR_HOST and needs no credentials.
    counts = firestore.Client().collection("noteCounts").document(event.data.get("owner"))
    counts.set({"notes": firestore.Increment(1)}, merge=True)
