"""The cluster page's live capacity end to end on the sandbox: resize from the page, run the job,
tick as the scheduler would, and poll the fragment as the browser does until the new instances
show in their zones — while the pages themselves never call AWS."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test import Client
from django.urls import reverse

from deployments import inventory, jobs
from deployments.aws import clients
from deployments.models import Cluster, Team
from deployments.sandbox.server import Sandbox
from deployments.services import cluster_create
from tests import factories
from tests.conftest import wait_for_in_process
from tests.pages.conftest import HTMX

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def main(team: Team, sandbox: Sandbox, rq_redis: redis.Redis, settings: Any) -> Cluster:
    settings.TINYSTACKS_POLL_SECONDS = 0.1  # capacity is read every 6th poll: 0.6 s here
    account = factories.connect_sandbox(
        factories.make_account(team, name="sandbox", region="us-east-1")
    )
    cluster = cluster_create(team=team, actor=None, account=account, name="main", max_instances=6)
    return wait_for_in_process(cluster)


@pytest.fixture
def no_aws_calls() -> Iterator[None]:
    """Any AWS call made while this is in force fails the test."""

    def refuse(model: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a page called AWS: {model.name}")

    remove = clients.add_client_hook("before-call", refuse)
    yield
    remove()


def zone_cells(html: str) -> dict[str, str]:
    """Zone → its "N planned, M live" cell, from the capacity table."""
    rows = re.findall(r"<td>(us-east-1\w)</td>\s*<td>.*?</td>\s*<td[^>]*>([^<]*)", html, re.S)
    return {zone: " ".join(cell.split()) for zone, cell in rows}


def follow(client: Client, timeout: float = 30) -> str:
    """Tick and poll the fragment until it stops polling; the last fragment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs.tick()
        fragment = client.get(reverse("cluster", args=["main"]), **HTMX)  # type: ignore[arg-type]
        assert fragment.text.lstrip().startswith('<div id="cluster-live"')
        if fragment.status_code == 286:
            return fragment.text
        assert fragment.status_code == 200 and 'hx-trigger="every 2s"' in fragment.text
        time.sleep(0.2)
    raise AssertionError(f"still polling after {timeout} s")


def test_a_resize_shows_live_in_each_zone(owner_client: Client, main: Cluster) -> None:
    first = follow(owner_client)
    assert zone_cells(first) == {
        "us-east-1a": "1 planned, 1 live",
        "us-east-1b": "1 planned, 1 live",
        "us-east-1c": "0 planned, 0 live",
    }

    response = owner_client.post(
        reverse("cluster_resize", args=["main"]),
        {"instance_type": "t3.medium", "min_instances": "2", "desired_instances": "5",
         "max_instances": "6"},
    )  # fmt: skip
    assert response.status_code == 302
    wait_for_in_process(main)

    resized = follow(owner_client)
    assert zone_cells(resized) == {
        "us-east-1a": "2 planned, 2 live",
        "us-east-1b": "2 planned, 2 live",
        "us-east-1c": "1 planned, 1 live",
    }
    assert "5 desired" in resized and "· 5 live" in resized


def test_pages_show_the_live_numbers_without_calling_aws(
    owner_client: Client, main: Cluster, no_aws_calls: None
) -> None:
    with pytest.raises(AssertionError, match="a page called AWS"):
        inventory.capacity_refresh()  # the guard works: the tick does call AWS
    factories.make_capacity(main, {"us-east-1a": 1, "us-east-1b": 1})

    page = owner_client.get(reverse("cluster", args=["main"]))
    fragment = owner_client.get(reverse("cluster", args=["main"]), **HTMX)  # type: ignore[arg-type]
    overview = owner_client.get(reverse("overview"))

    assert page.status_code == 200 and fragment.status_code == 286
    assert zone_cells(page.text)["us-east-1a"] == "1 planned, 1 live"
    assert "2 live" in overview.text
