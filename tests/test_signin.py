"""Sign-in is rate-limited against guessing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments import signin
from deployments.models import SignInFailure

pytestmark = pytest.mark.django_db


def attempt(client: Client, username: str, password: str, ip: str = "203.0.113.7") -> Any:
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_repeated_failures_for_a_user_are_refused_even_with_the_right_password(
    client: Client, owner: Any
) -> None:
    owner.set_password("right-pass-phrase")
    owner.save()
    for _ in range(signin.MAX_FAILURES_PER_USERNAME):
        assert attempt(client, "olivia", "guess").status_code == 200

    refused = attempt(client, "olivia", "right-pass-phrase")

    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert "_auth_user_id" not in client.session


def test_the_limit_lifts_after_the_window_and_success_forgets_failures(
    client: Client, owner: Any
) -> None:
    owner.set_password("right-pass-phrase")
    owner.save()
    for _ in range(signin.MAX_FAILURES_PER_USERNAME):
        attempt(client, "olivia", "guess")
    SignInFailure.objects.update(at=timezone.now() - signin.WINDOW - timedelta(seconds=1))

    assert attempt(client, "olivia", "right-pass-phrase").status_code == 302
    assert not SignInFailure.objects.filter(username="olivia").exists()


def test_the_tick_forgets_old_failures(client: Client) -> None:
    attempt(client, "old", "guess")
    SignInFailure.objects.update(at=timezone.now() - signin.WINDOW - timedelta(seconds=1))
    attempt(client, "new", "guess")

    assert signin.failures_prune() == 1
    assert list(SignInFailure.objects.values_list("username", flat=True)) == ["new"]


def test_one_address_guessing_many_usernames_is_refused(client: Client) -> None:
    for number in range(signin.MAX_FAILURES_PER_ADDRESS):
        attempt(client, f"user{number}", "guess", ip="198.51.100.9")

    assert attempt(client, "someone-else", "guess", ip="198.51.100.9").status_code == 429
    assert attempt(client, "someone-else", "guess", ip="198.51.100.10").status_code == 200
