"""API tokens on the accounts page: owners make them (shown once) and revoke them."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments.models import ApiToken, AuditEntry, Membership, Team
from tests import factories

pytestmark = pytest.mark.django_db


def make(client: Client, name: str = "ci", role: str = "deployer") -> Any:
    return client.post(reverse("api_token_create"), {"name": name, "role": role})


def test_an_owner_makes_a_token_that_is_shown_once_and_works(
    owner_client: Client, team: Team
) -> None:
    response = make(owner_client)

    assert response.status_code == 200
    token = ApiToken.objects.get(team=team, name="ci")
    secret = response.context["new_secret"]
    assert secret.startswith("tsk_") and secret in response.text
    assert token.token_hash != secret and secret not in str(token.__dict__)
    assert secret not in owner_client.get(reverse("accounts")).text  # never again
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/clusters").status_code == 200
    assert AuditEntry.objects.filter(team=team, action="api_token.create").exists()


def test_names_must_be_free_and_roles_real(owner_client: Client, team: Team) -> None:
    make(owner_client)

    again = make(owner_client)
    bad_role = make(owner_client, name="other", role="admin")

    assert "already has an API token named ci" in again.text
    assert bad_role.status_code == 200 and "Select a valid choice" in bad_role.text
    assert ApiToken.objects.filter(team=team).count() == 1


@pytest.mark.parametrize("name", ["has space", "-leading", "é", "ci/prod"])
def test_an_invalid_name_is_a_form_error(owner_client: Client, team: Team, name: str) -> None:
    response = make(owner_client, name=name)

    assert response.status_code == 200
    assert "Use up to 60 letters, digits, dots, hyphens and underscores" in response.text
    assert not ApiToken.objects.filter(team=team).exists()


@pytest.mark.parametrize("role", [Membership.Role.VIEWER, Membership.Role.DEPLOYER])
def test_only_owners_manage_tokens(client: Client, team: Team, role: str) -> None:
    token = factories.make_user(team, role, username="member")
    client.force_login(token)
    existing = ApiToken.objects.create(team=team, name="x", token_hash="0" * 64, prefix="tsk_x")

    assert make(client).status_code == 403
    assert client.post(reverse("api_token_revoke", args=[existing.pk])).status_code == 403
    assert ApiToken.objects.filter(team=team).count() == 1
    assert "Only the team's owners" in client.get(reverse("accounts")).text


def test_revoking_refuses_the_token_from_then_on(owner_client: Client, team: Team) -> None:
    secret = make(owner_client).context["new_secret"]
    token = ApiToken.objects.get(team=team)

    response = owner_client.post(reverse("api_token_revoke", args=[token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/apps").status_code == 401


def test_another_teams_token_cannot_be_revoked(owner_client: Client, other_team: Team) -> None:
    theirs = ApiToken.objects.create(team=other_team, name="x", token_hash="1" * 64, prefix="tsk_y")

    assert owner_client.post(reverse("api_token_revoke", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
