"""The daily email digest carries every kind of inbox entry: alerts, messages, reviews."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.cloud import firestore

from firekit import mail
from marketplace import alerts, notify

from .factories import NOW, uid


def item(kind: str, title: str, minute: int = 0) -> dict[str, Any]:
    return {
        "kind": kind,
        "title": title,
        "body": f"About {title}",
        "link": f"/x/{title}",
        "createdAt": NOW + dt.timedelta(minutes=minute),
    }


def test_a_day_of_alerts_alone_reads_as_before() -> None:
    rendered = notify.render_digest(
        "2026-11-24", [item("listing_match", "A"), item("price_drop", "B", 1)]
    )

    assert rendered.subject == "2 new homes for your saved searches"
    assert rendered.text.splitlines()[0] == (
        "Here is what matched your saved searches on 2026-11-24."
    )
    assert rendered.text.index("- B:") < rendered.text.index("- A:")  # newest first


def test_a_day_of_messages_alone_says_messages_not_homes() -> None:
    rendered = notify.render_digest("2026-11-24", [item("message", "New message from Ann")])

    assert rendered.subject == "1 unread message waiting for you"
    assert "home" not in rendered.subject + rendered.text.splitlines()[0]
    assert "- New message from Ann: About New message from Ann (/x/New message from Ann)" in (
        rendered.text
    )


def test_a_mixed_day_counts_each_kind_under_its_own_heading() -> None:
    items = [
        item("listing_match", "Flat", 0),
        item("message", "New message from Ann", 1),
        item("price_drop", "House", 2),
        item("listing_review", "Your listing is live", 3),
        item("viewing", "Viewing booked", 4),
    ]

    rendered = notify.render_digest("2026-11-24", items)

    assert rendered.subject == (
        "1 unread message, 1 update on your listings, 2 new homes, 1 other update"
    )
    assert rendered.text.splitlines()[0] == "Here is what happened on 2026-11-24."
    for heading in ("Homes matching your saved searches", "Messages waiting for you"):
        assert f"\n{heading}\n" in rendered.text
        assert f"<h3>{heading}</h3>" in rendered.html
    homes = rendered.text.split("Homes matching your saved searches\n")[1].split("\n\n")[0]
    assert homes.splitlines() == ["- House: About House (/x/House)", "- Flat: About Flat (/x/Flat)"]


def test_a_long_day_shows_a_bounded_list_per_kind() -> None:
    items = [item("message", f"m{n}", n) for n in range(mail.MAX_ITEMS_SHOWN + 5)]

    rendered = notify.render_digest("2026-11-24", items)

    assert rendered.subject == f"{mail.MAX_ITEMS_SHOWN + 5} unread messages waiting for you"
    assert rendered.text.endswith("... and 5 more.")
    assert rendered.text.count("\n- ") == mail.MAX_ITEMS_SHOWN


def test_marked_entries_of_every_kind_go_out_in_one_message(
    firestore_db: firestore.Client,
) -> None:
    who = uid("user")
    to = f"{who}@example.test"
    marked = mail.digest_fields(to, NOW.date())
    batch = firestore_db.batch()
    for n, kind in enumerate(["listing_match", "message", "listing_review"]):
        ref = firestore_db.document(f"users/{who}/notifications/n{n}")
        batch.set(ref, item(kind, f"t{n}", n) | {"read": False, "data": {}} | marked)
    batch.commit()

    sent = alerts.send_due_digests(firestore_db, NOW.date() + dt.timedelta(days=1))

    assert sent >= 1
    mine = [
        d.to_dict()
        for d in firestore_db.collection("mail").stream()
        if (d.to_dict() or {}).get("to") == to
    ]
    assert [m["message"]["subject"] for m in mine] == [
        "1 unread message, 1 update on your listings, 1 new home"
    ]
