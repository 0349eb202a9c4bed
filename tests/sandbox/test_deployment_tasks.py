"""A deployment's own tasks, as the tracker counts them: ListTasks by startedBy (the deployment's
id, alone, as ECS requires) and their health from DescribeTasks."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    Clients,
    SandboxCluster,
    create_service,
    describe,
    primary,
    rollout_state,
    tick_until,
)

HEALTH_CHECK = {"command": ["CMD-SHELL", "curl -fs http://localhost/ || exit 1"], "retries": 3}


def _task_definition(ecs: Any, image: str, health_check: bool) -> str:
    container: dict[str, Any] = {"name": "web", "image": image, "essential": True}
    if health_check:
        container["healthCheck"] = HEALTH_CHECK
    arn: str = ecs.register_task_definition(
        family="web", requiresCompatibilities=["EC2"], cpu="256", memory="512",
        containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    return arn


def _tasks_of(ecs: Any, cluster: SandboxCluster, deployment_id: str) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster=cluster.name, startedBy=deployment_id)["taskArns"]
    tasks: list[dict[str, Any]] = (
        ecs.describe_tasks(cluster=cluster.name, tasks=arns)["tasks"] if arns else []
    )
    return tasks


@pytest.mark.parametrize(("health_check", "status"), [(True, "HEALTHY"), (False, "UNKNOWN")])
def test_a_deployments_tasks_are_listed_by_its_id_with_their_health(
    clients: Clients, sim: Simulator, cluster: SandboxCluster, health_check: bool, status: str
) -> None:
    ecs = clients.ecs
    good = _task_definition(ecs, "nginx:1.27", health_check)
    create_service(ecs, cluster, good, desired=2)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")

    tasks = _tasks_of(ecs, cluster, primary(describe(ecs, cluster))["id"])

    assert [(t["lastStatus"], t["healthStatus"]) for t in tasks] == [("RUNNING", status)] * 2
    assert {t["taskDefinitionArn"] for t in tasks} == {good}


def test_tasks_failing_their_health_check_run_unhealthy_and_belong_to_the_new_deployment(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    create_service(ecs, cluster, _task_definition(ecs, "nginx:1.27", True), desired=2)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    old_id = primary(describe(ecs, cluster))["id"]
    bad = _task_definition(ecs, "nginx:unhealthy", True)
    new_id = ecs.update_service(cluster=cluster.name, service="web", taskDefinition=bad)["service"][
        "deployments"
    ][0]["id"]

    tick_until(
        sim, lambda: any(t["lastStatus"] == "RUNNING" for t in _tasks_of(ecs, cluster, new_id))
    )

    new = [t for t in _tasks_of(ecs, cluster, new_id) if t["lastStatus"] == "RUNNING"]
    assert {(t["healthStatus"], t["taskDefinitionArn"]) for t in new} == {("UNHEALTHY", bad)}
    assert {t["healthStatus"] for t in _tasks_of(ecs, cluster, old_id)} == {"HEALTHY"}


def test_started_by_must_be_the_only_filter(clients: Clients, cluster: SandboxCluster) -> None:
    with pytest.raises(ClientError) as refused:
        clients.ecs.list_tasks(cluster=cluster.name, startedBy="ecs-svc/1", serviceName="web")

    error = refused.value.response["Error"]
    assert error == error | {
        "Code": "InvalidParameterException",
        "Message": "cannot specify startedBy with other arguments",
    }
