"""Reading a provisioned cluster's container instances from the sandbox, per availability zone."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from deployments.aws import inventory
from deployments.aws.inventory import ZoneCapacity
from deployments.aws_access import account_access
from deployments.capacity import INSTANCE_TYPES
from deployments.models import Cluster
from deployments.sandbox.server import Sandbox
from tests.conftest import aws

pytestmark = pytest.mark.django_db(transaction=True)
MEDIUM = INSTANCE_TYPES["t3.medium"]


def read(cluster: Cluster) -> list[ZoneCapacity]:
    return inventory.read(account_access(cluster.account), cluster.ecs_name)


def eventually(condition: Callable[[], bool], timeout: float = 20) -> None:
    """Wait for the sandbox's simulator, which ticks on its own thread."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the sandbox did not get there"
        time.sleep(0.1)


def run_service(sandbox: Sandbox, cluster: Cluster, tasks: int) -> None:
    """A service of `tasks` tasks of 256 CPU units and 512 MiB, running on the cluster."""
    ecs = aws(sandbox, "ecs")
    definition = ecs.register_task_definition(
        family="probe", cpu="256", memory="512", requiresCompatibilities=["EC2"],
        containerDefinitions=[{"name": "probe", "image": "nginx:1.27", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    ecs.create_service(
        cluster=cluster.ecs_name, serviceName="probe", taskDefinition=definition,
        desiredCount=tasks,
    )  # fmt: skip

    def running() -> bool:
        service = ecs.describe_services(cluster=cluster.ecs_name, services=["probe"])
        return bool(service["services"][0]["runningCount"] == tasks)

    eventually(running)


def test_each_zone_has_its_instances_and_their_whole_capacity(cluster: Cluster) -> None:
    zones = read(cluster)

    assert [zone.zone for zone in zones] == ["us-east-1a", "us-east-1b"]
    for zone in zones:
        assert (zone.instances, zone.active, zone.draining, zone.agents_connected) == (1, 1, 0, 1)
        assert zone.cpu_registered == zone.cpu_remaining == MEDIUM.cpu_units
        assert zone.memory_registered == zone.memory_remaining == MEDIUM.task_memory_mib
        assert (zone.running_tasks, zone.pending_tasks) == (0, 0)


def test_running_tasks_show_as_capacity_in_use_where_they_run(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    run_service(sandbox, cluster, tasks=2)  # spread across the zones: one each

    def settled() -> bool:
        return all(zone.running_tasks == 1 for zone in read(cluster))

    eventually(settled)
    for zone in read(cluster):
        assert zone.cpu_registered - zone.cpu_remaining == 256
        assert zone.memory_registered - zone.memory_remaining == 512
        assert zone.pending_tasks == 0


def test_a_draining_instance_is_counted_apart(sandbox: Sandbox, cluster: Cluster) -> None:
    ecs = aws(sandbox, "ecs")
    arns = ecs.list_container_instances(cluster=cluster.ecs_name)["containerInstanceArns"]
    ecs.update_container_instances_state(
        cluster=cluster.ecs_name, containerInstances=arns[:1], status="DRAINING"
    )

    zones = read(cluster)

    assert sum(zone.draining for zone in zones) == 1
    assert sum(zone.active for zone in zones) == 1
    assert sum(zone.instances for zone in zones) == 2


def test_small_pages_and_batches_read_the_same(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = read(cluster)
    monkeypatch.setattr(inventory, "LIST_PAGE_SIZE", 1)
    monkeypatch.setattr(inventory, "DESCRIBE_BATCH", 1)

    assert read(cluster) == whole
