"""The tick's reads of live cluster capacity: which clusters, how often, what a failure leaves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from deployments import inventory, jobs
from deployments.aws import clients
from deployments.models import Cluster
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
POLL_SECONDS = 5.0


@pytest.fixture(autouse=True)
def poll(settings: Any) -> None:
    settings.TINYSTACKS_POLL_SECONDS = POLL_SECONDS


@pytest.fixture
def refused() -> Iterator[set[str]]:
    """ECS clusters whose container instances AWS refuses to list, for as long as they are in
    the set."""
    names: set[str] = set()

    def refuse(params: dict[str, Any], **kwargs: Any) -> None:
        if params.get("cluster") in names:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "Not authorized."}},
                "ListContainerInstances",
            )

    remove = clients.add_client_hook("before-parameter-build.ecs.ListContainerInstances", refuse)
    yield names
    remove()


def ghost(cluster: Cluster, name: str) -> Cluster:
    """A ready cluster row on the same account whose ECS cluster does not exist."""
    return factories.make_cluster(cluster.account, name=name, status=Cluster.Status.READY)


def tried_polls_ago(polls: float, *clusters: Cluster) -> None:
    before = timezone.now() - timedelta(seconds=polls * POLL_SECONDS)
    Cluster.objects.filter(pk__in=[c.pk for c in clusters]).update(capacity_tried_at=before)


def test_the_tick_stores_the_instances_of_each_zone(cluster: Cluster) -> None:
    jobs.tick()

    cluster.refresh_from_db()
    assert cluster.live_instances == 2
    assert [zone["zone"] for zone in cluster.capacity["zones"]] == ["us-east-1a", "us-east-1b"]
    assert [zone["active"] for zone in cluster.capacity["zones"]] == [1, 1]
    assert cluster.capacity_at is not None and cluster.capacity_error == ""
    assert cluster.capacity_at == cluster.capacity_tried_at


def test_a_cluster_is_read_again_on_the_sixth_poll_not_before(cluster: Cluster) -> None:
    assert inventory.capacity_refresh() == 1
    cluster.refresh_from_db()
    first_read = cluster.capacity_at

    assert inventory.capacity_refresh() == 0
    tried_polls_ago(5, cluster)
    assert inventory.capacity_refresh() == 0
    tried_polls_ago(6, cluster)
    assert inventory.capacity_refresh() == 1

    cluster.refresh_from_db()
    assert first_read is not None and cluster.capacity_at is not None
    assert cluster.capacity_at > first_read


def test_a_failed_read_keeps_the_last_snapshot_and_the_others_are_still_read(
    cluster: Cluster, refused: set[str]
) -> None:
    missing = ghost(cluster, "ghost")
    inventory.capacity_refresh()
    cluster.refresh_from_db()
    missing.refresh_from_db()
    assert cluster.live_instances == 2
    assert "ClusterNotFoundException" in missing.capacity_error
    assert missing.capacity_at is None and missing.capacity_tried_at is not None
    snapshot, read_at = cluster.capacity, cluster.capacity_at

    refused.add(cluster.ecs_name)
    tried_polls_ago(6, cluster, missing)
    jobs.tick()  # one cluster refused, the other missing: the tick still ends normally

    cluster.refresh_from_db()
    assert (cluster.capacity, cluster.capacity_at) == (snapshot, read_at)
    assert cluster.capacity_error == (
        "AWS refused ListContainerInstances: AccessDeniedException: Not authorized."
    )
    assert read_at is not None and cluster.capacity_tried_at is not None
    assert cluster.capacity_tried_at > read_at
    assert cluster.live_instances == 2  # the page still shows the last numbers read

    refused.clear()
    tried_polls_ago(6, cluster)
    inventory.capacity_refresh()
    cluster.refresh_from_db()
    assert cluster.capacity_error == "" and cluster.capacity_at == cluster.capacity_tried_at


@pytest.mark.parametrize("status", ["pending", "provisioning", "failed", "deleting", "deleted"])
def test_only_ready_clusters_are_read(cluster: Cluster, status: str) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(status=status)

    assert inventory.capacity_refresh() == 0

    cluster.refresh_from_db()
    assert cluster.capacity_tried_at is None and cluster.live_instances is None


def test_a_tick_reads_a_bounded_number_of_clusters_the_stalest_first(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inventory, "CLUSTERS_PER_TICK", 2)
    others = [ghost(cluster, f"ghost-{n}") for n in range(2)]
    tried_polls_ago(7, others[0])
    tried_polls_ago(8, others[1])

    assert inventory.capacity_refresh() == 2
    cluster.refresh_from_db()
    assert cluster.capacity_at is not None  # never read before: first
    others[0].refresh_from_db()
    assert others[0].capacity_tried_at is not None
    assert timezone.now() - others[0].capacity_tried_at > timedelta(seconds=6 * POLL_SECONDS)

    assert inventory.capacity_refresh() == 1  # the one left over, on the next tick
    others[0].refresh_from_db()
    assert timezone.now() - others[0].capacity_tried_at < timedelta(seconds=POLL_SECONDS)


def test_a_slow_account_stops_the_reads_at_half_a_poll_and_the_rest_wait_their_turn(
    cluster: Cluster, settings: Any
) -> None:
    settings.TINYSTACKS_POLL_SECONDS = 1.0
    others = [ghost(cluster, f"ghost-{n}") for n in range(3)]

    def slow(**kwargs: Any) -> None:
        time.sleep(0.3)  # every call, as an account behind a slow or failing endpoint

    remove = clients.add_client_hook("before-send.ecs", slow)
    try:
        read = inventory.capacity_refresh()
    finally:
        remove()

    assert 1 <= read < 4
    left = Cluster.objects.filter(pk__in=[c.pk for c in [cluster, *others]], capacity_tried_at=None)
    assert left.count() == 4 - read
    assert inventory.capacity_refresh() == 4 - read  # their turn, on the next tick


def test_a_sandbox_cluster_is_not_read_once_the_server_turns_the_sandbox_off(
    team: Any, settings: Any
) -> None:
    account = factories.make_account(team, name="play")
    cluster = factories.make_cluster(account, name="main", status=Cluster.Status.READY)
    settings.TINYSTACKS_ALLOW_SANDBOX = False

    inventory.capacity_refresh()

    cluster.refresh_from_db()
    assert "the local sandbox is turned off on this server" in cluster.capacity_error
    assert cluster.capacity_at is None
