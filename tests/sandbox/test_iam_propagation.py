"""IAM's eventual consistency: a new instance profile is refused by EC2 and Auto Scaling for a few
seconds, with AWS's wording, and accepted once it has propagated."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployments.sandbox import propagation
from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import IMAGE_ID, Clients, refusal


def new_instance_profile(clients: Clients, name: str = "web-instances") -> dict[str, Any]:
    trust = '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'  # noqa: E501
    clients.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    profile: dict[str, Any] = clients.iam.create_instance_profile(InstanceProfileName=name)[
        "InstanceProfile"
    ]
    clients.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return profile


@pytest.fixture
def propagating(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(propagation.settings, "seconds", 10.0)
    return 10.0


def test_an_auto_scaling_group_is_refused_a_new_instance_profile_until_it_propagates(
    clients: Clients, propagating: float
) -> None:
    profile = new_instance_profile(clients)
    subnet = clients.ec2.create_subnet(
        VpcId=clients.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"],
        CidrBlock="10.0.0.0/24",
    )["Subnet"]["SubnetId"]
    # CreateLaunchTemplate does not validate its parameters: the template is accepted.
    clients.ec2.create_launch_template(
        LaunchTemplateName="web",
        LaunchTemplateData={
            "ImageId": IMAGE_ID,
            "InstanceType": "t3.medium",
            "IamInstanceProfile": {"Arn": profile["Arn"]},
            "UserData": base64.b64encode(b"#!/bin/bash\n").decode(),
        },
    )
    group = {
        "AutoScalingGroupName": "web",
        "LaunchTemplate": {"LaunchTemplateName": "web", "Version": "$Latest"},
        "MinSize": 0,
        "MaxSize": 2,
        "DesiredCapacity": 0,
        "VPCZoneIdentifier": subnet,
    }

    with pytest.raises(ClientError) as refused:
        clients.autoscaling.create_auto_scaling_group(**group)

    assert refusal(refused) == (
        "ValidationError",
        "You must use a valid fully-formed launch template. "
        f"Value ({profile['Arn']}) for parameter iamInstanceProfile.arn is invalid. "
        "Invalid IAM Instance Profile ARN",
    )
    assert clients.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"] == []

    propagation.CLOCK.advance(propagating)
    clients.autoscaling.create_auto_scaling_group(**group)
    assert len(clients.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]) == 1


def test_run_instances_is_refused_a_new_instance_profile_until_it_propagates(
    clients: Clients, propagating: float
) -> None:
    new_instance_profile(clients)
    launch = {
        "ImageId": IMAGE_ID,
        "MinCount": 1,
        "MaxCount": 1,
        "IamInstanceProfile": {"Name": "web-instances"},
    }

    with pytest.raises(ClientError) as refused:
        clients.ec2.run_instances(**launch)

    assert refusal(refused) == (
        "InvalidParameterValue",
        "Value (web-instances) for parameter iamInstanceProfile.name is invalid. "
        "Invalid IAM Instance Profile name",
    )
    propagation.CLOCK.advance(propagating)
    assert len(clients.ec2.run_instances(**launch)["Instances"]) == 1


def test_a_profile_that_does_not_exist_is_refused_the_same_way(
    clients: Clients, propagating: float
) -> None:
    propagation.CLOCK.advance(propagating)
    with pytest.raises(ClientError, match="Invalid IAM Instance Profile name"):
        clients.ec2.run_instances(
            ImageId=IMAGE_ID, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "nobody"}
        )
