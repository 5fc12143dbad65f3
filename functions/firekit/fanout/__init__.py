"""Fan-out in bounded chunks through a Cloud Tasks queue, once per recipient.

A job (say: "tell everyone whose saved search matches listing L") reads its recipients
from a :class:`Source` in chunks of ``chunk_size`` (:data:`CHUNK_SIZE`), so memory stays
bounded however many match. A Cloud Task runs up to ``chunks_per_task``
(:data:`CHUNKS_PER_TASK`) chunks one after another through one read of the source, and
stops early once ``task_budget`` has passed; the rest goes to the next task. Each chunk
commits its writes together with a record, then performs its side effects in slices,
recording how far it got, so a retried or duplicated task walks past the chunks done
(one read each) and resumes where it stopped, and no recipient the earlier attempt
reached is reached again, except in the one window no at-least-once system closes (the
process dies after a provider accepted a slice and before the record says so);
deliveries make that harmless where they can (the push transport collapses duplicates
on the device).

The package, by concern:

- :mod:`~firekit.fanout.engine`: :class:`Fanout` (``start``, ``run_task``), what a
  :class:`Delivery` provides, what a page turns into (:class:`Prepared`), the chunk
  records and their lease;
- :mod:`~firekit.fanout.pages`: :class:`Source` (recipients in order, each with an opaque
  cursor), :func:`documents` (a query's documents), and the pages a task reads;
- :mod:`~firekit.fanout.queue`: the task payload (:class:`Task`), queueing it
  (:func:`cloud_tasks_queue`) and the task function (:func:`task_function`).

Pages are read and the chunk's batch written through :mod:`firekit.wire`, which skips the
SDK's proto-plus layer (at 10,000 recipients that layer alone cost seconds of CPU);
``FANOUT_WIRE=0`` switches the fan-out to the SDK's public API.

The integration core knows nothing of listings or searches: a :class:`Delivery` says
where the recipients are and what a page turns into.
"""

import importlib
from typing import TYPE_CHECKING, Any

# The names below are imported on first use (__getattr__), the cheapest module first:
# main.py imports this package for the task function's decorator (``queue``), at every
# function's cold start, while only the fan-out's own instances run the engine.
if TYPE_CHECKING:
    from firekit.fanout.engine import (
        ACT_SLICE,
        CHUNK_SIZE,
        CHUNKS,
        CHUNKS_PER_TASK,
        LEASE,
        RECORD_TTL,
        TASK_BUDGET,
        Delivery,
        Fanout,
        Prepared,
        TaskOutcome,
    )
    from firekit.fanout.pages import Read, Source, documents
    from firekit.fanout.queue import (
        ChunkBusy,
        ChunkRetry,
        Enqueue,
        Task,
        chunk_id,
        cloud_tasks_queue,
        task_function,
    )

__all__ = [
    "ACT_SLICE",
    "CHUNKS",
    "CHUNKS_PER_TASK",
    "CHUNK_SIZE",
    "LEASE",
    "RECORD_TTL",
    "TASK_BUDGET",
    "ChunkBusy",
    "ChunkRetry",
    "Delivery",
    "Enqueue",
    "Fanout",
    "Prepared",
    "Read",
    "Source",
    "Task",
    "TaskOutcome",
    "chunk_id",
    "cloud_tasks_queue",
    "documents",
    "task_function",
]

_MODULES = ("queue", "pages", "engine")
"""Where the names of ``__all__`` live, cheapest to import first."""


def __getattr__(name: str) -> Any:
    """A name of ``__all__``, from the first module of :data:`_MODULES` that has it."""
    if name in __all__:
        for module_name in _MODULES:
            module = importlib.import_module(f"firekit.fanout.{module_name}")
            if name in vars(module):
                value = vars(module)[name]
                globals()[name] = value  # found once: later lookups skip this function
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
