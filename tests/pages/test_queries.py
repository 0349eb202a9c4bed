"""Pages run the same number of SQL queries whatever the number of rows they show."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from deployments import selectors
from deployments.models import AwsAccount, Cluster, Team
from tests import factories
from tests.pages.conftest import HTMX, query_count

pytestmark = pytest.mark.django_db

STEPS = ["network", "subnets", "security_group", "roles", "launch_template", "ecs_cluster"]


def _accounts(team: Team, n: int) -> None:
    for _ in range(n):
        account = factories.make_account(team)
        factories.make_job(team, account, status="failed")
        factories.make_job(team, account, status="running")
        factories.make_cluster(account)


def _clusters(team: Team, n: int) -> None:
    account = factories.make_account(team)
    for i in range(n):
        cluster = factories.make_cluster(account, status="provisioning" if i % 2 else "ready")
        factories.make_capacity(cluster, {"eu-west-1a": i, "eu-west-1b": 1})
        factories.make_app(cluster)


def _audit(team: Team, n: int) -> None:
    actor = factories.make_user(team)
    for _ in range(n):
        factories.make_audit_entry(team, actor)


def _cluster_detail(team: Team, n: int) -> None:
    account = AwsAccount.objects.get(team=team, name="sandbox")
    cluster = Cluster.objects.get(team=team, name="main", status="ready")
    cluster.steps = [
        {"name": STEPS[i % len(STEPS)], "status": "done", "error": ""} for i in range(n)
    ]
    cluster.resources = {f"thing_{i}": f"id-{i}" for i in range(n)} | {
        "availability_zones": [f"eu-west-1{chr(97 + i)}" for i in range(min(n, 6))],
        "subnet_ids": [f"subnet-{i}" for i in range(min(n, 6))],
    }
    cluster.save()
    zones = cluster.resources["availability_zones"] + ["eu-west-1z"]  # one without a subnet
    factories.make_capacity(cluster, dict.fromkeys(zones, n), tasks_per_instance=2)
    for _ in range(n):
        factories.make_job(team, cluster, kind="scale_cluster", status="succeeded")
        factories.make_cluster(account, status="deleted", name="main")


def _account_detail(team: Team, n: int) -> None:
    account = AwsAccount.objects.get(team=team, name="sandbox")
    for _ in range(n):
        factories.make_cluster(account)
        factories.make_job(team, account, status="succeeded")


CASES: list[tuple[str, str, Callable[[Team, int], None], dict[str, str]]] = [
    ("accounts", "/accounts/", _accounts, {}),
    ("accounts fragment", "/accounts/", _accounts, HTMX),
    ("overview", "/", _clusters, {}),
    ("overview fragment", "/", _clusters, HTMX),
    ("activity", "/activity/", _audit, {}),
    ("cluster", "/clusters/main/", _cluster_detail, {}),
    ("cluster fragment", "/clusters/main/", _cluster_detail, HTMX),
    ("account", "/accounts/sandbox/", _account_detail, {}),
    ("account fragment", "/accounts/sandbox/", _account_detail, HTMX),
    ("new cluster", "/clusters/new", _accounts, {}),
]


@pytest.mark.parametrize(("what", "url", "add", "headers"), CASES, ids=[c[0] for c in CASES])
def test_query_count_does_not_grow_with_rows(
    owner_client: Client,
    team: Team,
    cluster: Cluster,
    what: str,
    url: str,
    add: Callable[[Team, int], None],
    headers: dict[str, str],
) -> None:
    add(team, 3)
    few = query_count(owner_client, url, **headers)
    add(team, 27)
    many = query_count(owner_client, url, **headers)

    assert few == many, f"{what}: {few} queries with few rows, {many} with many"


def test_the_urls_above_are_the_real_ones() -> None:
    assert reverse("accounts") == "/accounts/"
    assert reverse("cluster", args=["main"]) == "/clusters/main/"
    assert reverse("account", args=["sandbox"]) == "/accounts/sandbox/"
    assert reverse("cluster_new") == "/clusters/new"
    assert reverse("activity") == "/activity/"


def test_the_releases_page_takes_as_many_queries_with_one_page_as_with_many(
    owner_client: Client, cluster: Cluster
) -> None:
    app = factories.make_app(cluster, name="web")
    url = reverse("app_releases", args=["web"])
    for _ in range(3):
        factories.make_release(app)
    few = query_count(owner_client, url)
    for _ in range(selectors.RELEASES_PAGE_SIZE * 2):
        factories.make_release(app)

    assert query_count(owner_client, url) == few
    assert query_count(owner_client, f"{url}?page=2") == few
