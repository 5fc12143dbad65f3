"""``docs/client-contract.md``, rendered by ``contract/build.py``.

Who may read and write each collection comes from ``rules/matrix.py`` (the table the
rules are tested against, cell by cell); what a client writes from the models' markers;
the examples below are checked when the doc is built (a create against the rules' Python
twin, a callable's request and response against its models), so an example that stopped
being valid fails the build instead of misleading a reader.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from firekit.docmodel import REQUEST_TIME, Document, check_create, specs

if TYPE_CHECKING:
    from contract.build import CallableContract, DocumentContract

EXAMPLE_UID = "uid-of-the-caller"

CREATE_EXAMPLES: Mapping[str, tuple[str, dict[str, Any]]] = {
    "Listing": (
        "draft-1",
        {
            "ownerId": EXAMPLE_UID,
            "status": "draft",
            "kind": "sale",
            "propertyType": "flat",
            "title": "Two-bed flat by the canal",
            "price": {"amount": 42_500_000, "currency": "GBP"},
            "bedrooms": 2,
            "bathrooms": 1,
            "address": {
                "line1": "12 Wharf Road",
                "city": "London",
                "postcode": "N1 7GR",
                "country": "GB",
            },
            "location": {"lat": 51.5326, "lng": -0.0952},
            "createdAt": REQUEST_TIME,
            "updatedAt": REQUEST_TIME,
        },
    ),
    "SavedSearch": (
        "search-1",
        {
            "ownerId": EXAMPLE_UID,
            "name": "Flats in London",
            "kind": "sale",
            "city": "London",
            "currency": "GBP",
            "priceMax": 50_000_000,
            "channels": {"inApp": True, "push": True, "email": False},
            "createdAt": REQUEST_TIME,
            "updatedAt": REQUEST_TIME,
        },
    ),
    "Favorite": ("listing-1", {"listingId": "listing-1", "createdAt": REQUEST_TIME}),
    "Conversation": (
        f"listing-1__{EXAMPLE_UID}",
        {
            "listingId": "listing-1",
            "buyerId": EXAMPLE_UID,
            "agentId": "uid-of-the-agent",
            "participantIds": [EXAMPLE_UID, "uid-of-the-agent"],
            "createdAt": REQUEST_TIME,
            "updatedAt": REQUEST_TIME,
        },
    ),
    "Message": (
        "message-1",
        {"senderId": EXAMPLE_UID, "text": "Is it still available?", "createdAt": REQUEST_TIME},
    ),
    "Device": (
        "fcm-token-1",
        {
            "token": "fcm-token-1",
            "ownerId": EXAMPLE_UID,
            "platform": "android",
            "appVersion": "1.4.0",
            "createdAt": REQUEST_TIME,
            "updatedAt": REQUEST_TIME,
        },
    ),
}
"""A valid create per client-created collection: (document id, data)."""

CALL_EXAMPLES: Mapping[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "search_near": (
        {"lat": 51.5072, "lng": -0.1276, "radiusKm": 2, "kind": "sale", "limit": 1},
        {
            "results": [
                {
                    "id": "seed-london-001",
                    "title": "Victorian terrace near the park",
                    "price": {"amount": 65_000_000, "currency": "GBP"},
                    "city": "London",
                    "location": {"lat": 51.51, "lng": -0.12},
                    "distanceKm": 0.61,
                    "bedrooms": 3,
                    "kind": "sale",
                    "propertyType": "house",
                    "photo": None,
                }
            ],
            "nextCursor": "opaque-cursor",
        },
    ),
    "set_user_role": (
        {"uid": "uid-of-a-buyer", "role": "agent"},
        {"uid": "uid-of-a-buyer", "role": "agent", "previousRole": "buyer", "changed": True},
    ),
    "approve_listing": (
        {"listingId": "listing-1"},
        {"listingId": "listing-1", "status": "active", "previousStatus": "pending_review"},
    ),
    "reject_listing": (
        {"listingId": "listing-1", "reason": "The photos show another property."},
        {"listingId": "listing-1", "status": "rejected", "previousStatus": "pending_review"},
    ),
    "set_listing_status": (
        {"listingId": "listing-1", "status": "under_offer"},
        {"listingId": "listing-1", "status": "under_offer", "previousStatus": "active"},
    ),
    "feature_listing": (
        {"listingId": "listing-1", "days": 7},
        {
            "paymentIntentId": "pi_123",
            "clientSecret": "pi_123_secret_456",
            "customerId": "cus_123",
            "amount": {"amount": 3500, "currency": "GBP"},
            "days": 7,
        },
    ),
    "start_agent_plan": (
        {"paymentMethodId": "pm_card_visa"},
        {
            "customerId": "cus_123",
            "subscriptionId": "sub_123",
            "status": "active",
            "clientSecret": "pi_789_secret_012",
            "requiresAction": False,
            "plan": "agent_pro",
        },
    ),
}
"""(request, response) per callable, each checked against the callable's models."""


def render(docs: list[DocumentContract], calls: list[CallableContract]) -> str:
    """The whole doc."""
    matrix = _rules_matrix()
    out = [_INTRO]
    out.append("## Collections\n")
    out.append(_COLLECTION_INTRO)
    for d in docs:
        out += _collection(
            d, [row for row in matrix.MATRIX if _pattern(row.path) == _pattern(d.model.path)]
        )
    out.append("## Callables\n")
    out.append(_CALLABLE_INTRO)
    for c in calls:
        out += _callable(c)
    return "\n".join(out).rstrip() + "\n"


_INTRO = """\
# The client contract

GENERATED by `contract/build.py` from the document models, their write markers and
transitions, the callables and the rules' test matrix: do not edit; the test command
fails when it is stale.

What an app may read and write, and how it calls the backend. In TypeScript, import the
generated types and helpers from [`contract/index.ts`](../contract/index.ts)
(`firestore.ts`: every document as stored, `XCreate` / `XUpdate` for what a client may
send, `XStatusMoves`, `PATHS`, `CAPS`; `callables.ts`: `Callables`, each callable's
request, response and refusals; `index.ts`: `call()`, `callableError()`, `signUpError()`,
the usage helpers for the caps). Apps in other languages use the JSON Schema files in
[`contract/schema/`](../contract/schema/) (`index.json` names them all).

Conventions:

- Money is `{amount, currency}` in minor units (pence, cents) of an ISO currency.
- Timestamps are Firestore `Timestamp`s in documents (`"x-firestore": "timestamp"` in
  the schemas) and ISO 8601 strings in callable responses. A field marked
  *serverTimestamp()* must be sent as `serverTimestamp()` (`"x-firestore":
  "serverTimestamp"`), never a client clock.
- A client sends exactly the fields listed: an unknown field, a missing one, a wrong type
  or a value out of bounds is refused by the rules (`permission-denied`). Under the
  emulators, the dev-only callable `explain_refusal` says why, check by check.
- Reading a document that does not exist where only its owner may read (a saved search
  just deleted, say) is `permission-denied`, not an empty snapshot: the rules cannot tell
  a missing document is yours. Listen to your own query rather than to one document.
- Every collection a client creates in has a cap per user: the create's batch also
  updates `users/{uid}/limits/usage` (`holdUsage()` / `countUsage()` in `index.ts`;
  README, *Limits per user*).
"""

_COLLECTION_INTRO = """\
Who may read and write, from the matrix the rules are tested against
([`docs/rules-matrix.md`](rules-matrix.md)): *owner* is the user the document belongs to
(the uid in its path or its owner field), *other* another signed-in user, *agent* an
agent who does not own it, *admin* an admin, *anonymous* a caller not signed in.
"""

_CALLABLE_INTRO = """\
Call with `call(functions, name, request)` (typed by `Callables`). A refusal rejects
with the SDK's `FunctionsError`; `callableError(err)` gives `{code, reason, message,
fields, details}`: `invalid-argument` lists every bad field in `fields` (`{field, issue,
message}`, the submitted values never echoed); every other refusal names a stable
`reason` in its details; `internal` carries no reason (the cause is in the server log
only), nor does `unauthenticated` for an ID token that is present but invalid or expired
(the SDK refuses it before our code runs: refresh the token). Every callable needs a
signed-in caller (an anonymous Firebase Auth user counts) unless said otherwise.

```ts
try {
  await call(functions, "set_listing_status", { listingId, status: "sold" });
} catch (err) {
  const refusal = callableError(err, "set_listing_status");
  if (refusal?.code === "invalid-argument") showFieldErrors(refusal.fields);
  else if (refusal?.reason === "rate_limited") retryAfter(refusal.details.retryAfterSeconds);
  else throw err;
}
```
"""


def _pattern(path: str) -> str:
    """A path pattern with its parameters unnamed: `users/{}/private/{}`."""
    return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))


def _rules_matrix() -> ModuleType:
    """``rules/matrix.py``, loaded by its path: under pytest, ``rules`` is the tests' package."""
    qualified = "rules_src.matrix"  # the name tests/rules loads it under: one module
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            qualified, Path(__file__).resolve().parents[1] / "rules" / "matrix.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module  # dataclasses look their module up while built
        spec.loader.exec_module(module)
    return sys.modules[qualified]


def _who(rows: list[Any]) -> tuple[str, str]:
    """(who reads, who writes) from the matrix rows of one collection."""
    principals_in_order = _rules_matrix().PRINCIPALS

    def principals(ops: set[str]) -> str:
        names = [p for p in principals_in_order if any(ops & row.allowed(p) for row in rows)]
        return ", ".join(names) if names else "functions only"

    return principals({"get", "list"}), principals({"create", "update", "delete"})


def _collection(d: DocumentContract, rows: list[Any]) -> list[str]:
    from marketplace.limits import capped

    model = d.model
    out = [f"### `{model.path}` ({model.__name__})\n", _doc(model) + "\n"]
    if rows:
        reads, writes = _who(rows)
        out.append(f"- **Reads**: {reads}.")
        out.append(f"- **Writes**: {writes}.")
        notes = [f"{row.state}: {row.note}" for row in rows if row.note]
        for note in notes:
            out.append(f"- {note}")
        out.append("")
    creates = [s for s in specs(model) if s.client_creates()]
    updates = [s for s in specs(model) if s.client_updates()]
    if not creates and not updates:
        out.append("A client writes nothing here: functions do.\n")
    if creates and d.create is not None:
        out.append(f"**Create** (`{model.__name__}Create`):\n")
        out += _fields_table(d.create)
    if updates and d.update is not None:
        out.append(
            f"**Update** (`{model.__name__}Update`: only what changes, and what says *yes*):\n"
        )
        out += _fields_table(d.update)
    if model.transitions:
        moves = "; ".join(f"{a} → {' or '.join(b)}" for a, b in d.moves.items())
        initial = " or ".join(model.transitions.initial)
        out.append(
            f"**Status** (`{model.transitions.field}`): created as {initial}; a client may "
            f"move {moves}. Every other move is a function's.\n"
        )
    cap = capped(model.path.replace("{", "").replace("}", ""))
    if cap is not None:
        out.append(f"**Cap**: {_cap_text(cap)}.\n")
    if model.__name__ in CREATE_EXAMPLES:
        out += _create_example(model, *CREATE_EXAMPLES[model.__name__])
    return out


def _cap_text(cap: Any) -> str:
    from marketplace.limits import Held

    if isinstance(cap, Held):
        return f"{cap.cap} held per user (`holdUsage(batch, db, uid, {json.dumps(cap.key)}, id)`)"
    return (
        f"{cap.cap} created per {_duration(cap.window.total_seconds())} per user "
        f"(`countUsage(batch, db, uid, {json.dumps(cap.key)}, key, window)`)"
    )


def _duration(seconds: float) -> str:
    return "day" if seconds == 86400 else "minute" if seconds == 60 else f"{seconds:g} s"


def _fields_table(
    schema: Mapping[str, Any], *, timestamps: bool = True, head: str = "field"
) -> list[str]:
    from contract.build import TypeScript, _describe

    ts = TypeScript(timestamps=timestamps)
    required = set(schema.get("required", ()))
    out = [f"| {head} | type | required | notes |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        kind = ts.type(prop, "").replace("|", "\\|").replace("\n", " ")
        notes = (_describe(prop) or "").replace("|", "\\|")
        out.append(f"| `{name}` | `{kind}` | {'yes' if name in required else ''} | {notes} |")
    for prop in schema.get("patternProperties", {}).values():
        path = prop["x-firestore-path"].replace("{uid}", "<uid>")
        notes = (_describe(prop) or "").replace("|", "\\|")
        kind = "FieldValue"
        out.append(f"| `{path}` | `{kind}` | | {notes} |")
    out.append("")
    return out


def _create_example(model: type[Document], doc_id: str, data: dict[str, Any]) -> list[str]:
    issues = check_create(model, data, uid=EXAMPLE_UID, doc_id=doc_id)
    if issues:
        raise SystemExit(f"contract/docs.py: the {model.__name__} example is refused: {issues}")
    path = model.path
    for part in path.split("/"):
        if part.startswith("{"):
            value = doc_id if part == path.split("/")[-1] else _param_example(part)
            path = path.replace(part, value, 1)
    body = json.dumps(data, indent=2, default=lambda v: "@@SERVER_TIME@@")
    body = body.replace('"@@SERVER_TIME@@"', "serverTimestamp()")
    body = re.sub(r'^(\s*)"(\w+)":', r"\1\2:", body, flags=re.M)
    segments = ", ".join(json.dumps(s) for s in path.split("/"))
    return [
        "```ts",
        f"const data: {model.__name__}Create = {body};",
        f"batch.set(doc(db, {segments}), data);",
        "```",
        "",
    ]


def _param_example(part: str) -> str:
    return {"{uid}": EXAMPLE_UID, "{conversationId}": f"listing-1__{EXAMPLE_UID}"}.get(
        part, part.strip("{}")
    )


def _callable(c: CallableContract) -> list[str]:
    contract = c.contract
    who = (
        "admins"
        if contract.roles == {"admin"}
        else "agents"
        if contract.roles == {"agent"}
        else ", ".join(sorted(contract.roles))
        if contract.roles
        else "anyone, signed in or not"
        if contract.allow_anonymous
        else "any signed-in user"
    )
    limit = contract.rate_limit
    rate = f"; {limit.max_calls} calls per {limit.per_seconds} s each" if limit else ""
    dev = " **Emulators only: never deployed.**" if c.dev_only else ""
    out = [
        f"### `{c.name}`\n",
        f"{_doc(contract.handler)}{dev}\n",
        f"- **Who**: {who}{rate}.",
        f"- **Request** `{c.request_name}`, **response** `{c.response_name}` "
        f"(`contract/schema/callables/{c.name}.*.json`).",
        "",
    ]
    out += _fields_table(c.request, timestamps=False, head="request field")
    out.append("| refusal (code) | reason | when |")
    out.append("|---|---|---|")
    for r in c.refusals:
        out.append(f"| `{_js_code(r.error.code.name)}` | `{r.reason}` | {r.when} |")
    out.append("| `invalid-argument` | `invalid_argument` | the request does not fit: `fields` |")
    out.append("")
    if c.name in CALL_EXAMPLES:
        out += _call_example(c, *CALL_EXAMPLES[c.name])
    return out


def _js_code(name: str) -> str:
    return name.lower().replace("_", "-")


def _call_example(
    c: CallableContract, request: dict[str, Any], response: dict[str, Any]
) -> list[str]:
    c.contract.model.model_validate(request)
    out = [
        "```ts",
        f"const answer = await call(functions, {json.dumps(c.name)}, {json.dumps(request)});",
    ]
    if response:
        from contract.build import _response_type

        handler = c.contract.handler
        assert handler is not None  # callable_contracts() refuses a contract without one
        adapter: TypeAdapter[Any] = TypeAdapter(_response_type(handler))
        adapter.validate_python(response)
        out.append(f"// answer: {json.dumps(response)}")
    out += ["```", ""]
    return out


def _doc(obj: Any) -> str:
    from contract.build import _doc as docstring

    return docstring(obj)
