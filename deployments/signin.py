"""Sign-in that slows down guessing: after too many failures for a username or from an address
within the window, further attempts are refused (HTTP 429) until the window has passed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.utils import timezone

from deployments.models import SignInFailure

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
MAX_FAILURES_PER_ADDRESS = 20


def _address(form: AuthenticationForm) -> str | None:
    return form.request.META.get("REMOTE_ADDR") if form.request else None


def failures_prune() -> int:
    """Forget failures older than the window (the tick calls this)."""
    deleted, _ = SignInFailure.objects.filter(at__lt=timezone.now() - WINDOW).delete()
    return deleted


def is_throttled(username: str, ip_address: str | None) -> bool:
    recent = SignInFailure.objects.filter(at__gte=timezone.now() - WINDOW)
    by_username = recent.filter(username=username.lower()).count()
    by_address = recent.filter(ip_address=ip_address).count() if ip_address else 0
    return by_username >= MAX_FAILURES_PER_USERNAME or by_address >= MAX_FAILURES_PER_ADDRESS


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins. Wait 15 minutes, then try again.",
    }

    def clean(self) -> dict[str, Any]:
        username = (self.cleaned_data.get("username") or "").lower()
        address = _address(self)
        if is_throttled(username, address):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            SignInFailure.objects.create(username=username, ip_address=address)
            raise
        # Success forgets this user's failures from this address.
        SignInFailure.objects.filter(username=username, ip_address=address).delete()
        return cleaned


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error("__all__", code="throttled"):
            response.status_code = 429
        return response
