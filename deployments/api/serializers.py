"""JSON in and out: rows as plain dicts, request bodies checked field by field, and the one error
shape every endpoint answers with: {"error": "<one sentence>", "fields": {"<field>": [...]}}."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import JsonResponse

from deployments.models import AwsAccount, Cluster
from deployments.services import SCALABLE_FIELDS

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


# Output


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def account_to_json(account: AwsAccount) -> Json:
    return {
        "name": account.name,
        "mode": account.mode,
        "role_arn": account.role_arn,
        "external_id": account.external_id,
        "region": account.region,
        "verified_at": _timestamp(account.verified_at),
        "verification_error": account.verification_error,
        "created_at": _timestamp(account.created_at),
    }


def cluster_to_json(cluster: Cluster) -> Json:
    return {
        "name": cluster.name,
        "account": cluster.account.name,
        "region": cluster.region,
        "instance_type": cluster.instance_type,
        "min_instances": cluster.min_instances,
        "desired_instances": cluster.desired_instances,
        "max_instances": cluster.max_instances,
        "status": cluster.status,
        "status_reason": cluster.status_reason,
        "steps": cluster.steps,
        "resources": cluster.resources,
        "created_at": _timestamp(cluster.created_at),
        "updated_at": _timestamp(cluster.updated_at),
    }


# Input


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
        raise ApiError(400, f"The request body must be a JSON object, not {_json_type(data)}.")
    return data


def _json_type(value: Any) -> str:
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


@dataclass(frozen=True)
class Field:
    kind: type[str] | type[int]
    required: bool = False


def _type_error(value: Any, kind: type[str] | type[int]) -> str | None:
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"Expected an integer, got {_json_type(value)}."
    if not isinstance(value, str):
        return f"Expected a string, got {_json_type(value)}."
    # Neither can be stored (PostgreSQL refuses NUL; lone surrogates are not UTF-8) nor be valid.
    if "\x00" in value:
        return "Null characters are not allowed."
    try:
        value.encode()
    except UnicodeEncodeError:
        return "Enter valid Unicode text."
    return None


def parse_fields(
    data: Json, fields: Mapping[str, Field], read_only: Mapping[str, str] | None = None
) -> Json:
    """The entries of `data` named in `fields`, each of its declared JSON type. Anything else is
    refused with one ApiError (400) that lists every problem by field."""
    read_only = read_only or {}
    unknown = [name for name in data if name not in fields and name not in read_only]
    errors: FieldErrors = {name: ["Unknown field."] for name in unknown}
    fixed = [name for name in data if name in read_only]
    errors.update({name: [read_only[name]] for name in fixed})
    for name, field in fields.items():
        if name not in data:
            if field.required:
                errors[name] = ["This field is required."]
        elif problem := _type_error(data[name], field.kind):
            errors[name] = [problem]
    if unknown:
        raise ApiError(400, f"Unknown field(s): {', '.join(unknown)}.", errors)
    if fixed:
        raise ApiError(400, f"Field(s) that cannot be set: {', '.join(fixed)}.", errors)
    if errors:
        raise ApiError(400, f"Missing or invalid value(s) for: {', '.join(errors)}.", errors)
    return {name: data[name] for name in fields if name in data}


READ_ONLY = "This field is read-only."
ACCOUNT_FIELDS = {
    "name": Field(str, required=True),
    "mode": Field(str, required=True),
    "region": Field(str),
    "role_arn": Field(str),
}
ACCOUNT_READ_ONLY = {
    "external_id": "The server generates the ExternalId (it names this connection to your "
    "account in the role's trust policy); leave this field out.",
    "verified_at": READ_ONLY,
    "verification_error": READ_ONLY,
    "created_at": READ_ONLY,
}
CLUSTER_FIELDS = {
    "name": Field(str, required=True),
    "account": Field(str, required=True),
    "region": Field(str),
    "instance_type": Field(str),
    "min_instances": Field(int),
    "desired_instances": Field(int),
    "max_instances": Field(int),
}
CLUSTER_READ_ONLY = dict.fromkeys(
    ("status", "status_reason", "steps", "resources", "created_at", "updated_at"), READ_ONLY
)
CLUSTER_SCALE_FIELDS = {name: Field(CLUSTER_FIELDS[name].kind) for name in SCALABLE_FIELDS}
CLUSTER_FIXED = "A cluster's name, account and region cannot be changed; create another cluster."
CLUSTER_SCALE_READ_ONLY = CLUSTER_READ_ONLY | dict.fromkeys(
    ("name", "account", "region"), CLUSTER_FIXED
)
INSTANCE_FIELDS = ("min_instances", "desired_instances", "max_instances")
MAX_INSTANCES = 100


def parse_account(data: Json) -> Json:
    """Keyword arguments for `services.account_create`."""
    fields = parse_fields(data, ACCOUNT_FIELDS, ACCOUNT_READ_ONLY)
    fields.setdefault("region", AwsAccount._meta.get_field("region").get_default())
    fields.setdefault("role_arn", "")
    if fields["mode"] == AwsAccount.Mode.ASSUME_ROLE and not fields["role_arn"]:
        raise ApiError(
            400,
            "An assume_role account needs a role ARN.",
            {"role_arn": ["This field is required when mode is assume_role."]},
        )
    return fields


def parse_cluster_create(data: Json) -> Json:
    """Keyword arguments for `services.cluster_create`, with "account" still the account's name."""
    fields = parse_fields(data, CLUSTER_FIELDS, CLUSTER_READ_ONLY)
    blank = Cluster()  # for the model's defaults
    defaults = {name: getattr(blank, name) for name in INSTANCE_FIELDS}
    check_instance_order(defaults | fields, given=fields)
    return fields


def parse_cluster_scale(data: Json, cluster: Cluster) -> Json:
    """Keyword arguments for `services.cluster_scale` (the changes only)."""
    changes = parse_fields(data, CLUSTER_SCALE_FIELDS, CLUSTER_SCALE_READ_ONLY)
    if not changes:
        raise ApiError(400, f"Send at least one of: {', '.join(SCALABLE_FIELDS)}.")
    current = {name: getattr(cluster, name) for name in INSTANCE_FIELDS}
    check_instance_order(current | changes, given=changes)
    return changes


def check_instance_order(values: Mapping[str, Any], given: Collection[str]) -> None:
    """Field-level errors for min ≤ desired ≤ max, naming a field the client sent. (The model's
    check constraint reports the same rule, but for the whole object.) Counts out of the fields'
    own range are left to the model's validators, which name them."""
    counts = [values[name] for name in INSTANCE_FIELDS]
    if not all(0 <= count <= MAX_INSTANCES for count in counts):
        return
    errors: FieldErrors = {}
    for low, high in pairwise(INSTANCE_FIELDS):
        if values[low] <= values[high]:
            continue
        if low in given:
            errors.setdefault(low, []).append(f"Must be at most {high} ({values[high]}).")
        else:
            errors.setdefault(high, []).append(f"Must be at least {low} ({values[low]}).")
    if errors:
        raise ApiError(
            400, "Instances must satisfy min_instances ≤ desired_instances ≤ max_instances.", errors
        )
