"""Who is calling: a team's bearer token, and `api_view`, the decorator every API view wears.

Only the Authorization header authenticates. Cookies are never looked at, so a signed-in browser
gets no access to the API and there is nothing for a cross-site request to borrow: that is why the
API views can be csrf_exempt.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Concatenate, ParamSpec, cast

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from deployments import selectors
from deployments.api.serializers import (
    ApiError,
    Json,
    error_response,
    parse_json_object,
    validation_error_response,
)
from deployments.client_address import client_address
from deployments.models import ApiToken, Team
from deployments.services import Conflict

P = ParamSpec("P")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# last_used_at is for people deciding which tokens to revoke; minutes are precise enough.
LAST_USED_PRECISION = timedelta(minutes=1)
SECRET_SHAPE = re.compile(rf"{re.escape(ApiToken.SECRET_PREFIX)}[A-Za-z0-9_-]{{16,128}}")
CHALLENGE = 'Bearer realm="TinyStacks API"'


class ApiRequest(HttpRequest):
    token: ApiToken
    team: Team
    data: Json  # the JSON object of a POST or PATCH body
    ip_address: str | None


def authenticate(request: HttpRequest) -> ApiToken:
    """The unrevoked token in `Authorization: Bearer <token>`, else ApiError 401."""
    scheme, _, secret = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        raise ApiError(
            401,
            "Authentication required: send the header Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    secret = secret.strip()
    digest = ApiToken.hash_secret(secret) if SECRET_SHAPE.fullmatch(secret) else ""
    token = selectors.api_token_by_hash(digest) if digest else None
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        raise ApiError(
            401,
            "The API token is invalid or has been revoked.",
            headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
        )
    _record_use(token)
    return token


def _record_use(token: ApiToken) -> None:
    """Note when the token was last used, writing at most once a minute per token."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def _prepare(request: ApiRequest, methods: Sequence[str], public: bool, body: bool) -> None:
    if request.method not in methods:
        raise ApiError(
            405,
            f"Method {request.method} is not allowed here; use {', '.join(methods)}.",
            headers={"Allow": ", ".join(methods)},
        )
    request.ip_address = client_address(request)
    request.data = {}
    if public:
        return
    request.token = authenticate(request)
    request.team = request.token.team
    if request.method not in READ_METHODS and not request.token.can_write:
        raise ApiError(403, f"This token has the {request.token.role} role, which can only read.")
    # An action without parameters (body=False) may be sent with no body at all.
    if request.method in BODY_METHODS and (body or request.body.strip()):
        try:
            request.data = parse_json_object(request.body)
        except RequestDataTooBig:
            raise ApiError(413, "The request body is too large.") from None


def api_view(
    *, methods: Sequence[str], public: bool = False, body: bool = True
) -> Callable[
    [Callable[Concatenate[ApiRequest, P], HttpResponse]],
    Callable[Concatenate[HttpRequest, P], HttpResponse],
]:
    """Answer only `methods`; unless `public`, require a token and a writer's role for anything
    but reads; parse JSON bodies into `request.data` (optional when not `body`); turn every
    refusal into a JSON error, a service's Conflict into a 409."""
    allowed = tuple(methods)

    def decorator(
        view: Callable[Concatenate[ApiRequest, P], HttpResponse],
    ) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
        def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            api_request = cast(ApiRequest, request)
            try:
                _prepare(api_request, allowed, public, body)
                return view(api_request, *args, **kwargs)
            except ApiError as error:
                return error.response()
            except ValidationError as error:
                return validation_error_response(error)
            except Conflict as error:
                return error_response(409, str(error))
            except IntegrityError:
                # A concurrent request won a race the views' existence checks cannot see.
                return error_response(409, "That conflicts with an existing object of that name.")
            except (Http404, ObjectDoesNotExist):
                return error_response(404, "Not found.")

        functools.update_wrapper(wrapper, view)
        return csrf_exempt(wrapper)

    return decorator
