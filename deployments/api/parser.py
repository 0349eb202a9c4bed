"""Request bodies: a JSON object, refused in the API's words when it is anything else."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from ninja.parser import Parser

from deployments.api.errors import ApiError, Json, json_type


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json_object(body: bytes) -> Json:
    if not body.strip():
        raise ApiError(400, "Send a JSON object in the request body.")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "The request body is nested too deeply.") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError among them
        raise ApiError(400, f"The request body is not valid JSON: {error}.") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"The request body must be a JSON object, not {json_type(data)}.")
    return data


class JsonObjectParser(Parser):
    """django-ninja's parser, strict about JSON (no NaN) and about the body being an object.
    django-ninja answers any parser error as its own 400; the API turns it back into ours (see
    api.py)."""

    def parse_body(self, request: HttpRequest) -> Json:
        return parse_json_object(request.body)
