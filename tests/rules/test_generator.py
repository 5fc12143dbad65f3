"""The generator's output for small test-only models, and what it refuses (no emulator)."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from firekit.docmodel import (
    DELETE,
    REQUEST_TIME,
    CallerUid,
    Client,
    DocId,
    Document,
    OwnEntry,
    RequestTime,
    Transitions,
    check_create,
    check_update,
)
from marketplace.models import DOCUMENTS, Favorite

from . import load_rules_module

generator = load_rules_module("generator")
build = load_rules_module("build")
RulesGenerationError = generator.RulesGenerationError


class Tag(BaseModel):
    """A nested value."""

    model_config = ConfigDict(strict=True, extra="forbid")

    label: Annotated[str, Field(min_length=1, max_length=20)]
    weight: float | None = None


class Widget(Document):
    """Every kind of field the generator handles."""

    path = "widgets/{widgetId}"
    transitions = Transitions(field="state", initial=("new",), moves={"new": ("done",)})

    owner: Annotated[str, CallerUid()]
    key: Annotated[str, DocId()]
    state: Annotated[Literal["new", "done", "gone"], Client()]
    name: Annotated[str, Field(min_length=2, max_length=40), Client(editable_when=("new",))]
    count: Annotated[int, Field(ge=0, le=9), Client()]
    ratio: Annotated[float | None, Field(gt=0, lt=1), Client()] = None
    site: Annotated[str | None, Field(pattern=r"^https://[^\s]+$"), Client(update=False)] = None
    kinds: Annotated[list[Literal["a", "b"]], Field(max_length=2), Client()] = Field(
        default_factory=list
    )
    tags: Annotated[list[Tag], Field(max_length=3), Client()] = Field(default_factory=list)
    notes: Annotated[list[Annotated[str, Field(max_length=5)]], Field(max_length=2), Client()] = (
        Field(default_factory=list)
    )
    extra: Annotated[dict[str, Any], Client()] = Field(default_factory=dict)
    created: Annotated[dt.datetime, RequestTime()]
    touched: Annotated[dt.datetime, RequestTime(on_update=True)]
    secret: str = ""  # server only


@pytest.fixture(scope="module")
def widget_rules() -> str:
    return str(generator.render([Widget]))


def function_body(rules: str, name: str) -> str:
    """The text of one generated function."""
    match = re.search(rf"function {name}\(.*?\n}}", rules, re.S)
    assert match, f"{name} not generated"
    return match.group(0)


def test_names_are_lower_camel_case() -> None:
    assert generator.function_prefix(Widget) == "widget"

    class SavedSearch(Document):
        pass

    assert generator.function_prefix(SavedSearch) == "savedSearch"


def test_create_checks_keys_markers_types_and_initial_status(widget_rules: str) -> None:
    create = function_body(widget_rules, "widgetCreateOk")
    assert "// widgets/{widgetId}: Widget" in widget_rules
    assert "data.keys().hasOnly(['owner', 'key', 'state', 'name', 'count'," in create
    assert "data.keys().hasAll(['owner', 'key', 'state', 'name', 'count', " in create
    assert "data.owner == request.auth.uid" in create
    assert "data.key == docId" in create
    assert "data.created == request.time" in create
    assert "data.state in ['new']" in create
    assert "data.count is int && data.count >= 0 && data.count <= 9" in create
    assert (
        "!('ratio' in data) || (data.ratio == null || "
        "(data.ratio is number && data.ratio > 0 && data.ratio < 1))"
    ) in create
    assert "data.kinds.hasOnly(['a', 'b'])" in create
    assert "isWidgetTags(data.tags)" in create
    assert "data.extra is map" in create
    assert "secret" not in create


def test_a_marker_pins_the_value_and_the_fields_own_bounds_still_hold() -> None:
    # A document id may be 1500 bytes; a DocRef is at most 128 characters.
    create = function_body(generator.render([Favorite]), "favoriteCreateOk")
    assert "data.listingId == docId && data.listingId is string" in create
    assert "data.listingId.size() <= 128" in create
    at_bound, over = "l" * 128, "l" * 129
    ok = {"listingId": at_bound, "createdAt": REQUEST_TIME}
    assert check_create(Favorite, ok, uid="u", doc_id=at_bound) == []
    issues = check_create(Favorite, {**ok, "listingId": over}, uid="u", doc_id=over)
    assert [i["field"].split(".")[0] for i in issues] == ["listingId"]


def test_string_lengths_count_code_points_and_patterns_match_whole_strings(
    widget_rules: str,
) -> None:
    create = function_body(widget_rules, "widgetCreateOk")
    astral = "data.name.replace('[\\\\x{10000}-\\\\x{10FFFF}]', '_').size()"
    assert f"(data.name.size() >= 4 || {astral} >= 2)" in create
    assert f"(data.name.size() <= 40 || {astral} <= 40)" in create
    assert "data.site.matches('https://[^\\\\t-\\\\r \\\\x{85}\\\\x{A0}" in create


def test_update_checks_changed_keys_editability_stamps_and_moves(widget_rules: str) -> None:
    update = function_body(widget_rules, "widgetUpdateOk")
    assert "let changed = after.diff(before).affectedKeys();" in update
    assert "changed.hasOnly(['state', 'name', 'count', 'ratio', 'kinds', 'tags', 'notes'," in update
    assert "'site'" not in update and "'created'" not in update
    assert "before.state in ['new']" in update  # name: editable while new
    assert "after.touched == request.time" in update
    assert (
        "!('state' in changed) || after.state in {'new': ['done']}.get(before.state, [])"
    ) in update


def test_nested_models_and_lists_get_helpers(widget_rules: str) -> None:
    tag = function_body(widget_rules, "isTag")
    assert "v.keys().hasOnly(['label', 'weight'])" in tag
    assert "v.keys().hasAll(['label'])" in tag
    assert "!('weight' in v) || (v.weight == null || v.weight is number)" in tag
    tags = function_body(widget_rules, "isWidgetTags")
    assert "let n = v.size();" in tags
    assert "(n <= 2 || isWidgetTagsItem(v[2]))" in tags
    assert "n <= 3" not in tags
    assert "isTag(v)" in function_body(widget_rules, "isWidgetTagsItem")
    assert "v is string && (v.size() <= 5 ||" in function_body(widget_rules, "isWidgetNotesItem")


def test_models_without_client_fields_get_nothing() -> None:
    class Ledger(Document):
        path = "ledger/{id}"
        total: int

    assert "Ledger" not in generator.render([Ledger])


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^[A-Z]{2}$", "[A-Z]{2}"),
        (r"ab", "(?s:.*)ab(?s:.*)"),  # pydantic searches
        (r"^ab", "ab(?s:.*)"),
        (r"^a|b$", "(?s:.*)(?:^a|b$)(?s:.*)"),  # `|` binds loosest: keep the anchors
        (r"^(a|b)$", "(a|b)"),
        (r"^a\$", "a\\$(?s:.*)"),
        (r"^[^\s]$", f"[^{generator.WHITE_SPACE}]"),
        (r"^\S\s$", f"[^{generator.WHITE_SPACE}][{generator.WHITE_SPACE}]"),
        (r"^[]a]$", "[]a]"),
        (r"^[[:alpha:]]\p{L}$", r"[[:alpha:]]\p{L}"),
    ],
)
def test_patterns_become_whole_string_re2(pattern: str, expected: str) -> None:
    assert generator.rules_regex(pattern) == expected


@pytest.mark.parametrize(
    "pattern", [r"^\d+$", r"\w", r"\bx", r"(?=a)a", r"(a)\1", r"(?x) a", r"[a-z&&[^c]]"]
)
def test_patterns_re2_cannot_match_alike_raise(pattern: str) -> None:
    with pytest.raises(RulesGenerationError):
        generator.rules_regex(pattern)


class Color(StrEnum):
    RED = "red"


def _one_field(annotation: Any, marker: Any = None) -> type[Document]:
    field = Annotated[annotation, marker or Client()]
    model: type[Document] = create_model("Odd", __base__=Document, value=(field, ...))
    return model


@pytest.mark.parametrize(
    "annotation",
    [
        list[Annotated[str, Field(max_length=3)]],  # items checked but no length limit
        Annotated[list[int], Field(max_length=21)],  # too long to unroll
        dict[str, int],  # map values cannot be checked
        Color,  # strict pydantic wants the enum member
        Literal[1, 2],  # rules `in` takes 1.0 for 1
        Annotated[str, AfterValidator(str.strip)],  # custom code
        Annotated[str, Field(pattern=r"^\d$")],
        Annotated[float, Field(multiple_of=0.5)],
        Annotated[float, Field(le=1e-9)],
        tuple[int, int],
        dt.date,
        bytes,
    ],
)
def test_inexpressible_client_fields_raise(annotation: Any) -> None:
    with pytest.raises(RulesGenerationError):
        generator.render([_one_field(annotation)])


class Note:
    """Metadata of the application's own, which pydantic does not validate with."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


def test_metadata_pydantic_ignores_the_rules_ignore() -> None:
    # A personal-data marker on Uid, say: the checks are those of the field without it,
    # at the top level and on a list's items alike.
    name = Annotated[str, Field(min_length=1, max_length=128)]
    for annotation, marked in (
        (name, Annotated[name, Note("uid")]),
        (
            Annotated[list[name], Field(max_length=2)],
            Annotated[list[Annotated[name, Note("uid")]], Field(max_length=2)],
        ),
    ):
        plain = generator.render([_one_field(annotation)])
        assert generator.render([_one_field(marked)]) == plain


def test_a_union_is_valid_when_a_member_is() -> None:
    rules = generator.render([_one_field(int | str | None)])
    assert "data.value == null || data.value is int || data.value is string" in rules


def test_inexpressible_server_fields_are_fine() -> None:
    class Server(Document):
        path = "server/{id}"
        color: Color
        name: Annotated[str, Client()]

    assert "function serverCreateOk" in generator.render([Server])


def test_editable_when_needs_transitions() -> None:
    with pytest.raises(RulesGenerationError, match="transitions"):
        generator.render([_one_field(str, Client(editable_when=("draft",)))])


def test_incomplete_models_raise() -> None:
    class Later(Document):
        value: Annotated[Undefined, Client()]  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(RulesGenerationError, match="not fully defined"):
        generator.render([Later])


def test_lax_models_raise() -> None:
    class Lax(Document):
        model_config = ConfigDict(strict=False)
        path = "lax/{id}"
        value: Annotated[int, Client()]

    with pytest.raises(RulesGenerationError, match="strict"):
        generator.render([Lax])


def test_the_marketplace_functions() -> None:
    rules = generator.render(DOCUMENTS)
    declared = re.findall(r"function (\w+Ok)\(", rules)
    assert declared == [
        "profileUpdateOk",
        "privateAccountUpdateOk",
        "deviceCreateOk",
        "deviceUpdateOk",
        "notificationUpdateOk",
        "favoriteCreateOk",
        "listingCreateOk",
        "listingUpdateOk",
        "savedSearchCreateOk",
        "savedSearchUpdateOk",
        "availabilityCreateOk",
        "availabilityUpdateOk",
        "conversationCreateOk",
        "conversationUpdateOk",
        "messageCreateOk",
        "reportCreateOk",
    ]


class Thread(Document):
    """Own-entry maps: a read receipt (stamped only) and a block (stamped or removed)."""

    path = "threads/{threadId}"

    seen: Annotated[dict[str, dt.datetime], OwnEntry()] = Field(default_factory=dict)
    muted: Annotated[dict[str, dt.datetime], OwnEntry(removable=True)] = Field(default_factory=dict)
    count: int = 0  # server only


def test_own_entries_change_only_the_callers_key_to_the_request_time() -> None:
    rules = generator.render([Thread])
    assert "threadCreateOk" not in rules  # never set at create
    update = function_body(rules, "threadUpdateOk")
    assert "changed.hasOnly(['seen', 'muted'])" in update
    assert (
        "after.seen.diff(before.get('seen', {})).affectedKeys().hasOnly([request.auth.uid])"
        in update
    )
    assert "after.seen.get(request.auth.uid, null) == request.time)" in update
    assert (
        "(after.muted.get(request.auth.uid, null) == request.time"
        " || !(request.auth.uid in after.muted))"
    ) in update


EARLIER = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("changes", "issue"),
    [
        ({"seen.me": REQUEST_TIME}, None),
        ({"muted.me": REQUEST_TIME}, None),
        ({"muted.me": DELETE}, None),  # unblock: removable
        ({"seen.me": DELETE}, "not_removable"),
        ({"seen.you": REQUEST_TIME}, "own_entry"),  # someone else's entry
        ({"seen.you": DELETE}, "own_entry"),
        ({"muted.you": DELETE}, None),  # nothing to delete: no change
        ({"seen.me": EARLIER + dt.timedelta(days=1)}, "request_time"),  # a client clock
        ({"seen": {"me": REQUEST_TIME}}, "own_entry"),  # the whole map: drops "you"
        ({"seen": DELETE}, "deleted"),
        ({"count": 0}, "not_writable"),
    ],
)
def test_the_twin_of_own_entries(changes: dict[str, Any], issue: str | None) -> None:
    before = {"seen": {"me": EARLIER, "you": EARLIER}, "muted": {"me": EARLIER}, "count": 1}
    issues = check_update(Thread, before, changes, uid="me")
    assert [i["issue"] for i in issues][:1] == ([] if issue is None else [issue])
    assert check_update(Thread, before, {"seen.me": REQUEST_TIME}, uid=None) != []
    assert check_create(Thread, {"seen": {}}, uid="me", doc_id="t") != []


def test_build_puts_the_functions_in_place_of_the_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.rules"
    policy.write_text("service x {\n  match /a {\n    // @generated-shape-functions\n  }\n}\n")
    monkeypatch.setattr(build, "POLICY", policy)
    monkeypatch.setattr(build, "TARGET", tmp_path / "firestore.rules")
    monkeypatch.setattr(build, "shape_functions", lambda: "function f() {\n  return true;\n}\n")

    text = build.render()
    assert text.startswith(build.HEADER)
    assert "  match /a {\n    function f() {\n      return true;\n    }\n  }" in text
    assert build.main(["--check"]) == 1  # not written yet
    assert build.main([]) == 0
    assert build.main(["--check"]) == 0


def test_build_without_the_marker_keeps_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.rules"
    policy.write_text("service x {}\n")
    monkeypatch.setattr(build, "POLICY", policy)
    assert build.render() == build.HEADER + "service x {}\n"


def test_build_refuses_a_policy_function_named_like_a_generated_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.rules"
    policy.write_text("function f() { return 1; }\n// @generated-shape-functions\n")
    monkeypatch.setattr(build, "POLICY", policy)
    monkeypatch.setattr(build, "shape_functions", lambda: "function f() { return 2; }\n")
    with pytest.raises(SystemExit, match="'f'"):
        build.render()
