"""The seed stays within the caps: every user's seeded documents are ones the app could
have written under the rules, and each usage document lists exactly what its user holds."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest

from firekit.docmodel import Document
from marketplace import limits
from marketplace.limits import Rate
from marketplace.models import Conversation, Listing, Message, Usage
from seed import marketplace
from seed.accounts import PEOPLE
from seed.documents import SeedDoc
from seed.load import seed_users

NOW = dt.datetime(2026, 3, 14, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def seeded() -> list[SeedDoc]:
    return marketplace.build(seed_users() + seed_users(PEOPLE), NOW)


def test_each_usage_document_lists_exactly_what_its_user_holds(seeded: list[SeedDoc]) -> None:
    held: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for doc in seeded:
        cap = limits.capped(doc.path)
        if isinstance(cap, limits.Held):
            owner = str(doc.data["ownerId"]) if "ownerId" in doc.data else doc.path.split("/")[1]
            held[owner][cap.key].add(doc.path.rsplit("/", 1)[1])
    usage = {doc.path.split("/")[1]: doc.data for doc in seeded if doc.model is Usage}

    assert set(usage) == set(held)
    for uid, collections in held.items():
        listed = {key: set(value["ids"]) for key, value in usage[uid].items()}
        assert listed == collections, uid
        for cap in limits.HELD:
            assert len(collections.get(cap.key, ())) <= cap.cap, (uid, cap.key)


RATED: tuple[tuple[Rate, type[Document], str], ...] = (
    (limits.LISTINGS, Listing, "ownerId"),
    (limits.CONVERSATIONS, Conversation, "buyerId"),
    (limits.MESSAGES, Message, "senderId"),
)


@pytest.mark.parametrize(("rate", "model", "creator"), RATED, ids=lambda v: getattr(v, "key", ""))
def test_nobody_was_seeded_faster_than_a_rate_cap(
    rate: Rate, model: type[Document], creator: str, seeded: list[SeedDoc]
) -> None:
    # Sliding windows: stricter than the rules' windows, which open at a first creation.
    times: dict[str, list[dt.datetime]] = defaultdict(list)
    for doc in seeded:
        if doc.model is model:
            times[str(doc.data[creator])].append(doc.data["createdAt"])
    assert times, f"the seed writes {model.__name__} documents"
    for uid, created in times.items():
        created.sort()
        busiest = max(
            sum(1 for t in created if start <= t < start + rate.window) for start in created
        )
        assert busiest <= rate.cap, (uid, busiest)
