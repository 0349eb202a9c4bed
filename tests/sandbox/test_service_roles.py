"""Service-linked roles: a fresh account has none; AWS creates one when a caller who may
iam:CreateServiceLinkedRole first needs it, and refuses the call as AWS does otherwise."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import REGION, Clients, create_cluster, refusal

ALLOW_ALL_BUT_SERVICE_LINKED_ROLES = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ecs:*", "autoscaling:*", "ec2:*", "iam:PassRole",
                                       "application-autoscaling:*"], "Resource": "*"}
    ],
}  # fmt: skip


def service_roles(clients: Clients) -> set[str]:
    roles = clients.iam.list_roles(PathPrefix="/aws-service-role/")["Roles"]
    return {role["RoleName"] for role in roles}


def customer_role(clients: Clients, policy: dict[str, Any]) -> None:
    """A role holding `policy` only, which the account may assume."""
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "123456789012"},
                            "Action": "sts:AssumeRole"}]}  # fmt: skip
    clients.iam.create_role(RoleName="customer", AssumeRolePolicyDocument=json.dumps(trust))
    clients.iam.put_role_policy(
        RoleName="customer", PolicyName="p", PolicyDocument=json.dumps(policy)
    )


def as_customer(service: str) -> Any:
    sts = boto3.client("sts", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    credentials = sts.assume_role(
        RoleArn="arn:aws:iam::123456789012:role/customer", RoleSessionName="session"
    )["Credentials"]
    return boto3.client(  # type: ignore[call-overload]
        service, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )  # fmt: skip


def test_a_capacity_provider_needs_the_ecs_service_linked_role(
    clients: Clients, sim: Simulator
) -> None:
    create_cluster(clients)  # the administrator: Auto Scaling and ECS create their roles
    clients.iam.delete_role(RoleName="AWSServiceRoleForECS")
    group = clients.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    provider = {
        "name": "demo-capacity",
        "autoScalingGroupProvider": {"autoScalingGroupArn": group["AutoScalingGroupARN"]},
    }

    with pytest.raises(ClientError) as refused:
        clients.ecs.create_capacity_provider(**provider)

    assert refusal(refused) == (
        "InvalidParameterException",
        "Unable to assume the service linked role. Please verify that the ECS service linked "
        "role exists.",
    )
    clients.iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")
    clients.ecs.create_capacity_provider(**provider)


def test_aws_creates_the_roles_for_a_caller_who_may(clients: Clients, sim: Simulator) -> None:
    assert service_roles(clients) == set()

    create_cluster(clients)

    assert service_roles(clients) == {"AWSServiceRoleForECS", "AWSServiceRoleForAutoScaling"}
    role = clients.iam.get_role(RoleName="AWSServiceRoleForECS")["Role"]
    assert role["Path"] == "/aws-service-role/ecs.amazonaws.com/"


def test_creating_a_service_linked_role_twice_is_refused(clients: Clients, sim: Simulator) -> None:
    clients.iam.create_service_linked_role(
        AWSServiceName="ecs.application-autoscaling.amazonaws.com"
    )

    with pytest.raises(ClientError) as refused:
        clients.iam.create_service_linked_role(
            AWSServiceName="ecs.application-autoscaling.amazonaws.com"
        )

    assert refusal(refused) == (
        "InvalidInput",
        "Service role name AWSServiceRoleForApplicationAutoScaling_ECSService has been taken in "
        "this account, please try a different suffix.",
    )


def test_a_caller_who_may_not_create_them_is_refused(clients: Clients, sim: Simulator) -> None:
    customer_role(clients, ALLOW_ALL_BUT_SERVICE_LINKED_ROLES)
    with pytest.raises(ClientError, match="Please verify that the ECS service linked role exists"):
        as_customer("ecs").create_cluster(clusterName="demo")

    scaling = as_customer("application-autoscaling")
    with pytest.raises(ClientError) as refused:
        scaling.register_scalable_target(
            ServiceNamespace="ecs", ResourceId="service/demo/web",
            ScalableDimension="ecs:service:DesiredCount", MinCapacity=1, MaxCapacity=2,
        )  # fmt: skip
    assert refusal(refused) == (
        "ValidationException",
        "Unable to assume IAM role: arn:aws:iam::123456789012:role/aws-service-role/"
        "ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
    )

    autoscaling = as_customer("autoscaling")
    with pytest.raises(ClientError) as denied:
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="g", MinSize=0, MaxSize=1, AvailabilityZones=["eu-west-1a"],
            LaunchConfigurationName="none",
        )  # fmt: skip
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert (
        "not authorized to perform: iam:CreateServiceLinkedRole on resource: arn:aws:iam::"
        in (denied.value.response["Error"]["Message"])
    )
    assert service_roles(clients) == set()
