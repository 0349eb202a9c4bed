"""The deploy form end to end on the sandbox: POST it, run the job, tick as the scheduler would, and
poll the rollout fragment as the browser does until it answers 286 with the outcome."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from django.test import Client
from django.urls import reverse

from deployments import tracker
from deployments.models import App, Cluster, Deployment, Team
from deployments.sandbox.server import Sandbox
from deployments.services import app_create, cluster_create
from tests import factories
from tests.conftest import wait_for_in_process
from tests.pages.conftest import HTMX

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web(team: Team, sandbox: Sandbox, rq_redis: redis.Redis) -> Iterator[App]:
    account = factories.connect_sandbox(
        factories.make_account(team, name="sandbox", region="us-east-1")
    )
    cluster = wait_for_in_process(
        cluster_create(team=team, actor=None, account=account, name="main")
    )
    assert cluster.status == Cluster.Status.READY
    # ECS steps slower than we poll, so every state of a rollout is seen, as with real ECS.
    sandbox.tick_seconds, fast = 0.5, sandbox.tick_seconds
    yield app_create(team=team, actor=None, cluster=cluster, name="web")
    sandbox.tick_seconds = fast


def _deploy_and_poll(client: Client, image: str, timeout: float = 60) -> list[str]:
    """The fragments the browser would have seen, until the one that stopped the polling."""
    response = client.post(reverse("app_deploy", args=["web"]), {"image": image}, **HTMX)  # type: ignore[arg-type]
    assert response["HX-Redirect"] == reverse("app", args=["web"]), response.text
    deployment = Deployment.objects.order_by("-pk").first()
    assert deployment is not None
    wait_for_in_process(deployment)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tracker.follow_rollouts()
        fragment = client.get(reverse("app", args=["web"]), **HTMX)  # type: ignore[arg-type]
        assert fragment.text.lstrip().startswith('<div id="app-live"')
        seen.append(fragment.text)
        if fragment.status_code == 286:
            return seen
        assert fragment.status_code == 200 and 'hx-trigger="every 2s"' in fragment.text
        time.sleep(0.2)
    raise AssertionError(f"still polling after {timeout} s: {seen[-1]}")


def test_a_deploy_from_the_page_is_followed_until_it_succeeds(
    owner_client: Client, web: App
) -> None:
    seen = _deploy_and_poll(owner_client, "nginx:1.27")

    final = seen[-1]
    assert "state state-succeeded" in final and "Succeeded" in final
    assert "v1 is live: 2 of 2 tasks running." in final
    assert "bar-running w-100" in final and "hx-trigger" not in final
    assert "has started 2 tasks" in final  # ECS's events, as they arrived
    assert any("Rolling out" in html for html in seen[:-1])


def test_a_crashing_image_ends_rolled_back_with_the_previous_release_live(
    owner_client: Client, web: App
) -> None:
    _deploy_and_poll(owner_client, "nginx:1.27")

    final = _deploy_and_poll(owner_client, "nginx:crashloop")[-1]

    assert "Rolled back — v1 is live again." in final
    assert "state state-rolled_back" in final and "circuit breaker" in final
