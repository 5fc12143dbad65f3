"""The error hierarchy, its one mapping, and pydantic errors without the submitted values."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import pytest
from firebase_functions.https_fn import FunctionsErrorCode, HttpsError
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from firekit import errors

from .conftest import LogReader


def reject_forbidden(value: str) -> str:
    if "forbidden" in value:
        raise ValueError(f"{value!r} is not allowed")  # quotes the input, as people do
    return value


def reject_short(value: str) -> str:
    if len(value) < 3:
        raise ValueError("Too short.")
    return value


class Pet(BaseModel):
    kind: Literal["cat"]


class Dog(BaseModel):
    kind: Literal["dog"]


class Form(BaseModel):
    nickname: Annotated[str, AfterValidator(reject_forbidden)] = "x"
    code: Annotated[str, AfterValidator(reject_short)] = "abc"
    ident: UUID | None = None
    pet: Annotated[Pet | Dog, Field(discriminator="kind")] | None = None
    sizes: dict[str, int] = {}


def issues_for(data: dict[str, Any]) -> list[errors.FieldIssue]:
    with pytest.raises(ValidationError) as caught:
        Form.model_validate(data)
    return errors.field_issues(caught.value)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (errors.InvalidArgument(), FunctionsErrorCode.INVALID_ARGUMENT, 400),
        (errors.Unauthenticated(), FunctionsErrorCode.UNAUTHENTICATED, 401),
        (errors.PermissionDenied(), FunctionsErrorCode.PERMISSION_DENIED, 403),
        (errors.NotFound(), FunctionsErrorCode.NOT_FOUND, 404),
        (errors.FailedPrecondition(), FunctionsErrorCode.FAILED_PRECONDITION, 400),
        (errors.ResourceExhausted(), FunctionsErrorCode.RESOURCE_EXHAUSTED, 429),
        (errors.Conflict(), FunctionsErrorCode.ALREADY_EXISTS, 409),
        (errors.Aborted(), FunctionsErrorCode.ABORTED, 409),
    ],
)
def test_each_app_error_maps_to_its_code(
    error: errors.AppError, code: FunctionsErrorCode, status: int
) -> None:
    mapped = errors.to_https_error(error)
    assert (mapped.code, mapped.message) == (code, error.default_message)
    assert mapped._http_error_code.status == status


def test_app_error_keeps_message_and_details() -> None:
    mapped = errors.to_https_error(errors.NotFound("No such listing.", {"id": "l1"}))
    assert mapped._as_dict() == {
        "status": "NOT_FOUND",
        "message": "No such listing.",
        "details": {"id": "l1"},
    }


def test_aliases_are_the_same_classes() -> None:
    assert errors.Forbidden is errors.PermissionDenied
    assert errors.InvalidState is errors.FailedPrecondition


def test_https_error_passes_through() -> None:
    original = HttpsError(FunctionsErrorCode.OUT_OF_RANGE, "Too far.")
    assert errors.to_https_error(original) is original


def test_unknown_exception_is_generic_internal_and_logged(read_logs: LogReader) -> None:
    try:
        raise KeyError("api_key=sk_live_123")
    except KeyError as exc:
        mapped = errors.to_https_error(exc, {"function": "f"})
    assert mapped._as_dict() == {"status": "INTERNAL", "message": "Internal error."}
    (line,) = read_logs()
    assert line["severity"] == "ERROR" and line["function"] == "f"
    assert line["errorType"] == "KeyError" and "sk_live_123" in line["message"]
    assert line["message"].startswith("Traceback (most recent call last)")


def test_field_issues_use_dotted_paths_and_stable_codes() -> None:
    issues = issues_for({"sizes": {"small": "x"}, "pet": {"kind": "cow"}})
    assert [(i["field"], i["issue"]) for i in issues] == [
        ("pet", "union_tag_invalid"),
        ("sizes.small", "int_parsing"),
    ]


def test_field_issues_never_echo_input_values() -> None:
    secret = "forbidden-secret-value"
    issues = issues_for({"nickname": secret, "ident": "not-a-uuid-zzz", "pet": {"kind": secret}})
    assert secret not in str(issues) and "zzz" not in str(issues)
    assert {i["field"]: i["message"] for i in issues} == {
        "nickname": "Value is invalid.",
        "ident": "Value is invalid.",
        "pet": "Value is invalid.",
    }


def test_authored_messages_without_the_value_are_kept() -> None:
    (issue,) = issues_for({"code": "ab"})
    assert issue == {"field": "code", "issue": "value_error", "message": "Too short."}


def test_dict_keys_that_are_not_field_names_are_masked() -> None:
    (issue,) = issues_for({"sizes": {"call me at +44 20 7946 0000": "x"}})
    assert issue["field"] == "sizes.*"


def test_invalid_argument_from_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        Form.model_validate({"code": 1})
    error = errors.invalid_argument(caught.value)
    assert error.code is FunctionsErrorCode.INVALID_ARGUMENT
    assert error.details == [
        {"field": "code", "issue": "string_type", "message": "Input should be a valid string"}
    ]
