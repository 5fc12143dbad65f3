"""The invocation in progress: who, which function, which request, for every kind of function.

One :class:`Invocation` per call of a deployed function, held in a context variable so the
code it runs (an audit entry, a log line) can name the request it belongs to without the
request being passed down. Outside any invocation (a script, a test calling domain code)
:func:`request_id` still answers, with an id of its own.
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field
from typing import Any

_CURRENT: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "firekit_invocation", default=None
)


@dataclass
class Invocation:
    """One call of one deployed function."""

    function: str
    kind: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    fields: dict[str, Any] = field(default_factory=dict)


def current() -> Invocation | None:
    """The invocation this code runs in, if any."""
    return _CURRENT.get()


def request_id() -> str:
    """The id of the request this code serves (joins an audit entry to its log line)."""
    invocation = _CURRENT.get()
    return invocation.request_id if invocation is not None else uuid.uuid4().hex
