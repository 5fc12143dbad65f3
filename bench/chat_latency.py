"""Chat latency: from a message's write to its summary and unread counts being updated, in
process against the emulator, against a bare trigger that writes one field. Goal: p50 and
p95 ≤ 1.5 × the bare trigger's.

Every sample is one message of the buyer's, written as their client writes it (server
timestamp: ``bench.chat_cost.Chat.write``), then handled until the handler returns, i.e.
until what it writes is committed:

- **Figures**: ``trigger``: the message's creation event (as the emulator sends it) to
  ``summarize_conversation``, the function as deployed (``firekit.events.document_trigger``
  in recompute mode: the SDK's decoding, validation into ``Message``, the handler, its log
  lines): the summary, the recipient's unread recount and their badge, committed.
  ``direct``: ``marketplace.chat.summarize`` called with the message's data, without the
  event or the trigger wrapper (where the time goes: the wrapper's share is the
  difference).
- **Baseline** (``bare``): the same kind of event to a bare
  ``firestore_fn.on_document_created`` function on the same path that writes one field
  of the conversation (``updatedAt`` = the message's time): one commit.

Each configuration has its own conversation (twins, seeded alike with
:data:`SEEDED` messages, as the functions leave them); the agent reads each every
:data:`READ_EVERY` messages (untimed; the read mark's function runs on the two that keep
counts), so the counts stay small as in a live conversation. The three alternate message by
message, their order rotating, after a warm-up of each, so all see the same emulator load.
Log lines go to ``/dev/null`` while timing. Afterwards a few more messages per
configuration go through a metered client (``bench.chat_cost.metered``, untimed): the
Firestore round trips per message and the time spent waiting on each kind.

Run: ``python -m bench.chat_latency [--messages N]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from firebase_functions import firestore_fn
from google.cloud import firestore

from bench import chat_cost, common
from bench import fanout_world as world
from bench.callable_overhead import quiet
from firekit import bootstrap
from marketplace import chat
from pytest_firebase.events import deliver

NAME = "chat_latency"
MESSAGES = 300
WARMUP = 20
SEEDED = 10
READ_EVERY = 10
METERED = 10
"""Messages per configuration sent through the metered client, after the timed ones."""
CONFIGS = ("bare", "trigger", "direct")
BASELINE = "bare"
MESSAGE = "conversations/{conversationId}/messages/{messageId}"


def _touch(event: firestore_fn.Event[Any]) -> None:
    # The least a trigger on a new message can do: one field of its conversation.
    message = event.data.to_dict() if event.data is not None else {}
    conversation = chat.conversation_ref(bootstrap.db(), event.params["conversationId"])
    conversation.update({"updatedAt": message.get("createdAt")})


@functools.cache
def bare() -> Callable[..., Any]:
    """The baseline function, declared once the emulators' environment is set."""
    bootstrap.ensure_initialized()
    return firestore_fn.on_document_created(document=MESSAGE)(_touch)


def send(config: str, room: chat_cost.Chat) -> None:
    """One message of the buyer's, written and handled by ``config``."""
    message_id, data = room.write(room.buyer)
    if config == "direct":
        chat.summarize(bootstrap.db(), room.id, message_id, data)
    elif config == "trigger":
        deliver(chat_cost.triggers()["message"], room.created(message_id, data))
    else:
        deliver(bare(), room.created(message_id, data))


def timed(config: str, room: chat_cost.Chat) -> float:
    """One sample: :func:`send`'s latency in ms."""
    started = time.perf_counter()
    send(config, room)
    return (time.perf_counter() - started) * 1000


def read(config: str, room: chat_cost.Chat) -> None:
    """The agent reads the conversation (its function runs where counts are kept)."""
    event = room.mark_read(room.agent)
    if config != BASELINE:
        deliver(chat_cost.triggers()["read mark"], event)


def rooms(db: firestore.Client) -> dict[str, chat_cost.Chat]:
    """A conversation per configuration, seeded alike."""
    world.reset(db)
    made = {config: chat_cost.Chat(db, f"latency-{config}") for config in CONFIGS}
    for room in made.values():
        world.write_all(db, chat_cost.seeding(room, SEEDED, "readRegularly"))
    return made


def measure(db: firestore.Client, messages: int) -> dict[str, list[float]]:
    """Warm up, then ``messages`` rounds of one message per configuration, order rotating."""
    made = rooms(db)
    chat_cost.triggers()
    bare()
    samples: dict[str, list[float]] = {config: [] for config in CONFIGS}
    with quiet():
        for _ in range(WARMUP):
            for config in CONFIGS:
                send(config, made[config])
        for n in range(messages):
            shift = n % len(CONFIGS)
            for config in [*CONFIGS[shift:], *CONFIGS[:shift]]:
                samples[config].append(timed(config, made[config]))
            if (n + 1) % READ_EVERY == 0:
                for config in CONFIGS:
                    read(config, made[config])
    return samples


def round_trips(db: firestore.Client, messages: int) -> dict[str, dict[str, Any]]:
    """Per configuration, what :data:`METERED` more messages did through a metered client."""
    made = {config: chat_cost.Chat(db, f"latency-{config}") for config in CONFIGS}
    found: dict[str, dict[str, Any]] = {}
    with quiet():
        for config in CONFIGS:
            steps: dict[str, chat_cost.Rpcs] = {}
            for _ in range(messages):
                with chat_cost.metered(bootstrap.db()) as meter:
                    send(config, made[config])
                for name, rpcs in meter.steps.items():
                    steps.setdefault(name, chat_cost.Rpcs()).add(rpcs)
            total = chat_cost.Rpcs()
            for rpcs in steps.values():
                total.add(rpcs)
            found[config] = {
                "perMessage": round(total.calls / messages, 2),
                "rpcMsPerMessage": round(1000 * total.seconds / messages, 2),
                "steps": {
                    name: {
                        "callsPerMessage": round(rpcs.calls / messages, 2),
                        "msPerMessage": round(1000 * rpcs.seconds / messages, 2),
                    }
                    for name, rpcs in sorted(steps.items(), key=lambda item: -item[1].seconds)
                },
            }
    return found


def _stats(values: Sequence[float]) -> dict[str, float]:
    figures = common.percentiles(values, 50, 95) | {"mean": statistics.fmean(values)}
    return {key: round(value, 3) for key, value in figures.items()}


def _check(db: firestore.Client) -> dict[str, bool]:
    """The summary shows the newest message and the unread count is exact (counted)."""
    checks = {}
    for config in CONFIGS:
        if config == BASELINE:
            continue
        room = chat_cost.Chat(db, f"latency-{config}")
        stored = room.ref.get().to_dict() or {}
        newest = next(
            iter(
                room.ref.collection("messages")
                .order_by("createdAt", direction=firestore.Query.DESCENDING)
                .limit(1)
                .stream()
            )
        )
        shown = (stored.get("lastMessage") or {}).get("messageId") == newest.id
        exact = (stored.get("unread") or {}).get(room.agent) == room.unread_truth(room.agent)
        checks[config] = shown and exact
    return checks


def run(
    db: firestore.Client, *, messages: int = MESSAGES, metered: int = METERED
) -> dict[str, Any]:
    """Measure every configuration, count their round trips, check the summaries."""
    samples = measure(db, messages)
    trips = round_trips(db, metered)
    right = _check(db)
    stats = {config: _stats(values) for config, values in samples.items()}
    ratios: dict[str, Any] = {
        config: {k: common.ratio(stats[config][k], stats[BASELINE][k]) for k in stats[config]}
        for config in CONFIGS
        if config != BASELINE
    } | {"goal": "trigger.p50 and .p95 <= 1.5"}
    rows = [
        {
            "config": config,
            "messages": len(samples[config]),
            "p50 ms": stats[config]["p50"],
            "p95 ms": stats[config]["p95"],
            "mean ms": stats[config]["mean"],
            "x p50": ratios.get(config, {}).get("p50"),
            "x p95": ratios.get(config, {}).get("p95"),
            "round trips": trips[config]["perMessage"],
            "rpc ms": trips[config]["rpcMsPerMessage"],
            "summary right": right.get(config),
        }
        for config in CONFIGS
    ]
    return {
        "figures": {
            config: {
                "latencyMs": stats[config],
                "roundTrips": trips[config],
                "summaryAndCountsRight": right[config],
            }
            for config in CONFIGS
            if config != BASELINE
        },
        "baseline": {
            "latencyMs": stats[BASELINE],
            "roundTrips": trips[BASELINE],
            "what": "the same write, and the same kind of event to a bare "
            "firestore_fn.on_document_created function that updates one field of the "
            "conversation",
        },
        "ratios": ratios,
        "params": {
            "messages": messages,
            "warmup": WARMUP,
            "seededMessages": SEEDED,
            "readEvery": READ_EVERY,
            "meteredMessages": metered,
            "sample": "the sender's write (server timestamp) + the handler until it returns",
            "goal": "ratio.trigger.p50 and .p95 <= 1.5",
        },
        "rows": rows,
    }


def write(outcome: Mapping[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/chat_latency.json``."""
    return common.write_outcome(NAME, outcome, directory)


COLUMNS = (
    "config",
    "messages",
    "p50 ms",
    "p95 ms",
    "mean ms",
    "x p50",
    "x p95",
    "round trips",
    "rpc ms",
    "summary right",
)


def main() -> None:
    """Start or reuse the emulators, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=MESSAGES)
    args = parser.parse_args()
    with common.emulators() as stack, common.triggers_paused(stack):
        outcome = run(common.firestore_client(stack), messages=args.messages)
    path = common.report(NAME, outcome, COLUMNS)
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
