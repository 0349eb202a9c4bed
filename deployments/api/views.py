"""The API's views: parse and authorize (`api_view`), call a selector or a service, render JSON.

Writes pass actor=None (a token is not a user) and the caller's address, for the audit trail.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from deployments import selectors, services
from deployments.api import openapi, serializers
from deployments.api.auth import ApiRequest, api_view
from deployments.api.serializers import ApiError, account_to_json, cluster_to_json
from deployments.models import Cluster, name_validator


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


@csrf_exempt
def not_found(request: HttpRequest, path: str) -> HttpResponse:
    """Unknown paths under the API answer in JSON too (and are never redirected to add a slash,
    which would turn a POST into a GET)."""
    return serializers.error_response(
        404, f"No API endpoint at {request.path}; see {reverse('api:openapi')}."
    )
