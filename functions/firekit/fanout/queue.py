"""The fan-out's task queue: a task's payload, queueing it, and the task function.

A task is named after its first chunk (``{job}-{n:05d}``), so the queue refuses a second
task of the same chunks (a retried chunk handing on, a repeated job start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from firebase_admin import exceptions as admin_exceptions
from firebase_functions import https_fn, options, tasks_fn
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firekit import observe
from firekit.bootstrap import db as default_db
from firekit.bootstrap import is_emulated
from firekit.errors import field_issues, log_unexpected

if TYPE_CHECKING:
    from firekit.fanout.engine import Fanout

JOB_ID = r"^[A-Za-z0-9_-]{1,400}$"


def chunk_id(job: str, chunk: int) -> str:
    """The id of a job's chunk (its record's; the task starting at it is named so too)."""
    return f"{job}-{chunk:05d}"


class Task(BaseModel):
    """One task's payload: which job, the first chunk it runs, and where its page starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: str = Field(pattern=JOB_ID)
    """Deterministic per job, e.g. ``new-<listingId>``: a repeated start is the same job."""
    kind: str = Field(min_length=1, max_length=64)
    """Which :class:`Delivery` handles it."""
    params: dict[str, Any] = Field(default_factory=dict)
    first_chunk: int = Field(default=0, ge=0)
    after: str | None = Field(default=None, max_length=4000)
    """The cursor where the previous chunk's page ended (the source's own; opaque here)."""

    @property
    def task_id(self) -> str:
        """The Cloud Tasks id: the queue refuses a second task of the same chunks."""
        return chunk_id(self.job, self.first_chunk)

    def starting_at(self, chunk: int, after: str) -> Task:
        """The task of this job that starts at ``chunk``, its page after ``after``."""
        return self.model_copy(update={"first_chunk": chunk, "after": after})


Enqueue = Callable[[Task], None]
"""Queue a task; repeating the same task must be harmless."""


class ChunkBusy(RuntimeError):  # noqa: N818 (a state, not a failure)
    """Another attempt holds one of the task's chunks; the queue should retry later."""


class ChunkRetry(RuntimeError):  # noqa: N818
    """Some of a chunk's side effects must be tried again later."""


def cloud_tasks_queue(function_name: str) -> Enqueue:
    """Enqueue on the Cloud Tasks queue of a task function (the emulator's, when run there)."""

    def enqueue(task: Task) -> None:
        # Imported by the first enqueue: firebase_admin.functions brings google.auth's
        # compute-engine modules (about 10 ms), which no cold start of a function that never
        # queues a task should pay (main.py imports this module for every function).
        from firebase_admin import functions as admin_functions

        queue = admin_functions.task_queue(function_name)
        # firebase-admin (Python, 7.7) posts the data as the whole body, while a task
        # function reads the callable envelope ``{"data": ...}`` (as the Node SDK sends
        # it): wrap it ourselves, or every task is refused as "missing data".
        body = {"data": task.model_dump()}
        try:
            queue.enqueue(body, admin_functions.TaskOptions(task_id=task.task_id))
        except (admin_exceptions.AlreadyExistsError, admin_exceptions.ConflictError):
            pass  # already queued (a retried chunk, a repeated job start): nothing to do
        except ValueError as exc:
            # firebase-admin 7.7 under the emulator: after the emulator accepted a *named*
            # task, it drops the first character of the name it echoes and fails to parse
            # it. The task is queued; anything else is a real error.
            if not (is_emulated() and str(exc) == "Invalid resource name format."):
                raise

    return enqueue


def task_function(
    fanout_of: Callable[[], Fanout],
    *,
    max_attempts: int = 20,
    max_concurrent: int = 20,
    max_per_second: int = 50,
    **task_options: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """Declare the Cloud Tasks function that runs a :class:`Fanout`'s tasks.

    The decorated function is only the deployed name; the body is the engine. Retries:
    exponential backoff from 1 s to 5 min, ``max_attempts`` times; the rate limits keep a
    large job from starving everything else of Firestore write capacity. The function is
    :func:`firekit.observe.observed`; each task's line says its job, chunks and outcome.
    """

    def decorate(named: Callable[..., Any]) -> Any:
        run = _runner(named.__name__, fanout_of)
        run.__doc__ = named.__doc__
        sdk_entry = tasks_fn.on_task_dispatched(
            retry_config=options.RetryConfig(
                max_attempts=max_attempts, min_backoff_seconds=1, max_backoff_seconds=300
            ),
            rate_limits=options.RateLimits(
                max_concurrent_dispatches=max_concurrent, max_dispatches_per_second=max_per_second
            ),
            **task_options,
        )(run)
        return observe.observed(sdk_entry)

    return decorate


def _runner(
    function_name: str, fanout_of: Callable[[], Fanout]
) -> Callable[[https_fn.CallableRequest[Any]], dict[str, Any]]:
    """The task function's body: the payload checked, the task run, its line annotated."""

    def run(request: https_fn.CallableRequest[Any]) -> dict[str, Any]:
        try:
            task = Task.model_validate(request.data)
        except ValidationError as exc:
            # A malformed payload can never succeed: acknowledge it, loudly.
            observe.annotate(outcome="refused", severity="ERROR", issues=field_issues(exc))
            return {"outcome": "refused"}
        observe.annotate(job=task.job, firstChunk=task.first_chunk)
        try:
            result = fanout_of().run_task(default_db(), task)
        except (ChunkBusy, ChunkRetry) as exc:
            # 503: the queue retries with backoff (no traceback: nothing is wrong).
            observe.annotate(outcome="deferred", severity="INFO", reason=str(exc))
            raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAVAILABLE, "retry") from exc
        except Exception as exc:
            log_unexpected(exc)
            raise
        observe.annotate(
            outcome=result.outcome,
            chunks=result.chunks,
            recipients=result.recipients,
            acted=result.acted,
        )
        return {"outcome": result.outcome, "recipients": result.recipients}

    run.__name__ = run.__qualname__ = function_name
    return run
