"""Fixtures for the sandbox contract tests: a simulated cluster reached only through boto3.

Most tests run moto in-process (`mock_aws`) and advance the simulator with `sim.tick()`; the server
tests start the real sandbox on a free port.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from deployments.sandbox.simulator import Simulator

REGION = "eu-west-1"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
IMAGE_ID = "ami-0a1b2c3d4e5f67890"  # moto does not check that an AMI exists
CREDENTIALS = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}


class Clients:
    """boto3 clients, made on first use (each costs tens of milliseconds)."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    def _client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service, region_name=REGION, endpoint_url=self.endpoint_url, **CREDENTIALS
        )

    @cached_property
    def ecs(self) -> Any:
        return self._client("ecs")

    @cached_property
    def ec2(self) -> Any:
        return self._client("ec2")

    @cached_property
    def autoscaling(self) -> Any:
        return self._client("autoscaling")

    @cached_property
    def application_autoscaling(self) -> Any:
        return self._client("application-autoscaling")

    @cached_property
    def cloudwatch(self) -> Any:
        return self._client("cloudwatch")

    @cached_property
    def iam(self) -> Any:
        return self._client("iam")

    @cached_property
    def ssm(self) -> Any:
        return self._client("ssm")


@dataclass
class SandboxCluster:
    name: str
    asg_name: str
    subnets: list[str]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # thousands of AMIs per reset
    with mock_aws():
        yield


@pytest.fixture
def sim(aws: None) -> Simulator:
    # 60-second ticks so that autoscaling cooldowns and metric periods pass in a few ticks.
    return Simulator(tick_seconds=60, seed=7)


@pytest.fixture
def clients(aws: None) -> Clients:
    return Clients()


def create_cluster(
    clients: Clients,
    name: str = "demo",
    instances: int = 3,
    instance_type: str = "t3.medium",
    zones: int = 3,
) -> SandboxCluster:
    """What provisioning builds: a VPC with a subnet per AZ, a launch template whose user data
    names the cluster, the ECS cluster and an Auto Scaling group across the subnets."""
    ec2, autoscaling = clients.ec2, clients.autoscaling
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate(ZONES[:zones])
    ]
    user_data = f"#!/bin/bash\necho ECS_CLUSTER={name} >> /etc/ecs/ecs.config\n"
    ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={
            "ImageId": IMAGE_ID,
            "InstanceType": instance_type,
            "UserData": base64.b64encode(user_data.encode()).decode(),
        },
    )
    clients.ecs.create_cluster(clusterName=name)
    asg_name = f"{name}-asg"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=instances,
        VPCZoneIdentifier=",".join(subnets),
    )
    return SandboxCluster(name=name, asg_name=asg_name, subnets=subnets)


@pytest.fixture
def cluster(clients: Clients, sim: Simulator) -> SandboxCluster:
    created = create_cluster(clients)
    sim.tick()  # the agents register the instances
    return created


def register_task_definition(
    ecs: Any,
    image: str = "nginx:1.27",
    family: str = "web",
    cpu: str = "256",
    memory: str = "512",
    host_port: int = 0,
) -> str:
    arn: str = ecs.register_task_definition(
        family=family,
        requiresCompatibilities=["EC2"],
        cpu=cpu,
        memory=memory,
        containerDefinitions=[
            {
                "name": "web",
                "image": image,
                "essential": True,
                "portMappings": [{"containerPort": 80, "hostPort": host_port}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return arn


def create_service(
    ecs: Any,
    cluster: SandboxCluster,
    task_definition: str,
    desired: int = 2,
    minimum: int = 100,
    maximum: int = 200,
    breaker: bool = False,
    rollback: bool = False,
    name: str = "web",
) -> dict[str, Any]:
    service: dict[str, Any] = ecs.create_service(
        cluster=cluster.name,
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=desired,
        launchType="EC2",
        schedulingStrategy="REPLICA",
        deploymentConfiguration={
            "minimumHealthyPercent": minimum,
            "maximumPercent": maximum,
            "deploymentCircuitBreaker": {"enable": breaker, "rollback": rollback},
        },
        placementStrategy=[
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "spread", "field": "instanceId"},
        ],
    )["service"]
    return service


def describe(ecs: Any, cluster: SandboxCluster, name: str = "web") -> dict[str, Any]:
    service: dict[str, Any] = ecs.describe_services(cluster=cluster.name, services=[name])[
        "services"
    ][0]
    return service


def primary(service: dict[str, Any]) -> dict[str, Any]:
    deployment: dict[str, Any] = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
    return deployment


def running_tasks(ecs: Any, cluster: SandboxCluster, name: str = "web") -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster=cluster.name, serviceName=name)["taskArns"]
    if not arns:
        return []
    tasks: list[dict[str, Any]] = ecs.describe_tasks(cluster=cluster.name, tasks=arns)["tasks"]
    return tasks


def tick_until(sim: Simulator, condition: Callable[[], bool], ticks: int = 40) -> None:
    for _ in range(ticks):
        if condition():
            return
        sim.tick()
    assert condition(), f"not reached after {ticks} ticks"


def rollout_state(ecs: Any, cluster: SandboxCluster, name: str = "web") -> str:
    state: str = primary(describe(ecs, cluster, name))["rolloutState"]
    return state


def refusal(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    """A refused call's (code, message)."""
    return error.value.response["Error"]["Code"], error.value.response["Error"]["Message"]
