"""The one error shape every endpoint answers with: {"error": "<one sentence>", "fields":
{"<field>": [...]}}, and the refusals that become it: ours (ApiError), the services' (Django's
ValidationError) and the schemas' (pydantic's errors, reworded as the API has always worded them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import JsonResponse
from pydantic_core import ErrorDetails

Json = dict[str, Any]
FieldErrors = dict[str, list[str]]


class ApiError(Exception):
    """Stop handling the request and answer with this status and error body."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: FieldErrors | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or {}
        self.headers = dict(headers or {})

    def response(self) -> JsonResponse:
        return error_response(self.status, self.message, self.fields, self.headers)


def error_response(
    status: int,
    message: str,
    fields: FieldErrors | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    body: Json = {"error": message}
    if fields:
        body["fields"] = fields
    return JsonResponse(body, status=status, headers=headers)


def validation_error_response(error: ValidationError) -> JsonResponse:
    """A service's refusal as an answer. Values that fail validation come keyed by field (from
    `full_clean()`): 400. The services refuse what the object's current state forbids (resizing a
    cluster still provisioning, deleting one with apps) with a bare message: 409, so that a script
    can tell "fix the request" from "try again later"."""
    if not hasattr(error, "error_dict"):
        return error_response(409, " ".join(error.messages))
    messages = error.message_dict
    fields = {name: list(errors) for name, errors in messages.items() if name != NON_FIELD_ERRORS}
    general = " ".join(messages.get(NON_FIELD_ERRORS, []))
    return error_response(400, general or f"Invalid value(s) for: {', '.join(fields)}.", fields)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


# pydantic's error types for a value of the wrong JSON type → the type the field takes.
EXPECTED = {
    "int_type": "an integer",
    "bool_type": "a boolean",
    "string_type": "a string",
    "dict_type": "an object",
}
# A discriminator's own error (see Discriminator(custom_error_type=...) in the schemas).
TAG_ERROR = "tag"


def field_problem(error: ErrorDetails) -> str:
    """One field's problem, in the API's words."""
    if error["type"] == "missing":
        return "This field is required."
    if error["type"] in EXPECTED:
        return f"Expected {EXPECTED[error['type']]}, got {json_type(error['input'])}."
    return error["msg"]


def body_refusal(
    errors: Sequence[tuple[str, ErrorDetails]], read_only: Mapping[str, str]
) -> ApiError:
    """One 400 that lists every problem by field: `errors` are pydantic's, each with the body
    field it is about; `read_only` the fields clients may not send, each with why. The sentence
    names the worst kind of problem: unknown fields, then fields that cannot be set, then the
    rest."""
    unknown = [name for name, error in errors if error["type"] == "extra_forbidden"]
    fixed = [name for name in unknown if name in read_only]
    unknown = [name for name in unknown if name not in read_only]
    fields: FieldErrors = {name: ["Unknown field."] for name in unknown}
    fields |= {name: [read_only[name]] for name in fixed}
    for name, error in errors:
        if error["type"] == TAG_ERROR:
            return _tag_refusal(error)
        if name not in fields:
            fields[name] = [field_problem(error)]
    if unknown:
        return ApiError(400, f"Unknown field(s): {', '.join(unknown)}.", fields)
    if fixed:
        return ApiError(400, f"Field(s) that cannot be set: {', '.join(fixed)}.", fields)
    return ApiError(400, f"Missing or invalid value(s) for: {', '.join(fields)}.", fields)


def _tag_refusal(error: ErrorDetails) -> ApiError:
    """A body that is one of several shapes told apart by one field, without a usable value."""
    context = error.get("ctx", {})
    name, expected, data = context["field"], context["expected"], error["input"]
    if isinstance(data, dict) and name in data:
        problem = f"Expected {expected}, got {json_type(data[name])}."
    else:
        problem = "This field is required."
    return ApiError(400, error["msg"], {name: [problem]})
