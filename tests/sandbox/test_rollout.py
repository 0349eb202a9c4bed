"""The rolling-update controller, read back through boto3 as the product reads ECS."""

from __future__ import annotations

import math
import re

import pytest
from botocore.exceptions import ClientError, WaiterError

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

DEPLOYMENT_ID = re.compile(r"ecs-svc/\d{19}")


def deploy_first_version(
    clients: Clients,
    sim: Simulator,
    cluster: SandboxCluster,
    desired: int = 2,
    minimum: int = 100,
    maximum: int = 200,
) -> str:
    v1 = register_task_definition(clients.ecs)
    create_service(clients.ecs, cluster, v1, desired=desired, minimum=minimum, maximum=maximum)
    tick_until(sim, lambda: rollout_state(clients.ecs, cluster) == "COMPLETED")
    return v1


def test_create_service_keeps_and_echoes_its_configuration(
    clients: Clients, cluster: SandboxCluster
) -> None:
    v1 = register_task_definition(clients.ecs)

    created = create_service(clients.ecs, cluster, v1, minimum=50, maximum=150, breaker=True)

    for service in (created, describe(clients.ecs, cluster)):
        assert service["deploymentConfiguration"] == {
            "minimumHealthyPercent": 50,
            "maximumPercent": 150,
            "deploymentCircuitBreaker": {"enable": True, "rollback": False},
        }
        assert service["placementStrategy"][0] == {
            "type": "spread",
            "field": "attribute:ecs.availability-zone",
        }
        [deployment] = service["deployments"]
        assert deployment["status"] == "PRIMARY"
        assert deployment["rolloutState"] == "IN_PROGRESS"
        assert deployment["taskDefinition"] == v1
        assert DEPLOYMENT_ID.fullmatch(deployment["id"])


def test_update_service_answers_with_a_new_primary_deployment(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    deploy_first_version(clients, sim, cluster)
    first = primary(describe(ecs, cluster))["id"]
    v2 = register_task_definition(ecs, image="nginx:1.28")

    updated = ecs.update_service(
        cluster=cluster.name,
        service="web",
        taskDefinition="web:2",  # family:revision, stored as the full ARN as on ECS
        deploymentConfiguration={"minimumHealthyPercent": 50},
    )["service"]

    assert v2.endswith(":task-definition/web:2")
    assert updated["taskDefinition"] == v2
    assert updated["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert updated["deploymentConfiguration"]["maximumPercent"] == 200
    new, old = updated["deployments"]
    assert (new["status"], new["taskDefinition"], new["rolloutState"]) == (
        "PRIMARY",
        v2,
        "IN_PROGRESS",
    )
    assert DEPLOYMENT_ID.fullmatch(new["id"]) and new["id"] != first
    assert (old["status"], old["id"], old["runningCount"]) == ("ACTIVE", first, 2)

    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    [deployment] = describe(ecs, cluster)["deployments"]  # the drained one disappeared
    assert deployment["id"] == new["id"]


def test_a_bare_family_resolves_to_its_latest_revision(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    deploy_first_version(clients, sim, cluster)
    v2 = register_task_definition(clients.ecs, image="nginx:1.28")

    updated = clients.ecs.update_service(cluster=cluster.name, service="web", taskDefinition="web")

    assert primary(updated["service"])["taskDefinition"] == v2


def test_force_new_deployment_starts_a_deployment_of_the_same_task_definition(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    v1 = deploy_first_version(clients, sim, cluster)
    first = primary(describe(clients.ecs, cluster))["id"]

    updated = clients.ecs.update_service(
        cluster=cluster.name, service="web", forceNewDeployment=True
    )["service"]

    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert primary(updated)["id"] != first
    assert primary(updated)["taskDefinition"] == v1


def test_changing_only_the_desired_count_starts_no_deployment(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    deploy_first_version(clients, sim, cluster)
    first = primary(describe(ecs, cluster))["id"]

    ecs.update_service(cluster=cluster.name, service="web", desiredCount=5)
    tick_until(sim, lambda: describe(ecs, cluster)["runningCount"] == 5)
    ecs.update_service(cluster=cluster.name, service="web", desiredCount=1)
    tick_until(sim, lambda: describe(ecs, cluster)["runningCount"] == 1)

    service = describe(ecs, cluster)
    [deployment] = service["deployments"]
    assert (deployment["id"], deployment["rolloutState"]) == (first, "COMPLETED")
    assert (deployment["desiredCount"], deployment["runningCount"]) == (1, 1)
    assert len(running_tasks(ecs, cluster)) == 1
    assert service["events"][0]["message"] == "(service web) has reached a steady state."
    assert any("has stopped 4 running tasks" in event["message"] for event in service["events"])


@pytest.mark.parametrize("desired", [1, 2, 4, 7])
@pytest.mark.parametrize(("minimum", "maximum"), [(100, 200), (50, 100), (0, 100), (100, 150)])
def test_rolling_update_stays_within_minimum_healthy_and_maximum_percent(
    clients: Clients,
    sim: Simulator,
    cluster: SandboxCluster,
    minimum: int,
    maximum: int,
    desired: int,
) -> None:
    ecs = clients.ecs
    v1 = deploy_first_version(
        clients, sim, cluster, desired=desired, minimum=minimum, maximum=maximum
    )
    v2 = register_task_definition(ecs, image="nginx:1.28")
    ecs.update_service(cluster=cluster.name, service="web", taskDefinition=v2)
    at_least_running = math.ceil(desired * minimum / 100)
    at_most_live = math.floor(desired * maximum / 100)
    # With nothing allowed to stop or start (desired 1 at 50-100 %), ECS's rollout sticks too.
    stuck = at_least_running == desired == at_most_live

    for _ in range(40):
        sim.tick()
        service = describe(ecs, cluster)
        tasks = running_tasks(ecs, cluster)
        running = [t for t in tasks if t["lastStatus"] == "RUNNING"]
        pending = [t for t in tasks if t["lastStatus"] == "PENDING"]
        assert len(running) == service["runningCount"]
        assert len(pending) == service["pendingCount"]
        assert len(running) + len(pending) == len(tasks)
        assert len(running) >= at_least_running
        assert len(tasks) <= at_most_live
        if primary(service)["rolloutState"] == "COMPLETED":
            break
        assert any(task["taskDefinitionArn"] == v1 for task in tasks) or pending
    else:
        assert stuck, "the rollout never completed"
        assert [task["taskDefinitionArn"] for task in tasks] == [v1]
        return
    assert not stuck

    # COMPLETED only once the old deployment has drained.
    [deployment] = service["deployments"]
    assert deployment["runningCount"] == desired
    assert [task["taskDefinitionArn"] for task in running] == [v2] * desired
    assert {task["startedBy"] for task in running} == {deployment["id"]}


def test_service_events_read_like_ecs_newest_first(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    deploy_first_version(clients, sim, cluster)
    ecs.update_service(cluster=cluster.name, service="web", forceNewDeployment=True)
    deployment_id = primary(describe(ecs, cluster))["id"]
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")

    events = describe(ecs, cluster)["events"]

    messages = [event["message"] for event in events]
    assert messages[:2] == [
        "(service web) has reached a steady state.",
        f"(service web) (deployment {deployment_id}) deployment completed.",
    ]
    task = r"\(task [0-9a-f]{32}\)"
    assert any(
        re.fullmatch(rf"\(service web\) has started 2 tasks: {task} {task}\.", m) for m in messages
    )
    assert any(
        re.fullmatch(rf"\(service web\) has stopped \d running tasks: {task}( {task})*\.", m)
        for m in messages
    )
    assert len({event["id"] for event in events}) == len(events)
    created = [event["createdAt"] for event in events]
    assert created == sorted(created, reverse=True)


def test_tasks_listed_and_described_agree_with_the_counts_and_stay_running(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    deploy_first_version(clients, sim, cluster, desired=3)
    ecs.update_service(cluster=cluster.name, service="web", forceNewDeployment=True)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    deployment_id = primary(describe(ecs, cluster))["id"]

    for _ in range(3):  # moto would walk described tasks toward STOPPED
        tasks = running_tasks(ecs, cluster)
        assert [t["lastStatus"] for t in tasks] == ["RUNNING"] * 3
    assert {t["startedBy"] for t in tasks} == {deployment_id}
    assert {t["group"] for t in tasks} == {"service:web"}
    assert describe(ecs, cluster)["runningCount"] == 3
    stopped = ecs.list_tasks(cluster=cluster.name, desiredStatus="STOPPED")["taskArns"]
    [old] = ecs.describe_tasks(cluster=cluster.name, tasks=stopped[:1])["tasks"]
    assert old["lastStatus"] == "STOPPED"
    assert re.fullmatch(
        r"Scaling activity initiated by \(deployment ecs-svc/\d{19}\)", old["stoppedReason"]
    )


def test_services_stable_waiter_passes_once_the_rollout_is_done(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    deploy_first_version(clients, sim, cluster)
    ecs.update_service(
        cluster=cluster.name,
        service="web",
        taskDefinition=register_task_definition(ecs, image="nginx:1.28"),
    )
    waiter = ecs.get_waiter("services_stable")
    failed_polls = 0

    for _ in range(20):
        try:
            waiter.wait(
                cluster=cluster.name, services=["web"], WaiterConfig={"Delay": 0, "MaxAttempts": 1}
            )
            break
        except WaiterError:
            failed_polls += 1
            sim.tick()

    assert failed_polls > 0  # not stable while two deployments run
    assert rollout_state(ecs, cluster) == "COMPLETED"


def test_create_service_is_idempotent_with_a_client_token(
    clients: Clients, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    v1 = register_task_definition(ecs)
    arguments = {"cluster": cluster.name, "serviceName": "web", "taskDefinition": v1}

    first = ecs.create_service(**arguments, desiredCount=1, clientToken="deployment-1")["service"]
    again = ecs.create_service(**arguments, desiredCount=1, clientToken="deployment-1")["service"]

    assert primary(again)["id"] == primary(first)["id"]
    with pytest.raises(ClientError) as error:
        ecs.create_service(**arguments, desiredCount=1, clientToken="deployment-2")
    assert error.value.response["Error"]["Code"] == "InvalidParameterException"


def test_deleting_a_service_drains_it(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    deploy_first_version(clients, sim, cluster)

    deleted = ecs.delete_service(cluster=cluster.name, service="web", force=True)["service"]
    sim.tick()

    assert deleted["status"] == "DRAINING"
    assert describe(ecs, cluster)["status"] == "INACTIVE"
    assert running_tasks(ecs, cluster) == []
    with pytest.raises(ClientError) as error:
        ecs.update_service(cluster=cluster.name, service="web", desiredCount=1)
    assert error.value.response["Error"]["Code"] == "ServiceNotActiveException"
