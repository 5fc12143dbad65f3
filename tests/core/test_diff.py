"""Changed-field detection for the loop guard."""

from __future__ import annotations

import datetime as dt

from firekit.diff import changed_paths, only_owned


def test_changed_paths_descend_into_maps() -> None:
    before = {"a": 1, "stats": {"views": 1, "likes": 2}, "tags": ["x"], "gone": None}
    after = {"a": 1, "stats": {"views": 2, "likes": 2}, "tags": ["x", "y"], "new": 0}
    assert changed_paths(before, after) == {"stats.views", "tags", "gone", "new"}


def test_none_and_missing_differ() -> None:
    assert changed_paths({"a": None}, {}) == {"a"}
    assert changed_paths(None, {"a": 1}) == {"a"}


def test_equal_timestamps_are_unchanged() -> None:
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert changed_paths({"t": when}, {"t": when}) == frozenset()


def test_only_owned_covers_nested_paths_and_empty_changes() -> None:
    assert only_owned({"stats.views", "updatedAt"}, {"stats", "updatedAt"})
    assert only_owned({"stats.views"}, {"stats.views"})
    assert not only_owned({"stats"}, {"stats.views"})
    assert not only_owned({"title", "updatedAt"}, {"updatedAt"})
    assert only_owned(set(), {"updatedAt"})
