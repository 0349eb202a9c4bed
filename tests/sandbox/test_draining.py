"""Container instance draining (UpdateContainerInstancesState), as ECS's developer guide describes
it: no new task is placed on a DRAINING instance; its PENDING service tasks stop at once; its
RUNNING ones are replaced on ACTIVE instances within maximumPercent and stop only while
minimumHealthyPercent holds; set ACTIVE again, it takes tasks again."""

from __future__ import annotations

from typing import Any

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    Clients,
    SandboxCluster,
    create_service,
    describe,
    register_task_definition,
    rollout_state,
    running_tasks,
    tick_until,
)

DRAINING_REASON = "Service web: container instance is in DRAINING state"


def set_state(ecs: Any, cluster: SandboxCluster, instance_arn: str, status: str) -> None:
    ecs.update_container_instances_state(
        cluster=cluster.name, containerInstances=[instance_arn], status=status
    )


def task(ecs: Any, cluster: SandboxCluster, arn: str) -> dict[str, Any]:
    described: list[dict[str, Any]] = ecs.describe_tasks(cluster=cluster.name, tasks=[arn])["tasks"]
    [only] = described
    return only


def live_tasks(ecs: Any, cluster: SandboxCluster) -> list[dict[str, Any]]:
    """The service's tasks not stopped (RUNNING and PENDING)."""
    return [t for t in running_tasks(ecs, cluster) if t["lastStatus"] != "STOPPED"]


def hosts(ecs: Any, cluster: SandboxCluster) -> set[str]:
    return {t["containerInstanceArn"] for t in live_tasks(ecs, cluster)}


def settled_on(ecs: Any, cluster: SandboxCluster, count: int, excluding: str) -> bool:
    tasks = live_tasks(ecs, cluster)
    return (
        len(tasks) == count
        and all(t["lastStatus"] == "RUNNING" for t in tasks)
        and excluding not in hosts(ecs, cluster)
    )


def started(ecs: Any, cluster: SandboxCluster, sim: Simulator, **service: Any) -> None:
    create_service(ecs, cluster, register_task_definition(ecs), **service)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")


def drain_a_host(ecs: Any, cluster: SandboxCluster) -> tuple[dict[str, Any], str]:
    """Drain the instance of the service's first task: (that task, the instance's ARN)."""
    victim = running_tasks(ecs, cluster)[0]
    drained: str = victim["containerInstanceArn"]
    set_state(ecs, cluster, drained, "DRAINING")
    return victim, drained


def test_running_tasks_are_replaced_before_they_stop_at_minimum_healthy_100(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    started(ecs, cluster, sim, desired=3, minimum=100, maximum=200)
    victim, drained = drain_a_host(ecs, cluster)
    for _ in range(10):
        sim.tick()
        running = [t for t in live_tasks(ecs, cluster) if t["lastStatus"] == "RUNNING"]
        assert len(running) >= 3  # never below minimumHealthyPercent of 3
        assert len(live_tasks(ecs, cluster)) <= 6  # nor above maximumPercent

    stopped = task(ecs, cluster, victim["taskArn"])
    assert (stopped["lastStatus"], stopped["stoppedReason"]) == ("STOPPED", DRAINING_REASON)
    assert settled_on(ecs, cluster, 3, excluding=drained)
    [instance] = ecs.describe_container_instances(
        cluster=cluster.name, containerInstances=[drained]
    )["containerInstances"]
    assert (instance["status"], instance["runningTasksCount"]) == ("DRAINING", 0)
    assert describe(ecs, cluster)["runningCount"] == 3


def test_below_minimum_healthy_100_tasks_stop_first_within_maximum_percent(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    started(ecs, cluster, sim, desired=2, minimum=50, maximum=100)
    victim, drained = drain_a_host(ecs, cluster)
    sim.tick()

    assert task(ecs, cluster, victim["taskArn"])["stoppedReason"] == DRAINING_REASON
    assert len(live_tasks(ecs, cluster)) == 2  # the replacement, within 100 % of 2
    tick_until(sim, lambda: settled_on(ecs, cluster, 2, excluding=drained))


def test_pending_tasks_on_a_draining_instance_stop_at_once(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    create_service(ecs, cluster, register_task_definition(ecs), desired=3, minimum=100)
    sim.tick()  # placed, not started yet
    victim = running_tasks(ecs, cluster)[0]
    assert victim["lastStatus"] == "PENDING"
    drained = victim["containerInstanceArn"]

    set_state(ecs, cluster, drained, "DRAINING")

    stopped = task(ecs, cluster, victim["taskArn"])
    assert (stopped["lastStatus"], stopped["stoppedReason"]) == ("STOPPED", DRAINING_REASON)
    tick_until(sim, lambda: settled_on(ecs, cluster, 3, excluding=drained))


def test_a_draining_instance_takes_no_task_until_it_is_active_again(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    arns = ecs.list_container_instances(cluster=cluster.name)["containerInstanceArns"]
    set_state(ecs, cluster, arns[0], "DRAINING")
    started(ecs, cluster, sim, desired=4)
    assert hosts(ecs, cluster) == set(arns[1:])

    set_state(ecs, cluster, arns[0], "ACTIVE")
    ecs.update_service(cluster=cluster.name, service="web", desiredCount=6)
    tick_until(sim, lambda: describe(ecs, cluster)["runningCount"] == 6)

    assert hosts(ecs, cluster) == set(arns)
