"""More of the sample's security rules, as signed-in users."""


def test_a_note_is_private_to_its_owner(as_user, admin_rest, firestore_db) -> None:
    admin_rest.create("notes/n4", {"owner": "ada", "text": "secret"}).expect_ok()
    assert as_user("bob").get("notes/n4").denied
    assert as_user("ada").get("notes/n4").ok


def test_a_note_has_text(as_user, firestore_db) -> None:
    assert as_user("ada").create("notes/n5", {"owner": "ada", "text": 7}).denied


def test_only_the_function_writes_counts(as_user, firestore_db) -> None:
    assert as_user("ada").set("noteCounts/ada", {"notes": 99}).denied
