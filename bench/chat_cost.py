"""Chat cost: Firestore documents read and written, and round trips, per message and per
read mark, with 10 and with 10,000 messages already in the conversation. Goal: flat
(reads at 10,000 / reads at 10 ≈ 1).

**The world.** One conversation between a buyer and an agent, shaped as
``tests/chat/world.py`` opens it (shapes copied: benchmarks import nothing from
``tests``), its messages seeded in bulk (admin SDK, batches of 500) as the functions
leave them: the summary showing the newest, exact ``unread`` counts and both badge
documents (``users/{uid}/counters/unread``). Two states per scale:

- ``readRegularly``: the seeded messages alternate between the two, both have read all
  of them. Then the buyer sends a message and the agent reads it, :data:`MESSAGES` times
  (a live conversation): each message costs a summary, each read mark a recount and
  marking the streak's inbox entry read (written before it as ``notify_new_message``
  leaves it, uncounted: that function's cost is not measured here).
- ``allUnread``: every seeded message is the buyer's and the agent never read: the
  recipient's recount ``count()``s all of them (10,000 and up). Then the buyer sends
  :data:`MESSAGES` messages, unread.

**What is counted.** A message is written as the sender's client writes it (server
timestamp; not counted: 1 write, plus the 1 read the create rule's ``get()`` of the
conversation is billed) and its creation event delivered in process to
``summarize_conversation`` (the trigger as deployed: ``firekit.events.document_trigger``
in recompute mode, over ``marketplace.chat.summarize``); a read mark's update event to
``on_conversation_read`` (``recount_reader``, then the streak's inbox entry marked read).
Every RPC the functions' client makes goes through a metered GAPIC stub
(:func:`metered`): round trips, documents returned by gets and queries, gets of absent
documents and empty queries (one read each), and aggregations, billed as Firestore bills
them: one read per batch of up to 1,000 index entries matched, at least one (the entries
matched are the aggregation's ``count()``), and documents written.

Run: ``python -m bench.chat_cost [--scales 10,10000] [--messages N]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from bench import common
from bench import fanout_world as world
from bench.callable_overhead import quiet
from firekit import bootstrap
from marketplace import chat
from pytest_firebase.events import deliver, firestore_event

NAME = "chat_cost"
SCALES = (10, 10_000)
STATES = ("readRegularly", "allUnread")
MESSAGES = 10
"""Messages measured per scale and state (and read marks, when the recipient reads)."""
SEEDED_FROM = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
"""The first seeded message's time; the next ones a second apart (all in the past)."""
ENTRIES_PER_AGGREGATION_READ = 1_000


# --- the world ------------------------------------------------------------------------


@dataclass(frozen=True)
class Chat:
    """One conversation between a buyer and an agent, written as the clients write."""

    db: firestore.Client
    tag: str

    @property
    def buyer(self) -> str:
        return f"bench-buyer-{self.tag}"

    @property
    def agent(self) -> str:
        return f"bench-agent-{self.tag}"

    @property
    def id(self) -> str:
        return f"bench-listing-{self.tag}__{self.buyer}"

    @property
    def ref(self) -> firestore.DocumentReference:
        return chat.conversation_ref(self.db, self.id)

    def write(
        self, sender: str, text: str = "Is it still available?"
    ) -> tuple[str, dict[str, Any]]:
        """Write a message as its sender's client does (server timestamp); its id and its
        data as stored (the timestamp is the commit's time, which the write returns)."""
        ref = self.ref.collection("messages").document()
        done = ref.set({"senderId": sender, "text": text, "createdAt": firestore.SERVER_TIMESTAMP})
        return ref.id, {"senderId": sender, "text": text, "createdAt": done.update_time}

    def created(self, message_id: str, data: Mapping[str, Any]) -> CloudEvent:
        """The creation event of a message, as the emulator sends it."""
        path = self.ref.collection("messages").document(message_id).path
        return firestore_event(path, after=data, kind="created")

    def mark_read(self, reader: str) -> CloudEvent:
        """Set the reader's ``lastReadAt`` to the request time (their client's only write
        to the conversation); returns the update event."""
        before = self.ref.get().to_dict() or {}
        self.ref.update({FieldPath("lastReadAt", reader).to_api_repr(): firestore.SERVER_TIMESTAMP})
        after = self.ref.get().to_dict() or {}
        return firestore_event(self.ref.path, before=before, after=after, kind="updated")

    def told(self, reader: str, message_id: str) -> None:
        """The reader's inbox entry for the current unread streak, as ``notify_new_message``
        leaves it (the read mark's function marks it read)."""
        since = chat.read_at(self.ref.get().to_dict() or {}, reader)
        entry = self.db.document(f"users/{reader}/notifications/{chat.inbox_id(self.id, since)}")
        entry.set(
            {
                "kind": "message",
                "title": "New message",
                "body": "Is it still available?",
                "link": f"/conversations/{self.id}",
                "data": {"conversationId": self.id, "messageId": message_id},
                "createdAt": firestore.SERVER_TIMESTAMP,
                "read": False,
            }
        )

    def unread_truth(self, reader: str) -> int:
        """The reader's unread count, counted here (not by the functions)."""
        return chat.unread_count(self.db, self.id, self.ref.get().to_dict() or {}, reader)


def seeding(room: Chat, count: int, state: str) -> Iterator[world.Doc]:
    """The conversation with ``count`` messages, as the functions leave it in ``state``."""
    unread = state == "allUnread"
    last: tuple[str, dict[str, Any]] | None = None
    for n in range(count):
        sender = room.buyer if unread or n % 2 == 0 else room.agent
        data = {
            "senderId": sender,
            "text": f"Seeded message {n}",
            "createdAt": SEEDED_FROM + dt.timedelta(seconds=n),
        }
        last = (f"m{n:06d}", data)
        yield f"{room.ref.path}/messages/{last[0]}", data
    read_at = SEEDED_FROM + dt.timedelta(seconds=count + 1)
    conversation: dict[str, Any] = {
        "listingId": f"bench-listing-{room.tag}",
        "buyerId": room.buyer,
        "agentId": room.agent,
        "participantIds": [room.buyer, room.agent],
        "createdAt": SEEDED_FROM - dt.timedelta(minutes=1),
        "updatedAt": last[1]["createdAt"] if last else SEEDED_FROM,
        "lastReadAt": {room.buyer: read_at} | ({} if unread else {room.agent: read_at}),
        "unread": {room.buyer: 0, room.agent: count if unread else 0},
    }
    if last is not None:
        message_id, data = last
        conversation["lastMessage"] = {"messageId": message_id, **_preview(data)}
    yield room.ref.path, conversation
    for uid, messages in ((room.buyer, 0), (room.agent, count if unread else 0)):
        badge = {"messages": messages, "conversations": int(messages > 0), "updatedAt": read_at}
        yield chat.counter_ref(room.db, uid).path, badge


def _preview(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "text": chat.preview(data["text"]),
        "senderId": data["senderId"],
        "sentAt": data["createdAt"],
    }


@functools.cache
def triggers() -> dict[str, Any]:
    """The deployed functions, declared once the emulators' environment is set (their
    decorators initialise the default app, which must see the emulator hosts)."""
    bootstrap.ensure_initialized()
    from api.chat import on_conversation_read, summarize_conversation

    return {"message": summarize_conversation, "read mark": on_conversation_read}


# --- the meter ------------------------------------------------------------------------


@dataclass
class Rpcs(world.Step):
    """What one kind of RPC did (the fan-out meter's counts: round trips, documents
    returned, gets of absent documents, empty queries, written, time waited), and what
    its aggregations matched and are billed."""

    matched: int = 0
    """Index entries aggregations matched."""
    aggregation_reads: int = 0
    """What aggregations are billed: one read per 1,000 entries matched, at least one."""

    @property
    def billed_reads(self) -> int:
        return self.read + self.missing + self.empty + self.aggregation_reads

    def add(self, other: Rpcs) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: the fan-out's fields, and the aggregations' and billed reads."""
        return super().as_dict() | {
            "seconds": round(self.seconds, 4),
            "aggregationReads": self.aggregation_reads,
            "indexEntriesMatched": self.matched,
            "billedReads": self.billed_reads,
        }


@dataclass
class Meter:
    """Every RPC of a block, by kind (``get conversations (tx)``, ``count messages``...)."""

    steps: dict[str, Rpcs] = field(default_factory=dict)

    def step(self, name: str) -> Rpcs:
        return self.steps.setdefault(name, Rpcs())

    def total(self) -> Rpcs:
        total = Rpcs()
        for step in self.steps.values():
            total.add(step)
        return total


def _collection(path: str) -> str:
    parts = path.split("/documents/", 1)[-1].split("/")
    return parts[-2] if len(parts) >= 2 else parts[-1]


def _in(request: Any) -> str:
    return " (tx)" if request.get("transaction") else ""


class _MeteredApi:
    """The GAPIC Firestore stub, counting and timing what passes through it."""

    def __init__(self, api: Any, meter: Meter) -> None:
        self._api, self._meter = api, meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def _timed(self, step: Rpcs, responses: Iterator[Any]) -> Iterator[Any]:
        while True:
            started = time.perf_counter()
            try:
                response = next(responses)
            except StopIteration:
                return
            finally:
                step.seconds += time.perf_counter() - started
            yield response

    def _call(self, step: Rpcs, method: str, request: Any, kwargs: Any) -> Any:
        step.calls += 1
        started = time.perf_counter()
        try:
            return getattr(self._api, method)(request=request, **kwargs)
        finally:
            step.seconds += time.perf_counter() - started

    def batch_get_documents(self, request: Any, **kwargs: Any) -> Iterator[Any]:
        paths = request["documents"]
        step = self._meter.step(f"get {_collection(paths[0]) if paths else ''}{_in(request)}")
        responses = iter(self._call(step, "batch_get_documents", request, kwargs))
        for response in self._timed(step, responses):
            found = world._pb(response).WhichOneof("result") == "found"
            step.read += found
            step.missing += not found
            yield response

    def run_query(self, request: Any, **kwargs: Any) -> Iterator[Any]:
        collection = request["structured_query"].from_[0].collection_id
        step = self._meter.step(f"query {collection}{_in(request)}")
        found = 0
        for response in self._timed(step, iter(self._call(step, "run_query", request, kwargs))):
            found += world._pb(response).HasField("document")
            yield response
        step.read += found
        step.empty += not found

    def run_aggregation_query(self, request: Any, **kwargs: Any) -> Iterator[Any]:
        query = world._pb(request["structured_aggregation_query"])
        kinds = {a.alias: a.WhichOneof("operator") for a in query.aggregations}
        name = "+".join(sorted(set(kinds.values())))
        step = self._meter.step(
            f"{name} {query.structured_query.from_[0].collection_id}{_in(request)}"
        )
        responses = iter(self._call(step, "run_aggregation_query", request, kwargs))
        for response in self._timed(step, responses):
            pb = world._pb(response)
            if pb.HasField("result"):
                counts = [
                    value.integer_value
                    for alias, value in pb.result.aggregate_fields.items()
                    if kinds.get(alias) == "count"
                ]
                matched = max(counts, default=0)  # no count(): unknown, billed the minimum
                step.matched += matched
                step.aggregation_reads += max(1, math.ceil(matched / ENTRIES_PER_AGGREGATION_READ))
            yield response

    def commit(self, request: Any, **kwargs: Any) -> Any:
        writes = [world._pb(w) for w in request.get("writes") or []]
        paths = [
            w.update.name if w.WhichOneof("operation") == "update" else w.delete for w in writes
        ]
        step = self._meter.step(f"commit {'+'.join(sorted({_collection(p) for p in paths}))}")
        response = self._call(step, "commit", request, kwargs)
        step.written += len(
            writes
        )  # a refused commit (an update of an absent document) writes nothing
        return response

    def begin_transaction(self, request: Any, **kwargs: Any) -> Any:
        return self._call(
            self._meter.step("begin transaction"), "begin_transaction", request, kwargs
        )

    def rollback(self, request: Any, **kwargs: Any) -> Any:
        return self._call(self._meter.step("rollback"), "rollback", request, kwargs)


@contextmanager
def metered(db: Any) -> Iterator[Meter]:
    """Count and time every RPC ``db`` makes inside the block. Reaches into the client's
    private stub attribute (``_firestore_api_internal``, google-cloud-firestore 2.x), as
    :func:`bench.fanout_world.metered` does."""
    meter = Meter()
    api = db._firestore_api  # creates the stub if it was not yet
    db._firestore_api_internal = _MeteredApi(api, meter)
    try:
        yield meter
    finally:
        db._firestore_api_internal = api


def delivered(flow: str, event: CloudEvent) -> Meter:
    """Deliver ``event`` to the flow's function (``message`` or ``read mark``), metered."""
    with metered(bootstrap.db()) as meter:
        deliver(triggers()[flow], event)
    return meter


# --- the measurement --------------------------------------------------------------------


def measure(db: firestore.Client, scale: int, state: str, messages: int) -> list[dict[str, Any]]:
    """One scale and state on an emptied database: a row per flow."""
    world.reset(db)
    room = Chat(db, f"{state}-{scale}")
    seeded = world.write_all(db, seeding(room, scale, state))
    meters: dict[str, list[Meter]] = {"message": [], "read mark": []}
    with quiet():
        for _ in range(messages):
            message_id, data = room.write(room.buyer)
            meters["message"].append(delivered("message", room.created(message_id, data)))
            if state == "readRegularly":
                room.told(room.agent, message_id)
                meters["read mark"].append(delivered("read mark", room.mark_read(room.agent)))
    stored = room.ref.get().to_dict() or {}
    truth = room.unread_truth(room.agent)
    badge = chat.counter_ref(db, room.agent).get().to_dict() or {}
    exact = (stored.get("unread") or {}).get(room.agent) == truth == badge.get("messages")
    rows = [
        _row(scale, state, flow, ms, seeded=seeded, exact=exact)
        for flow, ms in meters.items()
        if ms
    ]
    for row in rows:
        print(
            f"  {scale:,} messages, {state}, per {row['flow']}: {row['billedReads']} reads "
            f"({row['aggregationReads']} by aggregations), {row['written']} writes, "
            f"{row['roundTrips']} round trips; unread exact: {exact}"
        )
    return rows


def _row(
    scale: int, state: str, flow: str, meters: Sequence[Meter], *, seeded: int, exact: bool
) -> dict[str, Any]:
    totals = [m.total() for m in meters]
    steps: dict[str, Rpcs] = {}
    for meter in meters:
        for name, rpcs in meter.steps.items():
            steps.setdefault(name, Rpcs()).add(rpcs)

    def per(values: Sequence[int]) -> float:
        return round(sum(values) / len(values), 2)

    return {
        "messagesBefore": scale,
        "state": state,
        "flow": flow,
        "events": len(meters),
        "billedReads": per([t.billed_reads for t in totals]),
        "billedReadsMax": max(t.billed_reads for t in totals),
        "documentsRead": per([t.read + t.missing + t.empty for t in totals]),
        "aggregationReads": per([t.aggregation_reads for t in totals]),
        "indexEntriesMatched": per([t.matched for t in totals]),
        "written": per([t.written for t in totals]),
        "roundTrips": per([t.calls for t in totals]),
        "rpcMs": round(1000 * sum(t.seconds for t in totals) / len(totals), 2),
        "documentsSeeded": seeded,
        "unreadExact": exact,
        "steps": {name: rpcs.as_dict() for name, rpcs in sorted(steps.items())},
    }


KEYS = ("billedReads", "documentsRead", "aggregationReads", "written", "roundTrips")


def run(
    db: firestore.Client, *, scales: Sequence[int] = SCALES, messages: int = MESSAGES
) -> dict[str, Any]:
    """Measure every scale in both states; the smallest scale is the baseline."""
    scales = sorted(scales)
    rows = [row for s in scales for state in STATES for row in measure(db, s, state, messages)]
    by = {(r["messagesBefore"], r["state"], r["flow"]): r for r in rows}
    small, large = scales[0], scales[-1]
    flows = sorted({(r["state"], r["flow"]) for r in rows})
    ratios: dict[str, Any] = {
        f"{state}.{flow}.{key}{large}Over{small}": common.ratio(
            by[(large, state, flow)][key], by[(small, state, flow)][key]
        )
        for state, flow in flows
        for key in ("billedReads", "written", "roundTrips")
    } | {"goal": "≈ 1 (flat)"}
    return {
        "figures": {
            f"{r['state']}.{r['flow']}.{r['messagesBefore']}": {k: r[k] for k in KEYS}
            | {"steps": r["steps"]}
            for r in rows
        }
        | {"allUnreadExact": all(r["unreadExact"] for r in rows)},
        "baseline": {
            f"{state}.{flow}": {"messagesBefore": small}
            | {k: by[(small, state, flow)][k] for k in KEYS}
            for state, flow in flows
        },
        "ratios": ratios,
        "params": {
            "scales": scales,
            "states": list(STATES),
            "messagesMeasured": messages,
            "functions": "summarize_conversation (per message), on_conversation_read (per "
            "read mark), delivered in process through firekit.events.document_trigger",
            "notCounted": "the client's own writes: 1 write per message plus the 1 read the "
            "create rule's get() of the conversation is billed; 1 write per read mark",
            "counted": "every RPC of the functions' Firestore client through its GAPIC stub: "
            "round trips, documents returned, gets of absent documents and empty queries "
            "(1 read each), aggregations (1 read per 1,000 index entries matched, at least "
            "1; matched = the aggregation's count()), documents written per commit",
        },
        "rows": [{k: v for k, v in r.items() if k != "steps"} for r in rows],
    }


def write(outcome: Mapping[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/chat_cost.json``."""
    return common.write_outcome(NAME, outcome, directory)


COLUMNS = (
    "messagesBefore",
    "state",
    "flow",
    "events",
    "billedReads",
    "aggregationReads",
    "indexEntriesMatched",
    "written",
    "roundTrips",
    "rpcMs",
    "unreadExact",
)


def main() -> None:
    """Start or reuse the emulators, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=",".join(str(s) for s in SCALES))
    parser.add_argument("--messages", type=int, default=MESSAGES)
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    with common.emulators() as stack, common.triggers_paused(stack):
        outcome = run(common.firestore_client(stack), scales=scales, messages=args.messages)
    path = common.report(NAME, outcome, COLUMNS)
    print(f"\nratios (largest / smallest scale): {outcome['ratios']}")
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
