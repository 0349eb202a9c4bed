"""Who is calling: a team's bearer token, checked before anything else an endpoint does.

Only the Authorization header authenticates. Cookies are never looked at, so a signed-in browser
gets no access to the API and there is nothing for a cross-site request to borrow: that is why the
API's views are csrf_exempt (as django-ninja makes them).
"""

from __future__ import annotations

import hmac
import re
from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.security.http import HttpAuthBase

from deployments import selectors
from deployments.api.errors import ApiError
from deployments.client_address import client_address
from deployments.models import ApiToken, Team

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_used_at is for people deciding which tokens to revoke; minutes are precise enough.
LAST_USED_PRECISION = timedelta(minutes=1)
SECRET_SHAPE = re.compile(rf"{re.escape(ApiToken.SECRET_PREFIX)}[A-Za-z0-9_-]{{16,128}}")
CHALLENGE = 'Bearer realm="TinyStacks API"'


class ApiRequest(HttpRequest):
    """A request TeamToken has let through."""

    auth: ApiToken
    team: Team
    ip_address: str | None  # for the audit trail


class TeamToken(HttpAuthBase):
    """The caller's team token; owner and deployer tokens may write, viewer tokens only read."""

    openapi_scheme = "bearer"
    openapi_description = (
        "A team API token, `tsk_` followed by 43 characters. It is shown once, when made; only its "
        "hash is stored. Revoked tokens are refused."
    )

    def __call__(self, request: HttpRequest) -> ApiToken:
        token = authenticate(request)
        if request.method not in READ_METHODS and not token.can_write:
            raise ApiError(403, f"This token has the {token.role} role, which can only read.")
        request.team = token.team  # type: ignore[attr-defined]
        request.ip_address = client_address(request)  # type: ignore[attr-defined]
        return token


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
