"""Development aids, served by the Functions emulator only: ``main.py`` exports them when
``FUNCTIONS_EMULATOR`` is set, so ``firebase deploy`` never finds them.
``explain_refusal``: why the rules refused a write, in words."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from firekit.bootstrap import db, is_emulated
from firekit.callables import CallContext, callable_function
from firekit.errors import FieldIssue, InvalidArgument, PermissionDenied, Refusal
from firekit.ratelimit import RateLimit

if TYPE_CHECKING:
    from firekit.explain import Explanation

# firekit.explain and every document model are imported by the handler: this module is
# loaded by each emulated worker's `import main`, which should stay as light as deployed.

RULES_SOURCE = Path(__file__).resolve().parents[2] / "firestore.rules"
"""The rules the emulator runs (the Functions emulator runs this code in place)."""
_HAS_ROLE = re.compile(r"hasRole\('([^']+)'\)")
_DOCUMENT_PATH = r"^[^/]+/[^/]+(/[^/]+/[^/]+)*$"

NOT_EMULATED = Refusal(
    PermissionDenied, "not_emulated", "explain_refusal runs under the emulators only."
)


class ExplainRequest(BaseModel):
    """A write the rules refused: its document path, the operation, what was sent
    (sentinels encoded as ``contract/explain.ts`` does) and the message the client got."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    path: Annotated[str, Field(max_length=1500, pattern=_DOCUMENT_PATH)]
    op: Literal["create", "update", "set", "delete"]
    data: dict[str, Any] | None = None
    denial: Annotated[str, Field(max_length=20_000)] | None = None
    """The refused write's error message: the emulator names the rule lines in it."""


def roles_needed(statement: str) -> set[str]:
    """The roles a statement of ``rules/policy.rules`` asks of the caller."""
    roles = set(_HAS_ROLE.findall(statement))
    return roles | ({"admin"} if "isAdmin()" in statement else set())


@callable_function(
    ExplainRequest, rate_limit=RateLimit(60, per_seconds=60), refusals=[NOT_EMULATED]
)
def explain_refusal(call: CallContext, data: ExplainRequest) -> Explanation:
    """Why the rules refused (or would refuse) this write of the caller's: each failing
    check in words, and the rule line the emulator named in ``denial``."""
    from firekit import explain  # lazy: see the imports
    from marketplace.models import DOCUMENTS, Usage  # lazy: see the imports

    if not is_emulated():  # a second lock, should the export's ever be picked
        raise NOT_EMULATED()
    try:
        payload = explain.decode(data.data or {})
    except (ValueError, TypeError) as exc:
        issue: FieldIssue = {"field": "data", "issue": "sentinel", "message": str(exc)}
        raise InvalidArgument("A sentinel in data is not understood.", [issue]) from None
    snapshot = db().document(data.path).get()
    return explain.explain(
        DOCUMENTS,
        explain.Write(data.path, data.op, payload),
        explain.Caller(call.uid, call.claims),
        explain.stored(snapshot.to_dict()) if snapshot.exists else None,
        denial=data.denial,
        rules=explain.Rules(RULES_SOURCE, roles_needed),
        hand_written=(Usage,),  # its rules (caps) are hand-written: the twin has no say
    )
