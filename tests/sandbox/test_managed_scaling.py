"""ECS cluster auto scaling: with managed scaling a capacity provider grows its group for tasks
that wait in PROVISIONING, and shrinks it once instances have sat idle."""

from __future__ import annotations

from typing import Any

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    Clients,
    SandboxCluster,
    create_cluster,
    describe,
    register_task_definition,
    rollout_state,
    running_tasks,
    tick_until,
)

# t3.medium registers 2048 CPU units and 3635 MiB: two of these tasks fit on an instance.
HALF_AN_INSTANCE: dict[str, Any] = {"cpu": "1024", "memory": "1024"}


def group(clients: Clients, cluster: SandboxCluster) -> dict[str, Any]:
    found: list[dict[str, Any]] = clients.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[cluster.asg_name]
    )["AutoScalingGroups"]
    [only] = found
    return only


def managed_cluster(clients: Clients, max_size: int = 10, **managed_scaling: int) -> SandboxCluster:
    """An empty cluster whose default capacity provider has managed scaling and managed
    termination protection, as provisioning makes it."""
    cluster = create_cluster(clients, instances=0)
    clients.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=cluster.asg_name,
        MaxSize=max_size,
        NewInstancesProtectedFromScaleIn=True,
    )
    clients.ecs.create_capacity_provider(
        name="demo-cp",
        autoScalingGroupProvider={
            "autoScalingGroupArn": group(clients, cluster)["AutoScalingGroupARN"],
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100, **managed_scaling},
            "managedTerminationProtection": "ENABLED",
        },
    )
    clients.ecs.put_cluster_capacity_providers(
        cluster=cluster.name,
        capacityProviders=["demo-cp"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "demo-cp", "weight": 1}],
    )
    return cluster


def create_service(clients: Clients, cluster: SandboxCluster, desired: int) -> None:
    clients.ecs.create_service(  # on the cluster's default strategy, tasks packed by memory
        cluster=cluster.name,
        serviceName="web",
        taskDefinition=register_task_definition(clients.ecs, **HALF_AN_INSTANCE),
        desiredCount=desired,
        placementStrategy=[{"type": "binpack", "field": "memory"}],
    )


def statuses(clients: Clients, cluster: SandboxCluster) -> list[str]:
    return sorted(task["lastStatus"] for task in running_tasks(clients.ecs, cluster))


def test_tasks_wait_in_provisioning_while_the_group_grows_then_idle_instances_go(
    clients: Clients, sim: Simulator
) -> None:
    cluster = managed_cluster(clients, minimumScalingStepSize=3)
    create_service(clients, cluster, desired=3)

    sim.tick()

    service = describe(clients.ecs, cluster)
    assert (service["pendingCount"], service["runningCount"]) == (3, 0)
    assert statuses(clients, cluster) == ["PROVISIONING"] * 3
    assert group(clients, cluster)["DesiredCapacity"] == 3  # 2 needed, at least the minimum step
    assert not any("unable to place" in event["message"] for event in service["events"])

    sim.tick()  # the instances join and the tasks are placed, on two of them
    for _ in range(14):  # less than the 15 minutes below the target that ECS's low alarm needs
        sim.tick()

    assert rollout_state(clients.ecs, cluster) == "COMPLETED"
    hosts = {task["containerInstanceArn"] for task in running_tasks(clients.ecs, cluster)}
    assert len(hosts) == 2
    assert len(group(clients, cluster)["Instances"]) == 3  # one idle, kept so far
    tick_until(sim, lambda: len(group(clients, cluster)["Instances"]) == 2, ticks=3)

    assert group(clients, cluster)["DesiredCapacity"] == 2
    assert describe(clients.ecs, cluster)["runningCount"] == 3  # only the idle instance went


def test_the_group_grows_a_step_at_a_time_up_to_its_max_size_and_waiting_tasks_time_out(
    clients: Clients, sim: Simulator
) -> None:
    cluster = managed_cluster(clients, max_size=2, maximumScalingStepSize=1)
    create_service(clients, cluster, desired=6)  # 3 instances' worth

    sized = []
    for _ in range(4):
        sim.tick()
        sized.append(group(clients, cluster)["DesiredCapacity"])

    assert sized == [1, 2, 2, 2]
    assert statuses(clients, cluster).count("PROVISIONING") == 2
    waiting = next(
        t for t in running_tasks(clients.ecs, cluster) if t["lastStatus"] == "PROVISIONING"
    )
    tick_until(sim, lambda: describe_task(clients, cluster, waiting)["lastStatus"] == "STOPPED")
    stopped = describe_task(clients, cluster, waiting)
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert "PROVISIONING" in stopped["stoppedReason"]
    assert describe(clients.ecs, cluster)["pendingCount"] == 2  # ECS keeps trying


def describe_task(clients: Clients, cluster: SandboxCluster, task: dict[str, Any]) -> Any:
    return clients.ecs.describe_tasks(cluster=cluster.name, tasks=[task["taskArn"]])["tasks"][0]


def test_without_managed_scaling_a_task_that_fits_nowhere_is_not_started(
    clients: Clients, sim: Simulator
) -> None:
    cluster = create_cluster(clients, instances=0)
    clients.ecs.create_capacity_provider(
        name="demo-cp",
        autoScalingGroupProvider={
            "autoScalingGroupArn": group(clients, cluster)["AutoScalingGroupARN"]
        },
    )
    clients.ecs.put_cluster_capacity_providers(
        cluster=cluster.name,
        capacityProviders=["demo-cp"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "demo-cp", "weight": 1}],
    )
    create_service(clients, cluster, desired=2)

    for _ in range(3):
        sim.tick()

    service = describe(clients.ecs, cluster)
    assert (service["pendingCount"], service["runningCount"]) == (0, 0)
    assert "was unable to place a task" in service["events"][0]["message"]
    assert group(clients, cluster)["DesiredCapacity"] == 0
