"""The marketplace's seed: listings, and everything buyers and agents did with them.

:func:`build` is pure: the same people and ``now`` give the same documents, ids and
values (one ``random.Random`` with a fixed seed, drawn from in a fixed order). Timestamps
are relative to ``now`` so a fresh dev stack looks lived-in today: listings published
last week, viewings next week, featured listings still featured.

Payments (``customers/...``) are seeded by :mod:`seed.payments`, through localstripe,
and so is the featured state of the two sign-in agents' listings (none is drawn for
them here). The fields functions derive (``geohash`` and ``searchKeys`` of published
listings) are seeded as those functions would have written them, since the seed is
written with triggers off; the alert index is built after, by the search trigger's code.
"""

from __future__ import annotations

import datetime as dt
import random

from marketplace import listings
from marketplace.models import Listing
from marketplace.roles import Role
from seed import buyers as buyer_docs
from seed import chats, deals, inbox, payments
from seed.accounts import SeedUser
from seed.documents import SeedDoc
from seed.listings import build_homes

SEED = 20_240_611
"""The one seed every random choice comes from."""


def build(people: list[SeedUser], now: dt.datetime) -> list[SeedDoc]:
    """Every marketplace document to seed, given the seeded accounts and the time."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(SEED)
    homes = build_homes(rng, now)
    for home in homes:
        if home.public:  # what the submission trigger derived when it published them
            home.doc.data.update(listings.derived_fields(Listing.model_validate(home.doc.data)))
        if home.owner in payments.SIGN_IN_AGENTS:  # featured only by what they paid for
            home.doc.data.pop("featuredUntil", None)
    buyers = buyer_docs.assign_buyers(
        rng, [(p.uid, p.display_name) for p in people if p.role is Role.BUYER]
    )
    owned: list[SeedDoc] = []
    favourites: list[SeedDoc] = []
    for buyer in buyers:
        owned += buyer_docs.saved_searches(rng, now, buyer)
        owned += buyer_docs.devices(rng, now, buyer)
        favourites += buyer_docs.favourites(rng, now, buyer, homes)
    hours = deals.viewing_hours(now, homes)
    usage = buyer_docs.usage_documents(owned + favourites + hours)
    favourites += buyer_docs.tally_favourites(homes, favourites, now)
    dealings = [
        *deals.conversations(rng, now, buyers, homes),
        *deals.viewings_of(rng, now, buyers, homes),
        *deals.offers(rng, now, buyers, homes),
    ]
    deals.mark_accepted(homes, dealings)
    names = {p.uid: p.display_name for p in people}
    notes = inbox.notifications(rng, now, names, homes, owned + dealings)
    notes += chats.inbox(names, dealings)
    badges = chats.counters(now, dealings)
    return [
        *(h.doc for h in homes),
        *owned,
        *favourites,
        *hours,
        *usage,
        *dealings,
        *notes,
        *badges,
    ]
