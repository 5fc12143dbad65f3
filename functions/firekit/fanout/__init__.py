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
