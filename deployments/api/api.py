"""The API: a NinjaAPI of the domain routers, with team-token auth on every operation but the
document, and every refusal in the one error shape (errors.py), with the status it has always had.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Router
from ninja.errors import HttpError, ValidationErrorContext
from ninja.errors import ValidationError as SchemaError
from ninja.openapi.schema import OpenAPISchema

from deployments.api import accounts, apps, clusters, releases
from deployments.api.auth import TeamToken
from deployments.api.errors import ApiError, error_response, validation_error_response
from deployments.api.parser import JsonObjectParser
from deployments.api.schemas import Body, refusal
from deployments.models import Membership
from deployments.services import Conflict

# The order Allow lists methods in.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

DESCRIPTION = (
    "Automate a team's AWS accounts, ECS clusters and apps: deploy images, follow rollouts, roll "
    "back, set config vars, secrets and scaling. Authenticate with a team API token (`manage.py "
    "api_token create --team <slug> --name <name> [--role deployer]`) sent as `Authorization: "
    "Bearer <token>`; a token acts for its team with its role: owner and deployer tokens may "
    "write, viewer tokens only read. Requests and responses are JSON. Every error has the body "
    "`Error`: a one-sentence `error` and, for problems with particular fields, `fields`. Work on "
    "AWS happens in the background: writes answer 201 or 202 at once and the object's status "
    "shows progress. Methods a path does not support answer 405 with an Allow header. Roles: "
    f"{', '.join(Membership.Role.values)}."
)
TAGS = [
    {"name": "accounts", "description": "The AWS accounts the team's clusters run in."},
    {"name": "clusters", "description": "ECS clusters of EC2 instances."},
    {"name": "apps", "description": "Apps (ECS services) on the team's clusters."},
    {"name": "releases", "description": (releases.__doc__ or "").replace("\n", " ")},
    {"name": "meta", "description": "About the API itself."},
]


class Refused(SchemaError):
    """A request whose parameters or body its schemas refused, as the API words it."""

    def __init__(self, error: ApiError) -> None:
        super().__init__([])
        self.error = error


class TinyStacksApi(NinjaAPI):
    def validation_error_from_error_contexts(
        self, error_contexts: list[ValidationErrorContext[Any]]
    ) -> SchemaError:
        return Refused(_refusal(error_contexts[0]))

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """Paths relative to the server, /api/v1, as they have always been documented."""
        return super().get_openapi_schema(path_prefix="", path_params=path_params)

    def get_content_type(self) -> str:
        return "application/json"


def _refusal(context: ValidationErrorContext[Any]) -> ApiError:
    errors = context.pydantic_validation_error.errors(include_url=False)
    if context.model.__ninja_param_source__ != "body":
        return ApiError(400, errors[0]["msg"])
    first = errors[0]
    if first["type"] == "missing" and len(first["loc"]) == 1:
        return ApiError(400, "Send a JSON object in the request body.")
    schema = context.model.model_fields[str(first["loc"][0])].annotation
    is_body = isinstance(schema, type) and issubclass(schema, Body)
    return refusal(errors, schema if is_body else Body, depth=1)


api = TinyStacksApi(
    title="TinyStacks API",
    version="1.0.0",
    description=DESCRIPTION,
    servers=[{"url": "/api/v1"}],
    urls_namespace="api",
    openapi_url=None,
    docs_url=None,
    auth=TeamToken(),
    parser=JsonObjectParser(),
    openapi_extra={"tags": TAGS},
)

meta = Router(tags=["meta"])


@meta.get(
    "/openapi.json",
    auth=None,
    response=dict[str, Any],
    url_name="openapi",
    operation_id="getOpenApi",
    summary="This description of the API",
)
def openapi(request: HttpRequest) -> object:
    """The OpenAPI 3.1 document, generated from the routers' schemas."""
    return api.get_openapi_schema()


api.add_router("", meta)
for domain in (accounts, clusters, apps, releases):
    api.add_router("", domain.router)


def _answer(request: HttpRequest, error: Any) -> HttpResponse:
    """Every refusal in the one error shape, with the status it has always had."""
    if isinstance(error, Refused):
        return error.error.response()
    if isinstance(error, ApiError):
        return error.response()
    if isinstance(error, HttpError):  # django-ninja's wrapping of what our parser raised
        cause = error.__cause__
        if isinstance(cause, ApiError):
            return cause.response()
        return error_response(error.status_code, error.message)
    if isinstance(error, ValidationError):
        return validation_error_response(error)
    if isinstance(error, Conflict):
        return error_response(409, str(error))
    if isinstance(error, IntegrityError):
        # A concurrent request won a race the views' existence checks cannot see.
        return error_response(409, "That conflicts with an existing object of that name.")
    if isinstance(error, Http404 | ObjectDoesNotExist):
        return error_response(404, "Not found.")
    if isinstance(error, RequestDataTooBig):
        return error_response(413, "The request body is too large.")
    raise error  # Django's handling, as for the pages (django-ninja would answer a traceback)


for refusal_kind in (
    Refused, ApiError, HttpError, ValidationError, Conflict, IntegrityError, Http404,
    ObjectDoesNotExist, RequestDataTooBig, Exception,
):  # fmt: skip
    api.add_exception_handler(refusal_kind, _answer)


def _allowing(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`view`, its 405s (answered before authentication) in JSON with the methods in order."""

    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code != 405:
            return response
        allowed = set(response["Allow"].split(", "))
        methods = ", ".join(method for method in METHODS if method in allowed)
        return error_response(
            405,
            f"Method {request.method} is not allowed here; use {methods}.",
            headers={"Allow": methods},
        )

    return csrf_exempt(wrapper)


def api_urls() -> list[URLPattern]:
    """One pattern per path (django-ninja makes one per operation), named after its first
    operation; none for django-ninja's root, which is our 404."""
    patterns, _, _ = api.urls
    routes: dict[str, URLPattern] = {}
    for pattern in patterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        if route and route not in routes:
            routes[route] = path(route, _allowing(pattern.callback), name=pattern.name)
    return list(routes.values())


@csrf_exempt
def not_found(request: HttpRequest, path: str) -> HttpResponse:
    """Unknown paths under the API answer in JSON too (and are never redirected to add a slash,
    which would turn a POST into a GET)."""
    return error_response(404, f"No API endpoint at {request.path}; see {reverse('api:openapi')}.")
