"""Who may do what: the expected rules matrix, and the doc rendered from it.

Every row is a collection (in one state of its document, where the state matters) and
names, per principal, the operations it may perform; every other cell is a deny. The
matrix test (``tests/security/test_rules_matrix.py``) checks every cell against the real
emulator; ``python rules/matrix.py`` renders ``docs/rules-matrix.md`` with the lookups
(``get``/``exists``) each rule may cost, counted in the real ``firestore.rules``;
``--check`` fails if the doc is stale.

Principals: ``anonymous`` (not signed in); ``owner`` (the user the document belongs to:
the uid in its path or its owner field; an agent for listings, and for viewing hours
unless the row says otherwise); ``other`` (another signed-in buyer); ``agent`` (an agent
who does not own it); ``admin``. A signed-in principal whose account is *closed* (phase
one of its deletion, or an admin's suspension, wrote the tombstone ``_tombstones/{uid}``;
its ID tokens stay valid for up to an hour) keeps no write and no private read: only
what ``other``, a stranger, may read (:meth:`Row.allowed_closed`), so a new row needs no
column of its own.
Operations: get, list (a query a client would make, constrained as the rules require),
create (a valid document the principal would write for themselves: at the owner's path
for documents under ``users/{uid}``), update (a valid client edit), delete.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "firestore.rules"
RULES_SIZE_LIMIT = 256 * 1024  # Firestore's limit on a rules source file
LOOKUP_LIMIT = 10  # get()/exists() calls per single-document request or query
BATCH_LOOKUP_LIMIT = 20  # over all the writes of a batch or transaction
HOT_PATHS = (
    # A public listing makes none; the owner's draft, or an admin's read, the tombstone.
    ("reading a listing", "listings/{listingId}", "get", 1),
    ("browsing listings", "listings/{listingId}", "list", 1),
    ("listing one's notifications", "users/{uid}/notifications/{notificationId}", "list", 1),
    # The conversation (is the sender in it, and not blocked?), the sender's tombstone and
    # the sender's usage.
    ("sending a chat message", "conversations/{conversationId}/messages/{messageId}", "create", 3),
    # A read receipt or a block: the stored conversation says who takes part; the
    # participant's tombstone.
    ("marking a conversation read", "conversations/{conversationId}", "update", 1),
    (
        "reading a conversation's messages",
        "conversations/{conversationId}/messages/{messageId}",
        "list",
        2,
    ),
)
"""(what, match path, operation, most lookups it may make)."""
RULE_LOOKUP_BUDGET = 5
"""The most any rule may make: on the usage document, the caller's tombstone and one
``existsAfter`` per held collection (four: saved searches, devices, favourites, viewing
hours; a write releases one id, so it makes one in practice)."""
DOC = ROOT / "docs" / "rules-matrix.md"

PRINCIPALS = ("anonymous", "owner", "other", "agent", "admin")
SIGNED_IN = ("owner", "other", "agent", "admin")
"""The principals an account stands behind, which may therefore be closed."""
OPERATIONS = ("get", "list", "create", "update", "delete")
READS = frozenset({"get", "list"})
_RULE_OPS = {
    "get": "get",
    "list": "list",
    "create": "create",
    "update": "update",
    "delete": "delete",
}


@dataclass(frozen=True)
class Row:
    """Expected allows for one collection (in one document state)."""

    path: str
    state: str
    anonymous: str = ""
    owner: str = ""
    other: str = ""
    agent: str = ""
    admin: str = ""
    note: str = ""
    rule: str = ""
    """The match path whose rules govern this row, when it is not ``path`` itself."""

    def allowed(self, principal: str) -> frozenset[str]:
        """Operations ``principal`` may perform here."""
        ops = frozenset(str(getattr(self, principal)).split())
        unknown = ops - set(OPERATIONS)
        if unknown:
            raise ValueError(f"{self.path}: unknown operations {sorted(unknown)}")
        return ops

    def allowed_closed(self, principal: str) -> frozenset[str]:
        """What ``principal`` may still do here once its account is closed: of what it
        may do, only the reads a signed-in stranger (``other``) may make too."""
        return self.allowed(principal) & self.allowed("other") & READS

    @property
    def key(self) -> str:
        """A stable id for tests."""
        return f"{self.path}[{self.state}]"


ALL = "get list create update delete"
READ = "get list"

MATRIX: tuple[Row, ...] = (
    Row(
        "users/{uid}",
        "profile",
        owner="get list update",
        other=READ,
        agent=READ,
        admin=READ,
        note="created by the sign-up function; role and timestamps are server-owned",
    ),
    Row(
        "users/{uid}/private/{docId}",
        "account",
        owner="get list update",
        note="not even admins read it",
    ),
    Row("users/{uid}/devices/{token}", "device", owner=ALL),
    Row(
        "users/{uid}/notifications/{notificationId}",
        "notification",
        owner="get list update",
        note="update = mark read",
    ),
    Row(
        "users/{uid}/counters/{counterId}",
        "unread badge",
        owner=READ,
        note="functions keep it",
    ),
    Row(
        "users/{uid}/favorites/{listingId}",
        "favorite",
        owner="get list create delete",
        note="create = a favourite of a public listing, its id listed in the usage",
    ),
    Row(
        "users/{uid}/availability/{scope}",
        "an agent's hours",
        owner=ALL,
        note="owner = an agent, their own viewing hours; create = hours for all their "
        "listings (scope `all`) or for one listing of theirs (scope: its id), the scope "
        "listed in the usage; buyers see only free slots, through a callable",
    ),
    Row(
        "users/{uid}/availability/{scope}",
        "a buyer's hours",
        owner="get list delete",
        note="owner = a buyer (say, an agent since made a buyer): reads and deletes what "
        "is there, writes no hours",
    ),
    Row(
        "users/{uid}/limits/{doc}",
        "usage",
        owner="get list update",
        note="the caps' usage document (marketplace.limits); created by the first capped "
        "write of its owner (tests/limits); nobody deletes it but functions",
    ),
    Row(
        "listings/{listingId}",
        "draft",
        owner=ALL,
        agent="create",
        admin=READ,
        note="create = an agent creating a draft of their own; delete: no moderator has "
        "reviewed it",
    ),
    Row(
        "listings/{listingId}",
        "draft after review",
        owner="get list create update",
        agent="create",
        admin=READ,
        note="rejected, then back to draft: it keeps its record, no delete",
    ),
    Row(
        "listings/{listingId}",
        "pending_review",
        owner="get list create update",
        agent="create",
        admin=READ,
        note="update = withdraw to draft",
    ),
    Row(
        "listings/{listingId}",
        "active",
        anonymous=READ,
        owner="get list create update",
        other=READ,
        agent="get list create",
        admin=READ,
        note="update = a price change",
    ),
    Row(
        "listings/{listingId}",
        "sold",
        anonymous=READ,
        owner="get list create",
        other=READ,
        agent="get list create",
        admin=READ,
        note="nothing is editable once sold",
    ),
    Row(
        "listings/{listingId}",
        "rejected",
        owner="get list create update",
        agent="create",
        admin=READ,
        note="update = back to draft to fix",
    ),
    Row("listings/{listingId}", "archived", owner="get list create", agent="create", admin=READ),
    Row(
        "savedSearches/{searchId}",
        "search",
        owner=ALL,
        other="create",
        agent="create",
        admin="create",
        note="create = a search of one's own",
    ),
    Row(
        "viewings/{viewingId}",
        "viewing",
        owner=READ,
        agent=READ,
        admin=READ,
        note="owner = the requester; agent = the listing's agent; made by callables",
    ),
    Row(
        "viewingLocks/{lockId}",
        "granule lock",
        note="functions only: one 15-minute granule of an agent's diary or a listing's, "
        "taken by one viewing",
    ),
    Row(
        "viewingHolds/{holdId}",
        "waiting-request place",
        note="functions only: one of a buyer's places for requests awaiting an agent",
    ),
    Row("calendarFeeds/{token}", "calendar token", note="functions only"),
    Row(
        "offers/{offerId}",
        "offer",
        owner=READ,
        agent=READ,
        admin=READ,
        note="owner = the buyer; agent = the listing's agent; made by callables",
    ),
    Row(
        "conversations/{conversationId}",
        "conversation",
        owner="get list create update",
        other="create",
        agent="get list update",
        admin="create",
        note="owner = the buyer; agent = the listing's agent (a participant); create = "
        "opening one's own conversation with the agent of a public listing (a verified "
        "email, not an anonymous sign-in); update = one's own lastReadAt / blockedBy entry",
    ),
    Row(
        "conversations/{conversationId}/messages/{messageId}",
        "message",
        owner="get list create",
        agent="get list create",
        note="owner = the buyer; agent = the listing's agent",
    ),
    Row(
        "conversations/{conversationId}/messages/{messageId}",
        "blocked sender",
        owner="get list",
        agent="get list create",
        note="a blocked participant reads but cannot send; the blocker still can",
    ),
    Row(
        "reports/{reportId}",
        "report",
        owner="create",
        agent="create",
        admin=READ,
        note="owner = the buyer who reported; agent = the other participant; create = a "
        "report of a conversation one takes part in; the moderation queue: admins read",
    ),
    Row(
        "customers/{uid}",
        "customer",
        owner="get",
        note="the Stripe mirror: functions only; nobody lists all customers",
        rule="customers/{uid}/{document=**}",
    ),
    Row(
        "customers/{uid}/subscriptions/{subscriptionId}",
        "subscription",
        owner=READ,
        rule="customers/{uid}/{document=**}",
    ),
    Row(
        "customers/{uid}/payments/{paymentId}",
        "payment",
        owner=READ,
        rule="customers/{uid}/{document=**}",
    ),
    Row(
        "auditLog/{entryId}",
        "entry",
        admin=READ,
        note="append-only for every client, admins included: functions append each entry in "
        "the transaction of the change it records; admins read it in pages of at most 100",
    ),
    Row(
        "_metrics/{windowId}",
        "window",
        admin=READ,
        note="the functions' measurements per 5-minute and hourly window: functions write "
        "them, admins read them (the console's metrics)",
    ),
    Row(
        "_eventLedger/{entryId}",
        "ledger entry",
        note="the core's bookkeeping",
        rule="{document=**}",
    ),
)


def closed_cells() -> list[tuple[Row, str, str]]:
    """(row, principal, operation) of every cell a signed-in principal may do while its
    account is open: the ones a closed account must lose, but for a stranger's reads."""
    return [
        (row, principal, op)
        for row in MATRIX
        for principal in SIGNED_IN
        for op in OPERATIONS
        if op in row.allowed(principal)
    ]


# ---- lookups counted in the real firestore.rules ----------------------------------------
_FUNCTION = re.compile(r"function\s+(\w+)\s*\(([^)]*)\)\s*\{")
_ALLOW = re.compile(r"allow\s+([\w\s,]+):\s*if\s+(.*?);", re.S)
_LOOKUP = re.compile(r"(?<![.\w])(get|exists|getAfter|existsAfter)\s*\(")  # not map.get()
_CALL = re.compile(r"\b(\w+)\s*\(")


_BLOCK = re.compile(r"(match\s+(\S+)|service\s+\S+)\s*\{")
_FUNCTION_START = re.compile(r"function\s+\w+\s*\([^)]*\)\s*\{")


def _balanced_end(text: str, open_at: int) -> int:
    """Index just past the brace that closes the one at ``open_at``."""
    depth, j = 1, open_at + 1
    while depth and j < len(text):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        j += 1
    return j


def _blocks(text: str) -> Iterator[tuple[str, str]]:
    """(match path, the block's own text without functions and nested matches)."""
    text = re.sub(r"//[^\n]*", "", text)  # comments may hold anything
    stack: list[tuple[str, list[str]]] = [("", [])]
    i = 0
    while i < len(text):
        block = _BLOCK.match(text, i)
        function = _FUNCTION_START.match(text, i)
        if block:
            path = f"{stack[-1][0]}/{(block.group(2) or '').strip('/')}".rstrip("/")
            stack.append((path.replace("//", "/"), []))
            i = block.end()
        elif function:
            i = _balanced_end(text, function.end() - 1)
        elif text[i] == "{":  # a map literal in a condition: keep it whole
            end = _balanced_end(text, i)
            stack[-1][1].append(text[i:end])
            i = end
        elif text[i] == "}":
            path, body = stack.pop()
            if path:
                yield path, "".join(body)
            i += 1
        else:
            stack[-1][1].append(text[i])
            i += 1


def _function_bodies(text: str) -> dict[str, tuple[bool, str]]:
    """Each function's name: (whether it takes parameters, its body)."""
    bodies = {}
    for match in _FUNCTION.finditer(text):
        depth, j = 1, match.end()
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        bodies[match.group(1)] = (bool(match.group(2).strip()), text[match.end() : j - 1])
    return bodies


def _lookups(expr: str, functions: dict[str, tuple[bool, str]]) -> int:
    """The documents ``expr`` may look up: one per lookup written in it or in a function
    it calls, except that a function without parameters reads the same documents at every
    call (its paths can only use ``request``, ``resource`` and the match's wildcards), and
    a document looked up twice in one request counts once (measured on the emulator):
    so its lookups count once however often it is called (``live()``)."""
    return len(_lookup_sites(expr, "", functions, frozenset()))


def _lookup_sites(
    expr: str, where: str, functions: dict[str, tuple[bool, str]], seen: frozenset[str]
) -> set[str]:
    sites = {f"{where}:{i}" for i in range(len(_LOOKUP.findall(expr)))}
    for n, name in enumerate(_CALL.findall(expr)):
        if name in functions and name not in seen:
            takes_parameters, body = functions[name]
            inner = f"{where}/{name}#{n}" if takes_parameters else name
            sites |= _lookup_sites(body, inner, functions, seen | {name})
    return sites


def _calls(
    expr: str, name: str, functions: dict[str, tuple[bool, str]], seen: frozenset[str]
) -> bool:
    called = [c for c in _CALL.findall(expr) if c in functions and c not in seen]
    return name in called or any(
        _calls(functions[c][1], name, functions, seen | {c}) for c in called
    )


def rule_conditions(text: str) -> dict[str, dict[str, str]]:
    """For each match path, each operation's condition (what follows ``if``)."""
    conditions: dict[str, dict[str, str]] = {}
    for path, body in _blocks(text):
        for allow in _ALLOW.finditer(body):
            ops = [o.strip() for o in allow.group(1).split(",")]
            expanded = {"read": ["get", "list"], "write": ["create", "update", "delete"]}
            for op in [x for o in ops for x in expanded.get(o, [o])]:
                conditions.setdefault(_short(path), {})[op] = allow.group(2).strip()
    return conditions


def rule_lookups(text: str) -> dict[str, dict[str, int]]:
    """For each match path, the lookups each operation's rule may cost (an upper bound)."""
    functions = _function_bodies(text)
    return {
        path: {op: _lookups(condition, functions) for op, condition in ops.items()}
        for path, ops in rule_conditions(text).items()
    }


def rule_calls(text: str, name: str) -> dict[str, dict[str, bool]]:
    """For each match path, whether each operation's rule calls the function ``name``,
    itself or through the functions it calls."""
    functions = _function_bodies(text)
    return {
        path: {op: _calls(condition, name, functions, frozenset()) for op, condition in ops.items()}
        for path, ops in rule_conditions(text).items()
    }


def _short(path: str) -> str:
    return path.split("/documents/", 1)[-1] if "/documents/" in path else path.strip("/")


# ---- the doc ----------------------------------------------------------------------------
def render(rules_text: str) -> str:
    """docs/rules-matrix.md."""
    costs = rule_lookups(rules_text)
    lines = [
        "# Firestore rules matrix",
        "",
        "Generated by `python rules/matrix.py` from `rules/matrix.py` and `firestore.rules`;",
        "the test command fails if it is stale. Every cell is checked against the Firestore",
        "emulator running the real rules by `tests/security/test_rules_matrix.py`.",
        "",
        "Principals: **anonymous** (not signed in), **owner** (the user the document belongs",
        "to), **other** (another signed-in buyer), **agent** (an agent who does not own it),",
        "**admin**. **closed account**: any of the signed-in four once its account is closed",
        "(phase one of its deletion, or a suspension, wrote `_tombstones/{uid}`; its ID tokens",
        "stay valid for up to an hour): of what it may otherwise do, only the reads a stranger",
        "(**other**) may make, no write and no private read. ✅ allowed, · denied.",
        "*Lookups*: the documents the rule may look up with `get()`/`exists()` (an upper",
        "bound: the first true branch of an `||` stops earlier; a document looked up twice,",
        "such as the caller's tombstone, counts once).",
        "",
        f"{len(MATRIX)} rows × {len(PRINCIPALS)} principals × {len(OPERATIONS)} operations = "
        f"{len(MATRIX) * len(PRINCIPALS) * len(OPERATIONS)} cells; the {len(closed_cells())} "
        "a signed-in principal may do",
        "are checked again with its account closed, and again with every other one's closed.",
        "",
        *_render_budgets(rules_text, costs),
    ]
    for row in MATRIX:
        lines += _render_row(row, costs.get(row.rule or row.path, {}))
    return "\n".join(lines) + "\n"


def _render_budgets(rules_text: str, costs: dict[str, dict[str, int]]) -> list[str]:
    size = len(rules_text.encode())
    most = max(n for ops in costs.values() for n in ops.values())
    out = [
        "## Budgets",
        "",
        f"- `firestore.rules`: {size:,} bytes of Firestore's {RULES_SIZE_LIMIT:,}.",
        f"- The costliest rule makes {most} lookup(s); Firestore allows {LOOKUP_LIMIT} per "
        "single-document request or query.",
        f"- A batch may make {BATCH_LOOKUP_LIMIT} over all its writes, a document counting once: "
        "the caller's tombstone takes one of them (`tests/rules/test_closed_accounts.py`).",
        "- Hot paths (lookups, of a budget):",
    ]
    out += [f"  - {what}: {costs[path][op]} of {most}" for what, path, op, most in HOT_PATHS]
    return [*out, ""]


def _render_row(row: Row, costs: dict[str, int]) -> list[str]:
    header = "| principal | " + " | ".join(OPERATIONS) + " |"
    out = [f"## `{row.path}` ({row.state})", ""]
    if row.note:
        out += [row.note[0].upper() + row.note[1:] + ".", ""]
    out += [header, "|" + "---|" * (len(OPERATIONS) + 1)]
    for principal in PRINCIPALS:
        allowed = row.allowed(principal)
        cells = ["✅" if op in allowed else "·" for op in OPERATIONS]
        out.append(f"| {principal} | " + " | ".join(cells) + " |")
    kept = frozenset().union(*(row.allowed_closed(p) for p in SIGNED_IN))
    cells = ["✅" if op in kept else "·" for op in OPERATIONS]
    out.append("| closed account | " + " | ".join(cells) + " |")
    lookups = [str(costs.get(op, 0)) for op in OPERATIONS]
    out += ["| *lookups* | " + " | ".join(lookups) + " |", ""]
    return out


def main(argv: list[str]) -> int:
    """Write the doc, or with ``--check`` fail if it is stale."""
    text = render(RULES.read_text())
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/rules-matrix.md is stale: run `python rules/matrix.py`", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
