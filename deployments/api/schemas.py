"""What the domain routers' schemas share: request bodies that take JSON as it is, timestamps as
the API has always written them, and the bounds the document states.

Bounds (lengths, patterns, ranges) are documented here but enforced where they are defined, by
the models' validators that the services run: the document says what the model will say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar

from django.db import models
from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError, PydanticUndefined

from deployments.api.errors import ApiError, body_refusal
from deployments.models import Job as JobRow
from deployments.models import name_validator, region_validator

Json = dict[str, Any]
JsonSchema = dict[str, Any]

READ_ONLY = "This field is read-only."
# BigAutoField's largest key: a larger id is no row (and is not worth a query).
MAX_ID = 2**63 - 1


def pattern(regex: str | re.Pattern[str]) -> str:
    """A Python regex that must match whole values, as JSON Schema's pattern (ECMA-262, which
    matches anywhere unless anchored, and where `$` is the end of the value)."""
    source = regex if isinstance(regex, str) else regex.pattern
    return "^" + source.removeprefix(r"\A").removesuffix(r"\Z") + "$"


def max_length(model: type[models.Model], name: str) -> int:
    field = model._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


def default(model: type[models.Model], name: str) -> Any:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field.get_default()


NAME: JsonSchema = {
    "maxLength": 40,
    "pattern": pattern(name_validator.regex),
    "description": "1–40 lowercase letters, digits and hyphens; starts and ends with a letter or "
    "digit.",
}
REGION: JsonSchema = {
    "maxLength": 25,
    "pattern": pattern(region_validator.regex),
    "examples": ["eu-west-1"],
}


def documented(default: Any = PydanticUndefined, **schema: Any) -> Any:
    """A field (required unless given a default) with its documented bounds and description,
    left for the model to enforce."""
    description = schema.pop("description", None)
    return Field(default, description=description, json_schema_extra=schema or None)


def _is_text(value: str) -> str:
    # Neither can be stored (PostgreSQL refuses NUL; lone surrogates are not UTF-8) nor be valid.
    if "\x00" in value:
        raise PydanticCustomError("text", "Null characters are not allowed.")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise PydanticCustomError("text", "Enter valid Unicode text.") from None
    return value


def text_error(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    try:
        _is_text(value)
    except PydanticCustomError as error:
        return error.message()
    return None


Text = Annotated[str, AfterValidator(_is_text)]


def _iso(value: datetime) -> str:
    return value.isoformat()


# As JsonResponse wrote them before: full precision, "+00:00" (not pydantic's "Z").
Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso),
    WithJsonSchema({"type": "string", "format": "date-time", "readOnly": True}),
]
OptionalTimestamp = Annotated[
    datetime | None,
    PlainSerializer(lambda value: _iso(value) if value is not None else None),
    WithJsonSchema({"type": ["string", "null"], "format": "date-time", "readOnly": True}),
]


class Body(BaseModel):
    """A request body: JSON values of the declared types only (no "1" for 1), unknown fields
    refused. `read_only` names fields a client may see but not send, each with what to do
    instead."""

    model_config = ConfigDict(extra="forbid", strict=True)
    read_only: ClassVar[Mapping[str, str]] = {}
    # Each body by name, for telling which of several shapes a refusal is about.
    by_name: ClassVar[dict[str, type[Body]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Body.by_name[cls.__name__] = cls

    @classmethod
    def refusal(cls, errors: Sequence[tuple[str, ErrorDetails]]) -> ApiError:
        """The 400 for a body of this schema that failed validation with `errors` (each with
        the field it is about)."""
        return body_refusal(errors, cls.read_only)

    def changes(self) -> Json:
        """The fields the client sent, by name: what an update changes."""
        return self.model_dump(exclude_unset=True)


def refusal(errors: Sequence[ErrorDetails], schema: type[Body], depth: int = 0) -> ApiError:
    """The 400 for pydantic's `errors` about a body of `schema`, located `depth` levels below
    the body's top: a field, or (for a body of several shapes) the tag of the shape, then a
    field."""
    located = [tuple(error["loc"])[depth:] for error in errors]
    if located and located[0] and located[0][0] in Body.by_name:
        schema = Body.by_name[str(located[0][0])]
        located = [loc[1:] for loc in located]
    named = [
        (str(loc[0]) if loc else "", error) for loc, error in zip(located, errors, strict=True)
    ]
    return schema.refusal(named)


def _without_defaults(schema: JsonSchema) -> None:
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class Changes(Body):
    """A body of changes: any of its fields, the others keep their values (so no defaults)."""

    model_config = ConfigDict(json_schema_extra=_without_defaults, extra="forbid", strict=True)


class Out(Schema):
    """An answer read from a model's attributes (and `resolve_<field>` methods)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Job(Out):
    id: int
    kind: str = documented(examples=["delete_app"])
    status: str = documented(enum=JobRow.Status.values)
    error: str
    created_at: Timestamp
    finished_at: OptionalTimestamp


class Error(BaseModel):
    """Every refusal: what went wrong in one sentence and, for problems with particular fields,
    each field's messages."""

    error: str = Field(description="What went wrong, in one sentence.")
    fields: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Present when the problem is with particular fields: each field's name maps "
        "to its messages.",
    )


def responses(success: int, schema: Any, *errors: int) -> dict[int, Any]:
    """An operation's answers: `schema` with status `success`, else an Error with one of
    `errors`."""
    return {success: schema} | dict.fromkeys(errors, Error)


def located(status: int, what: str) -> dict[str, Any]:
    """An operation's `openapi_extra` when its `status` answer names `what`'s URL in a Location
    header (django-ninja documents no headers of its own)."""
    header = {"description": f"{what} URL.", "schema": {"type": "string"}}
    return {"responses": {status: {"headers": {"Location": header}}}}
