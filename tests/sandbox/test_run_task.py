"""RunTask (moto's own, as `aws ecs run-task` calls it) answers placement as ECS does: the tasks
that fit are placed, and `failures` names each instance with the resource it lacked."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import Clients, create_cluster, refusal, register_task_definition


@pytest.mark.parametrize(
    ("cpu", "memory", "host_port", "reason"),
    [
        ("2048", "256", 0, "RESOURCE:CPU"),
        ("256", "3072", 0, "RESOURCE:MEMORY"),
        ("256", "256", 8080, "RESOURCE:PORTS"),
    ],
)
def test_tasks_beyond_capacity_are_failures_naming_the_instance_and_resource(
    clients: Clients, sim: Simulator, cpu: str, memory: str, host_port: int, reason: str
) -> None:
    ecs = clients.ecs
    cluster = create_cluster(clients, instances=1)
    sim.tick()
    definition = register_task_definition(
        ecs, family="job", cpu=cpu, memory=memory, host_port=host_port
    )

    response = ecs.run_task(
        cluster=cluster.name, taskDefinition=definition, count=3, launchType="EC2"
    )

    [instance_arn] = ecs.list_container_instances(cluster=cluster.name)["containerInstanceArns"]
    assert len(response["tasks"]) == 1
    assert response["failures"] == [{"arn": instance_arn, "reason": reason}]
    listed = ecs.list_tasks(cluster=cluster.name, family="job")["taskArns"]
    assert listed == [response["tasks"][0]["taskArn"]]


def test_tasks_that_all_fit_have_no_failures(clients: Clients, sim: Simulator) -> None:
    cluster = create_cluster(clients, instances=2)
    sim.tick()
    definition = register_task_definition(clients.ecs, family="job")

    response = clients.ecs.run_task(
        cluster=cluster.name, taskDefinition=definition, count=4, launchType="EC2"
    )

    assert (len(response["tasks"]), response["failures"]) == (4, [])


def test_a_cluster_without_container_instances_is_refused(clients: Clients, sim: Simulator) -> None:
    cluster = create_cluster(clients, instances=0)
    definition = register_task_definition(clients.ecs, family="job")

    with pytest.raises(ClientError) as refused:
        clients.ecs.run_task(cluster=cluster.name, taskDefinition=definition, launchType="EC2")

    assert refusal(refused) == (
        "InvalidParameterException",
        "No Container Instances were found in your cluster.",
    )
