"""Who may call the API: team bearer tokens only, with their role; everything else is refused."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from deployments import services
from deployments.models import ApiToken, Cluster, Membership, Team
from tests import factories
from tests.api.conftest import Api, make_api_token, row_counts

pytestmark = pytest.mark.django_db

READS = [("GET", "/accounts"), ("GET", "/clusters"), ("GET", "/clusters/main")]
WRITES = [
    ("POST", "/accounts", {"name": "prod", "mode": "sandbox"}),
    ("POST", "/clusters", {"name": "second", "account": "sandbox"}),
    ("PATCH", "/clusters/main", {"desired_instances": 3}),
    ("DELETE", "/clusters/main", None),
]


@pytest.fixture
def cluster(team: Team) -> Cluster:
    account = factories.make_account(team, name="sandbox")
    return factories.make_cluster(account, name="main", status=Cluster.Status.READY)


@pytest.mark.parametrize(("method", "path"), [*READS, *[(m, p) for m, p, _ in WRITES]])
def test_no_token_is_401_with_a_bearer_challenge(
    api: Api, cluster: Cluster, method: str, path: str
) -> None:
    response = api(method, path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="TinyStacks API"'
    assert "Authorization: Bearer" in response.json()["error"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer tsk_" + "A" * 43,  # well formed, but no such token
        "Bearer nonsense",
        "Bearer tsk_" + "\u00e9" * 43,
        "Bearer " + "x" * 10_000,
        "Bearer ",
    ],
)
def test_an_unknown_token_is_401_invalid_token(
    client: Client, cluster: Cluster, header: str
) -> None:
    response = client.get("/api/v1/clusters", headers={"Authorization": header})

    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response.json() == {"error": "The API token is invalid or has been revoked."}


@pytest.mark.parametrize("header", ["Basic b2xpdmlhOnB3", "Token tsk_abc", "tsk_abc"])
def test_other_schemes_are_401(client: Client, header: str, owner_token: str) -> None:
    response = client.get("/api/v1/clusters", headers={"Authorization": header})

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_token_is_accepted_whatever_the_schemes_case(
    client: Client, cluster: Cluster, deployer_token: str
) -> None:
    response = client.get("/api/v1/clusters", headers={"Authorization": f"bearer {deployer_token}"})

    assert response.status_code == 200
    assert [c["name"] for c in response.json()] == ["main"]


def test_a_revoked_token_is_401(api: Api, team: Team, cluster: Cluster) -> None:
    token, secret = make_api_token(team)
    assert api("GET", "/clusters", secret).status_code == 200

    services.api_token_revoke(token=token, actor=None)

    response = api("GET", "/clusters", secret)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_a_signed_in_session_without_a_token_is_401(
    client: Client, api: Api, owner: Any, cluster: Cluster
) -> None:
    client.force_login(owner)

    assert api("GET", "/clusters").status_code == 401
    assert api("POST", "/accounts", None, {"name": "prod", "mode": "sandbox"}).status_code == 401
    assert api("DELETE", "/clusters/main").status_code == 401
    cluster.refresh_from_db()
    assert cluster.status == Cluster.Status.READY


def test_token_writes_need_no_csrf_token(team: Team, cluster: Cluster, deployer_token: str) -> None:
    strict = Client(enforce_csrf_checks=True)

    response = strict.post(
        "/api/v1/accounts",
        {"name": "prod", "mode": "sandbox"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {deployer_token}"},
    )

    assert response.status_code == 201


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_viewer_tokens_may_not_write(
    api: Api, cluster: Cluster, viewer_token: str, method: str, path: str, body: Any
) -> None:
    before = row_counts()

    response = api(method, path, viewer_token, body)

    assert response.status_code == 403
    assert response.json() == {"error": "This token has the viewer role, which can only read."}
    assert row_counts() == before
    cluster.refresh_from_db()
    assert (cluster.status, cluster.desired_instances) == (Cluster.Status.READY, 2)


@pytest.mark.parametrize(("method", "path"), READS)
def test_viewer_tokens_may_read(
    api: Api, cluster: Cluster, viewer_token: str, method: str, path: str
) -> None:
    assert api(method, path, viewer_token).status_code == 200


@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.DEPLOYER])
def test_owner_and_deployer_tokens_may_write(
    api: Api, team: Team, cluster: Cluster, role: str
) -> None:
    _, secret = make_api_token(team, role)

    response = api("POST", "/accounts", secret, {"name": "prod", "mode": "sandbox"})

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/clusters", "GET, POST"),
        ("DELETE", "/accounts", "GET, POST"),
        ("POST", "/clusters/main", "GET, PATCH, DELETE"),
        ("PUT", "/clusters/main", "GET, PATCH, DELETE"),
        ("POST", "/openapi.json", "GET"),
    ],
)
def test_wrong_methods_are_405_in_json_with_allow(
    api: Api, cluster: Cluster, owner_token: str, method: str, path: str, allow: str
) -> None:
    for token in (owner_token, None):
        response = api(method, path, token)

        assert response.status_code == 405
        assert response["Allow"] == allow
        assert response.json() == {"error": f"Method {method} is not allowed here; use {allow}."}


@pytest.mark.parametrize(
    "path", ["/nothing", "/clusters/", "/clusters/main/apps", "/", "/deployments/a%0Ab/cancel"]
)
def test_unknown_paths_are_404_in_json(api: Api, owner_token: str, path: str) -> None:
    response = api("POST", path, owner_token, {})

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "openapi.json" in response.json()["error"]


def test_only_the_hash_of_a_token_is_stored(team: Team) -> None:
    token, secret = make_api_token(team, name="ci")

    assert secret.startswith("tsk_") and len(secret) == 4 + 43
    token.refresh_from_db()
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:12]
    stored = [str(value) for value in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert not any(secret in value for value in stored)


def test_last_use_is_recorded_at_most_once_a_minute(api: Api, team: Team) -> None:
    token, secret = make_api_token(team)
    assert token.last_used_at is None

    api("GET", "/clusters", secret)
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None

    api("GET", "/clusters", secret)
    token.refresh_from_db()
    assert token.last_used_at == first_use

    a_while_ago = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=a_while_ago)
    api("GET", "/clusters", secret)
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_at > a_while_ago + timedelta(minutes=1)


def test_a_body_over_the_upload_limit_is_413(
    api: Api, settings: Any, cluster: Cluster, deployer_token: str
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = row_counts()

    response = api("POST", "/accounts", deployer_token, {"name": "prod", "mode": "x" * 2000})

    assert response.status_code == 413
    assert response.json() == {"error": "The request body is too large."}
    assert row_counts() == before
