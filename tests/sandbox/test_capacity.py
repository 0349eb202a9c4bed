"""The fake ECS agent, AZ spread and task placement: instances, resources, ports, stalls."""

from __future__ import annotations

from collections import Counter

import pytest
from botocore.exceptions import ClientError

from deployments.capacity import INSTANCE_TYPES
from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    ZONES,
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

NO_INSTANCES = (
    "(service web) was unable to place a task because no container instance met all of its "
    "requirements. Reason: No Container Instances were found in your cluster."
)


def container_instances(clients: Clients, cluster: SandboxCluster) -> list[dict[str, object]]:
    arns = clients.ecs.list_container_instances(cluster=cluster.name)["containerInstanceArns"]
    if not arns:
        return []
    instances: list[dict[str, object]] = clients.ecs.describe_container_instances(
        cluster=cluster.name, containerInstances=arns
    )["containerInstances"]
    return instances


def zone_of(instance: dict[str, object]) -> str:
    attributes = instance["attributes"]
    assert isinstance(attributes, list)
    zone: str = next(a["value"] for a in attributes if a["name"] == "ecs.availability-zone")
    return zone


def resource(instance: dict[str, object], kind: str, name: str) -> object:
    resources = instance[kind]
    assert isinstance(resources, list)
    return next(r for r in resources if r["name"] == name)["integerValue"]


def test_auto_scaling_instances_join_the_cluster_named_in_their_user_data(
    clients: Clients, cluster: SandboxCluster
) -> None:
    instances = container_instances(clients, cluster)

    t3_medium = INSTANCE_TYPES["t3.medium"]
    assert len(instances) == 3
    assert {zone_of(instance) for instance in instances} == set(ZONES)
    for instance in instances:
        assert resource(instance, "registeredResources", "CPU") == t3_medium.cpu_units
        assert resource(instance, "registeredResources", "MEMORY") == t3_medium.task_memory_mib
    [described] = clients.ecs.describe_clusters(clusters=[cluster.name])["clusters"]
    assert described["registeredContainerInstancesCount"] == 3


def test_an_unknown_instance_type_gets_default_capacity_and_other_clusters_are_left_alone(
    clients: Clients, sim: Simulator
) -> None:
    cluster = create_cluster(clients, name="odd", instances=1, instance_type="z9.huge")
    clients.ecs.create_cluster(clusterName="other")
    sim.tick()

    [instance] = container_instances(clients, cluster)
    assert resource(instance, "registeredResources", "CPU") == 2048
    assert resource(instance, "registeredResources", "MEMORY") == 3700
    other = clients.ecs.list_container_instances(cluster="other")["containerInstanceArns"]
    assert other == []


def test_the_group_spreads_instances_across_zones_when_it_scales_out_and_in(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    def zones_in_group() -> Counter[str]:
        [group] = clients.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[cluster.asg_name]
        )["AutoScalingGroups"]
        return Counter(instance["AvailabilityZone"] for instance in group["Instances"])

    clients.autoscaling.set_desired_capacity(
        AutoScalingGroupName=cluster.asg_name, DesiredCapacity=6
    )
    sim.tick()
    assert zones_in_group() == dict.fromkeys(ZONES, 2)
    assert Counter(zone_of(i) for i in container_instances(clients, cluster)) == dict.fromkeys(
        ZONES, 2
    )

    clients.autoscaling.set_desired_capacity(
        AutoScalingGroupName=cluster.asg_name, DesiredCapacity=3
    )
    sim.tick()
    assert zones_in_group() == dict.fromkeys(ZONES, 1)
    assert len(container_instances(clients, cluster)) == 3


def test_tasks_spread_across_zones_then_instances(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    create_service(clients.ecs, cluster, register_task_definition(clients.ecs), desired=6)
    tick_until(sim, lambda: rollout_state(clients.ecs, cluster) == "COMPLETED")

    tasks = running_tasks(clients.ecs, cluster)
    assert Counter(task["availabilityZone"] for task in tasks) == dict.fromkeys(ZONES, 2)
    assert len({task["containerInstanceArn"] for task in tasks}) == 3
    for instance in container_instances(clients, cluster):
        assert resource(instance, "remainingResources", "CPU") == 2048 - 2 * 256


def test_dynamic_host_ports_let_tasks_share_an_instance_but_fixed_ones_do_not(
    clients: Clients, sim: Simulator
) -> None:
    ecs = clients.ecs
    cluster = create_cluster(clients, instances=1)
    sim.tick()
    create_service(ecs, cluster, register_task_definition(ecs, host_port=0), desired=3)
    create_service(
        ecs,
        cluster,
        register_task_definition(ecs, family="api", host_port=8080),
        desired=2,
        name="api",
    )

    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    sim.tick()

    assert len(running_tasks(ecs, cluster)) == 3
    api = describe(ecs, cluster, "api")
    assert api["runningCount"] == 1
    assert "is already using a port required by your task" in api["events"][0]["message"]


def test_a_rollout_stalls_without_capacity_and_recovers_when_the_group_grows(
    clients: Clients, sim: Simulator
) -> None:
    ecs = clients.ecs
    cluster = create_cluster(clients, instances=0)
    create_service(ecs, cluster, register_task_definition(ecs), desired=2)

    for _ in range(3):
        sim.tick()
    service = describe(ecs, cluster)
    assert (service["runningCount"], service["pendingCount"]) == (0, 0)
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert [e["message"] for e in service["events"]] == [
        NO_INSTANCES + " For more information, see the Troubleshooting section of the "
        "Amazon ECS Developer Guide."
    ]  # said once, not every tick

    clients.autoscaling.set_desired_capacity(
        AutoScalingGroupName=cluster.asg_name, DesiredCapacity=2
    )
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    assert describe(ecs, cluster)["runningCount"] == 2


def test_a_task_too_big_for_the_free_memory_waits_for_another_instance(
    clients: Clients, sim: Simulator
) -> None:
    ecs = clients.ecs
    cluster = create_cluster(clients, instances=1)
    sim.tick()
    big = register_task_definition(ecs, cpu="1024", memory="3072")
    create_service(ecs, cluster, big, desired=2)

    for _ in range(4):
        sim.tick()
    service = describe(ecs, cluster)
    assert service["runningCount"] == 1
    assert "has insufficient memory available" in service["events"][0]["message"]
    assert "The closest matching container-instance" in service["events"][0]["message"]

    clients.autoscaling.set_desired_capacity(
        AutoScalingGroupName=cluster.asg_name, DesiredCapacity=2
    )
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    zones = {task["availabilityZone"] for task in running_tasks(ecs, cluster)}
    assert len(zones) == 2


def test_tasks_on_a_terminated_instance_are_replaced_elsewhere(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    create_service(ecs, cluster, register_task_definition(ecs), desired=3)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    victim = running_tasks(ecs, cluster)[0]
    [instance] = ecs.describe_container_instances(
        cluster=cluster.name, containerInstances=[victim["containerInstanceArn"]]
    )["containerInstances"]

    clients.autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=instance["ec2InstanceId"], ShouldDecrementDesiredCapacity=True
    )
    sim.tick()

    [stopped] = ecs.describe_tasks(cluster=cluster.name, tasks=[victim["taskArn"]])["tasks"]
    assert stopped["lastStatus"] == "STOPPED"
    assert (
        stopped["stoppedReason"] == f"Host EC2 (instance {instance['ec2InstanceId']}) terminated."
    )
    assert len(container_instances(clients, cluster)) == 2
    tick_until(sim, lambda: describe(ecs, cluster)["runningCount"] == 3)


def test_idle_protected_instances_leave_when_ecs_manages_termination_protection(
    clients: Clients, sim: Simulator
) -> None:
    cluster = create_cluster(clients, instances=3)
    [group] = clients.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[cluster.asg_name]
    )["AutoScalingGroups"]
    clients.autoscaling.set_instance_protection(
        AutoScalingGroupName=cluster.asg_name,
        InstanceIds=[instance["InstanceId"] for instance in group["Instances"]],
        ProtectedFromScaleIn=True,
    )
    clients.ecs.create_capacity_provider(
        name="demo-cp",
        autoScalingGroupProvider={
            "autoScalingGroupArn": group["AutoScalingGroupARN"],
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100},
            "managedTerminationProtection": "ENABLED",
        },
    )
    sim.tick()

    clients.autoscaling.set_desired_capacity(
        AutoScalingGroupName=cluster.asg_name, DesiredCapacity=1
    )
    sim.tick()

    assert len(container_instances(clients, cluster)) == 1


def test_capacity_provider_strategies_are_kept_and_the_cluster_default_applies(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    [group] = clients.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[cluster.asg_name]
    )["AutoScalingGroups"]
    ecs.create_capacity_provider(
        name="demo-cp",
        autoScalingGroupProvider={"autoScalingGroupArn": group["AutoScalingGroupARN"]},
    )
    strategy = [{"capacityProvider": "demo-cp", "weight": 1, "base": 0}]
    ecs.put_cluster_capacity_providers(
        cluster=cluster.name,
        capacityProviders=["demo-cp"],
        defaultCapacityProviderStrategy=strategy,
    )
    definition = register_task_definition(ecs)

    created = ecs.create_service(
        cluster=cluster.name, serviceName="web", taskDefinition=definition, desiredCount=2
    )["service"]
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")

    for service in (created, describe(ecs, cluster)):
        assert service["capacityProviderStrategy"] == strategy
        assert "launchType" not in service
        assert service["deployments"][0]["capacityProviderStrategy"] == strategy
    assert {t["capacityProviderName"] for t in running_tasks(ecs, cluster)} == {"demo-cp"}
    with pytest.raises(ClientError) as error:
        ecs.create_service(
            cluster=cluster.name,
            serviceName="both",
            taskDefinition=definition,
            launchType="EC2",
            capacityProviderStrategy=strategy,
        )
    assert error.value.response["Error"]["Code"] == "InvalidParameterException"
