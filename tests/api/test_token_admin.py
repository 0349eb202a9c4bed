"""API tokens in the support admin: listed and searchable, revocable, never made or revealed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from deployments.models import AuditEntry, Team
from tests import factories
from tests.api.conftest import make_api_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("support", "support@example.com", "pw"))
    return client


def changelist_queries(client: Client, django_assert_max_num_queries: Any) -> int:
    with django_assert_max_num_queries(20) as queries:
        response = client.get(reverse("admin:deployments_apitoken_changelist"))
    assert response.status_code == 200
    return len(queries)


def test_changelist_queries_do_not_grow_with_rows(
    staff_client: Client, django_assert_max_num_queries: Any
) -> None:
    for _ in range(3):
        make_api_token(factories.make_team())
    with_three = changelist_queries(staff_client, django_assert_max_num_queries)
    for _ in range(30):
        make_api_token(factories.make_team())
    assert changelist_queries(staff_client, django_assert_max_num_queries) == with_three


def test_search_by_prefix_and_team(staff_client: Client, team: Team) -> None:
    token, _ = make_api_token(team, name="ci")
    make_api_token(factories.make_team(), name="other")
    url = reverse("admin:deployments_apitoken_changelist")

    for term in (token.prefix, "acme"):
        response = staff_client.get(url, {"q": term})
        assert response.context["cl"].result_count == 1
        assert "ci" in response.text


def test_the_secret_and_its_hash_never_show(staff_client: Client, team: Team) -> None:
    token, secret = make_api_token(team, name="ci")

    response = staff_client.get(reverse("admin:deployments_apitoken_change", args=[token.pk]))

    assert response.status_code == 200
    assert token.prefix in response.text
    assert token.token_hash not in response.text and secret not in response.text
    assert list(response.context["adminform"].form.fields) == []  # everything read-only


def test_tokens_cannot_be_added_in_the_admin(staff_client: Client) -> None:
    response = staff_client.get(reverse("admin:deployments_apitoken_add"))

    assert response.status_code == 403


def test_support_can_revoke_tokens(staff_client: Client, team: Team) -> None:
    token, secret = make_api_token(team, name="leaked")

    response = staff_client.post(
        reverse("admin:deployments_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )

    assert "Revoked 1 API token(s)." in response.text
    token.refresh_from_db()
    assert token.revoked_at is not None
    entry = AuditEntry.objects.get(action="api_token.revoke")
    assert entry.actor is not None and entry.actor.get_username() == "support"
    assert (
        staff_client.get(
            "/api/v1/clusters", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 401
    )
