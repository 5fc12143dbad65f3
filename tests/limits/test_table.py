"""The caps table covers every collection a client creates in, and the rules use it all."""

from __future__ import annotations

from pathlib import Path

import pytest

from firekit.docmodel import specs
from marketplace import limits
from marketplace.models import DOCUMENTS

RULES = Path(__file__).resolve().parents[2] / "firestore.rules"


@pytest.mark.parametrize("model", DOCUMENTS, ids=lambda m: m.__name__)
def test_every_collection_a_client_creates_in_has_a_cap(model: type) -> None:
    client_creates = any(spec.client_creates() for spec in specs(model))
    assert (limits.capped(model.path) is not None) is client_creates, model.path


def test_the_rules_hold_every_cap_on_its_create() -> None:
    rules = RULES.read_text()
    for held in limits.HELD:
        assert f"holds('{held.key}', " in rules, held.key
    for rate in limits.RATES:
        assert f"counted('{rate.key}', " in rules, rate.key


def test_a_path_is_capped_by_its_own_collection_only() -> None:
    assert limits.capped("users/u1/favorites/l1") is limits.FAVORITES
    assert limits.capped("conversations/c1/messages/m1") is limits.MESSAGES
    assert limits.capped("conversations/c1") is limits.CONVERSATIONS
    assert limits.capped("reports/r1") is limits.REPORTS
    assert limits.capped("users/u1/counters/unread") is None
    assert limits.capped("users/u1/notifications/n1") is None
    assert limits.capped("listings/l1/favoriteShards/0") is None
