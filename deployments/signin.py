"""What a locked-out sign-in sees. django-axes counts failures per username and address (see
the AXES_* settings) on our sign-in page and the admin's alike; this answers for both."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def lockout_message() -> str:
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return f"Too many failed sign-ins. Wait {minutes} minutes, then try again."


def locked_out(
    request: HttpRequest, response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """The sign-in page that was asked for, its form saying why instead of "wrong password",
    with 429 Too Many Requests."""
    context = response.context_data if isinstance(response, TemplateResponse) else None
    form = (context or {}).get("form")
    if not isinstance(response, TemplateResponse) or form is None:
        return HttpResponse(lockout_message(), status=429, content_type="text/plain")
    form.errors.clear()
    form.add_error(None, ValidationError(lockout_message(), code="throttled"))
    response.content = response.rendered_content
    response.status_code = 429
    return response
