"""The API under Schemathesis: every operation of /api/v1/openapi.json, fed generated and
hostile input with a valid deployer token, never answers 5xx and always answers in JSON. Secrets,
whose values must never come back, are also fed hostile names and values on a deployed app."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.core import NotSet

from deployments.api.api import api
from deployments.models import Cluster, Deployment, Membership, Team
from tests import factories
from tests.api.conftest import make_api_token

schema = schemathesis.openapi.from_dict(json.loads(json.dumps(api.get_openapi_schema())))


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


HOSTILE = st.sampled_from(
    ["1BAD", "A B", "<script>", "API_KEY", "AWS_KEY", "名前", "\u202eevil", "a\x00b", "", " ",
     "A" * 300, "../../etc/passwd", "x" * 5000]
)  # fmt: skip


@pytest.fixture
def deployed_token(token: str) -> str:
    """The token, with its team's app live (v1 rolled out), so secrets reach the service."""
    release = factories.make_release(Team.objects.get(slug="fuzz").apps.get(), image="nginx:1.27")
    factories.make_deployment(release, finished_at=timezone.now())
    return token


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["PUT", "DELETE"]),
    name=st.one_of(HOSTILE, st.text(max_size=40)),
    value=st.one_of(HOSTILE, st.text(), st.integers(), st.none()),
)
@example(method="PUT", name="API_KEY", value="planted-Fuzz-value-1")
@example(method="PUT", name="1BAD", value="planted-Fuzz-value-2")
@pytest.mark.django_db
def test_no_secret_makes_the_api_fail_or_echo_its_value(
    deployed_token: str, method: str, name: str, value: Any
) -> None:
    path = "/api/v1/apps/web/secrets/" + quote(name, safe="")
    body = json.dumps({"value": value})

    response = Client().generic(
        method, path, body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {deployed_token}",
    )  # fmt: skip

    assert response.status_code < 500, (method, path, response.content[:300])
    answer = response.json()
    if isinstance(value, str) and len(value) >= 8 and value not in name:
        assert value not in json.dumps(answer, ensure_ascii=False)
    # Let any rollout it started end, so that the next example reaches the service too.
    Deployment.objects.filter(status="queued").update(status="succeeded")
