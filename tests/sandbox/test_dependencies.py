"""AWS refuses to delete what something still depends on: subnets and security groups under live
instances, ECS clusters with services, tasks, container instances or capacity providers, capacity
providers a cluster holds or its services and tasks use."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployments.sandbox.shutdown import SHUTDOWN_TICKS
from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    IMAGE_ID,
    Clients,
    SandboxCluster,
    create_service,
    refusal,
    register_task_definition,
)


def instance_in_a_subnet(ec2: Any) -> tuple[str, str, str, str]:
    """(vpc, subnet, security group, instance): an instance using a subnet and a group."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    instance = ec2.run_instances(
        ImageId=IMAGE_ID, MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[group]
    )["Instances"][0]["InstanceId"]
    return vpc, subnet, group, instance


def test_a_subnet_and_security_group_under_a_live_instance_are_not_deleted(
    clients: Clients, sim: Simulator
) -> None:
    ec2 = clients.ec2
    vpc, subnet, group, instance = instance_in_a_subnet(ec2)

    with pytest.raises(ClientError) as subnet_refused:
        ec2.delete_subnet(SubnetId=subnet)
    with pytest.raises(ClientError) as group_refused:
        ec2.delete_security_group(GroupId=group)

    assert refusal(subnet_refused) == (
        "DependencyViolation", f"The subnet '{subnet}' has dependencies and cannot be deleted."
    )  # fmt: skip
    assert refusal(group_refused) == (
        "DependencyViolation",
        f"resource {group} has a dependent object",
    )
    ec2.terminate_instances(InstanceIds=[instance])
    for _ in range(SHUTDOWN_TICKS):
        sim.tick()
    ec2.delete_security_group(GroupId=group)
    ec2.delete_subnet(SubnetId=subnet)
    assert ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"] == []


def test_a_terminating_instance_shuts_down_for_a_few_ticks_and_keeps_its_subnet_in_use(
    clients: Clients, sim: Simulator
) -> None:
    ec2 = clients.ec2
    _, subnet, _, instance = instance_in_a_subnet(ec2)

    def state() -> str:
        reservation = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]
        name: str = reservation["Instances"][0]["State"]["Name"]
        return name

    [change] = ec2.terminate_instances(InstanceIds=[instance])["TerminatingInstances"]
    assert (change["PreviousState"]["Name"], change["CurrentState"]["Name"]) == (
        "running",
        "shutting-down",
    )
    for _ in range(SHUTDOWN_TICKS - 1):
        sim.tick()
        assert state() == "shutting-down"
        with pytest.raises(ClientError) as refused:
            ec2.delete_subnet(SubnetId=subnet)
        assert refusal(refused)[0] == "DependencyViolation"
    again = ec2.terminate_instances(InstanceIds=[instance])["TerminatingInstances"][0]
    assert again["CurrentState"]["Name"] == "shutting-down"
    sim.tick()
    assert state() == "terminated"
    ec2.delete_subnet(SubnetId=subnet)


def test_a_cluster_is_not_deleted_while_anything_is_left_in_it(
    clients: Clients, cluster: SandboxCluster, sim: Simulator
) -> None:
    ecs = clients.ecs
    create_service(ecs, cluster, register_task_definition(ecs), desired=1)
    sim.tick()

    def delete() -> tuple[str, str]:
        with pytest.raises(ClientError) as refused:
            ecs.delete_cluster(cluster=cluster.name)
        return refusal(refused)

    assert delete() == (
        "ClusterContainsServicesException",
        "The Cluster cannot be deleted while Services are active.",
    )
    ecs.delete_service(cluster=cluster.name, service="web", force=True)
    assert delete()[0] == "ClusterContainsServicesException"  # DRAINING
    sim.tick()  # its task stops; the service is INACTIVE
    assert delete() == (
        "ClusterContainsContainerInstancesException",
        "The Cluster cannot be deleted while Container Instances are active or draining.",
    )
    for arn in ecs.list_container_instances(cluster=cluster.name)["containerInstanceArns"]:
        ecs.deregister_container_instance(cluster=cluster.name, containerInstance=arn, force=True)
    group = clients.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    ecs.create_capacity_provider(
        name="cp", autoScalingGroupProvider={"autoScalingGroupArn": group["AutoScalingGroupARN"]}
    )
    ecs.put_cluster_capacity_providers(
        cluster=cluster.name, capacityProviders=["cp"], defaultCapacityProviderStrategy=[]
    )
    assert delete() == (
        "ClientException",
        "The Cluster cannot be deleted while Cluster Scoped Capacity Providers are attached to "
        "the cluster.",
    )
    ecs.put_cluster_capacity_providers(
        cluster=cluster.name, capacityProviders=[], defaultCapacityProviderStrategy=[]
    )

    assert ecs.delete_cluster(cluster=cluster.name)["cluster"]["status"] == "INACTIVE"


def test_a_region_holds_five_vpcs_as_its_quota_says(clients: Clients, sim: Simulator) -> None:
    quotas = clients._client("service-quotas")
    quota = quotas.get_service_quota(ServiceCode="vpc", QuotaCode="L-F678F1CE")["Quota"]
    while len(clients.ec2.describe_vpcs()["Vpcs"]) < quota["Value"]:  # the default VPC counts
        clients.ec2.create_vpc(CidrBlock="10.0.0.0/16")

    with pytest.raises(ClientError) as refused:
        clients.ec2.create_vpc(CidrBlock="10.0.0.0/16")

    assert quota["Value"] == 5
    assert refusal(refused) == ("VpcLimitExceeded", "The maximum number of VPCs has been reached.")


def test_a_dry_run_at_the_vpc_quota_checks_permissions_only(
    clients: Clients, sim: Simulator
) -> None:
    while len(clients.ec2.describe_vpcs()["Vpcs"]) < 5:
        clients.ec2.create_vpc(CidrBlock="10.0.0.0/16")

    with pytest.raises(ClientError) as answered:
        clients.ec2.create_vpc(CidrBlock="10.0.0.0/16", DryRun=True)

    assert answered.value.response["Error"]["Code"] == "DryRunOperation"
    assert len(clients.ec2.describe_vpcs()["Vpcs"]) == 5


def test_a_capacity_provider_in_use_stays_attached_and_an_attached_one_is_not_deleted(
    clients: Clients, cluster: SandboxCluster, sim: Simulator
) -> None:
    ecs = clients.ecs
    group = clients.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    ecs.create_capacity_provider(
        name="cp", autoScalingGroupProvider={"autoScalingGroupArn": group["AutoScalingGroupARN"]}
    )
    ecs.put_cluster_capacity_providers(
        cluster=cluster.name,
        capacityProviders=["cp"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "cp", "weight": 1}],
    )
    ecs.create_service(  # on the cluster's default strategy
        cluster=cluster.name,
        serviceName="web",
        taskDefinition=register_task_definition(ecs),
        desiredCount=1,
    )
    sim.tick()

    def provider() -> dict[str, str]:
        found: list[dict[str, str]] = ecs.describe_capacity_providers(capacityProviders=["cp"])[
            "capacityProviders"
        ]
        [only] = found
        return only

    with pytest.raises(ClientError) as in_use:
        ecs.put_cluster_capacity_providers(
            cluster=cluster.name, capacityProviders=[], defaultCapacityProviderStrategy=[]
        )
    refused = ecs.delete_capacity_provider(capacityProvider="cp")["capacityProvider"]

    assert refusal(in_use) == (
        "ResourceInUseException",
        "The specified capacity provider is in use and cannot be removed.",
    )
    assert (refused["status"], refused["updateStatus"]) == ("ACTIVE", "DELETE_FAILED")
    assert refused["updateStatusReason"] == (
        "The capacity provider cannot be deleted because it is associated with cluster: demo. "
        "Remove the capacity provider from the cluster and try again."
    )
    assert provider()["status"] == "ACTIVE"

    ecs.delete_service(cluster=cluster.name, service="web", force=True)
    sim.tick()  # its task stops; the service is INACTIVE
    ecs.put_cluster_capacity_providers(
        cluster=cluster.name, capacityProviders=[], defaultCapacityProviderStrategy=[]
    )
    accepted = ecs.delete_capacity_provider(capacityProvider="cp")["capacityProvider"]
    assert accepted["updateStatus"] == provider()["updateStatus"] == "DELETE_IN_PROGRESS"
    sim.tick()

    described = ecs.describe_capacity_providers(capacityProviders=["cp"])
    assert described["capacityProviders"] == []
    assert [failure["reason"] for failure in described["failures"]] == ["MISSING"]
