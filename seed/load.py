"""Load the seed into running emulators (idempotent: safe to run again).

Run by the dev command after the emulators start (:func:`load_all`); tests call
:func:`load_users` for accounts alone, or :func:`load_all` for the whole marketplace
(which needs the stack's localstripe too: :mod:`seed.payments`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import seed  # noqa: F401  (puts functions/ on the path for the imports below)
from firekit import bootstrap
from marketplace import viewings
from seed import buyers, chats, marketplace, payments, photos
from seed.accounts import PEOPLE, SeedUser, load_users, seed_users
from seed.clock import seconds
from seed.documents import SeedDoc, counts, prune, write_all

__all__ = ["SeedSummary", "SeedUser", "load_all", "load_users", "main", "seed_users"]


@dataclass(frozen=True)
class SeedSummary:
    """What one load wrote, as of which ``now``, and how long it took."""

    users: list[SeedUser]
    documents: list[SeedDoc]
    now: dt.datetime
    seconds: float

    def counts(self) -> dict[str, int]:
        """Documents per collection id (accounts' profiles not included)."""
        return counts(self.documents)

    def describe(self) -> str:
        """One line for a terminal: ``seed: 31 users, 300 listings, ... (1.9 s)``."""
        parts = [f"{len(self.users)} users"] + [f"{n} {c}" for c, n in self.counts().items()]
        return f"seed: {', '.join(parts)} ({self.seconds:.1f} s)"


def load_all(now: dt.datetime | None = None) -> SeedSummary:
    """Load every account and the whole marketplace; timestamps are relative to ``now``."""
    started = time.perf_counter()
    now = seconds(now or dt.datetime.now(dt.UTC))
    people = seed_users() + seed_users(PEOPLE)
    load_users(people)
    documents = marketplace.build(people, now)
    photos.store_pool()  # the listings' photos, in the Cloud Storage stand-in
    db = bootstrap.db()
    write_all(db, documents)
    buyers.keep_push_tokens(db, documents)
    buyers.index_searches(db, documents)
    for diary in ("agent__seed-", "listing__seed-"):  # lock ids hold times, which move with `now`
        prune(db, documents, viewings.LOCKS, prefix=diary)
    prune(db, documents, "notifications", prefix=chats.INBOX_PREFIX)  # and so do these
    documents += payments.load(db, people, documents)  # in localstripe, as the app pays
    return SeedSummary(people, documents, now, time.perf_counter() - started)


def main() -> int:
    """Load everything; print what was loaded."""
    print(load_all().describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
