"""The sample's security rules, as signed-in users and as a visitor."""


def test_an_owner_creates_and_reads_their_note(as_user, firestore_db) -> None:
    ada = as_user("ada")
    assert ada.create("notes/n1", {"owner": "ada", "text": "hello"}).ok
    assert ada.get("notes/n1").data == {"owner": "ada", "text": "hello"}


def test_nobody_writes_a_note_in_someone_elses_name(as_user, anonymous, firestore_db) -> None:
    assert as_user("bob").create("notes/n2", {"owner": "ada", "text": "hi"}).denied
    assert anonymous.create("notes/n3", {"owner": "ada", "text": "hi"}).denied


def test_a_note_is_private_to_its_owner(as_user, admin_rest, firestore_db) -> None:
    admin_rest.create("notes/n4", {"owner": "ada", "text": "secret"}).expect_ok()
    assert as_user("bob").get("notes/n4").denied
    assert as_user("ada").get("notes/n4").ok


def test_only_the_function_writes_counts(as_user, firestore_db) -> None:
    assert as_user("ada").set("noteCounts/ada", {"notes": 99}).denied
