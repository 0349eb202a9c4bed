"""JSON in and out: rows as plain dicts, request bodies checked field by field, and the one error
shape every endpoint answers with: {"error": "<one sentence>", "fields": {"<field>": [...]}}."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.http import JsonResponse, QueryDict

from deployments.models import (
    MAX_TASKS,
    App,
    AwsAccount,
    Cluster,
    Deployment,
    DeploymentEvent,
    Job,
    Release,
    ScalingSettings,
)
from deployments.services import APP_SETTINGS, SCALABLE_FIELDS
from deployments.validators import validate_config_vars, validate_image

Json = dict[str, Any]
FieldErrors = dict[str, list[str]]


# BigAutoField's largest key: a larger id is no row (and is not worth a query).
MAX_ID = 2**63 - 1


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
        "capacity": capacity_to_json(cluster),
        "created_at": _timestamp(cluster.created_at),
        "updated_at": _timestamp(cluster.updated_at),
    }


def capacity_to_json(cluster: Cluster) -> Json:
    """The live capacity the tick last read (none unless the cluster is ready)."""
    live = cluster.live_instances is not None
    return {
        "instances": cluster.live_instances,
        "zones": cluster.capacity.get("zones", []) if live else [],
        "read_at": _timestamp(cluster.capacity_at) if live else None,
        "error": cluster.capacity_error,
    }


def scaling_to_json(scaling: ScalingSettings, app: App) -> Json:
    return {
        "autoscaling": scaling.autoscaling_enabled,
        "min_tasks": scaling.min_tasks,
        "max_tasks": scaling.max_tasks,
        "cpu_target": scaling.cpu_target,
        "desired_count": app.desired_count,
        "applied_at": _timestamp(scaling.applied_at),
    }


def app_to_json(app: App) -> Json:
    """`app` as `selectors.apps_with_status` reads it: with its cluster, scaling settings and the
    live_version and active_deployment_id annotations. Values of config vars and secrets are
    never shown: only their names."""
    return {
        "name": app.name,
        "cluster": app.cluster.name,
        "port": app.port,
        "health_check_path": app.health_check_path,
        "cpu": app.cpu,
        "memory": app.memory,
        "command": app.command,
        "desired_count": app.desired_count,
        "min_healthy_percent": app.min_healthy_percent,
        "max_percent": app.max_percent,
        "circuit_breaker": app.circuit_breaker,
        "rollout_timeout_seconds": app.rollout_timeout_seconds,
        "config_var_names": sorted(app.config_vars),
        "secret_names": sorted(app.secrets),
        "scaling": scaling_to_json(app.scaling, app),
        "live_release": getattr(app, "live_version", None),
        "active_deployment": getattr(app, "active_deployment_id", None),
        "service_arn": app.service_arn,
        "created_at": _timestamp(app.created_at),
        "updated_at": _timestamp(app.updated_at),
    }


def release_to_json(release: Release) -> Json:
    """`release` with its created_by user loaded (select_related) or none."""
    return {
        "version": release.version,
        "image": release.image,
        "kind": release.kind,
        "task_definition_arn": release.task_definition_arn,
        "created_by": release.created_by.get_username() if release.created_by else None,
        "created_at": _timestamp(release.created_at),
        "description": release.description,
        "rollback_of": release.rollback_of.version if release.rollback_of else None,
    }


def event_to_json(event: DeploymentEvent) -> Json:
    return {"id": event.pk, "at": _timestamp(event.created_at), "message": event.message}


def deployment_to_json(
    deployment: Deployment, events: Iterable[DeploymentEvent] = (), more_events: bool = False
) -> Json:
    """`deployment` with its app and release loaded; `events` a page of them, oldest first."""
    return {
        "id": deployment.pk,
        "app": deployment.app.name,
        "status": deployment.status,
        "release": deployment.release.version,
        "desired": deployment.desired_count,
        "running": deployment.running_count,
        "pending": deployment.pending_count,
        "failed": deployment.failed_count,
        "rollout_state": deployment.rollout_state or None,
        "reason": deployment.rollout_state_reason,
        "created_at": _timestamp(deployment.created_at),
        "started_at": _timestamp(deployment.started_at),
        "finished_at": _timestamp(deployment.finished_at),
        "events": [event_to_json(event) for event in events],
        "more_events": more_events,
    }


def job_to_json(job: Job) -> Json:
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "error": job.error,
        "created_at": _timestamp(job.created_at),
        "finished_at": _timestamp(job.finished_at),
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


JsonKind = type[str] | type[int] | type[bool] | type[dict[str, Any]]


@dataclass(frozen=True)
class Field:
    kind: JsonKind
    required: bool = False


def _type_error(value: Any, kind: JsonKind) -> str | None:
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"Expected an integer, got {_json_type(value)}."
    if kind is bool:
        return None if isinstance(value, bool) else f"Expected a boolean, got {_json_type(value)}."
    if kind is dict:
        return None if isinstance(value, dict) else f"Expected an object, got {_json_type(value)}."
    if not isinstance(value, str):
        return f"Expected a string, got {_json_type(value)}."
    return _text_error(value)


def _text_error(value: str) -> str | None:
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


# Apps, releases and rollouts

APP_FIELDS = {
    "name": Field(str, required=True),
    "cluster": Field(str, required=True),
    "port": Field(int),
    "health_check_path": Field(str),
    "cpu": Field(int),
    "memory": Field(int),
    "command": Field(str),
    "desired_count": Field(int),
    "min_healthy_percent": Field(int),
    "max_percent": Field(int),
    "circuit_breaker": Field(bool),
    "rollout_timeout_seconds": Field(int),
    "config_vars": Field(dict),
}
APP_READ_ONLY = dict.fromkeys(
    ("live_release", "active_deployment", "config_var_names", "service_arn", "created_at",
     "updated_at"),
    READ_ONLY,
) | {
    "scaling": "Set scaling with PUT /apps/{name}/scaling.",
    "secret_names": "Set secrets with PUT /apps/{name}/secrets/{secret_name}.",
}  # fmt: skip
APP_UPDATE_FIELDS = {name: APP_FIELDS[name] for name in APP_SETTINGS}
APP_UPDATE_READ_ONLY = APP_READ_ONLY | {
    "name": "An app's name cannot be changed; create another app.",
    "cluster": "An app's cluster cannot be changed; create the app on the other cluster.",
    "desired_count": "Set the task count with PUT /apps/{name}/scaling.",
    "config_vars": "Set config vars with PUT /apps/{name}/config, which makes a new release.",
}
DEPLOY_FIELDS = {"image": Field(str, required=True), "description": Field(str)}
ROLLBACK_FIELDS = {"version": Field(int, required=True)}
CONFIG_FIELDS = {"config_vars": Field(dict, required=True)}
SECRET_FIELDS = {"value": Field(str, required=True)}
AUTOSCALING_FIELDS = {
    "autoscaling": Field(bool, required=True),
    "min_tasks": Field(int),
    "max_tasks": Field(int),
    "cpu_target": Field(int),
}
FIXED_SCALING_FIELDS = {"autoscaling": Field(bool, required=True), "desired_count": Field(int)}
# PositiveIntegerField's range on every database: larger numbers are never a release version.
MAX_VERSION = 2**31 - 1


def _max_length(model: type[models.Model], name: str) -> int:
    field = model._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


def parse_app_create(data: Json) -> Json:
    """Keyword arguments for `services.app_create`, "cluster" still the cluster's name."""
    fields = parse_fields(data, APP_FIELDS, APP_READ_ONLY)
    if "config_vars" in fields:
        check_config_vars(fields["config_vars"])
    return fields


def parse_app_update(data: Json) -> Json:
    """Keyword arguments for `services.app_update` (the changes only)."""
    changes = parse_fields(data, APP_UPDATE_FIELDS, APP_UPDATE_READ_ONLY)
    if not changes:
        raise ApiError(400, f"Send at least one of: {', '.join(APP_SETTINGS)}.")
    return changes


def parse_deploy(data: Json) -> Json:
    """{"image", "description"} for `services.deployment_start`; the image checked first, so that
    a bad reference is a 400 about the field "image" (the service says it without a field)."""
    fields = parse_fields(data, DEPLOY_FIELDS)
    errors: FieldErrors = {}
    image_length = _max_length(Release, "image")
    if len(fields["image"]) > image_length:
        errors["image"] = [f"At most {image_length} characters."]
    else:
        try:
            validate_image(fields["image"])
        except ValidationError as error:
            errors["image"] = error.messages
    description_length = _max_length(Release, "description")
    if len(fields.get("description", "")) > description_length:
        errors["description"] = [f"At most {description_length} characters."]
    if errors:
        raise ApiError(400, f"Invalid value(s) for: {', '.join(errors)}.", errors)
    return fields


def parse_rollback(data: Json) -> int:
    """The version to roll back to."""
    version: int = parse_fields(data, ROLLBACK_FIELDS)["version"]
    if not 1 <= version <= MAX_VERSION:
        message = f"Release versions start at 1; there is no v{version}."
        raise ApiError(400, message, {"version": [message]})
    return version


def parse_config(data: Json) -> dict[str, str]:
    """The app's complete new set of config vars: {"config_vars": {"NAME": "value", ...}}."""
    if data and "config_vars" not in data:
        raise ApiError(
            400,
            'Send the config vars as {"config_vars": {"NAME": "value", ...}}.',
            {"config_vars": ["This field is required."]},
        )
    config_vars: dict[str, str] = parse_fields(data, CONFIG_FIELDS)["config_vars"]
    check_config_vars(config_vars)
    return config_vars


def parse_secret(data: Json) -> str:
    """The value of {"value": "..."} for `services.secret_set`, which checks it (before the
    app's state, so a bad one is a 400 whatever that is) without ever quoting it."""
    value: str = parse_fields(data, SECRET_FIELDS)["value"]
    return value


def check_config_vars(config_vars: dict[str, Any]) -> None:
    """The validators' rules (names, reserved prefixes, size), reported under "config_vars"."""
    problem = next(
        (
            f"{name!r}: {error}"
            for name, value in config_vars.items()
            for text in (name, value)
            if isinstance(text, str) and (error := _text_error(text))
        ),
        None,
    )
    if problem is None:
        try:
            validate_config_vars(config_vars)
        except ValidationError as error:
            problem = " ".join(error.messages)
    if problem is not None:
        raise ApiError(400, problem, {"config_vars": [problem]})


def parse_scaling(data: Json, scaling: ScalingSettings) -> Json:
    """Keyword arguments for `services.scaling_update`: {"autoscaling": true, "min_tasks",
    "max_tasks", "cpu_target"} or {"autoscaling": false, "desired_count"}; what is left out keeps
    its value."""
    autoscaling = data.get("autoscaling")
    if not isinstance(autoscaling, bool):
        problem = (
            f"Expected a boolean, got {_json_type(autoscaling)}."
            if "autoscaling" in data
            else "This field is required."
        )
        raise ApiError(
            400,
            "Send autoscaling: true (with min_tasks, max_tasks, cpu_target) or false (with "
            "desired_count).",
            {"autoscaling": [problem]},
        )
    if autoscaling:
        fields = parse_fields(
            data, AUTOSCALING_FIELDS, {"desired_count": "Only with autoscaling false."}
        )
    else:
        fields = parse_fields(
            data,
            FIXED_SCALING_FIELDS,
            dict.fromkeys(("min_tasks", "max_tasks", "cpu_target"), "Only with autoscaling true."),
        )
    fields["autoscaling_enabled"] = fields.pop("autoscaling")
    low = fields.get("min_tasks", scaling.min_tasks)
    high = fields.get("max_tasks", scaling.max_tasks)
    if 0 <= low <= MAX_TASKS and 0 <= high <= MAX_TASKS and low > high:
        errors: FieldErrors = (
            {"min_tasks": [f"Must be at most max_tasks ({high})."]}
            if "min_tasks" in fields
            else {"max_tasks": [f"Must be at least min_tasks ({low})."]}
        )
        raise ApiError(400, "Scaling must satisfy min_tasks ≤ max_tasks.", errors)
    return fields


def parse_no_body(data: Json) -> None:
    """For actions that take no parameters: an empty body or {}, nothing else."""
    parse_fields(data, {})


def parse_events_after(query: QueryDict) -> int:
    """?events_after=<event id>: the cursor of a client following a rollout's events."""
    raw = query.get("events_after", "0")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_ID):
        raise ApiError(400, "events_after must be an event id (a whole number, 0 or more).")
    return int(raw)
