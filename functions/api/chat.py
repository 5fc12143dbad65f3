"""Chat: summaries and exact unread counts, telling the recipient, read marks, reports,
and unread messages into the email digest. See :mod:`marketplace.chat`."""

from __future__ import annotations

import datetime as dt

from firebase_functions import scheduler_fn

from firekit import bootstrap, logs, observe, ownership
from firekit.events import AnyDocument, DocumentChange, Effects, document_trigger
from marketplace.models.conversations import Message

# marketplace.chat (with firekit.push: firebase_admin.messaging) is imported inside the
# handlers: every other function's cold start imports this module for its decorators.

MESSAGE = "conversations/{conversationId}/messages/{messageId}"


# Recompute: the summary and the counts are derived from what is stored, so a duplicate is
# harmless and the hot path skips the ledger. Retried: a failed recount must run again.
@document_trigger(MESSAGE, model=Message, on="created", mode="recompute", retry=True)
def summarize_conversation(change: DocumentChange[Message], effects: Effects) -> None:
    """Show the newest message in the conversation, recount its recipient's unread and
    refresh their badge."""
    from marketplace import chat  # lazy: see the imports

    data = change.after_data or {}
    params = change.params
    if chat.is_kept_for_other(params["conversationId"]):
        return  # an erased buyer's conversation re-keyed: its summary moved with it
    done = chat.summarize(effects.db, params["conversationId"], params["messageId"], data)
    logs.info(
        "conversation summarized", outcome=done.outcome, conversationId=params["conversationId"]
    )


# Claim: a push leaves the building, so each message's notification runs once.
@document_trigger(MESSAGE, model=Message, on="created", mode="claim", retry=True)
def notify_new_message(change: DocumentChange[Message], effects: Effects) -> None:
    """Tell the recipient: the unread streak's inbox entry, a push (throttled, collapsed
    per conversation, not once read)."""
    from marketplace import chat  # lazy: see the imports

    params = change.params
    if chat.is_kept_for_other(params["conversationId"]):
        return  # a message moved with an erased buyer's conversation: told long ago
    told = chat.notify_recipient(
        effects.db, params["conversationId"], params["messageId"], change.after_data or {}
    )
    logs.info(
        "message recipient told",
        outcome=told.outcome,
        inboxCreated=told.inbox_created,
        pushed=told.pushed,
        throttled=told.throttled,
    )


@document_trigger(
    "conversations/{conversationId}",
    model=AnyDocument,
    on="updated",
    only_when_changed=("lastReadAt",),
    mode="recompute",
    retry=True,
)
def on_conversation_read(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """A participant marked the conversation read: recount their unread, refresh their
    badge, and mark the streak's inbox entry read."""
    from marketplace import chat  # lazy: see the imports

    before = (change.before_data or {}).get("lastReadAt") or {}
    after = (change.after_data or {}).get("lastReadAt") or {}
    conversation_id = change.params["conversationId"]
    changed = (uid for uid in after if after.get(uid) != before.get(uid))
    # A former user's read mark moved with the erasure: nobody to recount.
    for reader in sorted(uid for uid in changed if not ownership.is_pseudonym(uid)):
        chat.recount_reader(effects.db, conversation_id, reader)
        previous = before.get(reader)
        chat.mark_streak_read(
            effects.db,
            reader,
            conversation_id,
            previous if isinstance(previous, dt.datetime) else None,
        )


@scheduler_fn.on_schedule(schedule="every 60 minutes", timeout_sec=540)
def queue_unread_chat_emails(event: scheduler_fn.ScheduledEvent) -> None:
    """Hourly: chat messages unread for 12 hours join their recipient's email digest."""
    from marketplace import chat  # lazy: see the imports

    joined = chat.queue_unread_emails(bootstrap.db(), dt.datetime.now(dt.UTC))
    observe.annotate(joined=joined)


@document_trigger(
    "reports/{reportId}",
    model=AnyDocument,
    on="created",
    owned_fields=("reportedUid", "listingId", "excerpt", "status"),
)
def on_report_created(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Complete a report for the moderation queue: who is reported, about which listing,
    and the reported message's text as evidence (kept even if the account goes)."""
    from marketplace import chat  # lazy: see the imports

    chat.complete_report(effects.db, effects.tx, change.params["reportId"])
