"""The erasure benchmark cannot rot: it runs small against the emulators and the storage
stand-in through the same code ``make bench`` runs at 10,000 documents; the user is fully
erased and every count agrees (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.cloud import firestore

from bench import erasure as bench


def test_the_erasure_bench_erases_the_user_and_its_counts_agree(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    def measure(n: int, rounds: int) -> dict[str, Any]:
        return bench.measure_one(firestore_db, n, rounds=rounds, warm_up=False)

    outcome = bench.run((60,), measure, rounds=1)
    written = json.loads(bench.write(outcome, directory=tmp_path).read_text())

    assert written["source"]["commit"]
    figures = written["figures"]["60"]
    split = figures["split"]
    owned = split["favorites"] + split["notifications"] + split["messages"]
    assert owned == 60
    _the_cascade_erased_everything(figures["cascade"], split)
    for side in ("recursiveDelete", "unthrottled"):
        bare = figures[side]
        # The subtree (the documents, the profile, the private account) and the messages,
        # each deleted once; the photos gone.
        assert bare["checks"] == {
            "documentsDeleted": owned + 2,
            "objectsDeleted": bench.PHOTOS,
            "subtreeLeft": 0,
            "messagesLeft": 0,
            "objectsLeft": 0,
        }
        assert bare["deletes"] == owned + 2 and bare["updates"] == 0
        assert bare["reads"] == owned + 1  # the ids it deletes (and the private account)
    assert written["ratio"]["wall"] > 0 and isinstance(written["ratio"]["goalMet"], bool)
    assert {(row["documents"], row["side"]) for row in written["rows"]} == {
        (60, side) for side in bench.SIDES
    }


def _the_cascade_erased_everything(cascade: dict[str, Any], split: dict[str, int]) -> None:
    favourites, messages = split["favorites"], split["messages"]
    checks = cascade["checks"]
    assert checks["state"] == "done" and checks["warnings"] == 0
    assert checks["leftovers"] == {}
    assert checks["favouriteCountsLeft"] == 0 and checks["objectsLeft"] == 0
    assert checks["messagesOfTheUser"] == 0 and checks["messagesOfThePseudonym"] == messages
    assert checks["conversationAgent"] == "pseudonym" and not checks["authUserLeft"]
    counts = {step: state["counts"] for step, state in cascade["progress"].items()}
    assert counts["favorites"] == {"favorites": favourites, "uncounted": favourites}
    assert counts["conversations"] == {"messages": messages, "conversations": 1}
    assert counts["own"] == {"ownDocuments": split["notifications"] + 2}
    assert counts["storage"]["storageObjects"] + counts["listings"]["listingPhotos"] == (
        bench.PHOTOS
    )
    # The meter's per-step rows add up to its totals, and hold at least what the
    # progress says was done: each favourite, its mark and the notifications deleted,
    # each favourite's shard taken down and each message rewritten.
    steps = cascade["steps"]
    assert sum(step["writes"] for step in steps.values()) == cascade["writes"]
    assert sum(step["reads"] for step in steps.values()) == cascade["reads"]
    assert {name for name in steps if name not in ("begin", "finish")} == set(counts)
    assert cascade["deletes"] >= 2 * favourites + split["notifications"] + 2
    assert cascade["updates"] >= favourites + messages
    for name, step in steps.items():
        if name in cascade["progress"]:
            assert step["pages"] == cascade["progress"][name]["pages"], name
