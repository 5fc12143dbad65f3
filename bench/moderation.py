"""The moderation page's reads at queues of 100 and 20,000 listings (issue 19): goal, the
same documents read at both sizes.

**The world** (:func:`seed`), written in parallel batches of 500 before anything is
measured, on an emptied database: N listings waiting for review (``pending_review``, one
a second apart by ``createdAt``) and :data:`OTHERS` active ones beside them (what the
queue's filter must not read).

**What is measured**, per size, each through a metered client (every RPC counted:
documents returned, and ``count()``'s billed reads apart), as the console makes them
(``console/src/paging.ts``): the query is ``queries.MODERATION_QUEUE`` exactly
(``status == "pending_review"`` by ``createdAt``), a page is ``limit(PAGE + 1)`` (the one
more says whether there is a next page), a later page starts after the last document of
the page before (``startAfter`` its snapshot):

1. ``first``: page 1;
2. ``next``: page 2, from page 1's last document;
3. ``deep``: the page after the queue's middle document (its snapshot fetched first,
   unmetered: as if the admin had paged that far);
4. ``count``: ``count()`` of the same filter, the queue's length shown beside the page.

**count()'s reads are billed apart, and not flat.** An aggregation returns no documents,
but Firestore bills it one read per batch of up to 1,000 index entries it matches (at
least one): 1 at 100, 20 at 20,000. The emulator bills nothing, so the meter counts them
from the count it answers (``bench.chat_cost``), as production would bill them.

**The baseline**, measured in the same run at both sizes: ``readAll``, what the admin tools
in the issue did (react-admin-firebase's #139, FireCMS's #89): stream every queued listing
to show a page and know the total. ``ratio`` is each figure at the largest size over the
same figure at the smallest (goal 1.0 for the pages' documents read).

Times are the emulator's (no goal; not production's). Run:
``python -m bench.moderation [--sizes 100,20000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

from google.cloud import firestore

from bench import common, fanout_world
from bench.chat_cost import Meter, metered
from marketplace import queries

NAME = "moderation"
SIZES = (100, 20_000)
PAGE = 10
"""The console's page size (``console/src/workqueue.ts``)."""
OTHERS = 200
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WAITING = {"status": "pending_review"}
COLUMNS = (
    "queued",
    "firstRead",
    "nextRead",
    "deepRead",
    "countBilled",
    "openBilled",
    "readAllRead",
    "firstMs",
    "countMs",
    "readAllMs",
)


def listings(queued: int) -> Iterator[fanout_world.Doc]:
    """``queued`` listings waiting for review, then :data:`OTHERS` active ones."""
    for n in range(queued + OTHERS):
        status = "pending_review" if n < queued else "active"
        created = SINCE + dt.timedelta(seconds=n)
        data = fanout_world.listing(
            "bench-agent", status=status, createdAt=created, updatedAt=created
        )
        yield f"listings/bench-{n:06d}", data


def seed(db: firestore.Client, queued: int) -> float:
    """Empty the database and write the world; the seconds it took."""
    fanout_world.reset(db)
    started = time.perf_counter()
    fanout_world.write_all(db, listings(queued))
    return time.perf_counter() - started


def queue(db: firestore.Client) -> firestore.Query:
    """The console's query, as declared (``queries.MODERATION_QUEUE``)."""
    return queries.MODERATION_QUEUE.build(db, equals=WAITING)


def _measured(meter: Meter, started: float) -> dict[str, Any]:
    total = meter.total()
    return {
        "documentsRead": total.read,
        "emptyQueries": total.empty,
        "aggregationReads": total.aggregation_reads,
        "indexEntriesMatched": total.matched,
        "billedReads": total.billed_reads,
        "roundTrips": total.calls,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _page(db: firestore.Client, after: Any = None) -> tuple[list[Any], dict[str, Any]]:
    query = queue(db)
    if after is not None:
        query = query.start_after(after)
    with metered(db) as meter:
        started = time.perf_counter()
        docs = list(query.limit(PAGE + 1).stream())
        figures = _measured(meter, started)
    return docs, figures | {"shown": len(docs[:PAGE]), "hasNext": len(docs) > PAGE}


def measure(db: firestore.Client, queued: int) -> dict[str, Any]:
    """Seed a queue of ``queued`` and measure the console's reads on it, and the baseline."""
    seconds = seed(db, queued)
    first_docs, first = _page(db)
    _, following = _page(db, first_docs[PAGE - 1])
    middle = list(queue(db).offset(queued // 2).limit(1).stream())  # unmetered: the way there
    _, deep = _page(db, middle[0])
    with metered(db) as meter:
        started = time.perf_counter()
        # An alias, as the meter reads the count by it (the stubs mistype get()).
        aggregation: Any = queue(db).count(alias="queued")
        counted = int(aggregation.get()[0][0].value)
        count = _measured(meter, started)
    with metered(db) as meter:
        started = time.perf_counter()
        everything = sum(1 for _ in queue(db).stream())
        read_all = _measured(meter, started)
    return {
        "queued": queued,
        "seedSeconds": round(seconds, 1),
        "first": first,
        "next": following,
        "deep": deep,
        "count": count | {"counted": counted},
        "open": {"billedReads": first["billedReads"] + count["billedReads"]},
        "readAll": read_all | {"found": everything},
    }


def _row(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "queued": figures["queued"],
        "firstRead": figures["first"]["documentsRead"],
        "nextRead": figures["next"]["documentsRead"],
        "deepRead": figures["deep"]["documentsRead"],
        "countBilled": figures["count"]["aggregationReads"],
        "openBilled": figures["open"]["billedReads"],
        "readAllRead": figures["readAll"]["documentsRead"],
        "firstMs": figures["first"]["ms"],
        "countMs": figures["count"]["ms"],
        "readAllMs": figures["readAll"]["ms"],
    }


def run(db: firestore.Client, sizes: Sequence[int] = SIZES) -> dict[str, Any]:
    """Measure every size in the same run; the outcome :func:`common.report` writes."""
    measured = {size: measure(db, size) for size in sizes}
    small, large = measured[min(sizes)], measured[max(sizes)]

    def ratio(part: str, figure: str) -> float | None:
        return common.ratio(large[part][figure], small[part][figure])

    pages_equal = all(
        large[part]["documentsRead"] == small[part]["documentsRead"] == PAGE + 1
        for part in ("first", "next", "deep")
    )
    return {
        "figures": {str(size): figures for size, figures in measured.items()},
        "baseline": {
            str(size): {"readAll": figures["readAll"]} for size, figures in measured.items()
        },
        "ratios": {
            "firstRead": ratio("first", "documentsRead"),
            "nextRead": ratio("next", "documentsRead"),
            "deepRead": ratio("deep", "documentsRead"),
            "countBilled": ratio("count", "aggregationReads"),
            "openBilled": ratio("open", "billedReads"),
            "readAllRead": ratio("readAll", "documentsRead"),
            "goalMet": pages_equal,
        },
        "params": {
            "sizes": list(sizes),
            "page": PAGE,
            "others": OTHERS,
            "query": queries.MODERATION_QUEUE.name,
            "countReadsPer": 1_000,
            "expectedCountBilled": {str(s): max(1, math.ceil(s / 1_000)) for s in sizes},
        },
        "rows": [_row(figures) for figures in measured.values()],
    }


def main() -> None:
    """Start or reuse the stack, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    sizes = tuple(int(size) for size in args.sizes.split(","))
    with common.emulators() as stack, common.triggers_paused(stack):
        outcome = run(common.firestore_client(stack), sizes)
    path = common.report(NAME, outcome, COLUMNS)
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
