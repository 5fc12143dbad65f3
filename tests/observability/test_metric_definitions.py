"""The log-based metric definitions for production (ops/metrics/) read only what the log
line's schema defines, label nothing by user, and bucket latency as _metrics does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from firekit import metrics

from .lines import ROOT, SCHEMA

DEFINITIONS = sorted((ROOT / "ops" / "metrics").glob("*.yaml"))
LOG_METRIC_FIELDS = {
    "name",
    "description",
    "filter",
    "disabled",
    "metricDescriptor",
    "valueExtractor",
    "labelExtractors",
    "bucketOptions",
}
"""The fields of a LogMetric (what `gcloud logging metrics create --config-from-file` takes)."""
LIFTED = {"severity": "severity", "trace": "logging.googleapis.com/trace"}
"""Fields Cloud Logging moves out of the JSON payload into the entry itself."""
PAYLOAD_FIELD = re.compile(r'jsonPayload\.(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))')
EXTRACTOR = re.compile(r"^(?:EXTRACT|REGEXP_EXTRACT)\((.+?)(?:,.*)?\)$")
USER_LIKE = re.compile(r"uid|user|email|actor|caller", re.IGNORECASE)


def definition(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def referenced_fields(expression: str) -> set[str]:
    """The schema fields an expression names: ``jsonPayload.x``, or a lifted field."""
    fields = {quoted or plain for quoted, plain in PAYLOAD_FIELD.findall(expression)}
    bare = re.sub(PAYLOAD_FIELD, "", expression)
    fields |= {LIFTED[name] for name in LIFTED if re.search(rf"\b{name}\b", bare)}
    return fields


def test_there_is_a_latency_distribution_and_an_outcome_counter() -> None:
    kinds = {
        path.stem: (
            definition(path)["metricDescriptor"]["valueType"],
            "outcome" in definition(path)["labelExtractors"],
        )
        for path in DEFINITIONS
    }
    assert kinds == {
        "function_latency": ("DISTRIBUTION", True),
        "function_invocations": ("INT64", True),
    }


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda path: path.stem)
def test_a_definition_reads_only_fields_the_log_line_schema_defines(path: Path) -> None:
    metric = definition(path)
    assert set(metric) <= LOG_METRIC_FIELDS
    expressions = [metric["filter"], *metric["labelExtractors"].values()]
    expressions += [metric["valueExtractor"]] if "valueExtractor" in metric else []
    for expression in expressions:
        unknown = referenced_fields(expression) - set(SCHEMA["properties"])
        assert unknown == set(), f"{path.name}: {expression!r} reads {unknown}"
    for expression in metric["labelExtractors"].values():
        match = EXTRACTOR.match(expression)
        assert match is not None, expression
        assert len(referenced_fields(match.group(1))) == 1, expression


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda path: path.stem)
def test_the_filter_takes_exactly_the_invocation_lines_of_every_kind(path: Path) -> None:
    metric_filter = definition(path)["filter"]
    kinds = re.search(r"jsonPayload\.kind=\(([^)]*)\)", metric_filter)
    assert kinds is not None
    assert re.findall(r'"([a-z]+)"', kinds.group(1)) == SCHEMA["properties"]["kind"]["enum"]
    # Only the invocation line has a latency (the function's other lines do not).
    assert "jsonPayload.latency_ms>=0" in metric_filter
    assert set(SCHEMA["required"]) >= {"kind", "latency_ms"}


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda path: path.stem)
def test_no_label_names_or_reads_a_user(path: Path) -> None:
    metric = definition(path)
    labels = [label["key"] for label in metric["metricDescriptor"]["labels"]]
    assert labels == list(metric["labelExtractors"])  # every label extracted, nothing more
    assert {"function", "kind", "outcome"} <= set(labels)
    for key, expression in metric["labelExtractors"].items():
        assert not USER_LIKE.search(key), key
        assert not any(USER_LIKE.search(field) for field in referenced_fields(expression))


def test_latency_buckets_are_the_metrics_documents_buckets() -> None:
    [latency] = [definition(p) for p in DEFINITIONS if p.stem == "function_latency"]
    assert latency["valueExtractor"] == "EXTRACT(jsonPayload.latency_ms)"
    assert latency["metricDescriptor"]["unit"] == "ms"
    bounds = latency["bucketOptions"]["explicitBuckets"]["bounds"]
    assert bounds == [b for b in metrics.BOUNDS if b is not None]
