"""Chat's rules case by case, on the emulator: read receipts, blocks, who opens, reports.

The property test (``test_model_rules_agreement.py``) draws these writes among many; this
file names each case a person would ask about, and checks the twin says the same where
the write is a conversation update (``check_update``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from limits.client import CappedClient
from security.scenarios import conversation, listing_draft, stored

from firekit.docmodel import DELETE, REQUEST_TIME, check_update
from marketplace import limits
from marketplace.models import Conversation
from pytest_firebase import rest, tokens
from pytest_firebase.stack import EmulatorStack

from .test_model_rules_agreement import update_write

AsUser = Callable[..., rest.FirestoreRest]
EARLIER = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Chat:
    """A buyer and an agent in one conversation about the agent's active listing."""

    def __init__(self, admin: rest.FirestoreRest, as_user: AsUser) -> None:
        tag = uuid.uuid4().hex[:10]
        self.admin = admin
        self.buyer, self.agent, self.stranger = f"b{tag}", f"a{tag}", f"s{tag}"
        self.listing = f"l{tag}"
        listing = stored({**listing_draft(self.agent), "status": "active"})
        admin.set(f"listings/{self.listing}", listing).expect_ok()
        self.id = f"{self.listing}__{self.buyer}"
        self.path = f"conversations/{self.id}"
        self.stored = {
            **stored(conversation(self.listing, self.buyer, self.agent)),
            "lastReadAt": {self.agent: EARLIER},
        }
        admin.set(self.path, self.stored).expect_ok()
        self.clients = {
            uid: as_user(uid, {}, email=f"{uid}@example.com")
            for uid in (self.buyer, self.agent, self.stranger)
        }

    def update(self, uid: str, changes: dict[str, Any]) -> bool:
        """Send ``changes`` as ``uid``; assert the twin agrees (for a participant)."""
        before = self.admin.get(self.path).data
        assert before is not None
        result = self.clients[uid].commit([update_write(self.admin.project, self.path, changes)])
        assert result.status in (200, 403), result.error_message
        if uid in (self.buyer, self.agent):
            twin_ok = check_update(Conversation, before, changes, uid=uid) == []
            assert twin_ok is result.ok, (changes, result.error_message)
        return result.ok

    def send(self, uid: str) -> bool:
        message = f"m-{uuid.uuid4().hex[:8]}"
        data = {"senderId": uid, "text": "Hello", "createdAt": rest.SERVER_TIMESTAMP}
        path = f"{self.path}/messages/{message}"
        capped = CappedClient(self.clients[uid], uid)
        return capped.create_capped(limits.MESSAGES, path, data).ok


@pytest.fixture
def chat(admin_rest: rest.FirestoreRest, as_user: AsUser) -> Chat:
    return Chat(admin_rest, as_user)


def test_a_participant_marks_read_only_its_own_entry_at_the_request_time(chat: Chat) -> None:
    assert chat.update(chat.buyer, {f"lastReadAt.{chat.buyer}": REQUEST_TIME})
    assert chat.update(chat.agent, {f"lastReadAt.{chat.agent}": REQUEST_TIME})
    assert not chat.update(chat.buyer, {f"lastReadAt.{chat.agent}": REQUEST_TIME})
    assert not chat.update(chat.buyer, {f"lastReadAt.{chat.buyer}": EARLIER})
    assert not chat.update(chat.buyer, {f"lastReadAt.{chat.buyer}": DELETE})
    assert not chat.update(chat.agent, {"lastReadAt": {chat.agent: EARLIER}})
    assert not chat.update(chat.stranger, {f"lastReadAt.{chat.stranger}": REQUEST_TIME})


def test_a_participant_blocks_and_unblocks_only_itself(chat: Chat) -> None:
    assert chat.update(chat.agent, {f"blockedBy.{chat.agent}": REQUEST_TIME})
    assert not chat.update(chat.buyer, {f"blockedBy.{chat.agent}": DELETE})
    assert not chat.update(chat.buyer, {f"blockedBy.{chat.buyer}": EARLIER})
    assert chat.update(chat.agent, {f"blockedBy.{chat.agent}": DELETE})
    assert not chat.update(chat.stranger, {f"blockedBy.{chat.stranger}": REQUEST_TIME})


@pytest.mark.parametrize(
    "changes",
    [
        {"unread": {}},
        {"lastMessage": None},
        {"updatedAt": REQUEST_TIME},
        {"participantIds": []},
    ],
    ids=["unread", "lastMessage", "updatedAt", "participantIds"],
)
def test_functions_fields_are_not_the_clients(chat: Chat, changes: dict[str, Any]) -> None:
    for uid in (chat.buyer, chat.agent):
        assert not chat.update(uid, {**changes, f"lastReadAt.{uid}": REQUEST_TIME})


def test_a_blocked_sender_cannot_send_until_unblocked(chat: Chat) -> None:
    assert chat.send(chat.buyer)
    assert chat.update(chat.agent, {f"blockedBy.{chat.agent}": REQUEST_TIME})
    assert not chat.send(chat.buyer)
    assert chat.send(chat.agent), "the blocker may still write"
    assert chat.update(chat.agent, {f"blockedBy.{chat.agent}": DELETE})
    assert chat.send(chat.buyer)


def test_non_participants_read_nothing(chat: Chat) -> None:
    stranger = chat.clients[chat.stranger]
    assert stranger.get(chat.path).denied
    assert stranger.query(f"{chat.path}/messages", [], limit=10).denied
    mine = stranger.query("conversations", [("participantIds", "array-contains", chat.buyer)])
    assert mine.denied


def test_the_conversation_list_comes_in_pages_of_at_most_50(chat: Chat) -> None:
    buyer = chat.clients[chat.buyer]
    mine = [("participantIds", "array-contains", chat.buyer)]
    assert buyer.query("conversations", mine, limit=50).ok
    assert buyer.query("conversations", mine, limit=51).denied


def _token_client(
    stack: EmulatorStack, uid: str, overrides: dict[str, Any], **kwargs: Any
) -> rest.FirestoreRest:
    payload = tokens.id_token_claims(uid, project=stack.config.project_id, **kwargs)
    token = tokens.encode_unsigned({**payload, **overrides})
    return rest.FirestoreRest(stack.host("firestore"), stack.config.project_id, token)


@pytest.mark.parametrize(
    ("email", "provider", "overrides", "allowed"),
    [
        (True, "password", {}, True),
        (False, "password", {}, False),  # no email at all
        (True, "password", {"email_verified": False}, False),
        (True, "anonymous", {}, False),
    ],
    ids=["verified", "no-email", "unverified", "anonymous"],
)
def test_only_a_verified_non_anonymous_account_opens_a_conversation(
    email: bool,
    provider: str,
    overrides: dict[str, Any],
    allowed: bool,
    admin_rest: rest.FirestoreRest,
    firebase_stack: EmulatorStack,
) -> None:
    tag = uuid.uuid4().hex[:10]
    uid, agent, listing = f"b{tag}", f"a{tag}", f"l{tag}"
    admin_rest.set(f"listings/{listing}", stored({**listing_draft(agent), "status": "active"}))
    client = _token_client(
        firebase_stack,
        uid,
        overrides,
        email=f"{uid}@example.com" if email else None,
        sign_in_provider=provider,
    )
    capped = CappedClient(client, uid)
    path = f"conversations/{listing}__{uid}"
    result = capped.create_capped(limits.CONVERSATIONS, path, conversation(listing, uid, agent))
    assert result.ok is allowed, result.error_message


def _report(chat: Chat, uid: str, message: str | None) -> bool:
    data = {
        "reporterId": uid,
        "conversationId": chat.id,
        "messageId": message,
        "reason": "scam",
        "note": "Asked for a deposit by bank transfer.",
        "createdAt": rest.SERVER_TIMESTAMP,
    }
    path = f"reports/r-{uuid.uuid4().hex[:8]}"
    return CappedClient(chat.clients[uid], uid).create_capped(limits.REPORTS, path, data).ok


def test_a_participant_reports_the_conversation_or_one_of_its_messages(chat: Chat) -> None:
    chat.admin.set(f"{chat.path}/messages/m1", {"senderId": chat.agent, "text": "x"})
    assert _report(chat, chat.buyer, None)
    assert _report(chat, chat.buyer, "m1")
    assert _report(chat, chat.agent, "m1")
    assert not _report(chat, chat.buyer, "no-such-message")
    assert not _report(chat, chat.stranger, None)


def test_reports_are_read_by_admins_only_and_changed_by_nobody(chat: Chat, as_user: AsUser) -> None:
    path = "reports/r-" + uuid.uuid4().hex[:8]
    chat.admin.set(
        path,
        {
            "reporterId": chat.buyer,
            "conversationId": chat.id,
            "reason": "spam",
            "createdAt": EARLIER,
            "status": "open",
        },
    ).expect_ok()
    reporter = chat.clients[chat.buyer]
    assert reporter.get(path).denied
    assert reporter.update(path, {"note": "more"}).denied
    assert reporter.delete(path).denied
    admin = as_user(f"admin-{uuid.uuid4().hex[:6]}", {"role": "admin"})
    assert admin.get(path).ok
    assert admin.update(path, {"status": "dismissed"}).denied
