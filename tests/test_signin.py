"""Sign-in (ours and the admin's) is rate-limited against guessing, per username and address."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import reverse

from deployments.client_address import client_address

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.7"
OFFICE = "198.51.100.9"
COOL_OFF = settings.AXES_COOLOFF_TIME


def attempt(
    client: Client, username: str, password: str, ip: str = ATTACKER, url: str = "/sign-in/"
) -> Any:
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def fail_to_the_limit(client: Client, username: str, ip: str = ATTACKER, **kwargs: Any) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, username, "guess", ip, **kwargs)


@pytest.fixture
def olivia(owner: Any) -> Any:
    owner.set_password("right-pass-phrase")
    owner.save()
    return owner


def test_repeated_failures_are_refused_even_with_the_right_password(
    client: Client, olivia: Any
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "olivia", "guess").status_code == 200

    last_guess = attempt(client, "olivia", "guess")
    refused = attempt(client, "olivia", "right-pass-phrase")

    for response in (last_guess, refused):
        assert response.status_code == 429
        assert "Too many failed sign-ins. Wait 15 minutes, then try again." in response.text
        assert '<form method="post" action="/sign-in/">' in response.text  # still the page
    assert "_auth_user_id" not in client.session


def test_the_lockout_lifts_after_the_cool_off_and_success_forgets_failures(
    client: Client, olivia: Any
) -> None:
    fail_to_the_limit(client, "olivia")
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - COOL_OFF)

    assert attempt(client, "olivia", "right-pass-phrase").status_code == 302
    assert not AccessAttempt.objects.exists()


def test_a_lockout_is_per_username_and_address(client: Client, olivia: Any) -> None:
    fail_to_the_limit(client, "olivia", ATTACKER)
    # Guessing many usernames from the office's address locks none of its people out.
    for number in range(settings.AXES_FAILURE_LIMIT * 2):
        attempt(client, f"user{number}", "guess", OFFICE)

    assert attempt(client, "olivia", "right-pass-phrase", ATTACKER).status_code == 429
    assert attempt(client, "olivia", "right-pass-phrase", OFFICE).status_code == 302


def test_the_admin_sign_in_is_throttled_too(client: Client) -> None:
    User.objects.create_superuser("support", "support@example.com", "right-pass-phrase")
    fail_to_the_limit(client, "support", url="/admin/login/")

    refused = attempt(client, "support", "right-pass-phrase", url="/admin/login/")

    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db(transaction=True)
def test_failures_made_in_parallel_are_all_counted(olivia: Any) -> None:
    guesses = settings.AXES_FAILURE_LIMIT + 3

    def guess() -> None:
        try:
            attempt(Client(), "olivia", "guess")
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert AccessAttempt.objects.get(username="olivia").failures_since_start == guesses
    assert attempt(Client(), "olivia", "right-pass-phrase").status_code == 429


@pytest.mark.parametrize(
    ("proxies", "meta", "address"),
    [
        (0, {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}, "192.0.2.1"),
        (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.7"},
         "203.0.113.7"),
        (2, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.7, 10.0.0.1"},
         "203.0.113.7"),
        (1, {"REMOTE_ADDR": "192.0.2.1"}, "192.0.2.1"),  # the proxy was bypassed
        (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "not-an-address"}, None),
        (0, {"REMOTE_ADDR": "/run/gunicorn.sock"}, None),
    ],
)  # fmt: skip
def test_the_client_address_is_what_the_trusted_proxies_saw(
    settings: Any, proxies: int, meta: dict[str, Any], address: str | None
) -> None:
    settings.TINYSTACKS_TRUSTED_PROXIES = proxies

    assert client_address(RequestFactory().get("/", **meta)) == address


def test_behind_a_proxy_failures_count_against_the_client_not_the_proxy(
    client: Client, olivia: Any, settings: Any
) -> None:
    settings.TINYSTACKS_TRUSTED_PROXIES = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("login"),
            {"username": "olivia", "password": "guess"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=ATTACKER,
        )

    olivia_at_home = client.post(
        reverse("login"),
        {"username": "olivia", "password": "right-pass-phrase"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=OFFICE,
    )

    assert olivia_at_home.status_code == 302
    assert AccessAttempt.objects.get().ip_address == ATTACKER
