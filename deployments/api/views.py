"""The API's views: parse and authorize (`api_view`), call a selector or a service, render JSON.

Writes pass actor=None (a token is not a user) and the caller's address, for the audit trail.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from deployments import selectors, services
from deployments.api import openapi, serializers
from deployments.api.auth import ApiRequest, api_view
from deployments.api.serializers import (
    MAX_ID,
    ApiError,
    Json,
    account_to_json,
    app_to_json,
    cluster_to_json,
    deployment_to_json,
    job_to_json,
    release_to_json,
    scaling_to_json,
)
from deployments.models import App, Cluster, Deployment, name_validator


def _get_cluster(request: ApiRequest, name: str) -> Cluster:
    """The team's live cluster of that name. 404 otherwise, whether or not another team has one."""
    try:
        name_validator(name)  # a name no cluster can have is not looked up
    except ValidationError:
        cluster = None
    else:
        cluster = selectors.clusters_of(request.team).filter(name=name).first()
    if cluster is None:
        raise ApiError(404, f"This team has no cluster named {name}.")
    return cluster


def _get_app(request: ApiRequest, name: str) -> App:
    """The team's app of that name, with the annotations `app_to_json` shows. 404 otherwise,
    whether or not another team has one."""
    try:
        name_validator(name)
    except ValidationError:
        app = None
    else:
        app = selectors.app_with_status(request.team, name)
    if app is None:
        raise ApiError(404, f"This team has no app named {name}.")
    return app


def _get_deployment(request: ApiRequest, id: int) -> Deployment:
    deployment = selectors.team_deployment(request.team, id) if id <= MAX_ID else None
    if deployment is None:
        raise ApiError(404, f"This team has no deployment {id}.")
    return deployment


def _rollout(deployment: Deployment) -> Json:
    """A write's answer when it started a rollout: the new release and its deployment."""
    return {
        "release": release_to_json(deployment.release),
        "deployment": deployment_to_json(deployment),
    }


def _accepted(deployment: Deployment) -> JsonResponse:
    location = reverse("api:deployment", args=[deployment.pk])
    return JsonResponse(_rollout(deployment), status=202, headers={"Location": location})


@api_view(methods=["GET"], public=True)
def openapi_json(request: ApiRequest) -> HttpResponse:
    return JsonResponse(openapi.SPEC)


@api_view(methods=["GET", "POST"])
def accounts(request: ApiRequest) -> HttpResponse:
    if request.method == "GET":
        rows = selectors.accounts_of(request.team)
        return JsonResponse([account_to_json(account) for account in rows], safe=False)
    fields = serializers.parse_account(request.data)
    if selectors.accounts_of(request.team).filter(name=fields["name"]).exists():
        raise ApiError(
            409,
            f"This team already has an AWS account named {fields['name']}.",
            {"name": ["An AWS account of this name already exists in this team."]},
        )
    account = services.account_create(
        team=request.team, actor=None, ip_address=request.ip_address, **fields
    )
    return JsonResponse(account_to_json(account), status=201)


@api_view(methods=["GET", "POST"])
def clusters(request: ApiRequest) -> HttpResponse:
    if request.method == "GET":
        rows = selectors.clusters_of(request.team)
        return JsonResponse([cluster_to_json(cluster) for cluster in rows], safe=False)
    fields = serializers.parse_cluster_create(request.data)
    account_name = fields.pop("account")
    account = selectors.accounts_of(request.team).filter(name=account_name).first()
    if account is None:
        message = f"This team has no AWS account named {account_name}."
        raise ApiError(400, message, {"account": [message]})
    if selectors.clusters_of(request.team).filter(name=fields["name"]).exists():
        raise ApiError(
            409,
            f"This team already has a cluster named {fields['name']}.",
            {"name": ["A cluster of this name already exists in this team."]},
        )
    cluster = services.cluster_create(
        team=request.team, actor=None, account=account, ip_address=request.ip_address, **fields
    )
    location = reverse("api:cluster", args=[cluster.name])
    return JsonResponse(cluster_to_json(cluster), status=201, headers={"Location": location})


@api_view(methods=["GET", "PATCH", "DELETE"])
def cluster(request: ApiRequest, name: str) -> HttpResponse:
    """GET shows it; PATCH resizes it, DELETE tears it down: both answer 202, the work queued."""
    cluster = _get_cluster(request, name)
    if request.method == "GET":
        return JsonResponse(cluster_to_json(cluster))
    if request.method == "PATCH":
        changes = serializers.parse_cluster_scale(request.data, cluster)
        cluster = services.cluster_scale(
            cluster=cluster, actor=None, ip_address=request.ip_address, **changes
        )
    else:
        cluster = services.cluster_delete(
            cluster=cluster, actor=None, ip_address=request.ip_address
        )
    return JsonResponse(cluster_to_json(cluster), status=202)


@api_view(methods=["GET", "POST"])
def apps(request: ApiRequest) -> HttpResponse:
    if request.method == "GET":
        rows = selectors.apps_with_status(request.team)
        return JsonResponse([app_to_json(app) for app in rows], safe=False)
    fields = serializers.parse_app_create(request.data)
    cluster_name = fields.pop("cluster")
    cluster = selectors.clusters_of(request.team).filter(name=cluster_name).first()
    if cluster is None or cluster.status == Cluster.Status.DELETING:
        message = f"This team has no cluster named {cluster_name}."
        if cluster is not None:
            message = f"Cluster {cluster_name} is being deleted."
        raise ApiError(400, message, {"cluster": [message]})
    if selectors.apps_with_status(request.team).filter(name=fields["name"]).exists():
        raise ApiError(
            409,
            f"This team already has an app named {fields['name']}.",
            {"name": ["An app of this name already exists in this team."]},
        )
    app = services.app_create(
        team=request.team, actor=None, cluster=cluster, ip_address=request.ip_address, **fields
    )
    location = reverse("api:app", args=[app.name])
    created = _get_app(request, app.name)
    return JsonResponse(app_to_json(created), status=201, headers={"Location": location})


@api_view(methods=["GET", "PATCH", "DELETE"])
def app(request: ApiRequest, name: str) -> HttpResponse:
    """GET shows it; PATCH changes settings (used from the next release on); DELETE queues its
    teardown (202 with the job; the app is gone when the job has finished)."""
    app = _get_app(request, name)
    if request.method == "GET":
        return JsonResponse(app_to_json(app))
    if request.method == "PATCH":
        changes = serializers.parse_app_update(request.data)
        services.app_update(app=app, actor=None, ip_address=request.ip_address, **changes)
        return JsonResponse(app_to_json(_get_app(request, name)))
    job = selectors.app_deletion_job(app)  # deleting twice is accepted, and queues nothing
    if job is None:
        job = services.app_delete(app=app, actor=None, ip_address=request.ip_address)
    return JsonResponse({"job": job_to_json(job)}, status=202)


@api_view(methods=["POST"])
def app_deploys(request: ApiRequest, name: str) -> HttpResponse:
    """Deploy an image: a new release and its rollout (409 while another is in flight)."""
    app = _get_app(request, name)
    fields = serializers.parse_deploy(request.data)
    deployment = services.deployment_start(
        app=app, actor=None, ip_address=request.ip_address, **fields
    )
    return _accepted(deployment)


@api_view(methods=["GET"])
def app_releases(request: ApiRequest, name: str) -> HttpResponse:
    app = _get_app(request, name)
    rows = selectors.app_releases(app)
    return JsonResponse([release_to_json(release) for release in rows], safe=False)


@api_view(methods=["POST"])
def app_rollback(request: ApiRequest, name: str) -> HttpResponse:
    """A new release with an earlier release's image and config, rolled out."""
    app = _get_app(request, name)
    version = serializers.parse_rollback(request.data)
    deployment = services.app_rollback(
        app=app, actor=None, version=version, ip_address=request.ip_address
    )
    return _accepted(deployment)


@api_view(methods=["PUT"])
def app_config(request: ApiRequest, name: str) -> HttpResponse:
    """Replace the app's config vars: a new release of the live image, rolled out."""
    app = _get_app(request, name)
    config_vars = serializers.parse_config(request.data)
    deployment = services.config_set(
        app=app, actor=None, config_vars=config_vars, ip_address=request.ip_address
    )
    return _accepted(deployment)


@api_view(methods=["PUT", "DELETE"])
@sensitive_variables()  # error reports show none of its variables, nor of the calls it makes
def app_secret(request: ApiRequest, name: str, secret_name: str) -> HttpResponse:
    """Set (PUT {"value": "..."}) or remove (DELETE) one secret: a new release of the live image,
    rolled out. The value is never shown again: answers name the secret only."""
    app = _get_app(request, name)
    if request.method == "DELETE":
        deployment = services.secret_unset(
            app=app, actor=None, name=secret_name, ip_address=request.ip_address
        )
    else:
        value = serializers.parse_secret(request.data)
        deployment = services.secret_set(
            app=app, actor=None, name=secret_name, value=value, ip_address=request.ip_address
        )
    return _accepted(deployment)


@api_view(methods=["PUT"])
def app_scaling(request: ApiRequest, name: str) -> HttpResponse:
    """Autoscaling on CPU, or a fixed number of tasks; applied to the service in the
    background (at once when it exists, else by the first deploy)."""
    app = _get_app(request, name)
    changes = serializers.parse_scaling(request.data, app.scaling)
    scaling = services.scaling_update(app=app, actor=None, ip_address=request.ip_address, **changes)
    return JsonResponse(scaling_to_json(scaling, scaling.app))


# Events per answer: a stuck rollout can report for hours.
EVENTS_PAGE = 100


@api_view(methods=["GET"])
def deployment(request: ApiRequest, id: int) -> HttpResponse:
    """The rollout and a page of its events: those after ?events_after=<id>, oldest first."""
    after = serializers.parse_events_after(request.GET)
    deployment = _get_deployment(request, id)
    events, more = selectors.deployment_events_after(deployment, after, EVENTS_PAGE)
    return JsonResponse(deployment_to_json(deployment, events, more))


@api_view(methods=["POST"], body=False)
def deployment_cancel(request: ApiRequest, id: int) -> HttpResponse:
    """Stop following a rollout and roll back to the live release (when there is one)."""
    deployment = _get_deployment(request, id)
    serializers.parse_no_body(request.data)
    rollback = services.deployment_cancel(
        deployment=deployment, actor=None, ip_address=request.ip_address
    )
    if rollback is not None:  # the service set the reused revision on the row only
        rollback.release.refresh_from_db(fields=["task_definition_arn"])
    cancelled = _get_deployment(request, id)
    events, more = selectors.deployment_events_after(cancelled, 0, EVENTS_PAGE)
    body = {
        "deployment": deployment_to_json(cancelled, events, more),
        "rollback": _rollout(rollback) if rollback is not None else None,
    }
    return JsonResponse(body, status=202)


@csrf_exempt
def not_found(request: HttpRequest, path: str) -> HttpResponse:
    """Unknown paths under the API answer in JSON too (and are never redirected to add a slash,
    which would turn a POST into a GET)."""
    return serializers.error_response(
        404, f"No API endpoint at {request.path}; see {reverse('api:openapi')}."
    )
