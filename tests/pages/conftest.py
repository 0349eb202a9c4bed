from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from deployments.models import AwsAccount, Cluster, Membership, Team
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
