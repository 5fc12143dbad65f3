"""Search: listings near a point (see :mod:`marketplace.nearby` for how it reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firekit import bootstrap, logs
from firekit.callables import CallContext, callable_function
from firekit.ratelimit import RateLimit
from marketplace.nearby_request import NearbyRequest

if TYPE_CHECKING:
    from marketplace.nearby import NearbyPage

# A map that pans and zooms searches again on every stop: a call a second is generous
# for a person and keeps one caller to 2,000 x 60 = 120k reads a minute at the very worst.
_SEARCH_LIMIT = RateLimit(60, per_seconds=60)


# Signed-in callers only, of any role (no role requirement). Active listings are public,
# but one call may read 2,000 documents, and an anonymous caller can only be limited per
# address, which a scraper rotates for free. Visitors still search: the app signs them
# in with Firebase Anonymous Authentication, which gives them a uid to limit.
# Refuses nothing of its own: a bad radius, filter or cursor is INVALID_ARGUMENT, with
# field issues (an area holding too many listings too: it is the radius that is wrong).
@callable_function(NearbyRequest, rate_limit=_SEARCH_LIMIT, refusals=())
def search_near(call: CallContext, data: NearbyRequest) -> NearbyPage:
    """Active listings within a radius of a point: filtered, sorted, one page at a time."""
    # The search (geometry, cursor, result models) loads with the first call: declaring
    # the callable needs only its request model (every instance imports this module).
    from marketplace import nearby

    found = nearby.search(bootstrap.db(), data)
    stats = found.stats
    logs.info(
        "near search",
        function="search_near",
        uid=call.uid,
        radiusKm=data.radiusKm,
        precision=stats.cover.precision,
        ranges=len(stats.cover.ranges),
        queries=stats.queries,
        documentsRead=stats.documents_read,
        billedReads=stats.billed_reads,
        matched=stats.matched,
        returned=len(found.page.results),
    )
    return found.page
