"""Container instances as ECS lists and describes them: paged 100 at a time (or `maxResults`) with
an opaque nextToken, ClusterNotFoundException for a cluster that does not exist, and each
instance's RUNNING and PENDING tasks counted apart."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    Clients,
    SandboxCluster,
    create_cluster,
    create_service,
    register_task_definition,
    rollout_state,
    tick_until,
)


def task_counts(ecs: Any, cluster: SandboxCluster) -> list[tuple[int, int]]:
    """(runningTasksCount, pendingTasksCount) of every container instance."""
    arns = ecs.list_container_instances(cluster=cluster.name)["containerInstanceArns"]
    instances = ecs.describe_container_instances(cluster=cluster.name, containerInstances=arns)[
        "containerInstances"
    ]
    return [(i["runningTasksCount"], i["pendingTasksCount"]) for i in instances]


def test_pages_of_two_return_every_instance_once(clients: Clients, sim: Simulator) -> None:
    cluster = create_cluster(clients, instances=5)
    sim.tick()
    ecs = clients.ecs

    first = ecs.list_container_instances(cluster=cluster.name, maxResults=2)
    second = ecs.list_container_instances(
        cluster=cluster.name, maxResults=2, nextToken=first["nextToken"]
    )
    third = ecs.list_container_instances(
        cluster=cluster.name, maxResults=2, nextToken=second["nextToken"]
    )

    pages = [first, second, third]
    assert [len(page["containerInstanceArns"]) for page in pages] == [2, 2, 1]
    assert "nextToken" not in third
    listed = [arn for page in pages for arn in page["containerInstanceArns"]]
    everything = ecs.list_container_instances(cluster=cluster.name)
    assert sorted(listed) == sorted(everything["containerInstanceArns"])
    assert len(set(listed)) == 5 and "nextToken" not in everything


def test_the_paginator_walks_every_page(clients: Clients, cluster: SandboxCluster) -> None:
    pages = list(
        clients.ecs.get_paginator("list_container_instances").paginate(
            cluster=cluster.name, PaginationConfig={"PageSize": 1}
        )
    )

    assert len(pages) == 3
    assert len({arn for page in pages for arn in page["containerInstanceArns"]}) == 3


@pytest.mark.parametrize("max_results", [0, 101])
def test_max_results_outside_1_to_100_is_refused(
    clients: Clients, cluster: SandboxCluster, max_results: int
) -> None:
    with pytest.raises(ClientError) as refused:
        clients.ecs.list_container_instances(cluster=cluster.name, maxResults=max_results)

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_a_token_ecs_did_not_hand_out_is_refused(clients: Clients, cluster: SandboxCluster) -> None:
    with pytest.raises(ClientError) as refused:
        clients.ecs.list_container_instances(cluster=cluster.name, nextToken="not a token")

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_listing_a_cluster_that_does_not_exist_is_cluster_not_found(
    clients: Clients, sim: Simulator
) -> None:
    with pytest.raises(ClientError) as missing:
        clients.ecs.list_container_instances(cluster="nowhere")

    assert missing.value.response["Error"]["Code"] == "ClusterNotFoundException"


def test_an_instance_counts_its_pending_and_running_tasks_apart(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    create_service(ecs, cluster, register_task_definition(ecs), desired=3)

    sim.tick()  # placed, not started yet

    assert sorted(task_counts(ecs, cluster)) == [(0, 1)] * 3
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    assert sorted(task_counts(ecs, cluster)) == [(1, 0)] * 3


def test_deregistering_an_instance_already_gone_is_a_client_error(
    clients: Clients, sim: Simulator
) -> None:
    cluster = create_cluster(clients, instances=1)
    sim.tick()
    ecs = clients.ecs
    [arn] = ecs.list_container_instances(cluster=cluster.name)["containerInstanceArns"]
    ecs.deregister_container_instance(cluster=cluster.name, containerInstance=arn, force=True)

    with pytest.raises(ClientError) as refused:
        ecs.deregister_container_instance(cluster=cluster.name, containerInstance=arn, force=True)
    assert refused.value.response["Error"]["Code"] == "ClientException"
