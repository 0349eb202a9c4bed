from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments.models import Team
from tests import factories

pytestmark = pytest.mark.django_db


def test_sign_in_page_renders(client: Client) -> None:
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert "Sign in" in response.text
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_overview_needs_sign_in(client: Client) -> None:
    response = client.get(reverse("overview"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_signing_in_leads_to_the_overview(client: Client, owner: Any) -> None:
    owner.set_password("s3cret-pass-phrase")
    owner.save()

    response = client.post(
        reverse("login"),
        {"username": "olivia", "password": "s3cret-pass-phrase"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("overview")
    assert "No apps yet" in response.text


def test_overview_shows_only_the_members_team(
    client: Client, owner: Any, team: Team, other_team: Team
) -> None:
    mine = factories.make_cluster(factories.make_account(team), name="ours")
    factories.make_app(mine, name="storefront")
    theirs = factories.make_cluster(factories.make_account(other_team), name="theirs")
    factories.make_app(theirs, name="secret-project")
    client.force_login(owner)

    response = client.get(reverse("overview"))

    assert "storefront" in response.text and "ours" in response.text
    assert "secret-project" not in response.text and "theirs" not in response.text


def test_overview_without_a_team_says_what_to_do(client: Client) -> None:
    client.force_login(factories.make_user())

    response = client.get(reverse("overview"))

    assert "not in a team yet" in response.text


def test_sign_out_is_a_post(client: Client, owner: Any) -> None:
    client.force_login(owner)

    assert client.get(reverse("logout")).status_code == 405
    client.post(reverse("logout"))
    assert client.get(reverse("overview")).status_code == 302
