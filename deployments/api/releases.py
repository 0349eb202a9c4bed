"""Numbered, immutable releases of an app and the rollouts (deployments) that put them live:
deploy, roll back, change config vars and secrets, follow, cancel."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import pydantic
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from ninja import Router, Status
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from deployments import selectors, services
from deployments.api.apps import CONFIG_VARS, check_config_vars
from deployments.api.auth import ApiRequest
from deployments.api.errors import ApiError, FieldErrors
from deployments.api.lookups import TeamApp
from deployments.api.parser import parse_json_object
from deployments.api.schemas import (
    MAX_ID,
    NAME,
    Body,
    OptionalTimestamp,
    Out,
    Text,
    Timestamp,
    documented,
    located,
    max_length,
    pattern,
    refusal,
    responses,
)
from deployments.models import Deployment as DeploymentRow
from deployments.models import DeploymentEvent as DeploymentEventRow
from deployments.models import Release as ReleaseRow
from deployments.validators import ENV_NAME, MAX_SECRET_BYTES, MAX_SECRET_NAME, validate_image

router = Router(tags=["releases"])

# Events per answer: a stuck rollout can report for hours.
EVENTS_PAGE = 100
# PositiveIntegerField's range on every database: larger numbers are never a release version.
MAX_VERSION = 2**31 - 1
VERSION = {"minimum": 1, "description": "v1, v2, … per app."}


class Release(Out):
    """An immutable, numbered snapshot of what the app runs. Read with its created_by user
    (select_related) or none."""

    version: int = documented(**VERSION)
    image: str = documented(examples=["nginx:1.27"])
    kind: str = documented(
        enum=ReleaseRow.Kind.values,
        description="deploy: a new image; config: new config vars; rollback: an earlier "
        "release's image and config again.",
    )
    task_definition_arn: str = documented(
        description="Empty until the rollout has registered it; a rollback reuses the earlier "
        "release's while it is still active."
    )
    created_by: str | None = documented(
        description="The username of who made it; null when made with an API token or the CLI."
    )
    created_at: Timestamp
    description: str = documented(maxLength=max_length(ReleaseRow, "description"))
    rollback_of: int | None = documented(
        minimum=1, description="For a rollback, the version it copies."
    )

    @staticmethod
    def resolve_created_by(release: ReleaseRow) -> str | None:
        return release.created_by.get_username() if release.created_by else None

    @staticmethod
    def resolve_rollback_of(release: ReleaseRow) -> int | None:
        return release.rollback_of.version if release.rollback_of else None


class DeploymentEvent(Out):
    id: int = documented(
        description="Grows with every event recorded: pass the last one seen as events_after to "
        "get only newer ones."
    )
    at: Timestamp
    message: str

    @staticmethod
    def resolve_at(event: DeploymentEventRow) -> Any:
        return event.created_at


class Deployment(BaseModel):
    """One rollout of one release, followed until ECS says how it ended."""

    id: int
    app: str = documented(**NAME)
    status: str = documented(
        enum=DeploymentRow.Status.values,
        description="queued → registering → updating → in_progress → succeeded | failed | "
        "rolled_back | timed_out | cancelled. rolled_back: ECS's circuit breaker rolled back, the "
        "previous release runs again.",
    )
    release: int = documented(**VERSION | {"description": "The version being rolled out."})
    desired: int = documented(minimum=0)
    running: int = documented(minimum=0, description="Tasks of this release running.")
    pending: int = documented(minimum=0)
    failed: int = documented(minimum=0)
    rollout_state: str | None = documented(
        enum=["IN_PROGRESS", "COMPLETED", "FAILED", None],
        description="ECS's rolloutState; null until ECS has one.",
    )
    reason: str = documented(
        description="ECS's rolloutStateReason, or why TinyStacks ended the rollout."
    )
    created_at: Timestamp
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp
    events: list[DeploymentEvent] = documented(
        description="ECS service events and TinyStacks' own steps in the order they were "
        "recorded: up to 100 after events_after."
    )
    more_events: bool = documented(
        description="More events follow the last one listed: ask again with events_after set to "
        "its id."
    )


def deployment_out(
    deployment: DeploymentRow, events: Iterable[DeploymentEventRow] = (), more_events: bool = False
) -> Deployment:
    """`deployment` with its app and release loaded; `events` a page of them, oldest first."""
    return Deployment.model_validate(
        {
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
            "created_at": deployment.created_at,
            "started_at": deployment.started_at,
            "finished_at": deployment.finished_at,
            "events": list(events),
            "more_events": more_events,
        }
    )


class Rollout(Out):
    """A new release and the deployment rolling it out."""

    release: Release
    deployment: Deployment


class Cancelled(Out):
    deployment: Deployment
    rollback: Rollout | None = documented(
        description="The rollback to the live release it started; null when the app has never "
        "had a successful rollout."
    )


class Deploy(Body):
    image: Text = documented(
        maxLength=max_length(ReleaseRow, "image"),
        description="A Docker image reference.",
        examples=["nginx:1.27", "ghcr.io/acme/web:2.3.1"],
    )
    description: Text = documented(
        "", maxLength=max_length(ReleaseRow, "description"), description="Shown with the release."
    )


class Rollback(Body):
    version: int = documented(**VERSION | {"description": "The release to go back to."})


class ConfigVars(Body):
    config_vars: dict[str, Any] = documented(
        **CONFIG_VARS
        | {"description": "The complete new set: names left out are removed. "
           + CONFIG_VARS["description"]}
    )  # fmt: skip

    @classmethod
    def refusal(cls, errors: Any) -> ApiError:
        """Config vars sent as the body itself are told where they go."""
        missing = any(name == "config_vars" and e["type"] == "missing" for name, e in errors)
        if missing and any(e["type"] == "extra_forbidden" for _, e in errors):
            return ApiError(
                400,
                'Send the config vars as {"config_vars": {"NAME": "value", ...}}.',
                {"config_vars": ["This field is required."]},
            )
        return super().refusal(errors)


class SecretValue(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"value": "correct horse battery staple"}]}
    )
    value: Text = Field(
        repr=False,  # so that no error report's variables show it
        description=f"At most {MAX_SECRET_BYTES} bytes (UTF-8), no null characters. Encrypted at "
        "once; never shown again, in any answer.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_SECRET_BYTES, "writeOnly": True},
    )


class NoBody(Body):
    """For actions that take no parameters: an empty body or {}, nothing else."""


def _event_id(raw: Any) -> int:
    """?events_after=<event id>: the cursor of a client following a rollout's events."""
    if not (
        isinstance(raw, str)
        and raw.isascii()
        and raw.isdigit()
        and len(raw) <= 19
        and int(raw) <= MAX_ID
    ):
        raise ApiError(400, "events_after must be an event id (a whole number, 0 or more).")
    return int(raw)


EventsAfter = Annotated[
    int,
    BeforeValidator(_event_id),
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_ID,
            "description": "List only the events recorded after the event with this id (default 0: "
            "from the first). A client following a rollout passes the last id it has seen.",
        }
    ),
]
SecretName = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "maxLength": MAX_SECRET_NAME, "pattern": pattern(ENV_NAME),
         "description": "The secret's name: the environment variable the container sees."}
    ),
]  # fmt: skip
DeploymentId = Annotated[
    int,
    WithJsonSchema(
        {"type": "integer", "minimum": 1,
         "description": "The deployment's id (in the answer to a deploy, a rollback or a config "
         "change, and as an app's active_deployment)."}
    ),
]  # fmt: skip


def _rollout(deployment: DeploymentRow) -> dict[str, Any]:
    """A write's answer when it started a rollout: the new release and its deployment."""
    return {"release": deployment.release, "deployment": deployment_out(deployment)}


def _accepted(deployment: DeploymentRow, response: HttpResponse) -> Status[Any]:
    response["Location"] = reverse("api:deployment", args=[deployment.pk])
    return Status(202, _rollout(deployment))


def _get_deployment(request: ApiRequest, id: int) -> DeploymentRow:
    deployment = selectors.team_deployment(request.team, id) if id <= MAX_ID else None
    if deployment is None:
        raise ApiError(404, f"This team has no deployment {id}.")
    return deployment


def _hiding_variables[**P, R](view: Callable[P, R]) -> Callable[P, R]:
    """sensitive_variables(): error reports show none of the view's variables, nor of the calls
    it makes. The view's signature is kept resolved, for django-ninja (which would look its
    annotations up in Django's module, the wrapper's)."""
    hidden = sensitive_variables()(view)
    hidden.__signature__ = inspect.signature(view, eval_str=True)  # type: ignore[attr-defined]
    return hidden


def _take_no_parameters(data: dict[str, Any]) -> None:
    try:
        NoBody.model_validate(data)
    except pydantic.ValidationError as error:
        raise refusal(error.errors(include_url=False), NoBody) from None


# Follow the rollout at GET /deployments/{id}, the Location header.
ACCEPTED = located(202, "The deployment's")
ROLLOUT_ERRORS = (400, 401, 403, 404, 409, 413)


@router.post(
    "/apps/{str:name}/deploys",
    response=responses(202, Rollout, *ROLLOUT_ERRORS),
    url_name="app-deploys",
    operation_id="deployApp",
    openapi_extra=ACCEPTED,
    summary="Deploy an image",
    description="Makes release vN+1 of the image with the app's current settings and config "
    "vars, and rolls it out. One rollout per app at a time: 409 while another is in flight, "
    "naming it.",
)
def app_deploy(
    request: ApiRequest, name: TeamApp, payload: Deploy, response: HttpResponse
) -> object:
    """The image is checked first, so that a bad reference is a 400 about the field "image" (the
    service says it without a field)."""
    errors: FieldErrors = {
        field: [f"At most {max_length(ReleaseRow, field)} characters."]
        for field in ("image", "description")
        if len(getattr(payload, field)) > max_length(ReleaseRow, field)
    }
    if "image" not in errors:
        try:
            validate_image(payload.image)
        except ValidationError as error:
            errors["image"] = error.messages
    if errors:
        raise ApiError(400, f"Invalid value(s) for: {', '.join(errors)}.", errors)
    deployment = services.deployment_start(
        app=name, actor=None, ip_address=request.ip_address, **payload.changes()
    )
    return _accepted(deployment, response)


@router.get(
    "/apps/{str:name}/releases",
    response=responses(200, list[Release], 401, 404),
    url_name="app-releases",
    operation_id="listReleases",
    summary="List an app's releases, newest first",
)
def release_list(request: ApiRequest, name: TeamApp) -> object:
    return selectors.app_releases(name)


@router.post(
    "/apps/{str:name}/rollback",
    response=responses(202, Rollout, *ROLLOUT_ERRORS),
    url_name="app-rollback",
    operation_id="rollbackApp",
    openapi_extra=ACCEPTED,
    summary="Roll back to an earlier release",
    description="Makes a new release (kind rollback) with that release's image and config vars, "
    "reusing its task definition while it is still active, and rolls it out. 400 when there is "
    "no such release or the app runs it already.",
)
def app_rollback(
    request: ApiRequest, name: TeamApp, payload: Rollback, response: HttpResponse
) -> object:
    if not 1 <= payload.version <= MAX_VERSION:
        message = f"Release versions start at 1; there is no v{payload.version}."
        raise ApiError(400, message, {"version": [message]})
    deployment = services.app_rollback(
        app=name, actor=None, version=payload.version, ip_address=request.ip_address
    )
    return _accepted(deployment, response)


@router.put(
    "/apps/{str:name}/config",
    response=responses(202, Rollout, *ROLLOUT_ERRORS),
    url_name="app-config",
    operation_id="setConfigVars",
    openapi_extra=ACCEPTED,
    summary="Replace an app's config vars",
    description="Makes a new release (kind config) of the live image with these environment "
    "variables and rolls it out. 409 before the app's first successful deploy.",
)
def app_config(
    request: ApiRequest, name: TeamApp, payload: ConfigVars, response: HttpResponse
) -> object:
    check_config_vars(payload.config_vars)
    deployment = services.config_set(
        app=name, actor=None, config_vars=payload.config_vars, ip_address=request.ip_address
    )
    return _accepted(deployment, response)


@router.put(
    "/apps/{str:name}/secrets/{str:secret_name}",
    response=responses(202, Rollout, *ROLLOUT_ERRORS),
    url_name="app-secret",
    operation_id="setSecret",
    openapi_extra=ACCEPTED,
    summary="Add or replace a secret",
    description="Encrypts the value, then makes a new release (kind config) of the live image "
    "with it and rolls it out; ECS reads it from an SSM Parameter Store SecureString. The answer "
    "names the secret, never its value. 400 when the name or the value is invalid "
    "(`fields.name`, `fields.value`) or a plain config var has the name; 409 before the app's "
    "first successful deploy.",
)
@_hiding_variables
def secret_set(
    request: ApiRequest,
    name: TeamApp,
    secret_name: SecretName,
    payload: SecretValue,
    response: HttpResponse,
) -> object:
    deployment = services.secret_set(
        app=name, actor=None, name=secret_name, value=payload.value, ip_address=request.ip_address
    )
    return _accepted(deployment, response)


@router.delete(
    "/apps/{str:name}/secrets/{str:secret_name}",
    response=responses(202, Rollout, 400, 401, 403, 404, 409),
    operation_id="removeSecret",
    openapi_extra=ACCEPTED,
    summary="Remove a secret",
    description="Makes a new release (kind config) of the live image without it and rolls it "
    "out. No request body. 400 when the app has no secret of that name (`fields.name`); 409 "
    "before the app's first successful deploy.",
)
def secret_unset(
    request: ApiRequest, name: TeamApp, secret_name: SecretName, response: HttpResponse
) -> object:
    deployment = services.secret_unset(
        app=name, actor=None, name=secret_name, ip_address=request.ip_address
    )
    return _accepted(deployment, response)


@router.get(
    "/deployments/{int:id}",
    response=responses(200, Deployment, 400, 401, 404),
    url_name="deployment",
    operation_id="getDeployment",
    summary="Follow a rollout: status, task counts, ECS rollout state and events",
)
def deployment_get(request: ApiRequest, id: DeploymentId, events_after: EventsAfter = 0) -> object:
    """The rollout and a page of its events: those after ?events_after=<id>, oldest first."""
    deployment = _get_deployment(request, id)
    events, more = selectors.deployment_events_after(deployment, events_after, EVENTS_PAGE)
    return deployment_out(deployment, events, more)


@router.post(
    "/deployments/{int:id}/cancel",
    response=responses(202, Cancelled, 400, 401, 403, 404, 409, 413),
    url_name="deployment-cancel",
    operation_id="cancelDeployment",
    summary="Cancel a rollout and roll back to the live release",
    description="Stops following the rollout (status cancelled) and rolls back to the app's "
    "live release, if it has one. No request body. 409 when the rollout has already ended.",
)
def deployment_cancel(request: ApiRequest, id: DeploymentId) -> object:
    # No parameters, so the body may be left out; when sent it is JSON, checked as others are.
    data = parse_json_object(request.body) if request.body.strip() else {}
    deployment = _get_deployment(request, id)
    _take_no_parameters(data)
    rollback = services.deployment_cancel(
        deployment=deployment, actor=None, ip_address=request.ip_address
    )
    if rollback is not None:  # the service set the reused revision on the row only
        rollback.release.refresh_from_db(fields=["task_definition_arn"])
    cancelled = _get_deployment(request, id)
    events, more = selectors.deployment_events_after(cancelled, 0, EVENTS_PAGE)
    return Status(
        202,
        {
            "deployment": deployment_out(cancelled, events, more),
            "rollback": _rollout(rollback) if rollback is not None else None,
        },
    )
