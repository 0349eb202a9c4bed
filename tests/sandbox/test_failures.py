"""Bad images: crash loops, failing health checks, the circuit breaker and its rollback."""

from __future__ import annotations

import pytest

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    Clients,
    SandboxCluster,
    create_service,
    describe,
    primary,
    register_task_definition,
    rollout_state,
    running_tasks,
    tick_until,
)

BREAKER_FAILED = "ECS deployment circuit breaker: tasks failed to start."


def deploy_good_then(
    clients: Clients,
    sim: Simulator,
    cluster: SandboxCluster,
    image: str,
    desired: int = 4,
    breaker: bool = True,
    rollback: bool = True,
) -> tuple[str, str]:
    ecs = clients.ecs
    good = register_task_definition(ecs)
    create_service(ecs, cluster, good, desired=desired, breaker=breaker, rollback=rollback)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    bad = register_task_definition(ecs, image=image)
    ecs.update_service(cluster=cluster.name, service="web", taskDefinition=bad)
    return good, bad


def stopped_tasks(clients: Clients, cluster: SandboxCluster) -> list[dict[str, object]]:
    ecs = clients.ecs
    arns = ecs.list_tasks(cluster=cluster.name, serviceName="web", desiredStatus="STOPPED")
    tasks: list[dict[str, object]] = ecs.describe_tasks(
        cluster=cluster.name, tasks=arns["taskArns"]
    )["tasks"]
    return tasks


def test_crash_loop_trips_the_breaker_and_rolls_back_to_the_last_completed_definition(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    good, bad = deploy_good_then(clients, sim, cluster, "nginx:crashloop")
    failed_id = primary(describe(ecs, cluster))["id"]

    tick_until(sim, lambda: primary(describe(ecs, cluster))["taskDefinition"] == good)

    service = describe(ecs, cluster)
    # A rollback is a new deployment; the failed one and the original drain as ACTIVE.
    rollback, *older = service["deployments"]
    [failed] = [deployment for deployment in older if deployment["id"] == failed_id]
    assert (failed["status"], failed["rolloutState"]) == ("ACTIVE", "FAILED")
    assert failed["rolloutStateReason"] == BREAKER_FAILED
    assert failed["failedTasks"] >= 3
    assert rollback["rolloutState"] == "IN_PROGRESS"
    assert "rolling back" in rollback["rolloutStateReason"]
    assert any(
        "deployment failed: tasks failed to start" in e["message"] for e in service["events"]
    )
    assert service["runningCount"] == 4  # the old tasks never stopped (minimum healthy 100 %)
    crashed = [
        t
        for t in stopped_tasks(clients, cluster)
        if t.get("stopCode") == "EssentialContainerExited"
    ]
    assert len(crashed) >= 3
    assert {task["stoppedReason"] for task in crashed} == {"Essential container in task exited"}
    assert {task["taskDefinitionArn"] for task in crashed} == {bad}

    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    [deployment] = describe(ecs, cluster)["deployments"]
    assert deployment["taskDefinition"] == good


@pytest.mark.parametrize(("desired", "threshold"), [(2, 3), (10, 5)])
def test_the_breaker_trips_at_half_the_desired_count_but_at_least_three(
    clients: Clients, sim: Simulator, cluster: SandboxCluster, desired: int, threshold: int
) -> None:
    ecs = clients.ecs
    deploy_good_then(clients, sim, cluster, "nginx:crashloop", desired=desired, rollback=False)

    for _ in range(30):
        sim.tick()
        deployment = primary(describe(ecs, cluster))
        if deployment["rolloutState"] == "FAILED":
            break
        assert deployment["failedTasks"] < threshold
    assert deployment["rolloutState"] == "FAILED"
    assert deployment["failedTasks"] >= threshold


def test_without_rollback_a_failed_deployment_stays_primary_and_starts_nothing(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    good, bad = deploy_good_then(clients, sim, cluster, "nginx:crashloop", rollback=False)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "FAILED")
    sim.tick()  # pending tasks of the failed deployment finish failing
    sim.tick()
    sim.tick()

    service = describe(ecs, cluster)
    failed = primary(service)
    assert (failed["taskDefinition"], failed["rolloutStateReason"]) == (bad, BREAKER_FAILED)
    assert failed["pendingCount"] == failed["runningCount"] == 0
    tasks = running_tasks(ecs, cluster)
    assert [task["taskDefinitionArn"] for task in tasks] == [good] * 4


def test_without_the_breaker_a_crash_loop_stays_in_progress_for_ever(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    good, _ = deploy_good_then(clients, sim, cluster, "nginx:crashloop", breaker=False)

    for _ in range(30):
        sim.tick()

    service = describe(ecs, cluster)
    assert primary(service)["rolloutState"] == "IN_PROGRESS"
    assert primary(service)["failedTasks"] > 10
    assert len(service["deployments"]) == 2
    assert [
        t["taskDefinitionArn"] for t in running_tasks(ecs, cluster) if t["lastStatus"] == "RUNNING"
    ] == [good] * 4


def test_unhealthy_tasks_run_then_fail_their_health_check(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs

    def tasks_of(definition: str) -> list[dict[str, object]]:
        return [t for t in running_tasks(ecs, cluster) if t["taskDefinitionArn"] == definition]

    good, bad = deploy_good_then(clients, sim, cluster, "registry.example/web:unhealthy-2")
    tick_until(sim, lambda: any(t["lastStatus"] == "RUNNING" for t in tasks_of(bad)))
    [unhealthy] = [t for t in tasks_of(bad) if t["lastStatus"] == "RUNNING"][:1]
    assert unhealthy["healthStatus"] == "UNHEALTHY"

    tick_until(sim, lambda: primary(describe(ecs, cluster))["taskDefinition"] == good)

    failed = [t for t in stopped_tasks(clients, cluster) if t["taskDefinitionArn"] == bad]
    assert "Task failed container health checks" in {task["stoppedReason"] for task in failed}
    assert "FAILED" in [d["rolloutState"] for d in describe(ecs, cluster)["deployments"]]


def test_a_failure_marker_in_the_environment_fails_a_good_image(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    good = register_task_definition(ecs)
    create_service(ecs, cluster, good, desired=2, breaker=True, rollback=True)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    definition = ecs.describe_task_definition(taskDefinition=good)["taskDefinition"]
    [container] = definition["containerDefinitions"]
    container["environment"] = [{"name": "SANDBOX_FAILURE", "value": "crashloop"}]
    bad = ecs.register_task_definition(
        family="web", containerDefinitions=[container], cpu="256", memory="512"
    )["taskDefinition"]["taskDefinitionArn"]

    ecs.update_service(cluster=cluster.name, service="web", taskDefinition=bad)
    tick_until(sim, lambda: primary(describe(ecs, cluster))["taskDefinition"] == good)

    assert "FAILED" in [d["rolloutState"] for d in describe(ecs, cluster)["deployments"]]


def test_a_first_deployment_that_fails_has_nothing_to_roll_back_to(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    bad = register_task_definition(ecs, image="nginx:crashloop")
    create_service(ecs, cluster, bad, desired=2, breaker=True, rollback=True)

    tick_until(sim, lambda: rollout_state(ecs, cluster) == "FAILED")

    [deployment] = describe(ecs, cluster)["deployments"]
    assert (deployment["taskDefinition"], deployment["rolloutStateReason"]) == (bad, BREAKER_FAILED)
