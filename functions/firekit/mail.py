"""Email as documents in the Trigger Email extension's ``mail`` format, batched into digests.

The extension (``firebase/firestore-send-email``) sends one message per document created
in ``mail``: ``{"to": ..., "message": {"subject", "text", "html"}}`` and records its
progress in the document's ``delivery`` field. Creating a document is sending, so each
digest's mail document has a deterministic id and is created (never set) in the same
transaction that marks the digest sent: a retried send cannot mail twice.

A digest is one document per recipient per day holding a map of items keyed by a stable
item id, so adding the same item twice (a retried fan-out) changes nothing. Mailing a
digest deletes it in the same transaction that creates the mail document, whose id is
derived from the items it holds: an item that arrives late (a chunk committed after its
day's digest went out) starts a new digest of that day, mailed on the next run, and is
neither lost nor able to block the run. A digest holds at most what fits Firestore's
1 MiB document limit: about 3,000 items a day for one recipient.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html as html_lib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore

MAIL = "mail"
MAX_ITEMS_SHOWN = 20


@dataclass(frozen=True)
class Rendered:
    """A digest as an email."""

    subject: str
    text: str
    html: str


def mail_document(to: str, rendered: Rendered) -> dict[str, Any]:
    """The Trigger Email extension's document for one message."""
    return {
        "to": to,
        "message": {"subject": rendered.subject, "text": rendered.text, "html": rendered.html},
        "createdAt": firestore.SERVER_TIMESTAMP,
    }


def digest_entry(
    to: str, key: str, day: dt.date, item_id: str, item: Mapping[str, Any]
) -> dict[str, Any]:
    """A merge-write adding one item to ``key``'s digest of ``day`` (idempotent per item)."""
    return {"key": key, "to": to, "day": day.isoformat(), "items": {item_id: dict(item)}}


def digest_id(key: str, day: dt.date) -> str:
    """One digest per recipient per day."""
    return f"{key}_{day.isoformat()}"


def send_digest(
    db: firestore.Client,
    digest_ref: firestore.DocumentReference,
    render: Callable[[Mapping[str, Any]], Rendered],
) -> bool:
    """Turn one digest into a ``mail`` document and delete it; False if it was gone."""

    @firestore.transactional
    def send(transaction: firestore.Transaction) -> bool:
        snapshot = digest_ref.get(transaction=transaction)
        digest = snapshot.to_dict() or {}
        if not snapshot.exists:
            return False
        items = digest.get("items") or {}
        # Same items, same id: a send repeated after a lost commit response cannot mail
        # twice, and a later digest of the same day gets its own id.
        digest_key = hashlib.sha256("|".join(sorted(items)).encode()).hexdigest()[:16]
        mail_ref = db.collection(MAIL).document(f"digest-{digest_ref.id}-{digest_key}")
        mailed = mail_ref.get(transaction=transaction).exists
        transaction.delete(digest_ref)
        if mailed or not items:
            return False
        transaction.create(mail_ref, mail_document(str(digest["to"]), render(digest)))
        return True

    result: bool = send(db.transaction())
    return result


def render_list(
    subject: str, intro: str, items: list[tuple[str, str, str | None]], more: int
) -> Rendered:
    """A plain digest: an intro, then (title, body, link) items, then "and N more"."""
    text_lines, html_items = [intro, ""], []
    for title, body, link in items:
        text_lines.append(f"- {title}: {body}" + (f" ({link})" if link else ""))
        label = html_lib.escape(title)
        if link:
            label = f'<a href="{html_lib.escape(link, quote=True)}">{label}</a>'
        html_items.append(f"<li>{label}: {html_lib.escape(body)}</li>")
    if more:
        text_lines.append(f"... and {more} more.")
        html_items.append(f"<li>… and {more} more.</li>")
    html = f"<p>{html_lib.escape(intro)}</p><ul>{''.join(html_items)}</ul>"
    return Rendered(subject=subject, text="\n".join(text_lines), html=html)
