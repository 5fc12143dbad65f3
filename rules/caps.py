"""The rules that hold the caps of ``marketplace.limits``, rendered from its table.

``rules/build.py`` puts them into ``firestore.rules`` next to the generated shape checks;
the access policy (``rules/policy.rules``) calls ``holds(key, id)`` on the create of a held
document, ``counted(key, id)`` on the create of a rate-capped one, and ``usageOk(uid,
before, after)`` on writes to the usage document. Only this module spells a cap as a
number in the rules.
"""

from __future__ import annotations

from marketplace.limits import HELD, RATES, USAGE, Held, Rate

BANNER = """\
// ---- Caps per user, rendered by rules/caps.py from functions/marketplace/limits.py.
// A capped create reads the caller's usage document as its own batch leaves it (one
// lookup): a held document's id must be listed there, a rate-capped creation counted."""


def _usage_path(uid: str) -> str:
    path = USAGE.replace("{uid}", f"$({uid})")
    return f"/databases/$(database)/documents/{path}"


def _document_path(held: Held, id_expr: str) -> str:
    path = held.path.replace("{uid}", "$(uid)").replace("{id}", f"$({id_expr})")
    return f"/databases/$(database)/documents/{path}"


def _held_check(held: Held) -> str:
    name = f"usage{held.key[:1].upper()}{held.key[1:]}Ok"
    return f"""\
// At most {held.cap} ids; an id leaves the list only named as `released`, its document gone.
function {name}(uid, before, after) {{
  let prior = before.get('{held.key}', {{'ids': []}});
  let later = after.get('{held.key}', {{'ids': []}});
  let gone = prior.ids.toSet().difference(later.ids.toSet());
  return later == prior || (later.keys().hasOnly(['ids', 'released'])
    && later.ids is list && later.ids.size() <= {held.cap}
    && (gone.size() == 0 || (gone.size() == 1 && gone.hasOnly([later.released])
      && !existsAfter({_document_path(held, "later.released")}))));
}}"""


def _rate_check(rate: Rate) -> str:
    name = f"usage{rate.key[:1].upper()}{rate.key[1:]}Ok"
    seconds = int(rate.window.total_seconds())
    return f"""\
// At most {rate.cap} per window of {seconds} s: counted on in the window, or a new one opened.
function {name}(before, after) {{
  let prior = before.get('{rate.key}', null);
  let later = after.get('{rate.key}', null);
  let window = duration.value({seconds}, 's');
  return later == prior || (later.keys().hasOnly(['start', 'count', 'at', 'last'])
    && later.at == request.time && later.last is string && later.count is int
    && later.count <= {rate.cap}
    && ((prior != null && request.time < prior.start + window
        && later.start == prior.start && later.count == prior.count + 1)
      || ((prior == null || request.time >= prior.start + window)
        && later.start == request.time && later.count == 1)));
}}"""


def render() -> str:
    """The caps' rules functions."""
    keys = [h.key for h in HELD] + [r.key for r in RATES]
    checks = [f"usage{k[:1].upper()}{k[1:]}Ok(uid, before, after)" for k in keys[: len(HELD)]]
    checks += [f"usage{k[:1].upper()}{k[1:]}Ok(before, after)" for k in keys[len(HELD) :]]
    key_list = ", ".join(f"'{k}'" for k in keys)
    conjunction = "\n    && ".join([f"after.keys().hasOnly([{key_list}])", *checks])
    parts = [
        BANNER,
        f"function usageAfter() {{\n  return getAfter({_usage_path('request.auth.uid')}).data;\n}}",
        "function holds(key, id) {\n  return id in usageAfter()[key].ids;\n}",
        "function counted(key, id) {\n"
        "  let window = usageAfter()[key];\n"
        "  return window.at == request.time && window.last == id;\n}",
        *(_held_check(h) for h in HELD),
        *(_rate_check(r) for r in RATES),
        f"function usageOk(uid, before, after) {{\n  return {conjunction};\n}}",
    ]
    return "\n".join(parts) + "\n"
