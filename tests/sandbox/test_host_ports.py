"""Host ports as ECS binds them: each container reports its networkBindings; a dynamic host port
(`hostPort: 0`, bridge mode) comes from the ephemeral range, is unique on its instance among the
live tasks and is held in the instance's PORTS until the task stops; a static one is as given."""

from __future__ import annotations

from typing import Any

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    Clients,
    SandboxCluster,
    create_cluster,
    create_service,
    describe,
    register_task_definition,
    rollout_state,
    running_tasks,
    tick_until,
)

EPHEMERAL = range(32768, 61000)


def host_ports(task: dict[str, Any]) -> list[int]:
    return [b["hostPort"] for c in task["containers"] for b in c["networkBindings"]]


def reserved_ports(ecs: Any, cluster: SandboxCluster) -> set[int]:
    [arn] = ecs.list_container_instances(cluster=cluster.name)["containerInstanceArns"]
    [instance] = ecs.describe_container_instances(cluster=cluster.name, containerInstances=[arn])[
        "containerInstances"
    ]
    ports = next(r for r in instance["remainingResources"] if r["name"] == "PORTS")
    return {int(port) for port in ports["stringSetValue"]}


def one_instance(clients: Clients, sim: Simulator) -> SandboxCluster:
    cluster = create_cluster(clients, instances=1)
    sim.tick()
    return cluster


def test_dynamic_host_ports_are_bound_from_the_ephemeral_range_unique_on_the_instance(
    clients: Clients, sim: Simulator
) -> None:
    ecs = clients.ecs
    cluster = one_instance(clients, sim)
    create_service(ecs, cluster, register_task_definition(ecs, host_port=0), desired=2)
    create_service(ecs, cluster, register_task_definition(ecs, family="api"), desired=2, name="api")

    tick_until(sim, lambda: rollout_state(ecs, cluster, "api") == "COMPLETED")

    tasks = running_tasks(ecs, cluster) + running_tasks(ecs, cluster, "api")
    for task in tasks:
        [container] = task["containers"]
        [binding] = container["networkBindings"]
        assert binding["bindIP"] == "0.0.0.0"
        assert (binding["containerPort"], binding["protocol"]) == (80, "tcp")
        assert binding["hostPort"] in EPHEMERAL
    ports = [port for task in tasks for port in host_ports(task)]
    assert len(set(ports)) == 4
    assert set(ports) <= reserved_ports(ecs, cluster)


def test_a_stopped_task_gives_its_dynamic_port_back(clients: Clients, sim: Simulator) -> None:
    ecs = clients.ecs
    cluster = one_instance(clients, sim)
    create_service(ecs, cluster, register_task_definition(ecs, host_port=0), desired=1)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    [port] = host_ports(running_tasks(ecs, cluster)[0])

    ecs.update_service(cluster=cluster.name, service="web", desiredCount=0)
    tick_until(sim, lambda: describe(ecs, cluster)["runningCount"] == 0)

    assert port not in reserved_ports(ecs, cluster)


def test_a_static_host_port_is_reported_as_given(clients: Clients, sim: Simulator) -> None:
    ecs = clients.ecs
    cluster = one_instance(clients, sim)
    create_service(ecs, cluster, register_task_definition(ecs, host_port=8080), desired=1)

    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")

    [task] = running_tasks(ecs, cluster)
    assert host_ports(task) == [8080]
    assert 8080 in reserved_ports(ecs, cluster)


def test_every_container_reports_its_own_bindings(clients: Clients, sim: Simulator) -> None:
    ecs = clients.ecs
    cluster = one_instance(clients, sim)
    definition = ecs.register_task_definition(
        family="pair",
        networkMode="bridge",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "app", "image": "app:1", "portMappings": [{"containerPort": 8000}]},
            {
                "name": "proxy",
                "image": "nginx:1.27",
                "portMappings": [{"containerPort": 80, "hostPort": 8080}],
            },
        ],
    )["taskDefinition"]["taskDefinitionArn"]

    [task] = ecs.run_task(cluster=cluster.name, taskDefinition=definition, launchType="EC2")[
        "tasks"
    ]

    bindings = {c["name"]: c["networkBindings"] for c in task["containers"]}
    assert set(bindings) == {"app", "proxy"}
    [app] = bindings["app"]
    assert (app["containerPort"], app["hostPort"] in EPHEMERAL) == (8000, True)
    assert [(b["containerPort"], b["hostPort"]) for b in bindings["proxy"]] == [(80, 8080)]
    assert {app["hostPort"], 8080} <= reserved_ports(ecs, cluster)
