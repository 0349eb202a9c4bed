"""The API under Schemathesis: every operation of /api/v1/openapi.json, fed generated and
hostile input with a valid deployer token, never answers 5xx and always answers in JSON."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.core import NotSet

from deployments.api.openapi import SPEC
from deployments.models import Cluster, Membership, Team
from tests import factories
from tests.api.conftest import make_api_token

schema = schemathesis.openapi.from_dict(SPEC)


@pytest.fixture
def token(db: Any) -> str:
    """A deployer token of a team with an account, a ready cluster and an app to aim at."""
    team = Team.objects.create(name="Fuzz", slug="fuzz")
    account = factories.make_account(team, name="sandbox")
    cluster = factories.make_cluster(account, name="main", status=Cluster.Status.READY)
    factories.make_app(cluster, name="web")
    _, secret = make_api_token(team, role=Membership.Role.DEPLOYER)
    return secret


def send(case: Any, token: str) -> Any:
    """The generated request, through Django's test client (it keeps the test database open)."""
    if isinstance(case.body, NotSet):
        payload = b""
    elif isinstance(case.body, bytes):
        payload = case.body
    else:
        payload = json.dumps(case.body).encode()
    return Client().generic(
        case.method,
        "/api/v1" + case.formatted_path,
        data=payload,
        content_type="application/json",
        QUERY_STRING=urlencode(case.query or {}, doseq=True),
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.django_db
def test_no_input_makes_the_api_fail(case: Any, token: str) -> None:
    response = send(case, token)

    assert response.status_code < 500, (case.method, case.formatted_path, response.content[:300])
    assert isinstance(response.json(), dict | list)
