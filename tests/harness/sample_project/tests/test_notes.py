"""The example of pytest-firebase's README, word for word."""

import pytest

from pytest_firebase.tokens import mint_id_token


def test_a_user_writes_only_their_own_notes(as_user, anonymous, firestore_db) -> None:
    ada = as_user("ada")
    assert ada.create("notes/n1", {"owner": "ada", "text": "hello"}).ok
    assert ada.get("notes/n1").data == {"owner": "ada", "text": "hello"}
    assert as_user("bob").create("notes/n2", {"owner": "ada", "text": "hi"}).denied
    assert anonymous.get("notes/n1").denied


def test_the_callable_refuses_a_visitor_and_adds_a_users_note(
    call_emulated, firebase_project, firestore_db
) -> None:
    assert call_emulated("add_note", {"text": "hi"}).error_status == "UNAUTHENTICATED"

    token = mint_id_token("ada", project=firebase_project)
    result = call_emulated("add_note", {"text": "hi"}, id_token=token)

    note = firestore_db.document(f"notes/{result.data['id']}").get()
    assert note.to_dict() == {"owner": "ada", "text": "hi"}


@pytest.mark.e2e  # the Functions emulator runs triggers only in tests with this marker
def test_creating_a_note_counts_it(as_user, firestore_db, wait_for) -> None:
    as_user("ada").create("notes/n1", {"owner": "ada", "text": "one"}).expect_ok()

    counts = wait_for(
        lambda: as_user("ada").get("noteCounts/ada").data, timeout=60, what="ada's count"
    )
    assert counts == {"notes": 1}
