"""Tokens, and a client that speaks JSON with a bearer token, for the API tests."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from deployments import services
from deployments.models import (
    ApiToken,
    App,
    AuditEntry,
    AwsAccount,
    Cluster,
    Deployment,
    Job,
    Membership,
    Release,
    ScalingSettings,
    Team,
)
from tests import factories

_numbers = itertools.count(1)
NO_BODY: Any = object()

Api = Callable[..., Any]


def make_api_token(
    team: Team, role: str = Membership.Role.DEPLOYER, name: str | None = None
) -> tuple[ApiToken, str]:
    """A token of `team` and its secret, made the way the command makes them."""
    return services.api_token_create(
        team=team, name=name or f"token-{next(_numbers)}", role=role, created_by=None
    )


def row_counts() -> dict[str, int]:
    """Rows of what API writes create, to show that a refused request wrote nothing."""
    return {
        model.__name__: model.objects.count()
        for model in (
            AwsAccount, Cluster, Job, AuditEntry, App, ScalingSettings, Release, Deployment,
        )
    }  # fmt: skip


@pytest.fixture
def api(client: Client) -> Api:
    """`api(method, path, token, body)`: a request to /api/v1`path`, `body` sent as JSON (or
    `raw=` sent as it is), with `Authorization: Bearer <token>` when a token is given."""

    def call(
        method: str, path: str, token: str | None = None, body: Any = NO_BODY, *, raw: Any = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else "" if body is NO_BODY else json.dumps(body)
        return client.generic(
            method, f"/api/v1{path}", data, content_type="application/json", headers=headers
        )

    return call


@pytest.fixture
def owner_token(team: Team) -> str:
    return make_api_token(team, Membership.Role.OWNER)[1]


@pytest.fixture
def deployer_token(team: Team) -> str:
    return make_api_token(team, Membership.Role.DEPLOYER)[1]


@pytest.fixture
def viewer_token(team: Team) -> str:
    return make_api_token(team, Membership.Role.VIEWER)[1]


@pytest.fixture
def outsider_token(other_team: Team) -> str:
    """An owner's token, but of another team."""
    return make_api_token(other_team, Membership.Role.OWNER)[1]


@pytest.fixture
def cluster(team: Team) -> Cluster:
    """A ready cluster of t3.medium instances (2 vCPU, 3635 MiB for tasks each)."""
    account = factories.make_account(team, name="main")
    return factories.make_cluster(account, name="main", status=Cluster.Status.READY)
