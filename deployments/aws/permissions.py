"""The IAM policies a customer's role needs: what TinyStacks calls in their account, and nothing
more. The accounts page shows them to paste; the sandbox gives its simulated customer role exactly
these; a test derives every action the code calls and fails when one is missing here.

Resource-level scoping follows our names: every role, instance profile and parameter we create
starts with `tinystacks-` / `/tinystacks/`, so the role cannot touch the customer's other IAM roles
or secrets.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Roles and instance profiles are named `tinystacks-<cluster id>-<kind>` (ClusterSpec.name).
OUR_ROLES = "arn:aws:iam::*:role/tinystacks-*"
OUR_INSTANCE_PROFILES = "arn:aws:iam::*:instance-profile/tinystacks-*"
OUR_PARAMETERS = "arn:aws:ssm:*:*:parameter/tinystacks/*"
# The public parameter that names the ECS-optimised AMI (provisioning.ECS_AMI_PARAMETER).
ECS_AMI_PARAMETERS = "arn:aws:ssm:*::parameter/aws/service/ecs/*"

# The AWS services that act on our behalf, each through its service-linked role.
SERVICE_LINKED_ROLES = {
    "ecs.amazonaws.com": "AWSServiceRoleForECS",
    "autoscaling.amazonaws.com": "AWSServiceRoleForAutoScaling",
    "ecs.application-autoscaling.amazonaws.com": (
        "AWSServiceRoleForApplicationAutoScaling_ECSService"
    ),
}
# Who our roles are passed to: instances (the instance profile) and tasks (the execution role).
PASSED_TO_SERVICES = ["ec2.amazonaws.com", "ecs-tasks.amazonaws.com"]

STATEMENTS: list[dict[str, Any]] = [
    {
        "Sid": "Network",  # provisioning: VPC, subnets, routes, security group, launch template
        "Effect": "Allow",
        "Action": [
            "ec2:Describe*",
            "ec2:CreateVpc", "ec2:ModifyVpcAttribute", "ec2:DeleteVpc",
            "ec2:CreateInternetGateway", "ec2:AttachInternetGateway",
            "ec2:DetachInternetGateway", "ec2:DeleteInternetGateway",
            "ec2:CreateRouteTable", "ec2:CreateRoute", "ec2:AssociateRouteTable",
            "ec2:DisassociateRouteTable", "ec2:DeleteRouteTable",
            "ec2:CreateSubnet", "ec2:ModifySubnetAttribute", "ec2:DeleteSubnet",
            "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup",
            "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress",
            "ec2:CreateLaunchTemplate", "ec2:CreateLaunchTemplateVersion",
            "ec2:DeleteLaunchTemplate",
            # Tag-on-create (TagSpecifications) is authorised as CreateTags too; an Auto Scaling
            # group launching from a template needs RunInstances on the caller.
            "ec2:CreateTags", "ec2:RunInstances",
        ],
        "Resource": "*",
    },
    {
        "Sid": "Capacity",  # the Auto Scaling group behind the capacity provider
        "Effect": "Allow",
        "Action": [
            "autoscaling:Describe*",
            "autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup",
            "autoscaling:DeleteAutoScalingGroup", "autoscaling:SetInstanceProtection",
            "autoscaling:StartInstanceRefresh", "autoscaling:CreateOrUpdateTags",
        ],
        "Resource": "*",
    },
    {
        "Sid": "Containers",  # clusters, capacity providers, task definitions, services
        "Effect": "Allow",
        "Action": [
            "ecs:Describe*", "ecs:List*",
            "ecs:CreateCluster", "ecs:DeleteCluster", "ecs:PutClusterCapacityProviders",
            "ecs:CreateCapacityProvider", "ecs:DeleteCapacityProvider",
            "ecs:DeregisterContainerInstance", "ecs:UpdateContainerInstancesState",
            "ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition",
            "ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService",
            "ecs:TagResource",
        ],
        "Resource": "*",
    },
    {
        "Sid": "Scaling",  # target tracking creates and deletes its CloudWatch alarms as the caller
        "Effect": "Allow",
        "Action": [
            "application-autoscaling:Describe*",
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:DeregisterScalableTarget",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:DeleteScalingPolicy",
            "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms",
            "cloudwatch:GetMetricData",
        ],
        "Resource": "*",
    },
    {
        "Sid": "Logs",
        "Effect": "Allow",
        "Action": [
            "logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:DeleteLogGroup",
            "logs:DescribeLogGroups", "logs:TagResource",
        ],
        "Resource": "*",
    },
    {
        "Sid": "Quotas",  # checked before a cluster is created
        "Effect": "Allow",
        "Action": ["servicequotas:GetServiceQuota"],
        "Resource": "*",
    },
    {
        "Sid": "OurRoles",  # the instance and task-execution roles of each cluster
        "Effect": "Allow",
        "Action": [
            "iam:GetRole", "iam:CreateRole", "iam:DeleteRole", "iam:TagRole",
            "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies",
            "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
            "iam:GetInstanceProfile", "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile",
            "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
        ],
        "Resource": [OUR_ROLES, OUR_INSTANCE_PROFILES],
    },
    {
        "Sid": "PassOurRoles",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": OUR_ROLES,
        "Condition": {"StringEquals": {"iam:PassedToService": PASSED_TO_SERVICES}},
    },
    {
        "Sid": "ServiceLinkedRoles",  # missing in fresh accounts
        "Effect": "Allow",
        "Action": "iam:CreateServiceLinkedRole",
        "Resource": "arn:aws:iam::*:role/aws-service-role/*",
        "Condition": {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLES)}},
    },
    {
        "Sid": "Parameters",  # secrets as SecureString parameters; the ECS AMI id
        "Effect": "Allow",
        "Action": [
            "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath",
            "ssm:PutParameter", "ssm:DeleteParameter", "ssm:DeleteParameters",
            "ssm:AddTagsToResource",
        ],
        "Resource": [OUR_PARAMETERS, ECS_AMI_PARAMETERS],
    },
]  # fmt: skip

PLACEHOLDER_ACCOUNT_ID = "<the TinyStacks AWS account id>"
# In the sandbox the dashboard and its customers share moto's one account.
SANDBOX_ACCOUNT_ID = "123456789012"


def sandbox_role_arn(external_id: str) -> str:
    """The role a sandbox connection assumes, created in the sandbox as a customer would. Its name
    is not `tinystacks-*`, so the role cannot edit its own policies."""
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:16]
    return f"arn:aws:iam::{SANDBOX_ACCOUNT_ID}:role/TinyStacksAccess-{digest}"


def permissions_policy() -> dict[str, Any]:
    """The role's permissions policy."""
    return {"Version": "2012-10-17", "Statement": STATEMENTS}


def trust_policy(principal_account_id: str, external_id: str) -> dict[str, Any]:
    """The role's trust policy: the dashboard's AWS account may assume it, with this account
    connection's ExternalId only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{principal_account_id}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def as_json(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2)
