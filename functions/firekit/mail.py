"""Email as documents in the Trigger Email extension's ``mail`` format, batched into digests.

The extension (``firebase/firestore-send-email``) sends one message per document created
in ``mail``: ``{"to": ..., "message": {"subject", "text", "html"}}`` and records its
progress in the document's ``delivery`` field. Creating a document is sending, so each
digest's mail document has a deterministic id and is created (never set) in the same
transaction that marks its items mailed: a retried send cannot mail twice.

A digest item is any document that says which day's digest it belongs to and where to
send it (:func:`digest_fields`: ``emailDay``, ``emailTo``); the alerts' items are the
inbox documents themselves, so telling a user by email costs no write beyond the one
that tells them in-app, and no document gathers a user's day (a burst of alerts would
make it a hot spot, and a busy day would outgrow 1 MiB). Once a day is over,
:func:`send_digests` finds the recipients with items due, and for each one mails its
items of that day in one message and clears their marks, in one transaction. An item
that arrives late (a chunk committed after its day's digest went out) is still marked,
so it goes out on the next run, in a message of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html as html_lib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore

from firekit.transactions import run_transaction

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


DIGEST_DAY = "emailDay"
DIGEST_TO = "emailTo"
MAX_ITEMS_PER_MAIL = 200
"""Items one message takes (its transaction writes each): a busier day sends several."""


def digest_fields(to: str, day: dt.date) -> dict[str, Any]:
    """The fields that put a document in its recipient's digest of ``day``."""
    return {DIGEST_DAY: day.isoformat(), DIGEST_TO: to}


def send_digests(
    db: firestore.Client,
    due: Callable[[int], firestore.Query],
    of_day: Callable[[firestore.CollectionReference, str], firestore.Query],
    render: Callable[[str, Sequence[Mapping[str, Any]]], Rendered],
    *,
    page: int = 200,
    budget_s: float = 480.0,
) -> int:
    """Mail every digest that is due, page by page within a time budget (what is left
    goes out on the next run); returns how many messages were created.

    ``due(limit)``: the marked items of days that are over, in day order (a collection
    group query). ``of_day(collection, day)``: the marked items of one day in one
    recipient's collection. ``render(day, items)``: the message.
    """
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < budget_s:
        items = list(due(page).stream())
        # Each recipient's collection of items, once per day (``parent.parent``: the
        # document the collection is under).
        recipients = dict.fromkeys(
            (
                item.reference.parent.parent.path,
                item.reference.parent.id,
                str((item.to_dict() or {}).get(DIGEST_DAY)),
            )
            for item in items
            if item.reference.parent.parent is not None
        )
        cleared = 0
        for owner, collection, day in recipients:
            mailed, done = _send_one(
                db, db.document(owner).collection(collection), day, of_day, render
            )
            sent, cleared = sent + mailed, cleared + done
        if len(items) < page or not cleared:
            break  # the last page, or one whose items no recipient's query finds
    return sent


def _send_one(
    db: firestore.Client,
    collection: firestore.CollectionReference,
    day: str,
    of_day: Callable[[firestore.CollectionReference, str], firestore.Query],
    render: Callable[[str, Sequence[Mapping[str, Any]]], Rendered],
) -> tuple[bool, int]:
    """Mail one recipient's items of one day and clear their marks: whether a message was
    made (not if another run mailed them, or they have no address), and how many items
    were cleared."""

    def send(transaction: firestore.Transaction) -> tuple[bool, int]:
        query = of_day(collection, day).limit(MAX_ITEMS_PER_MAIL)
        items = list(transaction.get(query))
        if not items:
            return False, 0
        # Same items, same id: a send repeated after a lost commit response cannot mail
        # twice, and a late item of the same day gets a message of its own.
        ids = "|".join(sorted(item.reference.path for item in items))
        owner = collection.parent.id if collection.parent is not None else collection.id
        key = hashlib.sha256(ids.encode()).hexdigest()[:16]
        mail_ref = db.collection(MAIL).document(f"digest-{owner}_{day}-{key}")
        mailed = mail_ref.get(transaction=transaction).exists
        data = [item.to_dict() or {} for item in items]
        to = next((d[DIGEST_TO] for d in reversed(data) if isinstance(d.get(DIGEST_TO), str)), None)
        cleared = {DIGEST_DAY: firestore.DELETE_FIELD, DIGEST_TO: firestore.DELETE_FIELD}
        for item in items:
            transaction.update(item.reference, cleared)
        if mailed or to is None:
            return False, len(items)
        transaction.create(mail_ref, mail_document(to, render(day, data)))
        return True, len(items)

    return run_transaction(db, send, busy_message="digest being sent; retry")


@dataclass(frozen=True)
class Section:
    """How a digest shows one kind of item (a new home, an unread message)."""

    one: str
    """The item named once: ``"new home"``."""
    many: str
    """Several: ``"new homes"``."""
    heading: str
    """The section's heading when the digest carries other kinds too."""
    subject: str = "{counted}"
    """The subject when the digest carries only this kind (``{counted}``: ``"3 new homes"``)."""
    intro: str = "{heading}, {day}."
    """The first line when the digest carries only this kind (``{heading}``, ``{day}``)."""

    def counted(self, count: int) -> str:
        """``"1 new home"``, ``"3 new homes"``."""
        return f"{count} {self.one if count == 1 else self.many}"


def render_digest(
    day: str,
    items: Sequence[Mapping[str, Any]],
    sections: Mapping[str, Section],
    other: Section,
    *,
    mixed_intro: str = "Here is what happened on {day}.",
) -> Rendered:
    """One recipient's day as an email: items grouped by the :class:`Section` of their
    ``kind`` (``sections``, else ``other``), in the order ``sections`` lists them, each
    newest first as ``title: body (link)``.

    One kind: its own subject and intro. Several: the subject counts each
    (``"1 unread message, 2 new homes"``) and each kind gets its heading.
    """
    ordered = sorted(items, key=lambda item: str(item.get("createdAt", "")), reverse=True)
    groups: dict[Section, list[Mapping[str, Any]]] = {s: [] for s in sections.values()}
    groups[other] = []
    for item in ordered:
        groups[sections.get(str(item.get("kind")), other)].append(item)
    groups = {s: group for s, group in groups.items() if group}
    alone = len(groups) == 1
    headed: list[_Part] = [
        (None if alone else s.heading, g[:MAX_ITEMS_SHOWN], max(len(g) - MAX_ITEMS_SHOWN, 0))
        for s, g in groups.items()
    ]
    if alone:
        ((section, group),) = groups.items()
        subject = section.subject.format(counted=section.counted(len(group)))
        intro = section.intro.format(heading=section.heading, day=day)
    else:
        subject = ", ".join(s.counted(len(g)) for s, g in groups.items())
        intro = mixed_intro.format(day=day)
    return _render(subject, intro, headed)


_Part = tuple[str | None, list[Mapping[str, Any]], int]
"""A digest's section as rendered: its heading (None alone), the items shown, how many more."""


def _render(subject: str, intro: str, sections: list[_Part]) -> Rendered:
    text_lines, html_parts = [intro], [f"<p>{html_lib.escape(intro)}</p>"]
    for heading, items, more in sections:
        text_lines.append("")
        if heading:
            text_lines.append(heading)
            html_parts.append(f"<h3>{html_lib.escape(heading)}</h3>")
        html_items = []
        for item in items:
            title, body = str(item.get("title", "")), str(item.get("body", ""))
            link = item.get("link") if isinstance(item.get("link"), str) else None
            text_lines.append(f"- {title}: {body}" + (f" ({link})" if link else ""))
            label = html_lib.escape(title)
            if link:
                label = f'<a href="{html_lib.escape(link, quote=True)}">{label}</a>'
            html_items.append(f"<li>{label}: {html_lib.escape(body)}</li>")
        if more:
            text_lines.append(f"... and {more} more.")
            html_items.append(f"<li>… and {more} more.</li>")
        html_parts.append(f"<ul>{''.join(html_items)}</ul>")
    return Rendered(subject=subject, text="\n".join(text_lines), html="".join(html_parts))
