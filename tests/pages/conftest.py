from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import App, AwsAccount, Cluster, Deployment, Membership, Team
from tests import factories

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def deployer(team: Team) -> Any:
    return factories.make_user(team, Membership.Role.DEPLOYER, username="dana")


@pytest.fixture
def account(team: Team) -> AwsAccount:
    return factories.make_account(team, name="sandbox", region="eu-west-1")


@pytest.fixture
def cluster(account: AwsAccount) -> Cluster:
    return factories.make_cluster(account, name="main", status=Cluster.Status.READY)


@pytest.fixture
def owner_client(client: Client, owner: Any) -> Client:
    client.force_login(owner)
    return client


@pytest.fixture
def viewer_client(client: Client, viewer: Any) -> Client:
    client.force_login(viewer)
    return client


@pytest.fixture
def app(cluster: Cluster) -> App:
    """web on main, never deployed."""
    return factories.make_app(cluster, name="web")


def deployed(
    app: App, image: str = "nginx:1.27", status: str = "succeeded", **fields: Any
) -> Deployment:
    """A release of `app` (its config snapshot as services make it) and a rollout of it."""
    config = {
        "env": dict(app.config_vars), "cpu": app.cpu, "memory": app.memory, "port": app.port,
        "command": app.command, "health_check_path": app.health_check_path,
    }  # fmt: skip
    release = factories.make_release(app, image=image, config=fields.pop("config", config))
    now = timezone.now()
    defaults: dict[str, Any] = {
        "desired_count": 2, "running_count": 2 if status == "succeeded" else 0,
        "started_at": now, "finished_at": None if status in Deployment.ACTIVE_STATUSES else now,
    }  # fmt: skip
    return factories.make_deployment(release, status=status, **(defaults | fields))


def query_count(client: Client, url: str, **headers: Any) -> int:
    """The SQL queries of one GET of `url`, after a first one has warmed sessions and caches."""
    client.get(url, **headers)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code in (200, 286)
    return len(queries)
